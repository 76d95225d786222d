package batcher

import (
	"sync"
	"time"
)

// heartbeat records when the batcher's loops last showed life: the age
// loop's last pass, and the start of each flush step (an encode, a put
// attempt) still under way. It has its own lock, so that reading it never
// waits for the batcher's.
type heartbeat struct {
	mu    sync.Mutex
	loop  time.Time
	steps map[*job]time.Time
}

func (h *heartbeat) pass(now time.Time) {
	h.mu.Lock()
	h.loop = now
	h.mu.Unlock()
}

func (h *heartbeat) begin(j *job, now time.Time) {
	h.mu.Lock()
	if h.steps == nil {
		h.steps = map[*job]time.Time{}
	}
	h.steps[j] = now
	h.mu.Unlock()
}

func (h *heartbeat) end(j *job) {
	h.mu.Lock()
	delete(h.steps, j)
	h.mu.Unlock()
}

// Heartbeat returns when the batcher last showed life, by its clock: the
// age loop's last pass (at most a second apart, see ageTick), or, when
// earlier, the start of the oldest flush step still under way (an encode or
// one put attempt, which FlushTimeout bounds). A put that fails and is
// retried starts a new step each attempt, so an S3 outage does not make the
// batcher look stuck; a lock never released or a put that ignores its
// deadline does. Time spent waiting in Add for room is the caller's.
func (b *Batcher) Heartbeat() time.Time {
	b.hb.mu.Lock()
	defer b.hb.mu.Unlock()
	t := b.hb.loop
	for _, s := range b.hb.steps {
		if s.Before(t) {
			t = s
		}
	}
	return t
}
