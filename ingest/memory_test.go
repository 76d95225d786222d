package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/wharfdata/wharf/batcher"
	"github.com/wharfdata/wharf/deadletter"
	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/internal/s3store/s3storetest"
	"github.com/wharfdata/wharf/internal/stacktest"
	"github.com/wharfdata/wharf/schema"
)

// cutS3 is the stack's S3 with an outage switch: while down, every put
// fails.
type cutS3 struct {
	*s3store.Store
	down     atomic.Bool
	failures atomic.Int64
}

func (s *cutS3) Put(ctx context.Context, key string, body io.Reader, size int64) error {
	if s.down.Load() {
		s.failures.Add(1)
		return errors.New("s3 cut by the test")
	}
	return s.Store.Put(ctx, key, body, size)
}

// cutS3, while up, keeps the contract of the store it wraps.
func TestCutS3Contract(t *testing.T) {
	st := stacktest.Get(t)
	s3storetest.Run(t, &cutS3{Store: s3store.New(st.S3(t), st.Bucket)}, st.Prefix())
}

// liveHeap is the heap in use after a collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// While S3 is cut, poison messages of ~1 MiB and good events arrive: what
// wharf holds stays within the batcher's max_bytes plus the dead-letter
// writer's max bytes plus a stated overhead — what one poller has received
// (ten messages of 1 MiB, each held as the SQS answer, its string and its
// dead-letter record: 3 × 10 MiB) and 8 MiB of slack — because the writer
// blocks its callers at its cap, so the poller stops; once S3 is back,
// every message is deleted, every poison message is in the dead-letter
// store and nothing is lost.
func TestMemoryBoundedWhileS3IsCut(t *testing.T) {
	const (
		poison    = 64
		good      = 20
		batchMax  = 4 << 20
		deadMax   = 4 << 20
		overhead  = 3*10<<20 + 8<<20
		poisonPad = 1000 << 10
	)
	st := stacktest.Get(t)
	client := st.SQS(t)
	queue := st.Queue(t, map[string]string{"VisibilityTimeout": "30"})
	prefix := st.Prefix()
	store := &cutS3{Store: s3store.New(st.S3(t), st.Bucket)}
	log := zaptest.NewLogger(t)
	reg := prometheus.NewRegistry()
	sch, err := schema.Parse([]byte(testSchema))
	if err != nil {
		t.Fatal(err)
	}
	bc := batcher.DefaultConfig()
	bc.Prefix, bc.MaxBytes, bc.MaxAge = prefix, batchMax, 200*time.Millisecond
	bat, err := batcher.New(bc, store, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	runBatcher(t, bat)
	dl := deadletter.NewWriter(deadletter.Config{Prefix: prefix, MaxAge: 200 * time.Millisecond, MaxBytes: deadMax}, store, log, reg)
	runWriter(t, dl)
	cfg := DefaultConfig()
	cfg.QueueURL, cfg.Pollers, cfg.WaitTime = queue, 1, time.Second
	c, err := New(cfg, client, sch, schema.DefaultEnvelope(), nil, bat, dl, log, reg)
	if err != nil {
		t.Fatal(err)
	}

	store.down.Store(true)
	base := liveHeap()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer dcancel()
		dl.Close(dctx)
		c.Close(dctx)
	}()

	pad := strings.Repeat("x", poisonPad)
	var bodies []string
	for i := range poison {
		bodies = append(bodies, fmt.Sprintf(`{"event":"poison","id":"p%d","pad":"%s"}`, i, pad))
		if i%3 == 0 && len(bodies) < poison+good {
			bodies = append(bodies, clicks(1, i)...)
		}
	}
	for _, b := range bodies {
		sendOne(t, client, queue, b)
	}
	total := len(bodies)

	// The outage lasts until the poller is held at the writer's cap (or,
	// without one, until it has received everything).
	var maxDead, maxRows int64
	stacktest.Eventually(t, "the poller held, or everything received", 60*time.Second, func() bool {
		s := dl.Stats()
		maxDead, maxRows = max(maxDead, s.Bytes), max(maxRows, bat.Stats().Bytes)
		return s.Waiting > 0 || testutil.ToFloat64(c.m.received) == float64(total)
	})
	stacktest.Eventually(t, "S3 refusing for a while", 60*time.Second, func() bool { return store.failures.Load() >= 10 })
	held := liveHeap() - base
	s := dl.Stats()
	maxDead, maxRows = max(maxDead, s.Bytes), max(maxRows, bat.Stats().Bytes)
	t.Logf("while S3 was cut: heap +%d MiB, dead letters held %d MiB (max %d), rows %d KiB (max %d), %v of %d messages received",
		held>>20, s.Bytes>>20, maxDead>>20, maxRows>>10, int64(batchMax)>>10, testutil.ToFloat64(c.m.received), total)
	if maxDead > deadMax {
		t.Errorf("dead letters held reached %d bytes, more than the writer's max bytes %d", maxDead, deadMax)
	}
	if maxRows > batchMax {
		t.Errorf("rows held reached %d bytes, more than max_bytes %d", maxRows, batchMax)
	}
	if bound := int64(batchMax + deadMax + overhead); held > bound {
		t.Errorf("heap grew by %d MiB while S3 was cut, more than max_bytes, the dead-letter cap and the overhead (%d MiB)", held>>20, bound>>20)
	}

	store.down.Store(false)
	stacktest.Eventually(t, "every message deleted", 120*time.Second, func() bool { return testutil.ToFloat64(c.m.deleted) == float64(total) })
	recs, err := deadletter.Read(context.Background(), store, prefix, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, r := range recs {
		ids[r.EventID] = true
	}
	if len(ids) != poison {
		t.Errorf("%d poison messages in the dead-letter store, want %d", len(ids), poison)
	}
	if st := bat.Stats(); st.Messages != 0 || st.Bytes != 0 {
		t.Errorf("batcher still holds %+v", st)
	}
}

func sendOne(t *testing.T, client interface {
	SendMessage(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}, queue, body string) {
	t.Helper()
	if _, err := client.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(queue), MessageBody: aws.String(body)}); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// A poller keeps at most heldRowsBytes of rows from its received batch
// before their Add: the messages past it are flattened again just before
// theirs, and give the same rows.
func TestRowsPastHeldBytesFlattenedAgain(t *testing.T) {
	r := newRig(t, "30", 1000, true)
	var bodies []string
	for i := range 10 {
		tags := make([]string, schema.MaxArrayLength)
		for j := range tags {
			tags[j] = fmt.Sprintf(`"t%d"`, j)
		}
		bodies = append(bodies, fmt.Sprintf(`{"event":"click","id":"big%d","user_id":%d,"tags":[%s]}`, i, i, strings.Join(tags, ",")))
	}
	dec := schema.NewDecoder(r.c.schema, schema.DefaultEnvelope())
	var size int
	for _, b := range bodies {
		ev, err := dec.Decode([]byte(b), "x", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var rows schema.Rows
		if err := dec.FlattenInto(ev, &rows); err != nil {
			t.Fatal(err)
		}
		size += rows.Size()
	}
	if size < 3*heldRowsBytes {
		t.Fatalf("the events' rows are %d bytes: too few to pass heldRowsBytes in one batch", size)
	}
	r.send(t, bodies...) // ten to a call: a poller receives several together
	stacktest.Eventually(t, "every message deleted", 30*time.Second, func() bool { return testutil.ToFloat64(r.c.m.deleted) == float64(len(bodies)) })
	r.sink.mu.Lock()
	defer r.sink.mu.Unlock()
	for i := range bodies {
		if n := r.sink.rows[fmt.Sprintf("big%d", i)]; n != schema.MaxArrayLength+1 {
			t.Errorf("big%d: %d rows, want %d", i, n, schema.MaxArrayLength+1)
		}
	}
}
