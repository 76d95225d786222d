package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// bareResult is what `bare` prints.
type bareResult struct {
	Events       int64              `json:"events"`
	Seconds      float64            `json:"seconds"`
	Seconds99    float64            `json:"seconds99"` // until 99% were deleted
	EventsPerS   float64            `json:"events_per_s"`
	Receives     int64              `json:"receives"`
	EmptyRecv    int64              `json:"empty_receives"`
	Inserts      int64              `json:"insert_manys"`
	Deletes      int64              `json:"delete_batches"`
	Pollers      int                `json:"pollers"`
	ReceiveS     summary            `json:"receive_s"` // round trip of the receives that returned messages
	DeleteS      summary            `json:"delete_s"`  // round trip of DeleteMessageBatch
	SelfCPU      float64            `json:"self_cpu_s"`
	StackCPU     map[string]float64 `json:"cpu_s"`
	MongoEnabled bool               `json:"mongo"`
}

// cmdBare drains a queue the barest way that still does the I/O wharf must
// do per message: receive ten with a long poll, write them to Mongo with one
// unordered InsertMany per event type (wharf writes each type to its own
// collection; the collection here is named after the type), delete them in
// one DeleteMessageBatch. No flattening, no Parquet, no S3, no warehouse.
// Each body becomes a BSON document with the driver's own JSON decoding, its
// "id" field as _id (as wharf does). It stops when -n messages are deleted.
func cmdBare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bare", stderr)
	queueURL := fs.String("queue-url", "", "SQS queue to drain (required)")
	mongoURI := fs.String("mongo", "", "Mongo URI (empty: no Mongo writes)")
	mongoDB := fs.String("mongo-db", "", "Mongo database")
	pollers := fs.Int("pollers", 8, "concurrent receive loops")
	n := fs.Int64("n", 0, "stop after deleting this many messages (required)")
	wait := fs.Int("wait", 20, "long-poll wait, seconds")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after this long")
	stackPids := fs.String("cpu-pids", "", "name=pid,… process trees whose CPU to report")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *queueURL == "" || *n <= 0 {
		return errors.New("bare: -queue-url and -n are required")
	}
	pids, err := parsePids(*stackPids)
	if err != nil {
		return fmt.Errorf("bare: -cpu-pids: %w", err)
	}
	// serve's SQS HTTP client, a connection per poller kept open (each
	// poller has one call in flight at a time).
	client, err := newSQSConns(ctx, *pollers)
	if err != nil {
		return err
	}
	var db *mongo.Database
	if *mongoURI != "" {
		if *mongoDB == "" {
			return errors.New("bare: -mongo-db is required with -mongo")
		}
		mc, err := newMongo(ctx, *mongoURI)
		if err != nil {
			return err
		}
		defer mc.Disconnect(context.WithoutCancel(ctx))
		db = mc.Database(*mongoDB)
	}

	b := &bare{sqs: client, db: db, queueURL: *queueURL, wait: int32(*wait), want: *n}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	ctx, b.done = context.WithCancel(ctx)
	cpu := newCPUMeter(pids)
	cpu0 := selfCPU()
	start := time.Now()
	b.start = start
	var wg sync.WaitGroup
	errc := make(chan error, *pollers)
	for range *pollers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.poll(ctx); err != nil {
				errc <- err
				b.done()
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	if got := b.deleted.Load(); got < *n {
		return fmt.Errorf("bare: deleted %d of %d messages before %s", got, *n, ctx.Err())
	}
	return printJSON(stdout, bareResult{
		Events: b.deleted.Load(), Seconds: round(took.Seconds(), 3), Seconds99: round(time.Duration(b.at99.Load()).Seconds(), 3), EventsPerS: round(float64(b.deleted.Load())/took.Seconds(), 1),
		Receives: b.receives.Load(), EmptyRecv: b.empty.Load(), Inserts: b.inserts.Load(), Deletes: b.deletes.Load(),
		Pollers: *pollers, ReceiveS: summarize(b.rtt.receive), DeleteS: summarize(b.rtt.delete), SelfCPU: round(selfCPU()-cpu0, 2), StackCPU: cpu.stop(), MongoEnabled: db != nil,
	})
}

// bare is the state shared by the receive loops.
type bare struct {
	sqs      *sqs.Client
	db       *mongo.Database
	queueURL string
	wait     int32
	want     int64
	done     context.CancelFunc

	start                                      time.Time
	at99                                       atomic.Int64 // nanoseconds from start until 99% were deleted
	deleted, receives, empty, inserts, deletes atomic.Int64

	rtt struct { // seconds
		sync.Mutex
		receive, delete []float64
	}
}

// took records the round trip of a call that began at t0.
func (b *bare) took(to *[]float64, t0 time.Time) {
	d := time.Since(t0).Seconds()
	b.rtt.Lock()
	*to = append(*to, d)
	b.rtt.Unlock()
}

// poll receives, stores and deletes until ctx ends or enough messages are
// deleted. A failed call is an error: the baseline must not hide retries.
func (b *bare) poll(ctx context.Context) error {
	for ctx.Err() == nil {
		t0 := time.Now()
		out, err := b.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(b.queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: b.wait,
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("receive: %w", err)
		}
		b.receives.Add(1)
		if len(out.Messages) == 0 {
			b.empty.Add(1)
			continue
		}
		b.took(&b.rtt.receive, t0)
		if b.db != nil {
			if err := b.store(ctx, out.Messages); err != nil {
				if ctx.Err() != nil {
					return nil // stopped: the messages stay in the queue
				}
				return err
			}
		}
		entries := make([]types.DeleteMessageBatchRequestEntry, len(out.Messages))
		for i, m := range out.Messages {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle}
		}
		t0 = time.Now()
		del, err := b.sqs.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(b.queueURL), Entries: entries})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("delete: %w", err)
		}
		b.deletes.Add(1)
		b.took(&b.rtt.delete, t0)
		if len(del.Failed) > 0 {
			return fmt.Errorf("delete: %d entries failed: %s", len(del.Failed), aws.ToString(del.Failed[0].Message))
		}
		n := b.deleted.Add(int64(len(del.Successful)))
		if n*100 >= b.want*99 {
			b.at99.CompareAndSwap(0, int64(time.Since(b.start)))
		}
		if n >= b.want {
			b.done()
		}
	}
	return nil
}

// store inserts the messages' documents, one unordered InsertMany per event
// type; duplicate keys count as stored, as in wharf.
func (b *bare) store(ctx context.Context, msgs []types.Message) error {
	byType := map[string][]any{}
	for _, m := range msgs {
		var doc bson.D
		if err := bson.UnmarshalExtJSON([]byte(aws.ToString(m.Body)), false, &doc); err != nil {
			return fmt.Errorf("message %s: %w", aws.ToString(m.MessageId), err)
		}
		id, typ := any(aws.ToString(m.MessageId)), "unknown"
		for _, e := range doc {
			switch e.Key {
			case "id":
				id = e.Value
			case "event":
				if s, ok := e.Value.(string); ok {
					typ = s
				}
			}
		}
		byType[typ] = append(byType[typ], append(bson.D{{Key: "_id", Value: id}}, doc...))
	}
	for typ, docs := range byType {
		_, err := b.db.Collection(typ).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		b.inserts.Add(1)
		var bwe mongo.BulkWriteException
		if errors.As(err, &bwe) && bwe.WriteConcernError == nil {
			for _, we := range bwe.WriteErrors {
				if !we.HasErrorCode(11000) {
					return fmt.Errorf("insert into %s: %w", typ, err)
				}
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("insert into %s: %w", typ, err)
		}
	}
	return nil
}
