package statuspage

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/wharfdata/wharf/batcher"
	"github.com/wharfdata/wharf/deadletter"
	"github.com/wharfdata/wharf/ingest"
	"github.com/wharfdata/wharf/warehouse"
)

// The components' snapshots, fixed.
type (
	fakeConsumer    ingest.Stats
	fakeBatcher     batcher.Stats
	fakeDeadLetters deadletter.Stats
	fakeBacklog     ingest.BacklogStats
	fakeLoader      struct {
		stats      warehouse.Stats
		quarantine []warehouse.QuarantinedFile
	}
)

func (f fakeConsumer) Stats() ingest.Stats        { return ingest.Stats(f) }
func (f fakeBatcher) Stats() batcher.Stats        { return batcher.Stats(f) }
func (f fakeDeadLetters) Stats() deadletter.Stats { return deadletter.Stats(f) }
func (f *fakeBacklog) Stats() ingest.BacklogStats { return ingest.BacklogStats(*f) }
func (f *fakeLoader) Stats() warehouse.Stats      { return f.stats }
func (f *fakeLoader) Quarantined(context.Context, ...string) ([]warehouse.QuarantinedFile, error) {
	return f.quarantine, nil
}

// redact is the tests' scrubber: it hides the word "hunter2".
func redact(s string) string { return strings.ReplaceAll(s, "hunter2", "xxxxx") }

// fakeConfig is a page's config over fixed data, at a fixed time.
func fakeConfig(t *testing.T) (Config, *zap.Logger) {
	now := time.Date(2026, 5, 4, 12, 30, 20, 0, time.UTC)
	rec := NewRecorder(redact)
	log := rec.Wrap(zap.NewNop())
	return Config{
		Tables: []string{"page_views", "orders"}, Target: 10 * time.Minute, Bucket: 5 * time.Minute,
		Ledger: func(ctx context.Context, since time.Time) ([]warehouse.LoadedMinute, error) {
			return []warehouse.LoadedMinute{
				{Table: "page_views", Minute: now.Add(-50 * time.Minute).Truncate(time.Minute), Files: 2, Rows: 1000, Last: now.Add(-50 * time.Minute)},
				{Table: "page_views", Minute: now.Add(-3 * time.Minute).Truncate(time.Minute), Files: 1, Rows: 234567, Last: now.Add(-3 * time.Minute)},
				{Table: "page_views", Minute: now.Add(-2 * time.Hour).Truncate(time.Minute), Files: 9, Rows: 999, Last: now.Add(-2 * time.Hour)},
				{Table: "orders", Minute: now.Add(-20 * time.Hour).Truncate(time.Minute), Files: 1, Rows: 5, Last: now.Add(-20 * time.Hour)},
			}, nil
		},
		Loader:      &fakeLoader{stats: warehouse.Stats{Tables: map[string]warehouse.TableStats{"page_views": {Rows: 40, Pending: 6}}}},
		Consumer:    fakeConsumer{Received: 12345, Held: 3, OldestHeld: 9 * time.Second},
		Batcher:     fakeBatcher{Rows: 77, RowsWritten: 500, FilesWritten: 4},
		DeadLetters: fakeDeadLetters{Written: map[string]int64{"type_mismatch": 7, "bad_time": 2}},
		Backlog:     &fakeBacklog{Depth: ingest.Backlog{Visible: 4321, InFlight: 10}, At: now.Add(-10 * time.Second)},
		Recorder:    rec,
		Now:         func() time.Time { return now },
	}, log
}

// field returns the value of a log entry's field key.
func field(e LogEntry, key string) string {
	for _, f := range e.Fields {
		if f.Key == key {
			return f.Value
		}
	}
	return ""
}

func TestStatusJSON(t *testing.T) {
	cfg, log := fakeConfig(t)
	cfg.Recorder.OnLoad(warehouse.Load{Table: "page_views", At: time.Now(), Files: 1, Rows: 10, RowsIn: 11, OldestEvent: time.Now().Add(-time.Minute)})
	log.Warn("load failed", zap.String("table", "orders"), zap.Error(errors.New("dial postgres://wharf:hunter2@db/wh: refused")))
	log.Info("not kept")
	s := New(cfg)

	for _, req := range []*http.Request{
		httptest.NewRequest("GET", "/status?format=json", nil),
		func() *http.Request {
			r := httptest.NewRequest("GET", "/status", nil)
			r.Header.Set("Accept", "application/json")
			return r
		}(),
	} {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("content type %q", ct)
		}
		var d Data
		if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		pv, orders := d.Tables[0], d.Tables[1]
		if pv.Name != "page_views" || pv.RowsLastHour != 235567 || pv.FilesLastHour != 3 || pv.State != "ok" || *pv.FreshnessSeconds != 180 {
			t.Errorf("page_views: %+v", pv)
		}
		// 12 buckets of 5 minutes from an hour ago (11:30:20): the minute
		// 11:40 is bucket 1, the minute 12:27 bucket 11.
		if len(pv.Series) != 12 || pv.Series[1] != 1000 || pv.Series[11] != 234567 {
			t.Errorf("page_views series %v", pv.Series)
		}
		if pv.PendingFiles == nil || *pv.PendingFiles != 6 {
			t.Errorf("page_views pending files %v, want 6 (the loader's last listing)", pv.PendingFiles)
		}
		if orders.State != "late" || orders.RowsLastHour != 0 || orders.PendingFiles != nil {
			t.Errorf("orders: %+v", orders)
		}
		if d.Queue == nil || d.Queue.Visible != 4321 || d.MessagesHeld != 3 || d.Batcher.Rows != 77 || d.Process.MessagesReceived != 12345 {
			t.Errorf("queue and process: %+v %+v %d %+v", d.Queue, d.Process, d.MessagesHeld, d.Batcher)
		}
		if p := d.Process; p.RowsWritten != 500 || p.FilesWritten != 4 || p.RowsLoaded != 40 || p.OldestHeldSecs != 9 {
			t.Errorf("process %+v, want the batcher's, the loader's and the consumer's snapshots", p)
		}
		if len(d.DeadLetters) != 2 || d.DeadLetters[0] != (ReasonCount{"type_mismatch", 7}) {
			t.Errorf("dead letters %v", d.DeadLetters)
		}
		if len(d.RecentLoads) != 1 || d.RecentLoads[0].LagSeconds < 59 {
			t.Errorf("recent loads %+v", d.RecentLoads)
		}
		if len(d.RecentErrors) != 1 || field(d.RecentErrors[0], "table") != "orders" || strings.Contains(d.RecentErrors[0].Error, "hunter2") {
			t.Errorf("recent errors %+v", d.RecentErrors)
		}
		if len(d.Alerts) != 1 || !strings.Contains(d.Alerts[0], "orders") {
			t.Errorf("alerts %v", d.Alerts)
		}
	}
}

// The HTML page stands alone: no script, no stylesheet, image or font
// from elsewhere; and it shows the numbers.
func TestStatusHTML(t *testing.T) {
	cfg, log := fakeConfig(t)
	log.Warn("put failed", zap.String("component", "batcher"), zap.String("renamed_field", "still shown"), zap.Error(errors.New("timeout")))
	s := New(cfg)
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/status", nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml,application/json;q=0.9")
	s.ServeHTTP(w, r)
	body := w.Body.String()
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("content type %q", ct)
	}
	for _, want := range []string{`data-table="page_views"`, `data-table="orders"`, "235,567", "4,321", "type_mismatch", `<svg class="spark"`, "<rect", `name="viewport"`, "late",
		"<dd>6</dd>", "renamed_field=</span>still shown", "batcher", "timeout"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if m := regexp.MustCompile(`(?i)<script|<link|<img|@import|url\(|src=|href="(https?:)?//`).FindString(body); m != "" {
		t.Errorf("page loads an external asset: %q", m)
	}
}

// Without a loader (--no-load) the page says so, and the queue's depth
// before its first reading is "not read yet".
func TestStatusWithoutLoader(t *testing.T) {
	cfg, _ := fakeConfig(t)
	cfg.Ledger, cfg.Loader = nil, nil
	cfg.Backlog = &fakeBacklog{}
	w := httptest.NewRecorder()
	New(cfg).ServeHTTP(w, httptest.NewRequest("GET", "/status?format=json", nil))
	var d Data
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.LedgerError, "--no-load") || d.Queue != nil || d.QueueError != "not read yet" || d.Process.RowsLoaded != 0 {
		t.Errorf("ledger error %q, queue %+v, queue error %q, process %+v", d.LedgerError, d.Queue, d.QueueError, d.Process)
	}
}

func TestSparkline(t *testing.T) {
	svg := string(sparkline([]int64{0, 5, 10, 0}))
	if n := strings.Count(svg, "<rect"); n != 2 {
		t.Errorf("%d bars, want 2: %s", n, svg)
	}
	if !strings.Contains(string(sparkline(nil)), "</svg>") {
		t.Error("empty sparkline is not an svg")
	}
}
