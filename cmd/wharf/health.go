package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wharfdata/wharf/batcher"
	"github.com/wharfdata/wharf/ingest"
	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/warehouse"
	"github.com/wharfdata/wharf/warehouse/redshift"
)

// /healthz answers 503, naming the loop, when one of serve's long-running
// loops has stopped showing life for longer than its bound; otherwise 200.
// ECS restarts a task whose health check fails.

// healthMargin is added to every bound: a slow answer, a batch's handling,
// a retry's backoff.
const healthMargin = 30 * time.Second

// heartbeat is one loop's: last returns when it last showed life, and false
// when there is nothing under way to judge (see ingest.Consumer.Heartbeat).
type heartbeat struct {
	name  string
	bound time.Duration
	last  func() (time.Time, bool)
}

// health serves /healthz.
type health struct {
	now      func() time.Time
	beats    []heartbeat
	draining atomic.Bool // set once polling stops: the loops end on purpose
}

// healthChecks returns the heartbeats of serve's loops, each with a bound
// derived from its own period: a receive ends within sqs.wait_time; a
// buffer flushes at batch.max_age and each put attempt ends within the
// flush timeout; a load starts every warehouse.load_interval and a merge
// ends within warehouse.merge_timeout. lb is nil when this task does not
// load.
func healthChecks(c *Config, cons *ingest.Consumer, bat *batcher.Batcher, lb *loaderBeat) []heartbeat {
	hs := []heartbeat{
		{"poll loop", time.Duration(c.SQS.WaitTime) + healthMargin, cons.Heartbeat},
		{"batcher", time.Duration(c.Batch.MaxAge) + c.batcherConfig().FlushTimeout + healthMargin,
			func() (time.Time, bool) { return bat.Heartbeat(), true }},
	}
	if lb != nil {
		hs = append(hs, heartbeat{"warehouse loader", time.Duration(c.Warehouse.LoadInterval) + time.Duration(c.Warehouse.MergeTimeout) + healthMargin, lb.last})
	}
	return hs
}

// stalled describes each loop past its bound.
func (h *health) stalled() []string {
	now := h.now()
	var out []string
	for _, b := range h.beats {
		t, ok := b.last()
		if !ok {
			continue
		}
		if age := now.Sub(t); age > b.bound {
			out = append(out, fmt.Sprintf("%s: no heartbeat for %s (bound %s)", b.name, age.Round(time.Second), b.bound))
		}
	}
	return out
}

func (h *health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.draining.Load() {
		fmt.Fprintln(w, "ok: draining")
		return
	}
	if s := h.stalled(); len(s) > 0 {
		http.Error(w, "stalled: "+strings.Join(s, "; "), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// loaderBeat is the warehouse loader's heartbeat, kept from outside it:
// the start of Run, every S3 listing the loader makes (each load lists
// every table's day partitions, pending files or not), and every OnLoad (a
// merged batch, or a table whose load failed). A warehouse that refuses
// connections or fails loads still beats; a load stuck in one call past
// load_interval + merge_timeout does not.
type loaderBeat struct {
	now     func() time.Time
	ns      atomic.Int64
	running atomic.Bool
}

func (b *loaderBeat) beat() { b.ns.Store(b.now().UnixNano()) }

func (b *loaderBeat) last() (time.Time, bool) {
	if !b.running.Load() {
		return time.Time{}, false
	}
	return time.Unix(0, b.ns.Load()), true
}

// run runs the loader's Run, judged while it runs.
func (b *loaderBeat) run(ctx context.Context, run func(context.Context) error) error {
	b.beat()
	b.running.Store(true)
	defer b.running.Store(false)
	return run(ctx)
}

// onLoad beats, then calls next (the loader's Config.OnLoad).
func (b *loaderBeat) onLoad(next func(warehouse.Load)) func(warehouse.Load) {
	return func(l warehouse.Load) {
		b.beat()
		next(l)
	}
}

// beatingStore is the S3 store as the loader sees it: its listings beat.
// It embeds the store, so that every other method (the Redshift manifests')
// is the store's own.
type beatingStore struct {
	*s3store.Store
	beat func()
}

func (s beatingStore) List(ctx context.Context, prefix, startAfter string) ([]s3store.Object, error) {
	s.beat()
	return s.Store.List(ctx, prefix, startAfter)
}

func (s beatingStore) ListPrefixes(ctx context.Context, prefix, delimiter string) ([]string, error) {
	s.beat()
	return s.Store.ListPrefixes(ctx, prefix, delimiter)
}

// The loader takes a beatingStore as its store, and the Redshift dialect
// finds the store's manifest and range calls on it.
var (
	_ warehouse.ObjectStore = beatingStore{}
	_ redshift.Store        = beatingStore{}
)
