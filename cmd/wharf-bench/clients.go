package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wharfdata/wharf/ingest"
	"github.com/wharfdata/wharf/internal/s3store"
)

// awsConfig loads the SDK's default configuration (region, credentials and
// AWS_ENDPOINT_URL from the environment).
func awsConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return cfg, fmt.Errorf("aws config: %w", err)
	}
	if cfg.Region == "" {
		return cfg, fmt.Errorf("aws config: no region (set AWS_REGION)")
	}
	return cfg, nil
}

func newSQS(ctx context.Context) (*sqs.Client, error) { return newSQSConns(ctx, 0) }

// newSQSConns is newSQS with the HTTP client `wharf serve` gives its
// consumer (ingest.NewHTTPClient, 0: the SDK's default): up to conns idle
// connections, so that more concurrent calls than the SDK's 10 do not close
// and redial one each, and a copy of each request body that only the
// transport owns, so that a ReceiveMessage answer is not lost to the SDK
// closing the body (its messages would wait out the visibility timeout, a
// tail that is the SDK's, not the baseline's).
func newSQSConns(ctx context.Context, conns int) (*sqs.Client, error) {
	ac, err := awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	if conns <= 0 {
		return sqs.NewFromConfig(ac), nil
	}
	hc := ingest.NewHTTPClient(conns)
	return sqs.NewFromConfig(ac, func(o *sqs.Options) { o.HTTPClient = hc }), nil
}

// newStore returns an S3 store for bucket; pathStyle is for emulators that
// serve buckets by path (fauxqs).
func newStore(ctx context.Context, bucket string, pathStyle bool) (*s3store.Store, error) {
	ac, err := awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	client := s3.NewFromConfig(ac, func(o *s3.Options) {
		o.UsePathStyle = pathStyle
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	return s3store.New(client, bucket), nil
}

func newMongo(ctx context.Context, uri string) (*mongo.Client, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetTimeout(60 * time.Second))
	if err != nil {
		return nil, fmt.Errorf("mongo: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := client.Ping(pctx, nil); err != nil {
		return nil, fmt.Errorf("mongo ping: %w", err)
	}
	return client, nil
}

func newPG(ctx context.Context, dsn string) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("warehouse: %w", err)
	}
	return conn, nil
}
