package backfill

import (
	"context"
	"sync"
)

// tracker follows one range's documents from the scan to their acks. Acks
// arrive out of order (flushes of different tables and the dead-letter store
// finish when they finish); the durable position is the last document whose
// ack, and the acks of every document before it in the range, have come in.
// That position is the range's checkpoint.
type tracker struct {
	mu      sync.Mutex
	base    uint64 // sequence number of pending[0]
	next    uint64 // sequence number of the next document
	pending []slot
	after   *Key  // durable position (nil: nothing durable yet)
	durable int64 // documents durable, this run and earlier ones
	err     error // the first failed ack
	dirty   bool  // after moved since the checkpoint was last written
}

type slot struct {
	key  Key
	done bool
}

func newTracker(after *Key, durable int64) *tracker {
	return &tracker{after: after, durable: durable}
}

// push records a document handed on, in scan order, and returns its sequence.
func (t *tracker) push(k Key) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending = append(t.pending, slot{key: k})
	t.next++
	return t.next - 1
}

// ack records the outcome of document seq. A failed ack stops the position
// for good: the range is resumed from before that document next run.
func (t *tracker) ack(seq uint64, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		if t.err == nil {
			t.err = err
		}
		return
	}
	i := seq - t.base
	if i >= uint64(len(t.pending)) {
		return // cannot happen: each document is acked once
	}
	t.pending[i].done = true
	if t.err != nil {
		return
	}
	n := 0
	for n < len(t.pending) && t.pending[n].done {
		n++
	}
	if n == 0 {
		return
	}
	k := t.pending[n-1].key
	t.after = &k
	t.durable += int64(n)
	t.dirty = true
	clear(t.pending[:n])
	t.pending = t.pending[n:]
	t.base += uint64(n)
}

// state returns the durable position and count, whether they changed since
// the last call with take, and how many documents are still unacked.
func (t *tracker) state(take bool) (after *Key, durable int64, changed bool, unacked int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	changed = t.dirty
	if take {
		t.dirty = false
	}
	return t.after, t.durable, changed, len(t.pending), t.err
}

// window bounds the documents handed on and not yet acked, across ranges, so
// that the trackers and the dead-letter store (which never blocks) stay
// within memory; the batcher's own caps bound the rows.
type window struct {
	mu      sync.Mutex
	n, max  int
	changed chan struct{} // closed and replaced when n falls
}

func newWindow(max int) *window {
	return &window{max: max, changed: make(chan struct{})}
}

// acquire takes a place, waiting while the window is full.
func (w *window) acquire(ctx context.Context) error {
	for {
		w.mu.Lock()
		if w.n < w.max {
			w.n++
			w.mu.Unlock()
			return nil
		}
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (w *window) release() {
	w.mu.Lock()
	w.n--
	if w.n <= 0 || w.n == w.max-1 {
		close(w.changed)
		w.changed = make(chan struct{})
	}
	w.mu.Unlock()
}

// drained waits until every place is released.
func (w *window) drained(ctx context.Context) error {
	for {
		w.mu.Lock()
		if w.n == 0 {
			w.mu.Unlock()
			return nil
		}
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (w *window) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}
