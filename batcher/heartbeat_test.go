package batcher

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharfdata/wharf/internal/stacktest"
)

// TestHeartbeat: the heartbeat follows the age loop while the batcher is
// well, stays at the start of a put that never returns, and moves on with
// each attempt of a put that fails and is retried (an S3 outage is not a
// stuck batcher).
func TestHeartbeat(t *testing.T) {
	t.Run("wedged put", func(t *testing.T) {
		g, store := newGate()
		h := newHarness(t, testConfig(), store)
		if got := h.b.Heartbeat(); !got.Equal(t0) {
			t.Fatalf("heartbeat at start %v, want %v", got, t0)
		}
		h.clock.advance(time.Second)
		h.clock.fire()
		if got, want := h.b.Heartbeat(), t0.Add(time.Second); !got.Equal(want) {
			t.Fatalf("heartbeat after a pass %v, want %v", got, want)
		}
		h.add(t, "v1", h.ts.view("v1"))
		go h.b.Flush(context.Background(), ReasonManual)
		<-g.started
		stuck := h.clock.Now()
		h.clock.advance(10 * time.Minute)
		h.clock.fire()
		if got := h.b.Heartbeat(); !got.Equal(stuck) {
			t.Fatalf("heartbeat with a put under way since %v: %v, want the put's start", stuck, got)
		}
		close(g.release)
		if err := h.acks.wait("v1"); err != nil {
			t.Fatal(err)
		}
		h.clock.fire()
		stacktest.Eventually(t, "the heartbeat to follow the age loop once the put is done", 10*time.Second, func() bool { return h.b.Heartbeat().Equal(h.clock.Now()) })
	})
	t.Run("retried put", func(t *testing.T) {
		var attempts atomic.Int64
		store := &fakeStore{hook: func(ctx context.Context, key string) error {
			attempts.Add(1)
			return errors.New("503 slow down")
		}}
		h := newHarness(t, testConfig(), store)
		h.add(t, "v1", h.ts.view("v1"))
		go h.b.Flush(context.Background(), ReasonManual)
		stacktest.Eventually(t, "a first attempt", 10*time.Second, func() bool { return attempts.Load() > 0 })
		h.clock.advance(10 * time.Minute)
		n := attempts.Load()
		// An attempt that began after the advance: n+1 may have begun before.
		stacktest.Eventually(t, "two more attempts", 10*time.Second, func() bool { return attempts.Load() >= n+2 })
		h.clock.fire()
		if got, want := h.b.Heartbeat(), h.clock.Now(); !got.Equal(want) {
			t.Fatalf("heartbeat while retrying %v, want %v (each attempt is a step)", got, want)
		}
	})
}
