// Package stacktest gives integration tests the local stack of docs/design.md §9:
// fauxqs (SQS and S3), FerretDB and PostgreSQL. Addresses come from the
// environment or, failing that, from the repository's .stack/env, written by
// `make stack-up`. When the stack is missing a test skips, unless
// WHARF_REQUIRE_STACK=1 (set by `make test`), in which case it fails.
package stacktest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Stack holds the addresses of the local stack.
type Stack struct {
	Endpoint     string // AWS_ENDPOINT_URL
	Region       string
	QueueURL     string // the stack's shared queue
	Bucket       string
	MongoURI     string
	WarehouseDSN string
	Env          map[string]string // everything .stack/env exports
}

var keys = []string{"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
	"WHARF_SQS_QUEUE_URL", "WHARF_S3_BUCKET", "WHARF_MONGO_URI", "WHARF_WAREHOUSE_DSN"}

// RepoRoot finds the repository root (the directory holding go.mod) above
// the working directory.
func RepoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "deploy", "local")); err == nil {
				return d
			}
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// Get returns the stack, or skips (fails under WHARF_REQUIRE_STACK=1) when it
// is not running.
func Get(t testing.TB) *Stack {
	t.Helper()
	env := map[string]string{}
	if f, err := os.Open(filepath.Join(RepoRoot(), ".stack", "env")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
			k, v, ok := strings.Cut(line, "=")
			if ok {
				env[k] = strings.Trim(v, `'"`)
			}
		}
		f.Close()
	}
	for _, k := range keys {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	missing := func(why string) *Stack {
		if os.Getenv("WHARF_REQUIRE_STACK") == "1" {
			t.Fatalf("local stack required (WHARF_REQUIRE_STACK=1) but %s; run `make stack-up`", why)
		}
		t.Skipf("local stack not running (%s); run `make stack-up`", why)
		return nil
	}
	for _, k := range keys {
		if env[k] == "" {
			return missing(k + " is not set and .stack/env does not give it")
		}
	}
	s := &Stack{Endpoint: env["AWS_ENDPOINT_URL"], Region: env["AWS_REGION"], QueueURL: env["WHARF_SQS_QUEUE_URL"],
		Bucket: env["WHARF_S3_BUCKET"], MongoURI: env["WHARF_MONGO_URI"], WarehouseDSN: env["WHARF_WAREHOUSE_DSN"], Env: env}
	for _, addr := range []string{s.Endpoint, s.MongoURI, s.WarehouseDSN} {
		u, err := url.Parse(addr)
		if err != nil {
			return missing("bad address " + addr)
		}
		c, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
		if err != nil {
			return missing(u.Host + " does not answer")
		}
		c.Close()
	}
	return s
}

// Environ returns os.Environ() with the stack's variables (AWS_*, WHARF_*)
// added, for running the wharf binary against the stack.
func (s *Stack) Environ(extra ...string) []string {
	env := os.Environ()
	for k, v := range s.Env {
		env = append(env, k+"="+v)
	}
	return append(env, extra...)
}

// ID returns a short random identifier for names unique to one test.
func ID() string {
	b := make([]byte, 5)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// AWS returns an AWS config for the stack.
func (s *Stack) AWS(t testing.TB) aws.Config {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(s.Region), config.WithBaseEndpoint(s.Endpoint),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(s.Env["AWS_ACCESS_KEY_ID"], s.Env["AWS_SECRET_ACCESS_KEY"], "")))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// S3 returns a path-style S3 client.
func (s *Stack) S3(t testing.TB) *s3.Client {
	return s3.NewFromConfig(s.AWS(t), func(o *s3.Options) {
		o.UsePathStyle = true
		o.DisableLogOutputChecksumValidationSkipped = true
	})
}

// SQS returns an SQS client.
func (s *Stack) SQS(t testing.TB) *sqs.Client { return sqs.NewFromConfig(s.AWS(t)) }

// Queue creates a queue unique to the test, deleted when it ends.
func (s *Stack) Queue(t testing.TB, attrs map[string]string) string {
	t.Helper()
	c := s.SQS(t)
	out, err := c.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String("t-" + ID()), Attributes: attrs})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	t.Cleanup(func() { c.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl}) })
	return aws.ToString(out.QueueUrl)
}

// Prefix returns an S3 key prefix unique to the test.
func (s *Stack) Prefix() string { return "test-" + ID() + "/" }

// Mongo returns a client and a database name unique to the test, dropped
// when it ends.
func (s *Stack) Mongo(t testing.TB) (*mongo.Client, string) {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(s.MongoURI))
	if err != nil {
		t.Fatal(err)
	}
	db := "t_" + ID()
	t.Cleanup(func() {
		c.Database(db).Drop(context.Background())
		c.Disconnect(context.Background())
	})
	return c, db
}

// Warehouse creates a PostgreSQL schema unique to the test, dropped when it
// ends, and returns a pool on the warehouse and the schema's name.
func (s *Stack) Warehouse(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, s.WarehouseDSN)
	if err != nil {
		t.Fatal(err)
	}
	name := "t_" + ID()
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		pool.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE")
		pool.Close()
	})
	return pool, name
}
