package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/warehouse"
)

// fakeBeat is one loop's heartbeat, set by the test.
type fakeBeat struct {
	at time.Time
	ok bool
}

func (b *fakeBeat) last() (time.Time, bool) { return b.at, b.ok }

func healthz(t *testing.T, h http.Handler) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

// /healthz (issue 13, item 1): 200 while every loop beats within its bound
// (or has nothing under way); 503 naming the loop, and only that loop, once
// one stalls past its bound; 200 again while draining.
func TestHealthz(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	c := defaultConfig()
	names := []string{"poll loop", "batcher", "warehouse loader"}
	beats := map[string]*fakeBeat{}
	h := &health{now: func() time.Time { return now }}
	for i, hb := range healthChecks(c, nil, nil, &loaderBeat{}) {
		if hb.name != names[i] {
			t.Fatalf("check %d is %q, want %q", i, hb.name, names[i])
		}
		b := &fakeBeat{at: now, ok: true}
		beats[hb.name] = b
		hb.last = b.last
		h.beats = append(h.beats, hb)
	}
	if code, body := healthz(t, h); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("healthy: %d %q, want 200 ok", code, body)
	}
	for _, hb := range h.beats {
		t.Run(hb.name, func(t *testing.T) {
			b := beats[hb.name]
			defer func() { b.at, b.ok = now, true }()
			b.at = now.Add(-hb.bound)
			if code, body := healthz(t, h); code != 200 {
				t.Fatalf("at its bound: %d %q, want 200", code, body)
			}
			b.at = now.Add(-hb.bound - time.Second)
			code, body := healthz(t, h)
			if code != http.StatusServiceUnavailable || !strings.Contains(body, hb.name+": no heartbeat for ") {
				t.Fatalf("stalled: %d %q, want 503 naming %s", code, body, hb.name)
			}
			for _, other := range names {
				if other != hb.name && strings.Contains(body, other) {
					t.Errorf("body %q names %s, which beats", body, other)
				}
			}
			b.ok = false // nothing under way: not judged
			if code, body := healthz(t, h); code != 200 {
				t.Fatalf("nothing under way: %d %q, want 200", code, body)
			}
		})
	}
	beats["batcher"].at = now.Add(-time.Hour)
	h.draining.Store(true)
	if code, body := healthz(t, h); code != 200 {
		t.Fatalf("draining: %d %q, want 200", code, body)
	}
}

// Each bound comes from its loop's own period, plus healthMargin; a task
// that does not load has no loader check.
func TestHealthBounds(t *testing.T) {
	c := defaultConfig()
	want := map[string]time.Duration{
		"poll loop":        20*time.Second + healthMargin,                 // sqs.wait_time
		"batcher":          time.Minute + 2*time.Minute + healthMargin,    // batch.max_age + the flush timeout
		"warehouse loader": 5*time.Minute + 15*time.Minute + healthMargin, // load_interval + merge_timeout
	}
	for _, hb := range healthChecks(c, nil, nil, &loaderBeat{}) {
		if hb.bound != want[hb.name] {
			t.Errorf("%s: bound %s, want %s", hb.name, hb.bound, want[hb.name])
		}
	}
	if hs := healthChecks(c, nil, nil, nil); len(hs) != 2 {
		t.Errorf("without a loader: %d checks, want 2", len(hs))
	}
}

// The loader's heartbeat, kept from outside warehouse/: judged only while
// Run runs; it beats at Run's start, on every listing of the loader's store
// (which every load makes) and on every OnLoad; a Run wedged in one call
// keeps it where it was, however far the clock moves.
func TestLoaderBeat(t *testing.T) {
	var ns atomic.Int64
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	set := func(t time.Time) { ns.Store(t.UnixNano()) }
	set(t0)
	b := &loaderBeat{now: func() time.Time { return time.Unix(0, ns.Load()) }}
	if _, ok := b.last(); ok {
		t.Fatal("judged before Run")
	}
	// A store whose S3 is unreachable: the listing fails, and still beats.
	client := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:1"), UsePathStyle: true,
		Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	store := beatingStore{s3store.New(client, "b"), b.beat}
	var loads []string
	onLoad := b.onLoad(func(l warehouse.Load) { loads = append(loads, l.Table) })

	step, stepped := make(chan func()), make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.run(ctx, func(ctx context.Context) error {
			for {
				select {
				case <-ctx.Done():
					return nil
				case f := <-step:
					f()
					stepped <- struct{}{}
				}
			}
		})
	}()
	do := func(f func()) { step <- f; <-stepped }
	do(func() {}) // Run is running
	if at, ok := b.last(); !ok || !at.Equal(t0) {
		t.Fatalf("at Run's start: %v %v, want %v", at, ok, t0)
	}
	t1 := t0.Add(time.Minute)
	set(t1)
	do(func() { store.ListPrefixes(ctx, "events/t/", "/") })
	if at, _ := b.last(); !at.Equal(t1) {
		t.Fatalf("after a listing: %v, want %v", at, t1)
	}
	t2 := t1.Add(time.Minute)
	set(t2)
	do(func() { onLoad(warehouse.Load{Table: "t"}) })
	if at, _ := b.last(); !at.Equal(t2) || len(loads) != 1 {
		t.Fatalf("after OnLoad: %v (loads %v), want %v and the recorder called", at, loads, t2)
	}
	set(t2.Add(time.Hour)) // wedged: nothing happens for an hour
	if at, ok := b.last(); !ok || !at.Equal(t2) {
		t.Fatalf("wedged: %v %v, want %v", at, ok, t2)
	}
	cancel()
	<-done
	if _, ok := b.last(); ok {
		t.Fatal("judged after Run returned")
	}
}
