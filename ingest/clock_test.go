package ingest

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeClock is a clock whose time moves only when set, and whose ticker
// fires only when told.
type fakeClock struct {
	ns   atomic.Int64
	tick chan time.Time
}

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{tick: make(chan time.Time)}
	c.set(t)
	return c
}

func (c *fakeClock) set(t time.Time)                                 { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) Now() time.Time                                  { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Ticker(time.Duration) (<-chan time.Time, func()) { return c.tick, func() {} }

// fire delivers a tick and returns once the loop reading the ticker has
// handled it: the channel is unbuffered, so the second send completes only
// after the loop finished with the first.
func (c *fakeClock) fire() {
	c.tick <- c.Now()
	c.tick <- c.Now()
}

// The extender extends a held message once its deadline is half a
// visibility timeout away by the tracker's clock, and not before: driven by
// a fake clock, with no sleep.
func TestExtenderFollowsClock(t *testing.T) {
	api := &fakeSQS{}
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := newFakeClock(t0)
	tk, m := heldTracker(t, api, 3, 10*time.Second, t0)
	tk.clock = clock
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); tk.runExtender(stop) }()
	defer func() { close(stop); <-done }()

	extensions := func() int {
		api.mu.Lock()
		defer api.mu.Unlock()
		return len(api.visibility)
	}
	clock.set(t0.Add(4 * time.Second)) // 6 s left of 10: not due
	clock.fire()
	if n := extensions(); n != 0 {
		t.Fatalf("%d visibility calls 4 s into a 10 s timeout, want none", n)
	}
	clock.set(t0.Add(5 * time.Second)) // half the timeout left: due
	clock.fire()
	if n := extensions(); n != 1 {
		t.Fatalf("%d visibility calls at half the timeout, want 1 (three messages, one batch)", n)
	}
	if age := testutil.ToFloat64(m.oldestHeld); age != 5 {
		t.Errorf("oldest held message %v s old by the clock, want 5", age)
	}
	for _, h := range tk.msgs {
		if want := t0.Add(15 * time.Second); !h.deadline.Equal(want) {
			t.Errorf("%s: deadline %v after the extension, want %v (the clock's time plus the timeout)", h.receipt, h.deadline, want)
		}
	}
	clock.set(t0.Add(9 * time.Second)) // 6 s left of the new deadline: not due
	clock.fire()
	if n := extensions(); n != 1 {
		t.Errorf("%d visibility calls, want still 1: the extended messages are not due again yet", n)
	}
}
