package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/wharfdata/wharf/deadletter"
	"github.com/wharfdata/wharf/internal/stacktest"
	"github.com/wharfdata/wharf/schema"
)

// Issue 11, items 7 and 8: deletes keep pace, acked messages stay invisible
// until deleted, and the drain is bounded by its budget with every message
// not deleted released.

// slowSQS answers every call of the consumer. Deletes wait on gate (nil: at
// once) or, with hang set, until their context ends; visibility calls
// succeed at once. ReceiveMessage hands out batch once, then waits for its
// context.
type slowSQS struct {
	SQSAPI

	gate      chan struct{}
	hang      bool
	mu        sync.Mutex
	inflight  int // delete calls in flight
	maxFlight int
	batch     []types.Message
	deleted   map[string]bool
	vis       map[string][]int32 // receipt -> visibility timeouts set
}

func (f *slowSQS) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	f.mu.Lock()
	f.inflight++
	f.maxFlight = max(f.maxFlight, f.inflight)
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.inflight--; f.mu.Unlock() }()
	if f.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	out := &sqs.DeleteMessageBatchOutput{}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range in.Entries {
		if f.deleted == nil {
			f.deleted = map[string]bool{}
		}
		f.deleted[aws.ToString(e.ReceiptHandle)] = true
		out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

func (f *slowSQS) ChangeMessageVisibilityBatch(_ context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &sqs.ChangeMessageVisibilityBatchOutput{}
	for _, e := range in.Entries {
		if f.vis == nil {
			f.vis = map[string][]int32{}
		}
		f.vis[aws.ToString(e.ReceiptHandle)] = append(f.vis[aws.ToString(e.ReceiptHandle)], e.VisibilityTimeout)
		out.Successful = append(out.Successful, types.ChangeMessageVisibilityBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

func (f *slowSQS) ReceiveMessage(ctx context.Context, _ *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	f.mu.Lock()
	b := f.batch
	f.batch = nil
	f.mu.Unlock()
	if len(b) > 0 {
		return &sqs.ReceiveMessageOutput{Messages: b}, nil
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// released reports whether the last visibility set on r was 0.
func (f *slowSQS) released(r string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.vis[r]
	return len(v) > 0 && v[len(v)-1] == 0
}

func (f *slowSQS) maxInflight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxFlight
}

// Deletes run several calls at once: one call after another caps deletes at
// ten per round trip, too few at production latency after a large flush.
func TestDeletesRunConcurrently(t *testing.T) {
	api := &slowSQS{gate: make(chan struct{})}
	tk, _ := heldTracker(t, api, 100, 30*time.Second, time.Now())
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); tk.runDeleter(stop) }()
	for _, r := range receipts(100) {
		tk.ack(r)
	}
	stacktest.Eventually(t, "four delete calls in flight at once", 10*time.Second, func() bool { return api.maxInflight() >= 4 })
	close(api.gate)
	stacktest.Eventually(t, "every message deleted", 10*time.Second, func() bool { return tk.count() == 0 })
	close(stop)
	<-done
}

// An acked message is extended like any other until its delete is made: a
// delete that waits must not let the message become visible again.
func TestAckedMessagesStillExtended(t *testing.T) {
	api := &fakeSQS{}
	start := time.Now()
	tk, _ := heldTracker(t, api, 10, 10*time.Second, start)
	for _, r := range receipts(5) {
		tk.ack(r) // queued for delete; no deleter runs
	}
	tk.extendDue(start.Add(6 * time.Second))
	var sent []string
	for _, c := range api.visibility {
		sent = append(sent, c...)
	}
	if got, want := sorted(sent), sorted(receipts(10)); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("extended %v, want all ten held messages, acked or not", got)
	}
}

// slowConsumer returns a consumer on api, without polling, holding n
// messages r0..r{n-1}.
func slowConsumer(t *testing.T, api SQSAPI, sink Sink, n int) *Consumer {
	t.Helper()
	sch, err := schema.Parse([]byte(testSchema))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.QueueURL, cfg.Pollers, cfg.WaitTime, cfg.Visibility = "https://sqs.test/q", 2, time.Second, 30*time.Second
	log := zaptest.NewLogger(t)
	reg := prometheus.NewRegistry()
	dl := deadletter.NewWriter(deadletter.Config{Prefix: "t/"}, nil, log, reg)
	t.Cleanup(func() { closeWriter(t, dl) })
	c, err := New(cfg, api, sch, schema.DefaultEnvelope(), nil, sink, dl, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		if _, err := c.tracker.acquire(context.Background(), n); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			c.tracker.hold(types.Message{ReceiptHandle: aws.String(fmt.Sprintf("r%d", i)), MessageId: aws.String(fmt.Sprintf("m%d", i))}, time.Now())
		}
	}
	return c
}

// runStopped runs c with its polling already stopped: the deletes and
// visibility extensions go on until Close, and no poller receives.
func runStopped(t *testing.T, c *Consumer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// SQS stops answering deletes at shutdown: the drain still ends within its
// budget, and every message it did not delete, acked or not, is released.
func TestDrainBoundedWhenSQSHangs(t *testing.T) {
	api := &slowSQS{hang: true}
	c := slowConsumer(t, api, &holdSink{}, 30)
	runStopped(t, c)
	for _, r := range receipts(10) {
		c.tracker.ack(r) // their rows are durable; the delete will hang
	}
	budget := 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); c.Close(ctx) }()
	// Not a speed check: past the budget and a grace for the goroutines to
	// return, the drain has broken its contract.
	select {
	case <-done:
	case <-time.After(budget + 5*time.Second):
		t.Fatalf("Close still running %s after its %s budget ended", 5*time.Second, budget)
	}
	for _, r := range receipts(30) {
		if !api.released(r) {
			t.Errorf("%s was not released (visibility 0) at the drain", r)
		}
	}
	if c.Held() != 0 {
		t.Errorf("%d messages still held after the drain", c.Held())
	}
}

// Rows the batcher refuses at Close (after polling stopped) have their
// messages released by the drain, not forgotten until their visibility
// timeout ends.
func TestRefusedAtCloseReleased(t *testing.T) {
	var msgs []types.Message
	for i, b := range clicks(5, 0) {
		msgs = append(msgs, types.Message{ReceiptHandle: aws.String(fmt.Sprintf("r%d", i)), MessageId: aws.String(fmt.Sprintf("m%d", i)), Body: aws.String(b)})
	}
	api := &slowSQS{batch: msgs}
	sink := &holdSink{}
	c := slowConsumer(t, api, sink, 0)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	stacktest.Eventually(t, "5 messages in the sink", 10*time.Second, func() bool { _, a := sink.count(); return a == 5 })
	stop()
	<-done
	sink.ackAll(errors.New("batcher closed")) // what batcher.Close does
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.Close(dctx)
	for _, r := range receipts(5) {
		if !api.released(r) {
			t.Errorf("%s, refused at close, was not released", r)
		}
	}
}
