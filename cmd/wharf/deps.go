package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/logging"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/internal/secret"
	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse"
)

// newLogger returns zap JSON in production and console output on a terminal.
func newLogger(c *Config, w io.Writer) *zap.Logger {
	level := zap.NewAtomicLevel()
	_ = level.UnmarshalText([]byte(c.Log.Level))
	format := c.Log.Format
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "console"
		}
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if format == "console" {
		ec.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		enc = zapcore.NewJSONEncoder(ec)
	}
	// Every line goes through scrub: whatever a driver or the SDK puts in
	// an error, no password or AWS key reaches the log.
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(secret.Writer{W: w, Secrets: c.secrets}), level))
}

// loadSchema reads the schema file named by the config.
func loadSchema(c *Config) (*schema.Schema, error) {
	data, err := os.ReadFile(c.Schema)
	if errors.Is(err, fs.ErrNotExist) {
		// wharf has no schema of its own (nor has its image, unless built
		// with one): say what to give.
		return nil, badConfig("schema: no schema file at %s: set schema in the config file or WHARF_SCHEMA to your tables.yaml", c.Schema)
	}
	if err != nil {
		return nil, badConfig("schema: %v", err)
	}
	s, err := schema.Parse(data)
	if err != nil {
		return nil, badConfig("schema %s: %v", c.Schema, err)
	}
	return s, nil
}

// awsConfig loads the SDK's default chain (credentials, region, the
// AWS_ENDPOINT_URL* variables). Region and endpoint given through env
// take precedence, so that run() sees the same environment it is given.
//
// The global endpoint is set on the loaded config, not with
// WithBaseEndpoint: the SDK takes a load option's endpoint before
// AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL_SQS, which would make those
// per-service variables (docs/design.md §8) silently lose to AWS_ENDPOINT_URL.
func awsConfig(ctx context.Context, env Env) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if r := env.Get("AWS_REGION"); r != "" {
		opts = append(opts, awsconfig.WithRegion(r))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, fmt.Errorf("aws config: %w", err)
	}
	if e := env.Get("AWS_ENDPOINT_URL"); e != "" {
		cfg.BaseEndpoint = aws.String(e)
	}
	if cfg.Region == "" {
		return cfg, badConfig("AWS region is not set (AWS_REGION)")
	}
	return cfg, nil
}

func newS3(ac aws.Config, c *Config) *s3store.Store {
	client := s3.NewFromConfig(ac, func(o *s3.Options) {
		o.UsePathStyle = c.S3.PathStyle
		// Objects written by wharf are checked by their Parquet footer and
		// row counts; a store that returns no checksum is not worth a log line.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	return s3store.New(client, c.S3.Bucket)
}

func newSQS(ac aws.Config) *sqs.Client { return sqs.NewFromConfig(ac) }

func newPool(ctx context.Context, c *Config) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(c.Warehouse.DSN)
	if err != nil {
		return nil, badConfig("warehouse.dsn: %s", redact(err.Error()))
	}
	pc.MaxConns = int32(c.Warehouse.MaxConnections)
	if schema.Dialect(c.Warehouse.Dialect) == schema.Redshift {
		warehouse.RedshiftPoolConfig(pc)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("warehouse: %s", redact(err.Error()))
	}
	return pool, nil
}

func newMongo(ctx context.Context, c *Config) (*mongo.Client, error) {
	return connectMongo(ctx, c, 30*time.Second)
}

// connectMongo connects to mongo.uri with timeout per operation, and pings.
func connectMongo(ctx context.Context, c *Config, timeout time.Duration) (*mongo.Client, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(c.Mongo.URI).SetTimeout(timeout))
	if err != nil {
		return nil, badConfig("mongo.uri: %s", redact(err.Error()))
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := client.Ping(pctx, nil); err != nil {
		return nil, fmt.Errorf("mongo: %s", redact(err.Error()))
	}
	return client, nil
}

// mongoWriteConcern is the write concern mongo.uri sets (w, journal), for
// the raw store's inserts, which take none from the client; nil when it
// sets none.
func mongoWriteConcern(uri string) *writeconcern.WriteConcern {
	return options.Client().ApplyURI(uri).WriteConcern
}

// sdkLogger sends the AWS SDK's own log lines (such as its retry and
// response-body warnings) through zap, so that every line wharf writes is
// JSON in production.
type sdkLogger struct{ log *zap.Logger }

func (s sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	if c == logging.Warn {
		s.log.Warn(fmt.Sprintf(format, v...))
		return
	}
	s.log.Debug(fmt.Sprintf(format, v...))
}
