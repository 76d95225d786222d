package ingest

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/wharfdata/wharf/deadletter"
	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/internal/stacktest"
	"github.com/wharfdata/wharf/schema"
)

// SQS at production latency: Toxiproxy (deploy/local/toxiproxy, as in
// cmd/wharf/outage_test.go) between the consumer and fauxqs.

// toxi is one Toxiproxy server with one proxy, "sqs", in front of the
// stack's SQS endpoint.
type toxi struct {
	*stacktest.Toxiproxy
	t      *testing.T
	listen string // the proxy's address
}

func startToxi(t *testing.T, endpoint string) *toxi {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	tp := &toxi{Toxiproxy: stacktest.StartToxiproxy(t), t: t}
	tp.listen = tp.Proxy("sqs", u.Host)
	return tp
}

// latency delays every answer of SQS by ms milliseconds (until removed).
func (tp *toxi) latency(name string, ms int) { tp.Latency("sqs", name, ms) }

func (tp *toxi) remove(name string) { tp.RemoveToxic("sqs", name) }

// client is an SQS client through the proxy.
func (tp *toxi) client(st *stacktest.Stack) *sqs.Client {
	return sqs.NewFromConfig(st.AWS(tp.t), func(o *sqs.Options) { o.BaseEndpoint = aws.String("http://" + tp.listen) })
}

// flushSink acks in bulk, as the batcher does: every period it acks every
// message it took since the last flush. It counts the rows of each event.
type flushSink struct {
	mu   sync.Mutex
	seen map[string]int
	acks []func(error)
	stop chan struct{}
	done chan struct{}
}

func newFlushSink(period time.Duration) *flushSink {
	s := &flushSink{seen: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.mu.Lock()
				acks := s.acks
				s.acks = nil
				s.mu.Unlock()
				for _, a := range acks {
					a(nil)
				}
			}
		}
	}()
	return s
}

func (s *flushSink) Add(_ context.Context, rs *schema.Rows, ack func(error)) error {
	rows := rs.Slice(nil)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen[rows[0].Values[0].S]++
	s.acks = append(s.acks, ack)
	return nil
}

func (s *flushSink) close() { close(s.stop); <-s.done }

// sendBacklog puts n click events on the queue, 16 batches at a time.
func sendBacklog(t *testing.T, client *sqs.Client, queue string, n int) {
	t.Helper()
	bodies := clicks(n, 0)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				var entries []types.SendMessageBatchRequestEntry
				for j, b := range bodies[i:min(i+10, n)] {
					entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(j)), MessageBody: aws.String(b)})
				}
				out, err := client.SendMessageBatch(context.Background(), &sqs.SendMessageBatchInput{QueueUrl: aws.String(queue), Entries: entries})
				if err == nil && len(out.Failed) > 0 {
					err = fmt.Errorf("%d entries failed: %s", len(out.Failed), aws.ToString(out.Failed[0].Message))
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := 0; i < n; i += 10 {
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("send backlog: %v", err)
	default:
	}
}

func queueDepth(t *testing.T, client *sqs.Client, queue string) Backlog {
	t.Helper()
	b, err := QueueBacklog(context.Background(), client, queue)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// queueWithDLQ creates a queue with the given visibility timeout whose
// messages move to a dead-letter queue after maxReceives receives.
func queueWithDLQ(t *testing.T, st *stacktest.Stack, client *sqs.Client, visibility, maxReceives int) (queue, dlq string) {
	t.Helper()
	dlq = st.Queue(t, nil)
	out, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(dlq), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	policy := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, out.Attributes[string(types.QueueAttributeNameQueueArn)], maxReceives)
	return st.Queue(t, map[string]string{"VisibilityTimeout": strconv.Itoa(visibility), "RedrivePolicy": policy}), dlq
}

func latencyConsumer(t *testing.T, st *stacktest.Stack, client *sqs.Client, queue string, sink Sink, reg *prometheus.Registry) *Consumer {
	t.Helper()
	sch, err := schema.Parse([]byte(testSchema))
	if err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	dl := deadletter.NewWriter(deadletter.Config{Prefix: st.Prefix()}, s3store.New(st.S3(t), st.Bucket), log, reg)
	runWriter(t, dl)
	cfg := DefaultConfig()
	cfg.QueueURL, cfg.WaitTime = queue, time.Second
	c, err := New(cfg, client, sch, schema.DefaultEnvelope(), nil, sink, dl, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Issue 11, item 7. With 20 ms added in front of SQS and a backlog drained
// at more than 2,000 events/s, acked in large flushes, deletes keep pace:
// no message is received twice, the dead-letter queue stays empty, and the
// SQS calls stay within the README's figure (sqs_calls_per_1k_events ≤ 210).
func TestDeletesKeepPaceAtLatency(t *testing.T) {
	const n = 20000
	st := stacktest.Get(t)
	direct := st.SQS(t)
	queue, dlq := queueWithDLQ(t, st, direct, 5, 2)
	sendBacklog(t, direct, queue, n)
	tp := startToxi(t, st.Endpoint)
	tp.latency("lat", 20)

	reg := prometheus.NewRegistry()
	sink := newFlushSink(time.Second)
	c := latencyConsumer(t, st, tp.client(st), queue, sink, reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Now()
	go func() { defer close(done); c.Run(ctx) }()
	var received time.Duration
	stacktest.Eventually(t, "every event received", 3*time.Minute, func() bool {
		if testutil.ToFloat64(c.m.received) < n {
			return false
		}
		received = time.Since(start)
		return true
	})
	stacktest.Eventually(t, "every message deleted", 3*time.Minute, func() bool { return testutil.ToFloat64(c.m.deleted) >= n })
	deleted := time.Since(start)
	cancel()
	<-done
	sink.close()
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	c.Close(dctx)

	calls := testutil.ToFloat64(c.m.calls.WithLabelValues("receive")) + testutil.ToFloat64(c.m.calls.WithLabelValues("delete")) +
		testutil.ToFloat64(c.m.calls.WithLabelValues("change_visibility"))
	t.Logf("%d events received in %s (%.0f events/s), deleted by %s; %.0f SQS calls (%.1f per 1k events: %v receive, %v delete, %v change_visibility)",
		n, received.Round(time.Millisecond), n/received.Seconds(), deleted.Round(time.Millisecond), calls, calls/n*1000,
		testutil.ToFloat64(c.m.calls.WithLabelValues("receive")), testutil.ToFloat64(c.m.calls.WithLabelValues("delete")),
		testutil.ToFloat64(c.m.calls.WithLabelValues("change_visibility")))

	if got := testutil.ToFloat64(c.m.received); got != n {
		t.Errorf("%v messages received for %d sent: acked messages became visible again", got, n)
	}
	sink.mu.Lock()
	twice := 0
	for _, k := range sink.seen {
		if k > 1 {
			twice++
		}
	}
	distinct := len(sink.seen)
	sink.mu.Unlock()
	if twice > 0 || distinct != n {
		t.Errorf("%d events of %d seen, %d of them more than once", distinct, n, twice)
	}
	if b := queueDepth(t, direct, dlq); b.Visible+b.InFlight != 0 {
		t.Errorf("dead-letter queue holds %+v", b)
	}
	if b := queueDepth(t, direct, queue); b.Visible+b.InFlight != 0 {
		t.Errorf("queue still holds %+v after every message was deleted", b)
	}
	if per1k := calls / n * 1000; per1k > 210 {
		t.Errorf("%.1f SQS calls per 1,000 events, more than the README's 210", per1k)
	}
}

// Issue 11, item 8. SQS slows down (a second per answer) at the moment of
// shutdown: the consumer still returns within its drain budget, counted
// from the cancel, with deletes and releases to make.
func TestDrainBoundedWhenSQSSlows(t *testing.T) {
	const n = 500
	st := stacktest.Get(t)
	direct := st.SQS(t)
	queue := st.Queue(t, map[string]string{"VisibilityTimeout": "60"})
	sendBacklog(t, direct, queue, n)
	tp := startToxi(t, st.Endpoint)

	reg := prometheus.NewRegistry()
	sink := &holdSink{}
	c := latencyConsumer(t, st, tp.client(st), queue, sink, reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	stacktest.Eventually(t, "every event in the sink", time.Minute, func() bool { _, a := sink.count(); return a == n })

	// Acks stop coming: 100 to delete, 400 to release.
	sink.mu.Lock()
	toAck := sink.acks[:100]
	sink.acks = sink.acks[100:]
	sink.mu.Unlock()
	tp.latency("slow", 1000)
	budget := 4 * time.Second
	stopAt := time.Now()
	cancel()
	for _, a := range toAck {
		a(nil)
	}
	<-done
	sink.ackAll(fmt.Errorf("batcher closed")) // refused at Close
	dctx, dcancel := context.WithDeadline(context.Background(), stopAt.Add(budget))
	defer dcancel()
	drained := make(chan struct{})
	go func() { defer close(drained); c.Close(dctx) }()
	// Not a speed check: past the budget and a grace for goroutines to
	// return, the drain has broken its contract.
	select {
	case <-drained:
	case <-time.After(time.Until(stopAt.Add(budget + 3*time.Second))):
		t.Fatalf("consumer not stopped %s after the cancel, with a %s drain budget", budget+3*time.Second, budget)
	}
	t.Logf("stopped %s after the cancel: %v deleted, held %d", time.Since(stopAt).Round(time.Millisecond), testutil.ToFloat64(c.m.deleted), c.Held())
	if c.Held() != 0 {
		t.Errorf("%d messages still held", c.Held())
	}
	tp.remove("slow")
	// Whatever was neither deleted nor released in time comes back when its
	// timeout ends; nothing is lost.
	b := queueDepth(t, direct, queue)
	if got := int64(testutil.ToFloat64(c.m.deleted)) + b.Visible + b.InFlight; got != n {
		t.Errorf("%d deleted + %+v in the queue, want %d in all", int64(testutil.ToFloat64(c.m.deleted)), b, n)
	}
}
