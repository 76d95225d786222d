package ingest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wharfdata/wharf/deadletter"
	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/internal/stacktest"
	"github.com/wharfdata/wharf/schema"
)

const testSchema = `
tables:
  - name: clicks
    events: [click]
    collection: clicks
    columns:
      - {name: user_id, path: user_id, type: bigint}
    children:
      - name: click_tags
        path: tags
        columns:
          - {name: tag, path: ., type: varchar(16)}
`

// holdSink records rows and keeps their acks until the test releases them.
type holdSink struct {
	mu      sync.Mutex
	rows    map[string]int // event id -> rows
	acks    []func(error)
	auto    error // when set with autoAck, ack with this at once
	autoAck bool
}

func (s *holdSink) Add(ctx context.Context, rs *schema.Rows, ack func(error)) error {
	rows := rs.Slice(nil) // rs is the poller's, reused once Add returns
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rows == nil {
		s.rows = map[string]int{}
	}
	for _, r := range rows {
		s.rows[r.Values[0].S]++
	}
	if s.autoAck {
		go ack(s.auto)
		return nil
	}
	s.acks = append(s.acks, ack)
	return nil
}

func (s *holdSink) ackAll(err error) int {
	s.mu.Lock()
	acks := s.acks
	s.acks = nil
	s.mu.Unlock()
	for _, a := range acks {
		a(err)
	}
	return len(acks)
}

func (s *holdSink) count() (events int, acks int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rows), len(s.acks)
}

type rig struct {
	st     *stacktest.Stack
	sqs    *sqs.Client
	queue  string
	store  *s3store.Store
	prefix string
	sink   *holdSink
	dl     *deadletter.Writer
	reg    *prometheus.Registry
	c      *Consumer
	db     string
	raw    *MongoStore
	cancel context.CancelFunc
	done   chan struct{}
	logs   *observer.ObservedLogs
}

func newRig(t *testing.T, visibility string, maxInFlight int, autoAck bool) *rig {
	t.Helper()
	return newRigRaw(t, visibility, maxInFlight, autoAck, nil)
}

// newRigRaw is newRig with the consumer's raw store chosen by raw (given the
// rig's MongoStore); nil uses the MongoStore.
func newRigRaw(t *testing.T, visibility string, maxInFlight int, autoAck bool, raw func(*rig) RawStore) *rig {
	t.Helper()
	st := stacktest.Get(t)
	r := &rig{st: st, sqs: st.SQS(t), store: s3store.New(st.S3(t), st.Bucket), prefix: st.Prefix(), sink: &holdSink{autoAck: autoAck}, reg: prometheus.NewRegistry()}
	r.queue = st.Queue(t, map[string]string{"VisibilityTimeout": visibility})
	mc, db := st.Mongo(t)
	r.db = db
	r.raw = NewMongoStore(mc.Database(db))
	sch, err := schema.Parse([]byte(testSchema))
	if err != nil {
		t.Fatal(err)
	}
	obs, logs := observer.New(zap.InfoLevel)
	r.logs = logs
	log := zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), obs))
	r.dl = deadletter.NewWriter(deadletter.Config{Prefix: r.prefix, MaxAge: 200 * time.Millisecond}, r.store, log, r.reg)
	runWriter(t, r.dl)
	cfg := DefaultConfig()
	cfg.QueueURL, cfg.Pollers, cfg.MaxInFlight, cfg.WaitTime = r.queue, 2, maxInFlight, time.Second
	var store RawStore = r.raw
	if raw != nil {
		store = raw(r)
	}
	r.c, err = New(cfg, r.sqs, sch, schema.DefaultEnvelope(), store, r.sink, r.dl, log, r.reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() { defer close(r.done); r.c.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *rig) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	r.cancel()
	<-r.done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.dl.Close(ctx)
	r.c.Close(ctx)
}

func (r *rig) send(t *testing.T, bodies ...string) {
	t.Helper()
	for i := 0; i < len(bodies); i += 10 {
		var entries []types.SendMessageBatchRequestEntry
		for j, b := range bodies[i:min(i+10, len(bodies))] {
			entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(j)), MessageBody: aws.String(b)})
		}
		out, err := r.sqs.SendMessageBatch(context.Background(), &sqs.SendMessageBatchInput{QueueUrl: aws.String(r.queue), Entries: entries})
		if err != nil || len(out.Failed) > 0 {
			t.Fatalf("send: %v %v", err, out)
		}
	}
}

// queueCounts returns the visible and in-flight message counts.
func (r *rig) queueCounts(t *testing.T) (visible, inFlight int) {
	t.Helper()
	out, err := r.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(r.queue),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	visible, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	inFlight, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return
}

func clicks(n int, from int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`{"event":"click","id":"c%d","user_id":%d,"tags":["a","b"]}`, from+i, from+i)
	}
	return out
}

// A message is deleted only after its ack, and its raw document is in Mongo
// with _id = the event id before the rows reach the sink.
func TestDeleteOnlyAfterAck(t *testing.T) {
	r := newRig(t, "30", 1000, false)
	r.send(t, clicks(25, 0)...)
	stacktest.Eventually(t, "25 events in the sink", 20*time.Second, func() bool { n, _ := r.sink.count(); return n == 25 })
	n, err := r.raw.db.Collection("clicks").CountDocuments(context.Background(), bson.D{})
	if err != nil || n != 25 {
		t.Fatalf("raw documents: %d, %v; want 25", n, err)
	}
	var doc bson.M
	if err := r.raw.db.Collection("clicks").FindOne(context.Background(), bson.D{{Key: "_id", Value: "c7"}}).Decode(&doc); err != nil {
		t.Fatalf("raw document c7: %v", err)
	}
	if doc["user_id"] != int32(7) {
		t.Fatalf("raw document c7 user_id = %#v", doc["user_id"])
	}
	if _, inFlight := r.queueCounts(t); inFlight != 25 {
		t.Fatalf("before the ack %d messages in flight, want 25", inFlight)
	}
	if got := testutil.ToFloat64(r.c.m.deleted); got != 0 {
		t.Fatalf("%v messages deleted before any ack", got)
	}
	r.sink.ackAll(nil)
	stacktest.Eventually(t, "25 deletes", 10*time.Second, func() bool { return testutil.ToFloat64(r.c.m.deleted) == 25 })
	stacktest.Eventually(t, "an empty queue", 10*time.Second, func() bool { v, f := r.queueCounts(t); return v == 0 && f == 0 })
	// Deletes go in batches of ten: 25 messages take at least 3 calls and,
	// acked together, no more than 3 + one partial batch per poller.
	if calls := testutil.ToFloat64(r.c.m.calls.WithLabelValues("delete")); calls < 3 || calls > 5 {
		t.Fatalf("%v delete calls for 25 messages", calls)
	}
}

// Bad events go to the dead-letter store with their reason; the rest of the
// batch reaches the sink; an event that fails coercion is still stored raw.
func TestBadEventsDeadLettered(t *testing.T) {
	r := newRig(t, "30", 1000, true)
	good := clicks(5, 100)
	bad := map[string]string{
		`{"event":"click","id":"b1","user_id":"seven"}`:   schema.ReasonTypeMismatch,
		`{"event":"nope","id":"b2"}`:                      schema.ReasonUnknownEventType,
		`[1,2]`:                                           schema.ReasonNotObject,
		`{"event":"click","id":"b3","tags":"x"}`:          schema.ReasonTypeMismatch,
		`{"event":"click","id":"b4","Tags":[],"tags":[]}`: schema.ReasonKeyCollision,
		`{"Type":"Notification","Message":"{oops"}`:       schema.ReasonBadJSON,
		`{"event":"click","id":"b5"`:                      schema.ReasonBadJSON,
	}
	var bodies []string
	bodies = append(bodies, good[:3]...)
	for b := range bad {
		bodies = append(bodies, b)
	}
	bodies = append(bodies, good[3:]...)
	r.send(t, bodies...)
	stacktest.Eventually(t, "every message deleted", 20*time.Second, func() bool { return testutil.ToFloat64(r.c.m.deleted) == float64(len(bodies)) })
	if n, _ := r.sink.count(); n != 5 {
		t.Fatalf("sink has %d events, want 5", n)
	}
	recs, err := deadletter.Read(context.Background(), r.store, r.prefix, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(bad) {
		t.Fatalf("%d dead letters, want %d", len(recs), len(bad))
	}
	for _, rec := range recs {
		if want := bad[rec.Body]; rec.Reason != want {
			t.Errorf("dead letter %q: reason %q (%s), want %q", rec.Body, rec.Reason, rec.Detail, want)
		}
		if rec.MessageID == "" || rec.ReceiveCount != 1 {
			t.Errorf("dead letter %q: message id %q, receive count %d", rec.Body, rec.MessageID, rec.ReceiveCount)
		}
	}
	// Raw documents: the five good clicks, and b1 and b3, whose values would
	// not coerce, but of a known type.
	n, err := r.raw.db.Collection("clicks").CountDocuments(context.Background(), bson.D{})
	if err != nil || n != 7 {
		t.Fatalf("raw documents: %d, %v; want 7", n, err)
	}
}

// A held message's visibility is extended at half the queue's timeout, so it
// is not redelivered while its rows wait for a flush.
func TestVisibilityExtended(t *testing.T) {
	r := newRig(t, "2", 1000, false)
	r.send(t, clicks(3, 200)...)
	stacktest.Eventually(t, "3 events in the sink", 20*time.Second, func() bool { n, _ := r.sink.count(); return n == 3 })
	// Each message is extended once a second (at half the 2 s timeout): 15
	// extensions of the three are five rounds, so the messages have been
	// held for 2.5 visibility timeouts. Then every poller receives twice
	// more, so a redelivered message would have been received by now.
	stacktest.Eventually(t, "5 rounds of extensions", 20*time.Second, func() bool { return testutil.ToFloat64(r.c.m.extensions) >= 15 })
	receives := testutil.ToFloat64(r.c.m.calls.WithLabelValues("receive"))
	stacktest.Eventually(t, "two more receives per poller", 20*time.Second, func() bool {
		return testutil.ToFloat64(r.c.m.calls.WithLabelValues("receive")) >= receives+float64(2*r.c.cfg.Pollers)
	})
	if got := testutil.ToFloat64(r.c.m.received); got != 3 {
		t.Fatalf("%v receives, want 3: a held message was redelivered", got)
	}
	if visible, inFlight := r.queueCounts(t); visible != 0 || inFlight != 3 {
		t.Fatalf("queue: %d visible, %d in flight after 2.5 timeouts; want 0 and 3", visible, inFlight)
	}
	r.sink.ackAll(nil)
	stacktest.Eventually(t, "3 deletes", 10*time.Second, func() bool { return testutil.ToFloat64(r.c.m.deleted) == 3 })
}

// A failed ack leaves the message for redelivery; Close releases what is held.
func TestNackRedeliversAndDrainReleases(t *testing.T) {
	r := newRig(t, "2", 1000, false)
	r.send(t, clicks(4, 300)...)
	stacktest.Eventually(t, "4 events in the sink", 20*time.Second, func() bool { _, a := r.sink.count(); return a == 4 })
	r.sink.ackAll(fmt.Errorf("s3 is down"))
	stacktest.Eventually(t, "4 redeliveries", 20*time.Second, func() bool { _, a := r.sink.count(); return a == 4 })
	if got := testutil.ToFloat64(r.c.m.received); got != 8 {
		t.Fatalf("%v receives, want 8", got)
	}
	r.stop()
	v, f := r.queueCounts(t)
	if v != 4 || f != 0 {
		t.Fatalf("after drain: %d visible, %d in flight; want 4 released at once", v, f)
	}
}

// The consumer never holds more than max_in_flight messages.
func TestMaxInFlight(t *testing.T) {
	r := newRig(t, "30", 20, false)
	r.send(t, clicks(60, 400)...)
	stacktest.Eventually(t, "20 events in the sink", 20*time.Second, func() bool { n, _ := r.sink.count(); return n == 20 })
	// No heartbeat: every poller waits by design, for room under
	// max_in_flight (none is in a receive or handling a batch). Only then
	// is "no more than 20" a fact, not a guess.
	stacktest.Eventually(t, "every poller waiting for room", 20*time.Second, func() bool { _, busy := r.c.Heartbeat(); return !busy })
	if n, _ := r.sink.count(); n != 20 {
		t.Fatalf("sink got %d events with max_in_flight 20", n)
	}
	if held := r.c.Held(); held != 20 {
		t.Fatalf("held %d, want 20", held)
	}
	if visible, inFlight := r.queueCounts(t); visible != 40 || inFlight != 20 {
		t.Fatalf("queue: %d visible, %d in flight; want 40 and 20", visible, inFlight)
	}
	r.sink.ackAll(nil)
	stacktest.Eventually(t, "the next 20", 20*time.Second, func() bool { n, _ := r.sink.count(); return n == 40 })
}
