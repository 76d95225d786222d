package main

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

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wharfdata/wharf/batcher"
	"github.com/wharfdata/wharf/ingest"
	"github.com/wharfdata/wharf/warehouse"
)

// fakeStatus is a statusSource over fixed data, at a fixed time.
func fakeStatus(t *testing.T) (*statusSource, *statusRecorder, *zap.Logger) {
	now := time.Date(2026, 5, 4, 12, 30, 20, 0, time.UTC)
	reg := prometheus.NewRegistry()
	dl := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wharf_deadletters_total"}, []string{"reason"})
	dl.WithLabelValues("type_mismatch").Add(7)
	dl.WithLabelValues("bad_time").Add(2)
	recv := prometheus.NewCounter(prometheus.CounterOpts{Name: "wharf_received_messages_total"})
	recv.Add(12345)
	reg.MustRegister(dl, recv)
	rec := newStatusRecorder(nil)
	log := rec.wrap(zap.NewNop())
	s := &statusSource{
		tables: []string{"page_views", "orders"}, target: 10 * time.Minute, bucket: 5 * time.Minute,
		ledger: func(ctx context.Context, since time.Time) ([]warehouse.LoadedMinute, error) {
			return []warehouse.LoadedMinute{
				{Table: "page_views", Minute: now.Add(-50 * time.Minute).Truncate(time.Minute), Files: 2, Rows: 1000, Last: now.Add(-50 * time.Minute)},
				{Table: "page_views", Minute: now.Add(-3 * time.Minute).Truncate(time.Minute), Files: 1, Rows: 234567, Last: now.Add(-3 * time.Minute)},
				{Table: "page_views", Minute: now.Add(-2 * time.Hour).Truncate(time.Minute), Files: 9, Rows: 999, Last: now.Add(-2 * time.Hour)},
				{Table: "orders", Minute: now.Add(-20 * time.Hour).Truncate(time.Minute), Files: 1, Rows: 5, Last: now.Add(-20 * time.Hour)},
			}, nil
		},
		backlog: func(ctx context.Context) (ingest.Backlog, error) {
			return ingest.Backlog{Visible: 4321, InFlight: 10}, nil
		},
		gather: reg,
		local:  func() (batcher.Stats, int) { return batcher.Stats{Rows: 77}, 3 },
		rec:    rec,
		now:    func() time.Time { return now },
	}
	return s, rec, log
}

func TestStatusJSON(t *testing.T) {
	s, rec, log := fakeStatus(t)
	rec.onLoad(warehouse.Load{Table: "page_views", At: time.Now(), Files: 1, Rows: 10, RowsIn: 11, OldestEvent: time.Now().Add(-time.Minute)})
	log.Warn("load failed", zap.String("table", "orders"), zap.Error(errors.New("dial postgres://wharf:hunter2@db/wh: refused")))
	log.Info("not kept")

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
		var d statusData
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
		if orders.State != "late" || orders.RowsLastHour != 0 {
			t.Errorf("orders: %+v", orders)
		}
		if d.Queue == nil || d.Queue.Visible != 4321 || d.MessagesHeld != 3 || d.Batcher.Rows != 77 || d.Process.MessagesReceived != 12345 {
			t.Errorf("queue and process: %+v %+v %d %+v", d.Queue, d.Process, d.MessagesHeld, d.Batcher)
		}
		if len(d.DeadLetters) != 2 || d.DeadLetters[0] != (reasonCount{"type_mismatch", 7}) {
			t.Errorf("dead letters %v", d.DeadLetters)
		}
		if len(d.RecentLoads) != 1 || d.RecentLoads[0].LagSeconds < 59 {
			t.Errorf("recent loads %+v", d.RecentLoads)
		}
		if len(d.RecentErrors) != 1 || d.RecentErrors[0].Table != "orders" || strings.Contains(d.RecentErrors[0].Error, "hunter2") {
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
	s, _, _ := fakeStatus(t)
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/status", nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml,application/json;q=0.9")
	s.ServeHTTP(w, r)
	body := w.Body.String()
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("content type %q", ct)
	}
	for _, want := range []string{`data-table="page_views"`, `data-table="orders"`, "235,567", "4,321", "type_mismatch", `<svg class="spark"`, "<rect", `name="viewport"`, "late"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if m := regexp.MustCompile(`(?i)<script|<link|<img|@import|url\(|src=|href="(https?:)?//`).FindString(body); m != "" {
		t.Errorf("page loads an external asset: %q", m)
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

// /status hides what the log hides: a known secret (here an AWS secret key,
// which matches no password pattern) is scrubbed from every error and
// message the page shows, exactly as scrubWriter scrubs it from a log line.
func TestStatusScrubsLikeLogs(t *testing.T) {
	const secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
	secrets := secretForms([]string{secret})
	leak := errors.New("signature mismatch for " + secret)
	for _, tc := range []struct {
		name string
		set  func(s *statusSource, rec *statusRecorder, log *zap.Logger)
	}{
		{"a logged error", func(_ *statusSource, _ *statusRecorder, log *zap.Logger) {
			log.Warn("flush failed", zap.String("table", "orders"), zap.Error(leak))
		}},
		{"a logged message", func(_ *statusSource, _ *statusRecorder, log *zap.Logger) {
			log.Error("flush failed: " + leak.Error())
		}},
		{"a logged file", func(_ *statusSource, _ *statusRecorder, log *zap.Logger) {
			log.Warn("put failed", zap.String("file", "s3://b/"+secret))
		}},
		{"a load error", func(_ *statusSource, rec *statusRecorder, _ *zap.Logger) {
			rec.onLoad(warehouse.Load{Table: "orders", At: time.Now(), Err: leak})
		}},
		{"the ledger error", func(s *statusSource, _ *statusRecorder, _ *zap.Logger) {
			s.ledger = func(context.Context, time.Time) ([]warehouse.LoadedMinute, error) { return nil, leak }
		}},
		{"the queue error", func(s *statusSource, _ *statusRecorder, _ *zap.Logger) {
			s.backlog = func(context.Context) (ingest.Backlog, error) { return ingest.Backlog{}, leak }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, _ := fakeStatus(t)
			rec := newStatusRecorder(secrets)
			s.rec = rec
			var logged strings.Builder
			log := rec.wrap(zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(scrubWriter{&logged, secrets}), zap.WarnLevel)))
			tc.set(s, rec, log)
			if strings.Contains(logged.String(), secret) {
				t.Fatalf("the log line shows the secret: %s", logged.String())
			}
			for _, accept := range []string{"application/json", "text/html"} {
				w := httptest.NewRecorder()
				r := httptest.NewRequest("GET", "/status", nil)
				r.Header.Set("Accept", accept)
				s.cached = nil
				s.ServeHTTP(w, r)
				body := w.Body.String()
				if strings.Contains(body, secret) {
					t.Errorf("%s page shows the secret", accept)
				}
				if accept == "application/json" && !strings.Contains(body, "signature mismatch for xxxxx") && !strings.Contains(body, "s3://b/xxxxx") {
					t.Errorf("%s page does not show the scrubbed error:\n%s", accept, body)
				}
			}
		})
	}
}
