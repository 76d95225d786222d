package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wharfdata/wharf/batcher"
	"github.com/wharfdata/wharf/ingest"
	"github.com/wharfdata/wharf/warehouse"
)

// The /status page: what a person opens first. Per table it shows the last
// load, the rows loaded in the last hour and a sparkline of them, and
// freshness (time since the last load) against a target; then the queue's
// backlog, dead letters by reason, and this process's recent loads and
// warnings. The per-table numbers come from the ledger, so they are every
// task's loads; the rest is this process's own view.

// statusRecorder keeps this process's recent loads (fed by the loader's
// OnLoad) and recent warnings and errors (fed by a zap core).
type statusRecorder struct {
	secrets []string // scrubbed from everything the page shows, as from every log line

	mu     sync.Mutex
	loads  []loadEntry // newest last, at most keepRecent
	errs   []logEntry  // newest last, at most keepRecent
	newest map[string]time.Time
}

const keepRecent = 30

type loadEntry struct {
	At          time.Time `json:"at"`
	Table       string    `json:"table"`
	Files       int       `json:"files"`
	RowsIn      int64     `json:"rows_in"`
	Rows        int64     `json:"rows"`
	DurationMS  int64     `json:"duration_ms"`
	LagSeconds  float64   `json:"lag_seconds"` // commit time − the oldest event_time of the batch
	NewestEvent time.Time `json:"newest_event"`
	Error       string    `json:"error,omitempty"`
}

type logEntry struct {
	At        time.Time `json:"at"`
	Level     string    `json:"level"`
	Message   string    `json:"message"`
	Component string    `json:"component,omitempty"`
	Table     string    `json:"table,omitempty"`
	File      string    `json:"file,omitempty"`
	Error     string    `json:"error,omitempty"`
}

// newStatusRecorder returns a recorder that hides secrets (Config.secrets)
// with the scrubber of the log lines.
func newStatusRecorder(secrets []string) *statusRecorder {
	return &statusRecorder{secrets: secrets, newest: map[string]time.Time{}}
}

// scrub hides secrets in s as a log line hides them (scrub, secrets.go).
func (r *statusRecorder) scrub(s string) string { return scrub(s, r.secrets) }

// onLoad is the loader's Config.OnLoad.
func (r *statusRecorder) onLoad(l warehouse.Load) {
	e := loadEntry{At: l.At.UTC(), Table: l.Table, Files: l.Files, RowsIn: l.RowsIn, Rows: l.Rows,
		DurationMS: l.Duration.Milliseconds(), NewestEvent: l.NewestEvent.UTC()}
	if !l.OldestEvent.IsZero() {
		e.LagSeconds = math.Max(l.At.Sub(l.OldestEvent).Seconds(), 0)
	}
	if l.Err != nil {
		e.Error = r.scrub(l.Err.Error())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.loads = appendRecent(r.loads, e)
	if l.Err == nil && l.NewestEvent.After(r.newest[l.Table]) {
		r.newest[l.Table] = l.NewestEvent.UTC()
	}
}

func appendRecent[T any](s []T, v T) []T {
	s = append(s, v)
	if len(s) > keepRecent {
		s = slices.Delete(s, 0, len(s)-keepRecent)
	}
	return s
}

// wrap returns log, whose warnings and errors the recorder also keeps.
func (r *statusRecorder) wrap(log *zap.Logger) *zap.Logger {
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewTee(c, &recorderCore{rec: r})
	}))
}

// recorderCore is a zap core that keeps warnings and errors for /status.
type recorderCore struct {
	rec    *statusRecorder
	fields []zapcore.Field
}

func (c *recorderCore) Enabled(l zapcore.Level) bool { return l >= zapcore.WarnLevel }

func (c *recorderCore) With(fs []zapcore.Field) zapcore.Core {
	return &recorderCore{rec: c.rec, fields: append(slices.Clip(c.fields), fs...)}
}

func (c *recorderCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *recorderCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range append(slices.Clip(c.fields), fs...) {
		f.AddTo(enc)
	}
	str := func(k string) string {
		if v, ok := enc.Fields[k].(string); ok {
			return c.rec.scrub(v)
		}
		return ""
	}
	le := logEntry{At: e.Time.UTC(), Level: e.Level.String(), Message: c.rec.scrub(e.Message),
		Component: str("component"), Table: str("table"), File: str("file"), Error: str("error")}
	c.rec.mu.Lock()
	c.rec.errs = appendRecent(c.rec.errs, le)
	c.rec.mu.Unlock()
	return nil
}

func (c *recorderCore) Sync() error { return nil }

// statusSource gathers the page's data.
type statusSource struct {
	tables []string
	target time.Duration // freshness target
	bucket time.Duration // sparkline bucket width
	// ledger reads the ledger summary; nil when this process runs no loader.
	ledger  func(ctx context.Context, since time.Time) ([]warehouse.LoadedMinute, error)
	backlog func(ctx context.Context) (ingest.Backlog, error)
	// quarantine reads the files set aside as unloadable; nil when this
	// process runs no loader.
	quarantine func(ctx context.Context) ([]warehouse.QuarantinedFile, error)
	gather     prometheus.Gatherer
	local      func() (batcher.Stats, int) // the batcher's stats, messages held by the consumer
	rec        *statusRecorder
	now        func() time.Time

	mu       sync.Mutex
	cached   *statusData
	cachedAt time.Time
}

// statusCacheFor bounds how often a burst of page views queries the
// warehouse and SQS.
const statusCacheFor = 2 * time.Second

type statusData struct {
	GeneratedAt     time.Time                   `json:"generated_at"`
	FreshnessTarget string                      `json:"freshness_target"`
	BucketSeconds   int                         `json:"bucket_seconds"`
	Tables          []tableStatus               `json:"tables"`
	LedgerError     string                      `json:"ledger_error,omitempty"`
	Quarantined     []warehouse.QuarantinedFile `json:"quarantined"`
	Queue           *ingest.Backlog             `json:"queue,omitempty"`
	QueueError      string                      `json:"queue_error,omitempty"`
	DeadLetters     []reasonCount               `json:"dead_letters"`
	Process         processStatus               `json:"process"`
	Batcher         batcher.Stats               `json:"batcher"`
	MessagesHeld    int                         `json:"messages_held"`
	RecentLoads     []loadEntry                 `json:"recent_loads"`
	RecentErrors    []logEntry                  `json:"recent_errors"`
	Alerts          []string                    `json:"alerts"`
	counters        map[string]*float64         // not exported
}

type tableStatus struct {
	Name             string     `json:"name"`
	LastLoad         *time.Time `json:"last_load,omitempty"`
	FreshnessSeconds *float64   `json:"freshness_seconds,omitempty"` // since the last load; absent when none in the last day
	State            string     `json:"state"`                       // ok, late, or none (no load in the last day)
	RowsLastHour     int64      `json:"rows_last_hour"`
	FilesLastHour    int64      `json:"files_last_hour"`
	BytesLastHour    int64      `json:"bytes_last_hour"`
	Series           []int64    `json:"series"` // rows per bucket over the last hour, oldest first
	NewestEvent      *time.Time `json:"newest_event,omitempty"`
	PendingFiles     *float64   `json:"pending_files,omitempty"` // as of this process's last listing
}

type reasonCount struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

// processStatus is this process's counters since it started.
type processStatus struct {
	MessagesReceived int64 `json:"messages_received"`
	MessagesDeleted  int64 `json:"messages_deleted"`
	RowsWritten      int64 `json:"rows_written"`
	FilesWritten     int64 `json:"files_written"`
	RowsLoaded       int64 `json:"rows_loaded"`
	OldestHeldSecs   int64 `json:"oldest_held_seconds"`
}

// scrub hides secrets in s as a log line hides them.
func (s *statusSource) scrub(v string) string {
	if s.rec == nil {
		return redact(v)
	}
	return s.rec.scrub(v)
}

// snapshot returns the page's data, at most statusCacheFor old.
func (s *statusSource) snapshot(ctx context.Context) *statusData {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.cached != nil && now.Sub(s.cachedAt) < statusCacheFor {
		return s.cached
	}
	d := s.collect(ctx, now)
	s.cached, s.cachedAt = d, now
	return d
}

func (s *statusSource) collect(ctx context.Context, now time.Time) *statusData {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	now = now.UTC()
	d := &statusData{GeneratedAt: now, FreshnessTarget: s.target.String(), BucketSeconds: int(s.bucket / time.Second)}
	buckets := int(time.Hour / s.bucket)
	hourAgo := now.Add(-time.Hour)

	var minutes []warehouse.LoadedMinute
	if s.ledger == nil {
		d.LedgerError = "this process runs no loader (--no-load): the ledger is not read"
	} else if m, err := s.ledger(ctx, now.Add(-24*time.Hour)); err != nil {
		d.LedgerError = s.scrub(err.Error())
	} else {
		minutes = m
	}
	if s.quarantine != nil {
		if q, err := s.quarantine(ctx); err != nil {
			d.Alerts = append(d.Alerts, "the quarantine cannot be read: "+s.scrub(err.Error()))
		} else {
			for _, f := range q {
				f.Reason = s.scrub(f.Reason)
				d.Quarantined = append(d.Quarantined, f)
			}
			if len(q) > 0 {
				d.Alerts = append(d.Alerts, fmt.Sprintf("%d files quarantined: they cannot load (see below); fix or upgrade, then wharf load --retry-quarantined", len(q)))
			}
		}
	}
	if s.backlog != nil {
		if b, err := s.backlog(ctx); err != nil {
			d.QueueError = s.scrub(err.Error())
		} else {
			d.Queue = &b
		}
	}
	metrics := gatherMetrics(s.gather)

	s.rec.mu.Lock()
	d.RecentLoads = slices.Clone(s.rec.loads)
	d.RecentErrors = slices.Clone(s.rec.errs)
	newest := make(map[string]time.Time, len(s.rec.newest))
	for k, v := range s.rec.newest {
		newest[k] = v
	}
	s.rec.mu.Unlock()
	slices.Reverse(d.RecentLoads)
	slices.Reverse(d.RecentErrors)

	byTable := map[string][]warehouse.LoadedMinute{}
	for _, m := range minutes {
		byTable[m.Table] = append(byTable[m.Table], m)
	}
	for _, name := range s.tables {
		ts := tableStatus{Name: name, Series: make([]int64, buckets), State: "none"}
		var last time.Time
		for _, m := range byTable[name] {
			if m.Last.After(last) {
				last = m.Last
			}
			if m.Minute.Before(hourAgo.Truncate(time.Minute)) {
				continue
			}
			if !m.Minute.Before(hourAgo) {
				ts.RowsLastHour += m.Rows
				ts.FilesLastHour += m.Files
				ts.BytesLastHour += m.Bytes
			}
			i := int(m.Minute.Sub(hourAgo) / s.bucket)
			if i >= 0 && i < buckets {
				ts.Series[i] += m.Rows
			}
		}
		if !last.IsZero() {
			l := last
			f := math.Max(now.Sub(last).Seconds(), 0)
			ts.LastLoad, ts.FreshnessSeconds = &l, &f
			ts.State = "ok"
			if now.Sub(last) > s.target {
				ts.State = "late"
			}
		}
		if t, ok := newest[name]; ok {
			ts.NewestEvent = &t
		}
		if v, ok := metrics.labeled("wharf_pending_files", "table", name); ok {
			ts.PendingFiles = &v
		}
		if ts.State != "ok" && d.LedgerError == "" {
			d.Alerts = append(d.Alerts, fmt.Sprintf("%s: no load within the freshness target of %s", name, s.target))
		}
		d.Tables = append(d.Tables, ts)
	}
	for reason, v := range metrics.byLabel("wharf_deadletters_total", "reason") {
		d.DeadLetters = append(d.DeadLetters, reasonCount{reason, int64(v)})
	}
	slices.SortFunc(d.DeadLetters, func(a, b reasonCount) int {
		if a.Count != b.Count {
			return int(b.Count - a.Count)
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	d.Process = processStatus{
		MessagesReceived: int64(metrics.sum("wharf_received_messages_total")),
		MessagesDeleted:  int64(metrics.sum("wharf_deleted_messages_total")),
		RowsWritten:      int64(metrics.sum("wharf_written_rows_total")),
		FilesWritten:     int64(metrics.sum("wharf_written_files_total")),
		RowsLoaded:       int64(metrics.sum("wharf_load_rows_total")),
		OldestHeldSecs:   int64(metrics.sum("wharf_oldest_held_message_age_seconds")),
	}
	if s.local != nil {
		d.Batcher, d.MessagesHeld = s.local()
	}
	if d.LedgerError != "" && s.ledger != nil {
		d.Alerts = append(d.Alerts, "the ledger cannot be read: "+d.LedgerError)
	}
	if d.QueueError != "" {
		d.Alerts = append(d.Alerts, "the queue's depth cannot be read: "+d.QueueError)
	}
	return d
}

// gathered is a registry's metrics by name.
type gathered map[string]*dto.MetricFamily

func gatherMetrics(g prometheus.Gatherer) gathered {
	out := gathered{}
	if g == nil {
		return out
	}
	mfs, _ := g.Gather() // a partial gather still has the families it could read
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

func (g gathered) sum(name string) float64 {
	var v float64
	if mf := g[name]; mf != nil {
		for _, m := range mf.Metric {
			v += metricValue(m)
		}
	}
	return v
}

func (g gathered) byLabel(name, label string) map[string]float64 {
	out := map[string]float64{}
	if mf := g[name]; mf != nil {
		for _, m := range mf.Metric {
			for _, lp := range m.Label {
				if lp.GetName() == label {
					out[lp.GetValue()] += metricValue(m)
				}
			}
		}
	}
	return out
}

func (g gathered) labeled(name, label, value string) (float64, bool) {
	v, ok := g.byLabel(name, label)[value]
	return v, ok
}

// ServeHTTP serves the page as HTML, or as JSON for ?format=json or a
// request that accepts JSON and not HTML.
func (s *statusSource) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d := s.snapshot(r.Context())
	accept := r.Header.Get("Accept")
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Query().Get("format") == "json" || strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html") {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(d) // the client went away
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	if err := statusTemplate.Execute(w, d); err != nil {
		fmt.Fprintf(w, "<p>status page error: %s</p>", template.HTMLEscapeString(s.scrub(err.Error())))
	}
}

// sparkline draws series as an inline SVG bar chart.
func sparkline(series []int64) template.HTML {
	const w, h = 180, 36
	var peak int64
	for _, v := range series {
		peak = max(peak, v)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="spark" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="rows per bucket over the last hour, peak %d">`, w, h, w, h, peak)
	fmt.Fprintf(&b, `<line x1="0" y1="%d" x2="%d" y2="%d" class="axis"/>`, h-1, w, h-1)
	if n := len(series); n > 0 {
		bw := float64(w) / float64(n)
		for i, v := range series {
			if v == 0 {
				continue
			}
			bh := math.Max(float64(v)/float64(peak)*float64(h-2), 1.5)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%d rows</title></rect>`,
				float64(i)*bw+0.5, float64(h-1)-bh, math.Max(bw-1, 1), bh, v)
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// ago writes a duration as a person reads it: 42s, 7m, 3h 5m, 2d.
func ago(secs float64) string {
	d := time.Duration(secs * float64(time.Second))
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// count writes an integer with thousands separators.
func count(v any) string {
	s := fmt.Sprint(v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

var statusTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"spark": sparkline,
	"ago":   ago,
	"count": count,
	"since": func(now, t time.Time) string { return ago(now.Sub(t).Seconds()) },
	"clock": func(t time.Time) string { return t.UTC().Format("15:04:05") },
	"stamp": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"deref": func(p *float64) float64 { return *p },
	"i64":   func(p *float64) int64 { return int64(*p) },
}).Parse(statusHTML))

const statusHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30">
<title>wharf status</title>
<style>
:root { --ok: #1a7f37; --late: #cf222e; --none: #9a6700; --muted: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; padding: 12px; color: #1f2328; background: #f6f8fa; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 20px 0 8px; }
.muted { color: var(--muted); font-size: 13px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; margin-bottom: 10px; }
.grid { display: grid; gap: 10px; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); }
.table-card h3 { font-size: 16px; margin: 0 0 6px; display: flex; justify-content: space-between; align-items: center; gap: 8px; word-break: break-all; }
.badge { font-size: 12px; font-weight: 600; padding: 2px 8px; border-radius: 10px; color: #fff; white-space: nowrap; }
.ok { background: var(--ok); } .late { background: var(--late); } .none { background: var(--none); }
dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; margin: 0 0 6px; font-size: 14px; }
dt { color: var(--muted); } dd { margin: 0; font-variant-numeric: tabular-nums; }
.spark rect { fill: #0969da; } .spark .axis { stroke: var(--line); stroke-width: 1; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
td.wrap { white-space: normal; word-break: break-word; min-width: 200px; }
.alert { background: #ffebe9; border-color: #ff8182; }
.stats { display: flex; flex-wrap: wrap; gap: 6px 18px; font-size: 14px; }
.stats b { font-variant-numeric: tabular-nums; }
</style>
</head>
<body>
<h1>wharf status</h1>
<div class="muted">{{stamp .GeneratedAt}} · freshness target {{.FreshnessTarget}} · refreshes every 30 s · <a href="?format=json">JSON</a> · <a href="/metrics">metrics</a></div>
{{if .Alerts}}<div class="card alert" id="alerts"><b>Needs attention</b><ul>{{range .Alerts}}<li>{{.}}</li>{{end}}</ul></div>{{end}}

<h2>Tables</h2>
<div class="grid" id="tables">
{{$now := .GeneratedAt}}{{$bucket := .BucketSeconds}}
{{range .Tables}}<div class="card table-card" data-table="{{.Name}}">
<h3><span>{{.Name}}</span><span class="badge {{.State}}">{{if eq .State "ok"}}fresh{{else if eq .State "late"}}late{{else}}no load{{end}}</span></h3>
<dl>
<dt>last load</dt><dd class="last-load">{{if .LastLoad}}{{ago (deref .FreshnessSeconds)}} ago <span class="muted">({{clock .LastLoad}})</span>{{else}}none in the last day{{end}}</dd>
<dt>rows, last hour</dt><dd class="rows-hour">{{count .RowsLastHour}} <span class="muted">in {{count .FilesLastHour}} files</span></dd>
{{if .NewestEvent}}<dt>newest event</dt><dd>{{since $now .NewestEvent}} old</dd>{{end}}
{{if .PendingFiles}}<dt>files pending</dt><dd>{{i64 .PendingFiles}}</dd>{{end}}
</dl>
{{spark .Series}}
<div class="muted">rows loaded per {{$bucket}} s, last hour</div>
</div>
{{end}}
</div>

<h2>Queue and this process</h2>
<div class="card stats" id="queue">
{{if .Queue}}<span>backlog <b class="backlog">{{count .Queue.Visible}}</b></span><span>in flight <b>{{count .Queue.InFlight}}</b></span><span>delayed <b>{{count .Queue.Delayed}}</b></span>{{else}}<span>queue depth unknown: {{.QueueError}}</span>{{end}}
<span>held here <b>{{count .MessagesHeld}}</b></span>
<span>oldest held <b>{{.Process.OldestHeldSecs}} s</b></span>
<span>buffered rows <b>{{count .Batcher.Rows}}</b></span>
<span>received <b>{{count .Process.MessagesReceived}}</b></span>
<span>deleted <b>{{count .Process.MessagesDeleted}}</b></span>
<span>rows to S3 <b>{{count .Process.RowsWritten}}</b> in <b>{{count .Process.FilesWritten}}</b> files</span>
<span>rows loaded <b>{{count .Process.RowsLoaded}}</b></span>
</div>

<h2>Dead letters <span class="muted">(this process, since start)</span></h2>
<div class="card" id="deadletters">
{{if .DeadLetters}}<table><tr><th>reason</th><th>messages</th></tr>
{{range .DeadLetters}}<tr><td>{{.Reason}}</td><td>{{count .Count}}</td></tr>{{end}}</table>
{{else}}<span class="muted">none</span>{{end}}
</div>

{{if .Quarantined}}<h2>Quarantined files</h2>
<div class="card scroll" id="quarantine">
<table><tr><th>since</th><th>table</th><th>file</th><th>reason</th></tr>
{{range .Quarantined}}<tr><td>{{clock .At}}</td><td>{{.Table}}</td><td class="wrap">{{.Key}}</td><td class="wrap">{{.Reason}}</td></tr>{{end}}</table>
</div>
{{end}}
<h2>Recent loads <span class="muted">(this process)</span></h2>
<div class="card scroll" id="loads">
{{if .RecentLoads}}<table><tr><th>time</th><th>table</th><th>files</th><th>rows added</th><th>rows read</th><th>took</th><th>lag</th><th>error</th></tr>
{{range .RecentLoads}}<tr><td>{{clock .At}}</td><td>{{.Table}}</td><td>{{.Files}}</td><td>{{count .Rows}}</td><td>{{count .RowsIn}}</td><td>{{.DurationMS}} ms</td><td>{{if .LagSeconds}}{{ago .LagSeconds}}{{end}}</td><td class="wrap">{{.Error}}</td></tr>{{end}}</table>
{{else}}<span class="muted">none yet</span>{{end}}
</div>

<h2>Recent warnings and errors <span class="muted">(this process)</span></h2>
<div class="card scroll" id="errors">
{{if .RecentErrors}}<table><tr><th>time</th><th>level</th><th>what</th><th>table</th><th>error</th></tr>
{{range .RecentErrors}}<tr><td>{{clock .At}}</td><td>{{.Level}}</td><td class="wrap">{{.Message}}{{if .Component}} <span class="muted">({{.Component}})</span>{{end}}</td><td>{{.Table}}</td><td class="wrap">{{.Error}}</td></tr>{{end}}</table>
{{else}}<span class="muted">none</span>{{end}}
</div>
{{if .LedgerError}}<p class="muted">ledger: {{.LedgerError}}</p>{{end}}
</body>
</html>
`
