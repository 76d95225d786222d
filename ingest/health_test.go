package ingest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wharfdata/wharf/internal/stacktest"
)

// scriptSQS answers the n-th ReceiveMessage (from 1) with answer(ctx, n)
// and records when each came; the other calls succeed at once.
type scriptSQS struct {
	slowSQS
	answer func(ctx context.Context, n int) (*sqs.ReceiveMessageOutput, error)

	mu    sync.Mutex
	calls []time.Time
}

func (f *scriptSQS) ReceiveMessage(ctx context.Context, _ *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	f.mu.Lock()
	f.calls = append(f.calls, time.Now())
	n := len(f.calls)
	f.mu.Unlock()
	return f.answer(ctx, n)
}

func (f *scriptSQS) receives() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.calls...)
}

// hang is a receive that never returns until its context ends: a poll loop
// wedged in a call.
func hang(ctx context.Context) (*sqs.ReceiveMessageOutput, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// The poll loop's heartbeat (issue 13, item 1): while receives come back it
// follows the clock; a receive that never returns keeps it at the start of
// that receive, however far the clock moves.
func TestPollHeartbeat(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	var wedged atomic.Bool
	api := &scriptSQS{answer: func(ctx context.Context, n int) (*sqs.ReceiveMessageOutput, error) {
		if wedged.Load() {
			return hang(ctx)
		}
		return &sqs.ReceiveMessageOutput{}, nil // an empty answer, at once
	}}
	c := slowConsumer(t, api, nil, 0)
	clock := newFakeClock(t0)
	c.clock = clock
	if _, ok := c.Heartbeat(); ok {
		t.Fatal("a heartbeat before Run: no poller is in a step")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	defer func() { cancel(); <-done; c.Close(context.Background()) }()

	// Healthy: once every poller has started a receive after the clock
	// moved, the heartbeat is the clock's time.
	t1 := t0.Add(time.Minute)
	clock.set(t1)
	n := len(api.receives())
	stacktest.Eventually(t, "each poller to receive again", 10*time.Second, func() bool { return len(api.receives()) >= n+2*c.cfg.Pollers })
	// Between two receives a poller waits for room (no step): the heartbeat
	// is then absent, never older than the clock.
	for range 100 {
		if hb, ok := c.Heartbeat(); ok && !hb.Equal(t1) {
			t.Fatalf("healthy heartbeat %v, want %v", hb, t1)
		}
	}

	// Wedged: every poller ends in a receive that never returns.
	wedged.Store(true)
	t2 := t1.Add(time.Minute)
	clock.set(t2)
	n = len(api.receives())
	// After the flag, each poller makes one more call, which hangs.
	stacktest.Eventually(t, "a wedged receive per poller", 10*time.Second, func() bool { return len(api.receives()) >= n+c.cfg.Pollers })
	hb, ok := c.Heartbeat()
	clock.set(t2.Add(time.Hour))
	if hb2, ok2 := c.Heartbeat(); !ok || !ok2 || !hb2.Equal(hb) || hb.After(t2) {
		t.Fatalf("wedged heartbeat %v then %v an hour later (%v, %v), want the start of the receive that never returned, at most %v", hb, hb2, ok, ok2, t2)
	}
}

// OverLimit from ReceiveMessage (issue 13, item 2): the poller backs off
// (from the OverLimit wait, doubling), every refusal is counted in
// wharf_sqs_over_limit_total, and the episode is logged once when it starts
// and once when receives are accepted again.
func TestReceiveOverLimit(t *testing.T) {
	const refusals = 3
	api := &scriptSQS{answer: func(ctx context.Context, n int) (*sqs.ReceiveMessageOutput, error) {
		switch {
		case n <= refusals:
			return nil, &types.OverLimit{Message: aws.String("too many messages in flight")}
		case n == refusals+1:
			return &sqs.ReceiveMessageOutput{}, nil
		}
		return hang(ctx)
	}}
	c := slowConsumer(t, api, nil, 0)
	core, logs := observer.New(zap.InfoLevel)
	c.log = zap.New(core)
	c.cfg.Pollers = 1
	c.overLimitWait = 150 * time.Millisecond // above the first backoff of other errors (100 ms)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	defer func() { cancel(); <-done; c.Close(context.Background()) }()
	stacktest.Eventually(t, "receives after the episode", 10*time.Second, func() bool { return len(api.receives()) >= refusals+2 })

	calls := api.receives()
	for i := 1; i <= refusals; i++ {
		if gap, want := calls[i].Sub(calls[i-1]), c.overLimitWait<<(i-1); gap < want {
			t.Errorf("receive %d came %v after the OverLimit before it, want at least %v", i+1, gap, want)
		}
	}
	if v := testutil.ToFloat64(c.m.overLimit); v != refusals {
		t.Errorf("wharf_sqs_over_limit_total = %v, want %d", v, refusals)
	}
	if n := logs.FilterMessageSnippet("OverLimit").Len(); n != 2 {
		t.Errorf("%d log lines about OverLimit, want 2 (its start and its end): %v", n, logs.All())
	}
	if n := logs.FilterMessageSnippet("lost answer").Len(); n != 0 {
		t.Errorf("an OverLimit logged as a lost answer %d times", n)
	}
	if l := logs.FilterMessageSnippet("accepted again").All(); len(l) != 1 || l[0].ContextMap()["refused"] != int64(refusals) {
		t.Errorf("end of the episode: %v, want one line with refused=%d", l, refusals)
	}
}
