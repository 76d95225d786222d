package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/jackc/pgx/v5"

	"github.com/wharfdata/wharf/schema"
)

// cmdMkqueue creates a standard queue and prints its URL (plain text, for
// the shell).
func cmdMkqueue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("mkqueue", stderr)
	name := fs.String("name", "", "queue name (required)")
	visibility := fs.Int("visibility", 120, "visibility timeout, seconds")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" {
		return errors.New("mkqueue: -name is required")
	}
	client, err := newSQS(ctx)
	if err != nil {
		return err
	}
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  name,
		Attributes: map[string]string{"VisibilityTimeout": strconv.Itoa(*visibility)},
	})
	if err != nil {
		return fmt.Errorf("create queue %s: %w", *name, err)
	}
	_, err = fmt.Fprintln(stdout, aws.ToString(out.QueueUrl))
	return err
}

// cmdCleanup deletes what one benchmark run created. Every flag is optional;
// what is not named is left alone. It tries everything and reports every
// failure.
func cmdCleanup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("cleanup", stderr)
	queueURL := fs.String("queue-url", "", "SQS queue to delete")
	bucket := fs.String("bucket", "", "S3 bucket of -prefix")
	prefix := fs.String("prefix", "", "S3 prefix whose objects to delete (must end with /)")
	pathStyle := fs.Bool("path-style", false, "S3 path-style addressing (fauxqs)")
	mongoURI := fs.String("mongo", "", "Mongo URI of -mongo-db")
	mongoDB := fs.String("mongo-db", "", "Mongo database to drop")
	dsn := fs.String("dsn", "", "warehouse DSN of -schema")
	dbSchema := fs.String("schema", "", "warehouse schema to drop")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var errs []error
	done := map[string]any{}
	if *queueURL != "" {
		if err := deleteQueue(ctx, *queueURL); err != nil {
			errs = append(errs, err)
		} else {
			done["queue"] = *queueURL
		}
	}
	if *bucket != "" && *prefix != "" {
		n, err := deletePrefix(ctx, *bucket, *prefix, *pathStyle)
		if err != nil {
			errs = append(errs, err)
		}
		done["s3_objects"] = n
	}
	if *mongoURI != "" && *mongoDB != "" {
		if err := dropMongo(ctx, *mongoURI, *mongoDB); err != nil {
			errs = append(errs, err)
		} else {
			done["mongo_db"] = *mongoDB
		}
	}
	if *dsn != "" && *dbSchema != "" {
		if err := dropSchema(ctx, *dsn, *dbSchema); err != nil {
			errs = append(errs, err)
		} else {
			done["schema"] = *dbSchema
		}
	}
	if err := printJSON(stdout, done); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func deleteQueue(ctx context.Context, url string) error {
	client, err := newSQS(ctx)
	if err != nil {
		return err
	}
	if _, err := client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(url)}); err != nil {
		return fmt.Errorf("delete queue %s: %w", url, err)
	}
	return nil
}

// deletePrefix deletes every object under prefix, eight at a time, and
// returns how many it deleted.
func deletePrefix(ctx context.Context, bucket, prefix string, pathStyle bool) (int, error) {
	if prefix == "" || prefix[len(prefix)-1] != '/' {
		return 0, fmt.Errorf("cleanup: prefix %q must end with /", prefix)
	}
	store, err := newStore(ctx, bucket, pathStyle)
	if err != nil {
		return 0, err
	}
	keys, err := store.ListKeys(ctx, prefix)
	if err != nil {
		return 0, err
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
		n     int
		queue = make(chan string)
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range queue {
				err := store.Delete(ctx, k)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					n++
				}
				mu.Unlock()
			}
		}()
	}
	for _, k := range keys {
		queue <- k
	}
	close(queue)
	wg.Wait()
	if len(errs) > 0 {
		return n, fmt.Errorf("delete %d of %d objects under %s: %w", len(errs), len(keys), prefix, errs[0])
	}
	return n, nil
}

func dropMongo(ctx context.Context, uri, db string) error {
	client, err := newMongo(ctx, uri)
	if err != nil {
		return err
	}
	defer client.Disconnect(context.WithoutCancel(ctx))
	if err := client.Database(db).Drop(ctx); err != nil {
		return fmt.Errorf("drop mongo database %s: %w", db, err)
	}
	return nil
}

func dropSchema(ctx context.Context, dsn, dbSchema string) error {
	if why := schema.ValidIdentifier(dbSchema); why != "" {
		return fmt.Errorf("cleanup: schema: %s", why)
	}
	conn, err := newPG(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{dbSchema}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("drop schema %s: %w", dbSchema, err)
	}
	return nil
}
