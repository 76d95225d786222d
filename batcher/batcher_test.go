package batcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wharfdata/wharf/internal/s3store/s3storetest"
	"github.com/wharfdata/wharf/internal/stacktest"
	"github.com/wharfdata/wharf/schema"
)

func TestMain(m *testing.M) { stacktest.VerifyNoLeaks(m) }

const testSchema = `
tables:
  - name: clicks
    events: [click]
    columns:
      - {name: user_id, path: user_id, type: bigint}
      - {name: page,    path: page,    type: varchar(64)}
    children:
      - name: clicks_tags
        path: tags
        columns:
          - {name: tag, path: ., type: varchar(32)}
  - name: views
    events: [view]
    columns:
      - {name: page, path: page, type: varchar(64)}
`

type tables struct {
	s                   *schema.Schema
	clicks, tags, views *schema.Table
}

func testTables(t testing.TB) tables {
	t.Helper()
	s, err := schema.Parse([]byte(testSchema))
	if err != nil {
		t.Fatal(err)
	}
	return tables{s: s, clicks: s.Table("clicks"), tags: s.Table("clicks_tags"), views: s.Table("views")}
}

var t0 = time.Date(2024, 3, 9, 23, 59, 0, 0, time.UTC)

// row makes a row of table t for event id.
func row(t *schema.Table, id string, idx int) schema.Row {
	vals := make([]schema.Value, len(t.Columns))
	for i, c := range t.Columns {
		switch {
		case c.Name == schema.ColEventID:
			vals[i] = schema.Value{S: id}
		case c.Name == schema.ColIndex:
			vals[i] = schema.Value{I: int64(idx)}
		case c.Type.Kind == schema.Timestamp:
			vals[i] = schema.Value{I: t0.UnixMicro()}
		case c.Type.Kind == schema.Bigint:
			vals[i] = schema.Value{I: 42}
		default:
			vals[i] = schema.Value{S: "v-" + id}
		}
	}
	return schema.Row{Table: t, Values: vals}
}

// click makes the rows of one click event: the parent and n tags.
func (ts tables) click(id string, n int) *schema.Rows {
	rows := []schema.Row{row(ts.clicks, id, 0)}
	for i := range n {
		rows = append(rows, row(ts.tags, id, i))
	}
	return schema.RowsOf(rows...)
}

func (ts tables) view(id string) *schema.Rows { return schema.RowsOf(row(ts.views, id, 0)) }

func size(rows *schema.Rows) int64 { return int64(rows.Size()) }

// --- fakes ---

type object struct {
	key  string
	body []byte
}

// fakeStore is an object store in memory (s3storetest.Mem) that counts the
// attempts at each key. hook, when set, runs first; its error fails the put.
type fakeStore struct {
	s3storetest.Mem
	hook func(ctx context.Context, key string) error

	mu       sync.Mutex
	attempts map[string]int
}

func (s *fakeStore) Put(ctx context.Context, key string, body io.Reader, size int64) error {
	s.mu.Lock()
	if s.attempts == nil {
		s.attempts = map[string]int{}
	}
	s.attempts[key]++
	s.mu.Unlock()
	if s.hook != nil {
		if err := s.hook(ctx, key); err != nil {
			return err
		}
	}
	return s.Mem.Put(ctx, key, body, size)
}

// The fake keeps the contract of the real store.
func TestFakeStoreContract(t *testing.T) {
	s3storetest.Run(t, &fakeStore{}, "p/")
}

// objs returns every object stored, in key order.
func (s *fakeStore) objs() []object {
	keys, _ := s.ListKeys(context.Background(), "")
	out := make([]object, len(keys))
	for i, k := range keys {
		b, _ := s.Get(context.Background(), k)
		out[i] = object{k, b}
	}
	return out
}

// rowsIn returns the rows written per table, read back from the Parquet files.
func (s *fakeStore) rowsIn(t testing.TB) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, o := range s.objs() {
		f, err := parquet.OpenFile(bytes.NewReader(o.body), int64(len(o.body)))
		if err != nil {
			t.Fatalf("%s: %v", o.key, err)
		}
		out[tableOf(o.key)] += f.NumRows()
	}
	return out
}

func tableOf(key string) string { return strings.SplitN(strings.TrimPrefix(key, "p/"), "/", 2)[0] }

// fakeClock is a clock whose time moves only when told, and whose ticker
// fires only when told.
type fakeClock struct {
	mu   sync.Mutex
	now  time.Time
	tick chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0, tick: make(chan time.Time)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Ticker(time.Duration) (<-chan time.Time, func()) { return c.tick, func() {} }

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fire delivers a tick and returns once the age loop has handled it: the
// channel is unbuffered, so the second send completes only after the loop
// finished with the first.
func (c *fakeClock) fire() {
	c.tick <- c.Now()
	c.tick <- c.Now()
}

// acker makes ack functions and checks that each is called exactly once.
type acker struct {
	t     testing.TB
	mu    sync.Mutex
	calls map[string]int
	errs  map[string]error
	done  map[string]chan struct{}
}

func newAcker(t testing.TB) *acker {
	a := &acker{t: t, calls: map[string]int{}, errs: map[string]error{}, done: map[string]chan struct{}{}}
	t.Cleanup(func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		for id, n := range a.calls {
			if n > 1 {
				t.Errorf("ack %s called %d times", id, n)
			}
		}
	})
	return a
}

func (a *acker) ack(id string) func(error) {
	a.mu.Lock()
	a.done[id] = make(chan struct{})
	a.mu.Unlock()
	return func(err error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.calls[id]++
		a.errs[id] = err
		if a.calls[id] == 1 {
			close(a.done[id])
		}
	}
}

// called reports whether id's ack has run, and with what.
func (a *acker) called(id string) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[id] > 0, a.errs[id]
}

// wait waits for id's ack and returns its error.
func (a *acker) wait(id string) error {
	a.t.Helper()
	a.mu.Lock()
	ch := a.done[id]
	a.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		a.t.Fatalf("ack %s not called", id)
	}
	_, err := a.called(id)
	return err
}

type harness struct {
	b     *Batcher
	store *fakeStore
	clock *fakeClock
	acks  *acker
	reg   *prometheus.Registry
	logs  *observer.ObservedLogs
	ts    tables
}

func newHarness(t *testing.T, cfg Config, store *fakeStore) *harness {
	t.Helper()
	if store == nil {
		store = &fakeStore{}
	}
	core, logs := observer.New(zap.DebugLevel)
	h := &harness{store: store, clock: newFakeClock(), acks: newAcker(t), reg: prometheus.NewRegistry(), logs: logs, ts: testTables(t)}
	b, err := newBatcher(cfg, store, zap.New(core), h.reg, options{clock: h.clock, backoff: time.Millisecond, maxBackoff: 4 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	h.b = b
	run(t, b)
	return h
}

// run runs b until the test ends, then closes it and checks that Run
// returned nil.
func run(t testing.TB, b *Batcher) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- b.Run(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func (h *harness) add(t testing.TB, id string, rows *schema.Rows) {
	t.Helper()
	if err := h.b.Add(context.Background(), rows, h.acks.ack(id)); err != nil {
		t.Fatalf("add %s: %v", id, err)
	}
}

// flushLogs returns "table:reason:rows" for each flush logged, in order.
func (h *harness) flushLogs() []string {
	var out []string
	for _, e := range h.logs.FilterMessage("flush").All() {
		f := e.ContextMap()
		out = append(out, fmt.Sprintf("%s:%s:%d", f["table"], f["reason"], f["rows"]))
	}
	return out
}

// metric returns the value of a counter or gauge with the given labels.
func (h *harness) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matchLabels(m, labels) {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
	}
	return 0
}

func matchLabels(m *dto.Metric, kv []string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if got[kv[i]] != kv[i+1] {
			return false
		}
	}
	return true
}

func testConfig() Config {
	c := DefaultConfig()
	c.Prefix = "p/"
	return c
}

// --- tests ---

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"default", func(*Config) {}, ""},
		{"empty prefix", func(c *Config) { c.Prefix = "" }, ""},
		{"absolute prefix", func(c *Config) { c.Prefix = "/events/" }, "s3.prefix"},
		{"max_rows", func(c *Config) { c.MaxRows = 0 }, "batch.max_rows must be positive"},
		{"max_bytes", func(c *Config) { c.MaxBytes = -1 }, "batch.max_bytes must be positive"},
		{"max_age", func(c *Config) { c.MaxAge = 0 }, "batch.max_age must be positive"},
		{"max_in_flight", func(c *Config) { c.MaxInFlight = 0 }, "sqs.max_in_flight must be positive"},
		{"flush_concurrency", func(c *Config) { c.FlushConcurrency = 0 }, "batch.flush_concurrency must be positive"},
		{"flush_timeout", func(c *Config) { c.FlushTimeout = 0 }, "batch.flush_timeout must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.change(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
			if _, err := New(c, &fakeStore{}, nil, nil); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

// TestFlushReasons drives each flush trigger and checks which buffers were
// written, the reason logged and counted, and that the acks of flushed
// messages (and only those) were called with nil.
func TestFlushReasons(t *testing.T) {
	ts := testTables(t)
	oneClick := size(ts.click("c1", 0)) // ids of one length make rows of one size
	oneView := size(ts.view("v1"))
	tests := []struct {
		name   string
		config func(*Config)
		// run adds messages and triggers flushes; it returns the ids whose
		// acks must have run (with nil) and those whose acks must not have.
		run     func(t *testing.T, h *harness) (acked, pending []string)
		want    []string // "table:reason:rows", sorted by table
		metrics [][]string
	}{
		{
			name:   "rows",
			config: func(c *Config) { c.MaxRows = 3 },
			run: func(t *testing.T, h *harness) ([]string, []string) {
				h.add(t, "v1", h.ts.view("v1"))
				h.add(t, "c1", h.ts.click("c1", 0))
				h.add(t, "v2", h.ts.view("v2"))
				h.add(t, "v3", h.ts.view("v3")) // the third views row
				h.acks.wait("v3")
				return []string{"v1", "v2", "v3"}, []string{"c1"}
			},
			want:    []string{"views:rows:3"},
			metrics: [][]string{{"wharf_flushes_total", "table", "views", "reason", "rows"}},
		},
		{
			name: "bytes: largest buffer first",
			// clicks holds two rows, views one; the second view does not fit,
			// and flushing clicks, the largest buffer, alone makes room.
			config: func(c *Config) { c.MaxBytes = 2*oneClick + oneView + oneView/2 },
			run: func(t *testing.T, h *harness) ([]string, []string) {
				h.add(t, "c1", h.ts.click("c1", 0))
				h.add(t, "c2", h.ts.click("c2", 0))
				h.add(t, "v1", h.ts.view("v1"))
				h.add(t, "v2", h.ts.view("v2")) // returns once clicks is put
				if got := h.b.Stats().Bytes; got != 2*oneView {
					t.Errorf("Stats().Bytes = %d after the bytes flush, want %d", got, 2*oneView)
				}
				h.acks.wait("c1") // room is freed just before the acks run
				h.acks.wait("c2")
				return []string{"c1", "c2"}, []string{"v1", "v2"}
			},
			want:    []string{"clicks:bytes:2"},
			metrics: [][]string{{"wharf_flushes_total", "table", "clicks", "reason", "bytes"}},
		},
		{
			name:   "bytes: one message larger than the cap",
			config: func(c *Config) { c.MaxBytes = oneClick / 2 },
			run: func(t *testing.T, h *harness) ([]string, []string) {
				h.add(t, "c1", h.ts.click("c1", 0)) // admitted alone, flushed at once
				h.acks.wait("c1")
				return []string{"c1"}, nil
			},
			want: []string{"clicks:bytes:1"},
		},
		{
			name:   "in_flight",
			config: func(c *Config) { c.MaxInFlight = 3 },
			run: func(t *testing.T, h *harness) ([]string, []string) {
				h.add(t, "c1", h.ts.click("c1", 2))
				h.add(t, "v1", h.ts.view("v1"))
				h.add(t, "v2", h.ts.view("v2")) // the third held message
				for _, id := range []string{"c1", "v1", "v2"} {
					h.acks.wait(id)
				}
				return []string{"c1", "v1", "v2"}, nil
			},
			want: []string{"clicks:in_flight:1", "clicks_tags:in_flight:2", "views:in_flight:2"},
			metrics: [][]string{
				{"wharf_flushes_total", "table", "clicks", "reason", "in_flight"},
				{"wharf_flushes_total", "table", "views", "reason", "in_flight"},
			},
		},
		{
			name:   "age",
			config: func(c *Config) { c.MaxAge = time.Minute },
			run: func(t *testing.T, h *harness) ([]string, []string) {
				h.add(t, "v1", h.ts.view("v1"))
				h.clock.advance(30 * time.Second)
				h.add(t, "c1", h.ts.click("c1", 0))
				h.clock.advance(30*time.Second - time.Millisecond)
				h.clock.fire()
				if n := len(h.store.objs()); n != 0 {
					t.Fatalf("%d files before any buffer is a minute old", n)
				}
				h.clock.advance(time.Millisecond) // views' oldest row is a minute old
				h.clock.fire()
				h.acks.wait("v1")
				return []string{"v1"}, []string{"c1"}
			},
			want:    []string{"views:age:1"},
			metrics: [][]string{{"wharf_flushes_total", "table", "views", "reason", "age"}},
		},
		{
			name: "shutdown",
			run: func(t *testing.T, h *harness) ([]string, []string) {
				h.add(t, "c1", h.ts.click("c1", 1))
				h.add(t, "v1", h.ts.view("v1"))
				if err := h.b.Flush(context.Background(), ReasonShutdown); err != nil {
					t.Fatal(err)
				}
				// Flush returns after the acks have run: no wait needed.
				return []string{"c1", "v1"}, nil
			},
			want:    []string{"clicks:shutdown:1", "clicks_tags:shutdown:1", "views:shutdown:1"},
			metrics: [][]string{{"wharf_flushes_total", "table", "clicks_tags", "reason", "shutdown"}},
		},
		{
			name: "manual, nothing buffered",
			run: func(t *testing.T, h *harness) ([]string, []string) {
				if err := h.b.Flush(context.Background(), ReasonManual); err != nil {
					t.Fatal(err)
				}
				return nil, nil
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.config != nil {
				tt.config(&cfg)
			}
			h := newHarness(t, cfg, nil)
			acked, pending := tt.run(t, h)
			for _, id := range acked {
				if ok, err := h.acks.called(id); !ok || err != nil {
					t.Errorf("ack %s: called %v, err %v; want called with nil", id, ok, err)
				}
			}
			for _, id := range pending {
				if ok, err := h.acks.called(id); ok {
					t.Errorf("ack %s called (err %v) though its rows are still buffered", id, err)
				}
			}
			got := h.flushLogs()
			slices.Sort(got)
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("flushes = %v, want %v", got, tt.want)
			}
			if n := len(h.store.objs()); n != len(tt.want) {
				t.Errorf("%d files written, want %d", n, len(tt.want))
			}
			for _, m := range tt.metrics {
				if v := h.metric(t, m[0], m[1:]...); v != 1 {
					t.Errorf("%v = %v, want 1", m, v)
				}
			}
			if st := h.b.Stats(); st.Messages != len(pending) {
				t.Errorf("Stats().Messages = %d, want %d", st.Messages, len(pending))
			}
		})
	}
}

func TestFileContentsAndKeys(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	for i := range 10 {
		h.add(t, fmt.Sprint("c", i), h.ts.click(fmt.Sprint("c", i), i))
	}
	if err := h.b.Flush(context.Background(), ReasonShutdown); err != nil {
		t.Fatal(err)
	}
	h.clock.advance(2 * time.Minute) // the next day, UTC
	h.add(t, "v1", h.ts.view("v1"))
	if err := h.b.Flush(context.Background(), ReasonShutdown); err != nil {
		t.Fatal(err)
	}

	keyRE := regexp.MustCompile(`^p/([a-z_]+)/dt=(\d{4}-\d\d-\d\d)/([0-9A-HJKMNP-TV-Z]{26})\.parquet$`)
	days := map[string]string{}
	for _, o := range h.store.objs() {
		m := keyRE.FindStringSubmatch(o.key)
		if m == nil {
			t.Fatalf("key %q does not match %s", o.key, keyRE)
		}
		days[m[1]] = m[2]
	}
	want := map[string]string{"clicks": "2024-03-09", "clicks_tags": "2024-03-09", "views": "2024-03-10"}
	if fmt.Sprint(days) != fmt.Sprint(want) {
		t.Errorf("days per table = %v, want %v", days, want)
	}
	rows := h.store.rowsIn(t)
	if rows["clicks"] != 10 || rows["clicks_tags"] != 45 || rows["views"] != 1 {
		t.Errorf("rows written = %v, want clicks 10, clicks_tags 45, views 1", rows)
	}
	if v := h.metric(t, "wharf_written_rows_total", "table", "clicks_tags"); v != 45 {
		t.Errorf("wharf_written_rows_total{clicks_tags} = %v, want 45", v)
	}
	if v := h.metric(t, "wharf_written_files_total", "table", "clicks"); v != 1 {
		t.Errorf("wharf_written_files_total{clicks} = %v, want 1", v)
	}
	for _, e := range h.logs.FilterMessage("flush").All() {
		f := e.ContextMap()
		for _, k := range []string{"table", "rows", "bytes", "reason", "file", "duration"} {
			if _, ok := f[k]; !ok {
				t.Errorf("flush log line lacks %q: %v", k, f)
			}
		}
	}
}

func TestULIDsIncrease(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	var prev string
	for range 1000 {
		k, err := h.b.key("t")
		if err != nil {
			t.Fatal(err)
		}
		if k <= prev {
			t.Fatalf("key %s does not sort after %s", k, prev)
		}
		prev = k
	}
}

func TestEmptyAddAcksAtOnce(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	h.add(t, "e", nil)
	if ok, err := h.acks.called("e"); !ok || err != nil {
		t.Fatalf("ack: called %v, err %v", ok, err)
	}
}

// TestAckSpansTables: a message with rows in two tables is acked only after
// both files are put.
func TestAckSpansTables(t *testing.T) {
	release := make(chan struct{})
	store := &fakeStore{hook: func(ctx context.Context, key string) error {
		if strings.Contains(key, "/clicks_tags/") {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}}
	cfg := testConfig()
	cfg.MaxRows = 2
	h := newHarness(t, cfg, store)
	h.add(t, "c1", h.ts.click("c1", 2)) // clicks_tags is full: flushed, and its put hangs
	h.add(t, "c2", h.ts.click("c2", 0)) // clicks is full: flushed and put
	if err := h.acks.wait("c2"); err != nil {
		t.Fatalf("ack c2: %v", err)
	}
	// clicks holds c1's parent row and is in S3; its tags are not.
	stacktest.Eventually(t, "the clicks file", 10*time.Second, func() bool { return h.store.rowsIn(t)["clicks"] == 2 })
	if ok, _ := h.acks.called("c1"); ok {
		t.Fatal("c1 acked before its clicks_tags file was put")
	}
	close(release)
	if err := h.acks.wait("c1"); err != nil {
		t.Fatalf("ack c1: %v", err)
	}
}

// TestPutRetried: a failing put is retried with the same key; the ack waits
// for the put that succeeds.
func TestPutRetried(t *testing.T) {
	var fails atomic.Int32
	fails.Store(3)
	store := &fakeStore{hook: func(ctx context.Context, key string) error {
		if fails.Add(-1) >= 0 {
			return errors.New("503 slow down")
		}
		return nil
	}}
	h := newHarness(t, testConfig(), store)
	h.add(t, "v1", h.ts.view("v1"))
	if err := h.b.Flush(context.Background(), ReasonManual); err != nil {
		t.Fatal(err)
	}
	if err := h.acks.wait("v1"); err != nil {
		t.Fatalf("ack: %v", err)
	}
	objs := h.store.objs()
	if len(objs) != 1 {
		t.Fatalf("%d files, want 1", len(objs))
	}
	h.store.mu.Lock()
	n := h.store.attempts[objs[0].key]
	h.store.mu.Unlock()
	if n != 4 {
		t.Errorf("%d attempts at %s, want 4 (one key for every retry)", n, objs[0].key)
	}
	if v := h.metric(t, "wharf_put_retries_total"); v != 3 {
		t.Errorf("wharf_put_retries_total = %v, want 3", v)
	}
}

// TestEncodeErrorNotRetried: rows that cannot be encoded fail their acks at
// once; the batcher goes on.
func TestEncodeErrorNotRetried(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	bad := h.ts.view("bad")
	tr := bad.Tables()[0]
	tr.Cols[1].Ints = tr.Cols[1].Ints[:0] // a column without the row's value
	h.add(t, "bad", bad)
	h.add(t, "c1", h.ts.click("c1", 0))
	if err := h.b.Flush(context.Background(), ReasonManual); err == nil {
		t.Error("Flush returned nil; want the encoding error")
	}
	if err := h.acks.wait("bad"); err == nil {
		t.Error("ack of the bad message got nil")
	}
	if err := h.acks.wait("c1"); err != nil {
		t.Errorf("ack c1: %v", err)
	}
	if st := h.b.Stats(); st.Messages != 0 || st.Bytes != 0 || st.Rows != 0 {
		t.Errorf("Stats() = %+v, want nothing held", st)
	}
}

// gate is a store whose puts wait until released; started announces each.
type gate struct {
	started chan string
	release chan struct{}
}

func newGate() (*gate, *fakeStore) {
	g := &gate{started: make(chan string, 100), release: make(chan struct{})}
	return g, &fakeStore{hook: func(ctx context.Context, key string) error {
		g.started <- key
		select {
		case <-g.release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
}

// TestAddBlocksAtCap: Add blocks while a cap is reached, until the flush's
// put finishes; a blocked Add gives up when its context ends, without
// calling ack.
func TestAddBlocksAtCap(t *testing.T) {
	ts := testTables(t)
	one := size(ts.view("v1"))
	tests := []struct {
		name   string
		config func(*Config)
		reason Reason
	}{
		{"bytes", func(c *Config) { c.MaxBytes = one + one/2 }, ReasonBytes},
		{"in_flight", func(c *Config) { c.MaxInFlight = 1 }, ReasonInFlight},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, store := newGate()
			cfg := testConfig()
			tt.config(&cfg)
			h := newHarness(t, cfg, store)
			h.add(t, "v1", h.ts.view("v1"))

			// A blocked Add whose context ends returns its error, no ack.
			ctx, cancel := context.WithCancel(context.Background())
			gaveUp := make(chan error, 1)
			go func() { gaveUp <- h.b.Add(ctx, h.ts.view("v0"), h.acks.ack("v0")) }()

			// The blocked Add triggered (bytes) or v1 already triggered
			// (in_flight) the flush of v1, whose put now hangs.
			<-g.started
			cancel()
			if err := <-gaveUp; !errors.Is(err, context.Canceled) {
				t.Fatalf("Add with a cancelled context = %v, want context.Canceled", err)
			}

			added := make(chan error, 1)
			go func() { added <- h.b.Add(context.Background(), h.ts.view("v2"), h.acks.ack("v2")) }()
			select {
			case err := <-added:
				t.Fatalf("Add returned (%v) while the cap is reached", err)
			default:
			}
			if st := h.b.Stats(); st.Messages != 1 || st.Bytes != one || st.Flushing != 1 {
				t.Errorf("Stats() while blocked = %+v, want 1 message, %d bytes, 1 flushing", st, one)
			}
			close(g.release)
			if err := <-added; err != nil {
				t.Fatalf("Add after the flush: %v", err)
			}
			if err := h.acks.wait("v1"); err != nil {
				t.Fatalf("ack v1: %v", err)
			}
			if ok, _ := h.acks.called("v0"); ok {
				t.Error("the ack of an Add that returned an error was called")
			}
			// (Under in_flight, v2 alone reaches the cap and is flushed too.)
			if got := h.flushLogs(); len(got) == 0 || got[0] != "views:"+string(tt.reason)+":1" {
				t.Errorf("flushes = %v, want views:%s:1 first", got, tt.reason)
			}
		})
	}
}

// TestAddDoesNotWaitForTimer: with a clock that never moves, many Adds all
// return; nothing is written, nothing acked, until Close gives up on them.
func TestAddDoesNotWaitForTimer(t *testing.T) {
	cfg := testConfig()
	cfg.MaxAge = time.Hour
	h := newHarness(t, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 100 {
		id := fmt.Sprint("c", i)
		if err := h.b.Add(ctx, h.ts.click(id, 1), h.acks.ack(id)); err != nil {
			t.Fatalf("add %s: %v", id, err)
		}
	}
	if st := h.b.Stats(); st.Messages != 100 || st.Rows != 200 || st.Buffers != 2 || st.Flushing != 0 {
		t.Fatalf("Stats() = %+v, want 100 messages, 200 rows in 2 buffers", st)
	}
	if n := len(h.store.objs()); n != 0 {
		t.Fatalf("%d files written; want none before the age timer", n)
	}
	if v := h.metric(t, "wharf_held_messages"); v != 100 {
		t.Errorf("wharf_held_messages = %v, want 100", v)
	}

	if err := h.b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := h.acks.called(fmt.Sprint("c", i)); !errors.Is(err, ErrClosed) {
			t.Fatalf("ack c%d after Close = %v, want ErrClosed", i, err)
		}
	}
	if err := h.b.Add(ctx, h.ts.view("late"), h.acks.ack("late")); !errors.Is(err, ErrClosed) {
		t.Errorf("Add after Close = %v, want ErrClosed", err)
	}
	if err := h.b.Flush(ctx, ReasonShutdown); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close = %v, want ErrClosed", err)
	}
	if st := h.b.Stats(); st != (Stats{}) {
		t.Errorf("Stats() after Close = %+v, want zero", st)
	}
}

// TestCloseAbandonsRetries: Close stops a put that keeps failing; the ack
// gets ErrClosed, and a Flush waiting on it returns the error.
func TestCloseAbandonsRetries(t *testing.T) {
	tried := make(chan struct{}, 1)
	store := &fakeStore{hook: func(ctx context.Context, key string) error {
		select {
		case tried <- struct{}{}:
		default:
		}
		return errors.New("connection refused")
	}}
	h := newHarness(t, testConfig(), store)
	h.add(t, "c1", h.ts.click("c1", 1))
	flushed := make(chan error, 1)
	go func() { flushed <- h.b.Flush(context.Background(), ReasonShutdown) }()
	<-tried
	if err := h.b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.acks.wait("c1"); !errors.Is(err, ErrClosed) {
		t.Errorf("ack = %v, want ErrClosed", err)
	}
	if err := <-flushed; !errors.Is(err, ErrClosed) {
		t.Errorf("Flush = %v, want ErrClosed", err)
	}
}

// TestFlushTimeout: Flush returns when its context ends, leaving the put
// running.
func TestFlushTimeout(t *testing.T) {
	g, store := newGate()
	h := newHarness(t, testConfig(), store)
	h.add(t, "v1", h.ts.view("v1"))
	ctx, cancel := context.WithCancel(context.Background())
	flushed := make(chan error, 1)
	go func() { flushed <- h.b.Flush(ctx, ReasonShutdown) }()
	<-g.started
	cancel()
	if err := <-flushed; !errors.Is(err, context.Canceled) {
		t.Fatalf("Flush = %v, want context.Canceled", err)
	}
	close(g.release)
	if err := h.acks.wait("v1"); err != nil {
		t.Fatalf("ack: %v", err)
	}
}

// TestConcurrentAdds: many goroutines add through every trigger at once;
// every ack runs exactly once with nil and every row is in exactly one file.
func TestConcurrentAdds(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRows = 50
	cfg.MaxInFlight = 40
	cfg.FlushConcurrency = 3
	ts := testTables(t)
	cfg.MaxBytes = 30 * size(ts.click("x", 3))
	h := newHarness(t, cfg, nil)

	const workers, each = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				rows := h.ts.click(id, i%4)
				if i%3 == 0 {
					rows = h.ts.view(id)
				}
				if err := h.b.Add(context.Background(), rows, h.acks.ack(id)); err != nil {
					t.Errorf("add %s: %v", id, err)
					return
				}
				if i%50 == 0 {
					h.clock.advance(time.Minute)
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			h.clock.fire()
		}
	})
	wg.Wait()
	if err := h.b.Flush(context.Background(), ReasonShutdown); err != nil {
		t.Fatal(err)
	}
	var wantClicks, wantTags, wantViews int64
	for w := range workers {
		for i := range each {
			id := fmt.Sprintf("w%d-%d", w, i)
			if ok, err := h.acks.called(id); !ok || err != nil {
				t.Fatalf("ack %s: called %v, err %v", id, ok, err)
			}
			if i%3 == 0 {
				wantViews++
			} else {
				wantClicks++
				wantTags += int64(i % 4)
			}
		}
	}
	got := h.store.rowsIn(t)
	if got["clicks"] != wantClicks || got["clicks_tags"] != wantTags || got["views"] != wantViews {
		t.Errorf("rows written = %v, want clicks %d, clicks_tags %d, views %d", got, wantClicks, wantTags, wantViews)
	}
	st := h.b.Stats()
	if held := (Stats{Rows: st.Rows, Bytes: st.Bytes, Messages: st.Messages, Buffers: st.Buffers, Flushing: st.Flushing}); held != (Stats{}) {
		t.Errorf("Stats() after Flush = %+v, want nothing held", st)
	}
	if st.RowsWritten != wantClicks+wantTags+wantViews || st.FilesWritten != int64(len(h.store.objs())) {
		t.Errorf("Stats() after Flush = %+v, want %d rows written, in %d files", st, wantClicks+wantTags+wantViews, len(h.store.objs()))
	}
}

// TestLifecycle: New starts nothing (rows wait until Run); Run runs until
// its context ends, which closes the batcher and acks what it held with
// ErrClosed; Run again is an error; Close before Run ends everything at once.
func TestLifecycle(t *testing.T) {
	core, _ := observer.New(zap.DebugLevel)
	ts := testTables(t)
	store := &fakeStore{}
	b, err := newBatcher(testConfig(), store, zap.New(core), nil, options{clock: newFakeClock(), backoff: time.Millisecond, maxBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	acks := newAcker(t)
	ctx := context.Background()
	if err := b.Add(ctx, ts.click("c1", 1), acks.ack("c1")); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx) }()
	flushCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.Flush(flushCtx, ReasonManual); err != nil {
		t.Fatalf("Flush once running: %v", err)
	}
	if err := acks.wait("c1"); err != nil || len(store.objs()) != 2 {
		t.Fatalf("ack %v, %d files; want the rows added before Run written", err, len(store.objs()))
	}
	if err := b.Add(ctx, ts.click("c2", 1), acks.ack("c2")); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run = %v once its context ended, want nil", err)
	}
	if _, err := acks.called("c2"); !errors.Is(err, ErrClosed) {
		t.Errorf("ack of rows held when Run's context ended = %v, want ErrClosed", err)
	}
	if err := b.Run(ctx); err != nil {
		t.Errorf("Run after close = %v, want nil at once", err)
	}

	fresh, err := newBatcher(testConfig(), store, zap.New(core), nil, options{clock: newFakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.Add(ctx, ts.click("c3", 1), acks.ack("c3")); err != nil {
		t.Fatal(err)
	}
	if err := fresh.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := acks.called("c3"); !errors.Is(err, ErrClosed) {
		t.Errorf("ack after Close without Run = %v, want ErrClosed", err)
	}

	twice, err := newBatcher(testConfig(), store, zap.New(core), nil, options{clock: newFakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	run(t, twice)
	stacktest.Eventually(t, "Run to start", 10*time.Second, func() bool { twice.mu.Lock(); defer twice.mu.Unlock(); return twice.running })
	if err := twice.Run(ctx); err == nil {
		t.Error("a second Run returned nil, want an error")
	}
}
