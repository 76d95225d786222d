package ingest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"
)

// failure is how the fake answers one entry: a failed entry with this code.
type failure struct {
	code   string
	sender bool
}

// fakeSQS answers the tracker's batch calls. Each call takes the next plan
// (receipt handle -> failure) of its kind; entries the plan does not name
// succeed. A plan with err set fails the whole call. It records the receipt
// handles of every call.
type fakeSQS struct {
	SQSAPI // the calls the tracker does not make panic

	mu          sync.Mutex
	deletePlans []plan
	visPlans    []plan
	// visFailOnce fails each named entry the first time a change-visibility
	// call carries it, whichever call that is.
	visFailOnce map[string]failure
	deletes     [][]string
	visibility  [][]string
	timeouts    []int32
}

type plan struct {
	fail map[string]failure
	err  error
}

func (f *fakeSQS) next(plans *[]plan) plan {
	if len(*plans) == 0 {
		return plan{}
	}
	p := (*plans)[0]
	*plans = (*plans)[1:]
	return p
}

func answer(p plan, ids, receipts []string) ([]string, []types.BatchResultErrorEntry) {
	var ok []string
	var failed []types.BatchResultErrorEntry
	for i, r := range receipts {
		if f, bad := p.fail[r]; bad {
			failed = append(failed, types.BatchResultErrorEntry{Id: aws.String(ids[i]), Code: aws.String(f.code), SenderFault: f.sender, Message: aws.String("fake")})
			continue
		}
		ok = append(ok, ids[i])
	}
	return ok, failed
}

func (f *fakeSQS) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids, receipts []string
	for _, e := range in.Entries {
		ids, receipts = append(ids, aws.ToString(e.Id)), append(receipts, aws.ToString(e.ReceiptHandle))
	}
	f.deletes = append(f.deletes, receipts)
	p := f.next(&f.deletePlans)
	if p.err != nil {
		return nil, p.err
	}
	ok, failed := answer(p, ids, receipts)
	out := &sqs.DeleteMessageBatchOutput{Failed: failed}
	for _, id := range ok {
		out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: aws.String(id)})
	}
	return out, nil
}

func (f *fakeSQS) ChangeMessageVisibilityBatch(_ context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids, receipts []string
	for _, e := range in.Entries {
		ids, receipts = append(ids, aws.ToString(e.Id)), append(receipts, aws.ToString(e.ReceiptHandle))
		f.timeouts = append(f.timeouts, e.VisibilityTimeout)
	}
	f.visibility = append(f.visibility, receipts)
	p := f.next(&f.visPlans)
	if p.err != nil {
		return nil, p.err
	}
	for _, r := range receipts {
		if fl, once := f.visFailOnce[r]; once {
			p.fail = maps.Clone(p.fail)
			if p.fail == nil {
				p.fail = map[string]failure{}
			}
			p.fail[r] = fl
			delete(f.visFailOnce, r)
		}
	}
	ok, failed := answer(p, ids, receipts)
	out := &sqs.ChangeMessageVisibilityBatchOutput{Failed: failed}
	for _, id := range ok {
		out.Successful = append(out.Successful, types.ChangeMessageVisibilityBatchResultEntry{Id: aws.String(id)})
	}
	return out, nil
}

// heldTracker returns a tracker holding n messages r0..r{n-1}, received at now.
func heldTracker(t *testing.T, api SQSAPI, n int, visibility time.Duration, now time.Time) (*tracker, *metrics) {
	t.Helper()
	m := newMetrics(prometheus.NewRegistry())
	tk := newTracker(api, "https://sqs.test/q", visibility, 100, zaptest.NewLogger(t), m, realClock{})
	if _, err := tk.acquire(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		tk.hold(types.Message{ReceiptHandle: aws.String(fmt.Sprintf("r%d", i)), MessageId: aws.String(fmt.Sprintf("m%d", i))}, now)
	}
	return tk, m
}

func receipts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("r%d", i)
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// DeleteMessageBatch can succeed with failed entries: exactly those are sent
// again, each failure is counted, and an entry whose receipt handle SQS
// refuses is not retried (the message is forgotten and will be redelivered).
func TestDeleteBatchRetriesOnlyFailedEntries(t *testing.T) {
	api := &fakeSQS{deletePlans: []plan{
		{fail: map[string]failure{"r2": {"InternalError", false}, "r5": {"ServiceUnavailable", false}, "r8": {"ReceiptHandleIsInvalid", true}}},
		{fail: map[string]failure{"r2": {"InternalError", false}}},
		{err: errors.New("connection reset")}, // a failed call retries every pending entry
	}}
	tk, m := heldTracker(t, api, 10, 30*time.Second, time.Now())
	all := receipts(10)
	for _, r := range all {
		tk.ack(r)
	}
	tk.deleteBatch(all)

	want := [][]string{all, {"r2", "r5"}, {"r2"}, {"r2"}}
	if len(api.deletes) != len(want) {
		t.Fatalf("delete calls %v, want %v", api.deletes, want)
	}
	for i := range want {
		if !slices.Equal(sorted(api.deletes[i]), sorted(want[i])) {
			t.Errorf("delete call %d had entries %v, want exactly %v", i, api.deletes[i], want[i])
		}
	}
	if got := testutil.ToFloat64(m.failedEntries.WithLabelValues("delete")); got != 4 {
		t.Errorf("wharf_sqs_failed_entries_total{call=delete} = %v, want 4", got)
	}
	if got := testutil.ToFloat64(m.deleted); got != 9 {
		t.Errorf("%v messages deleted, want 9 (r8's receipt handle was refused)", got)
	}
	if got := testutil.ToFloat64(m.calls.WithLabelValues("delete")); got != 4 {
		t.Errorf("%v delete calls counted, want 4", got)
	}
	if n := tk.count(); n != 0 {
		t.Errorf("tracker still holds %d messages", n)
	}
	if n := len(tk.slots); n != 0 {
		t.Errorf("%d in-flight slots still taken", n)
	}
}

// An entry that keeps failing is given up after the retries: forgotten (SQS
// redelivers it, the loader dedupes the copy), never held forever.
func TestDeleteBatchGivesUp(t *testing.T) {
	stuck := plan{fail: map[string]failure{"r1": {"InternalError", false}}}
	api := &fakeSQS{deletePlans: []plan{stuck, stuck, stuck, stuck, stuck, stuck}}
	tk, m := heldTracker(t, api, 3, 30*time.Second, time.Now())
	tk.deleteBatch(receipts(3))
	if len(api.deletes) != 5 {
		t.Fatalf("%d delete calls, want 5 attempts", len(api.deletes))
	}
	if got := testutil.ToFloat64(m.failedEntries.WithLabelValues("delete")); got != 5 {
		t.Errorf("failed entries %v, want 5", got)
	}
	if tk.count() != 0 || len(tk.slots) != 0 {
		t.Errorf("tracker holds %d messages and %d slots after giving up", tk.count(), len(tk.slots))
	}
}

// ChangeMessageVisibilityBatch can succeed with failed entries: exactly
// those are sent again at once and counted; the others get their new
// deadline; an entry whose receipt handle SQS refuses is not retried and not
// extended again, while the message stays held until its ack.
func TestChangeVisibilityRetriesOnlyFailedEntries(t *testing.T) {
	api := &fakeSQS{visPlans: []plan{
		{fail: map[string]failure{"r1": {"InternalError", false}, "r4": {"ReceiptHandleIsInvalid", true}, "r7": {"ServiceUnavailable", false}}},
		{fail: map[string]failure{"r7": {"InternalError", false}}},
	}}
	start := time.Now()
	vis := 10 * time.Second
	tk, m := heldTracker(t, api, 10, vis, start)
	now := start.Add(6 * time.Second) // past half the timeout: every message is due
	tk.extendDue(now)

	want := [][]string{receipts(10), {"r1", "r7"}, {"r7"}}
	if len(api.visibility) != len(want) {
		t.Fatalf("change-visibility calls %v, want %v", api.visibility, want)
	}
	for i := range want {
		if !slices.Equal(sorted(api.visibility[i]), sorted(want[i])) {
			t.Errorf("call %d had entries %v, want exactly %v", i, api.visibility[i], want[i])
		}
	}
	for _, s := range api.timeouts {
		if s != 10 {
			t.Fatalf("visibility set to %ds, want the queue's 10s", s)
		}
	}
	if got := testutil.ToFloat64(m.failedEntries.WithLabelValues("change_visibility")); got != 4 {
		t.Errorf("wharf_sqs_failed_entries_total{call=change_visibility} = %v, want 4", got)
	}
	if got := testutil.ToFloat64(m.extensions); got != 9 {
		t.Errorf("%v extensions counted, want 9", got)
	}
	tk.mu.Lock()
	for r, h := range tk.msgs {
		extended := h.deadline.Equal(now.Add(vis))
		if extended == (r == "r4") {
			t.Errorf("%s: deadline %s (lost %v)", r, h.deadline.Sub(start), h.lost)
		}
	}
	tk.mu.Unlock()

	// Half a timeout later every message is due again, except r4.
	api.visibility = nil
	tk.extendDue(now.Add(6 * time.Second))
	if len(api.visibility) != 1 || slices.Contains(api.visibility[0], "r4") || len(api.visibility[0]) != 9 {
		t.Fatalf("second extension sent %v; want the 9 messages other than r4", api.visibility)
	}
	if tk.count() != 10 {
		t.Fatalf("tracker holds %d, want 10: r4 stays held until its ack", tk.count())
	}
}

// A failed call is not retried within the tick; the next tick extends the
// same messages, since none got a new deadline.
func TestChangeVisibilityCallErrorRetriedNextTick(t *testing.T) {
	api := &fakeSQS{visPlans: []plan{{err: errors.New("throttled")}}}
	start := time.Now()
	tk, m := heldTracker(t, api, 4, 10*time.Second, start)
	tk.extendDue(start.Add(6 * time.Second))
	tk.extendDue(start.Add(7 * time.Second))
	if len(api.visibility) != 2 || len(api.visibility[1]) != 4 {
		t.Fatalf("calls %v; want the 4 messages twice", api.visibility)
	}
	if got := testutil.ToFloat64(m.extensions); got != 4 {
		t.Fatalf("%v extensions, want 4", got)
	}
}

// Releasing at shutdown (visibility 0) retries failed entries the same way,
// and forgets every released message. It runs once deletes have stopped, so
// an acked message still held was not deleted: it is released too.
func TestReleaseAllRetriesFailedEntries(t *testing.T) {
	// The 12 go in two calls in the tracker's order: r3 and r11 fail
	// wherever they are.
	api := &fakeSQS{visFailOnce: map[string]failure{"r3": {"InternalError", false}, "r11": {"InternalError", false}}}
	tk, m := heldTracker(t, api, 12, 30*time.Second, time.Now())
	tk.ack("r0") // acked, its delete never made: released all the same
	if n := tk.releaseAll(context.Background()); n != 12 {
		t.Fatalf("released %d, want 12", n)
	}
	sent := map[string]int{}
	for _, c := range api.visibility {
		for _, r := range c {
			sent[r]++
		}
	}
	var twice []string
	for r, n := range sent {
		if n > 1 {
			twice = append(twice, r)
		}
	}
	if len(sent) != 12 || !slices.Equal(sorted(twice), []string{"r11", "r3"}) {
		t.Fatalf("sent %v; want each of the 12 once and exactly r3 and r11 again (calls %v)", sent, api.visibility)
	}
	for _, s := range api.timeouts {
		if s != 0 {
			t.Fatalf("release set visibility %d, want 0", s)
		}
	}
	if got := testutil.ToFloat64(m.failedEntries.WithLabelValues("change_visibility")); got != 2 {
		t.Errorf("failed entries %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.extensions); got != 0 {
		t.Errorf("a release counted %v extensions", got)
	}
	if tk.count() != 0 || len(tk.slots) != 0 {
		t.Errorf("tracker holds %d messages and %d slots after the release", tk.count(), len(tk.slots))
	}
}

// Pollers waiting for room under max_in_flight take it in turns: as slots
// are freed one by one, one poller gets all ten it asks for before the next
// gets any, so two pollers never each hold part of what they need while the
// messages held wait for a flush (TestMaxInFlight hung that way, now and
// then, once a poller's next receive overlapped its raw writes).
func TestAcquireInTurns(t *testing.T) {
	m := newMetrics(prometheus.NewRegistry())
	l := newTracker(nil, "https://sqs.test/q", time.Minute, 20, zaptest.NewLogger(t), m, realClock{})
	if _, err := l.acquire(context.Background(), 20); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan int, 2)
	for range 2 {
		go func() {
			n, _ := l.acquire(ctx, 10)
			got <- n
		}()
	}
	for range 10 { // ten held messages deleted, one at a time
		time.Sleep(5 * time.Millisecond)
		l.releaseSlots(1)
	}
	select {
	case n := <-got:
		if n != 10 {
			t.Fatalf("a poller got %d slots, want 10", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ten slots freed, and neither poller got them: each holds part of its ten")
	}
	cancel()
	if n := <-got; n != 0 {
		t.Fatalf("the other poller got %d slots with none free", n)
	}
}
