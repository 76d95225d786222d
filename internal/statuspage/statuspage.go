// Package statuspage is `wharf serve`'s /status page: what a person opens
// first. Per table it shows the last load, the rows loaded in the last hour
// and a sparkline of them, and freshness (time since the last load) against
// a target; then the queue's backlog, dead letters by reason, and this
// process's recent loads and warnings. The per-table numbers come from the
// ledger, so they are every task's loads; the rest is this process's own
// view, read from each component's typed Stats snapshot and from a Recorder
// — never from metric names or log field names.
package statuspage

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

	"github.com/wharfdata/wharf/batcher"
	"github.com/wharfdata/wharf/deadletter"
	"github.com/wharfdata/wharf/ingest"
	"github.com/wharfdata/wharf/warehouse"
)

// The components as the page sees them: each gives a typed snapshot.
type (
	// Consumer is the SQS consumer (*ingest.Consumer).
	Consumer interface{ Stats() ingest.Stats }
	// Batcher is the batcher (*batcher.Batcher).
	Batcher interface{ Stats() batcher.Stats }
	// DeadLetters is the dead-letter writer (*deadletter.Writer).
	DeadLetters interface{ Stats() deadletter.Stats }
	// Backlog is the queue's depth sampler (*ingest.BacklogSampler).
	Backlog interface{ Stats() ingest.BacklogStats }
	// Loader is the warehouse loader (*warehouse.Loader).
	Loader interface {
		Stats() warehouse.Stats
		Quarantined(ctx context.Context, tables ...string) ([]warehouse.QuarantinedFile, error)
	}
)

var (
	_ Consumer    = (*ingest.Consumer)(nil)
	_ Batcher     = (*batcher.Batcher)(nil)
	_ DeadLetters = (*deadletter.Writer)(nil)
	_ Backlog     = (*ingest.BacklogSampler)(nil)
	_ Loader      = (*warehouse.Loader)(nil)
)

// Config is what the page shows and where it reads it.
type Config struct {
	Tables []string      // every table, parents and children, in file order
	Target time.Duration // freshness target
	Bucket time.Duration // sparkline bucket width
	// Ledger reads the ledger summary (every task's loads); nil when this
	// process runs no loader.
	Ledger func(ctx context.Context, since time.Time) ([]warehouse.LoadedMinute, error)
	// Loader is this process's loader; nil when it runs none.
	Loader      Loader
	Consumer    Consumer
	Batcher     Batcher
	DeadLetters DeadLetters
	Backlog     Backlog
	// Recorder keeps the recent loads and warnings, and scrubs every error
	// the page shows.
	Recorder *Recorder
	Now      func() time.Time
}

// Page serves /status.
type Page struct {
	cfg Config

	mu       sync.Mutex
	cached   *Data
	cachedAt time.Time
}

// New returns the page.
func New(cfg Config) *Page {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Page{cfg: cfg}
}

// cacheFor bounds how often a burst of page views queries the warehouse.
const cacheFor = 2 * time.Second

// Data is the page's content, and its JSON.
type Data struct {
	GeneratedAt     time.Time                   `json:"generated_at"`
	FreshnessTarget string                      `json:"freshness_target"`
	BucketSeconds   int                         `json:"bucket_seconds"`
	Tables          []TableStatus               `json:"tables"`
	LedgerError     string                      `json:"ledger_error,omitempty"`
	Quarantined     []warehouse.QuarantinedFile `json:"quarantined"`
	Queue           *ingest.Backlog             `json:"queue,omitempty"`
	QueueReadAt     *time.Time                  `json:"queue_read_at,omitempty"`
	QueueError      string                      `json:"queue_error,omitempty"`
	DeadLetters     []ReasonCount               `json:"dead_letters"`
	Process         ProcessStatus               `json:"process"`
	Batcher         batcher.Stats               `json:"batcher"`
	MessagesHeld    int                         `json:"messages_held"`
	RecentLoads     []LoadEntry                 `json:"recent_loads"`
	RecentErrors    []LogEntry                  `json:"recent_errors"`
	Alerts          []string                    `json:"alerts"`
}

// TableStatus is one table's card.
type TableStatus struct {
	Name             string     `json:"name"`
	LastLoad         *time.Time `json:"last_load,omitempty"`
	FreshnessSeconds *float64   `json:"freshness_seconds,omitempty"` // since the last load; absent when none in the last day
	State            string     `json:"state"`                       // ok, late, or none (no load in the last day)
	RowsLastHour     int64      `json:"rows_last_hour"`
	FilesLastHour    int64      `json:"files_last_hour"`
	BytesLastHour    int64      `json:"bytes_last_hour"`
	Series           []int64    `json:"series"` // rows per bucket over the last hour, oldest first
	NewestEvent      *time.Time `json:"newest_event,omitempty"`
	PendingFiles     *int       `json:"pending_files,omitempty"` // as of this process's last listing
}

// ReasonCount is the dead letters of one reason.
type ReasonCount struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

// ProcessStatus is this process's counters since it started.
type ProcessStatus struct {
	MessagesReceived int64 `json:"messages_received"`
	MessagesDeleted  int64 `json:"messages_deleted"`
	RowsWritten      int64 `json:"rows_written"`
	FilesWritten     int64 `json:"files_written"`
	RowsLoaded       int64 `json:"rows_loaded"`
	OldestHeldSecs   int64 `json:"oldest_held_seconds"`
}

// snapshot returns the page's data, at most cacheFor old.
func (p *Page) snapshot(ctx context.Context) *Data {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.cfg.Now()
	if p.cached != nil && now.Sub(p.cachedAt) < cacheFor {
		return p.cached
	}
	d := p.collect(ctx, now)
	p.cached, p.cachedAt = d, now
	return d
}

func (p *Page) collect(ctx context.Context, now time.Time) *Data {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	scrub := p.cfg.Recorder.scrub
	now = now.UTC()
	d := &Data{GeneratedAt: now, FreshnessTarget: p.cfg.Target.String(), BucketSeconds: int(p.cfg.Bucket / time.Second)}

	var minutes []warehouse.LoadedMinute
	if p.cfg.Ledger == nil {
		d.LedgerError = "this process runs no loader (--no-load): the ledger is not read"
	} else if m, err := p.cfg.Ledger(ctx, now.Add(-24*time.Hour)); err != nil {
		d.LedgerError = scrub(err.Error())
	} else {
		minutes = m
	}
	var loaded warehouse.Stats
	if p.cfg.Loader != nil {
		loaded = p.cfg.Loader.Stats()
		p.quarantine(ctx, d)
	}
	p.queue(d)
	var newest map[string]time.Time
	d.RecentLoads, d.RecentErrors, newest = p.cfg.Recorder.recent()
	d.Tables = p.tables(d, minutes, loaded, newest, now)

	dl := p.cfg.DeadLetters.Stats()
	for reason, n := range dl.Written {
		d.DeadLetters = append(d.DeadLetters, ReasonCount{reason, n})
	}
	slices.SortFunc(d.DeadLetters, func(a, b ReasonCount) int {
		if a.Count != b.Count {
			return int(b.Count - a.Count)
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	cons := p.cfg.Consumer.Stats()
	d.Batcher = p.cfg.Batcher.Stats()
	d.MessagesHeld = cons.Held
	d.Process = ProcessStatus{
		MessagesReceived: cons.Received,
		MessagesDeleted:  cons.Deleted,
		RowsWritten:      d.Batcher.RowsWritten,
		FilesWritten:     d.Batcher.FilesWritten,
		RowsLoaded:       loaded.Rows(),
		OldestHeldSecs:   int64(cons.OldestHeld / time.Second),
	}
	if d.LedgerError != "" && p.cfg.Ledger != nil {
		d.Alerts = append(d.Alerts, "the ledger cannot be read: "+d.LedgerError)
	}
	if d.QueueError != "" {
		d.Alerts = append(d.Alerts, "the queue's depth cannot be read: "+d.QueueError)
	}
	return d
}

// quarantine reads the files set aside as unloadable.
func (p *Page) quarantine(ctx context.Context, d *Data) {
	scrub := p.cfg.Recorder.scrub
	q, err := p.cfg.Loader.Quarantined(ctx)
	if err != nil {
		d.Alerts = append(d.Alerts, "the quarantine cannot be read: "+scrub(err.Error()))
		return
	}
	for _, f := range q {
		f.Reason = scrub(f.Reason)
		d.Quarantined = append(d.Quarantined, f)
	}
	if len(q) > 0 {
		d.Alerts = append(d.Alerts, fmt.Sprintf("%d files quarantined: they cannot load (see below); fix or upgrade, then wharf load --retry-quarantined", len(q)))
	}
}

// queue shows the sampler's last reading of the queue's depth, and the
// error of its latest reading.
func (p *Page) queue(d *Data) {
	if p.cfg.Backlog == nil {
		return
	}
	b := p.cfg.Backlog.Stats()
	if !b.At.IsZero() {
		depth, at := b.Depth, b.At.UTC()
		d.Queue, d.QueueReadAt = &depth, &at
	}
	switch {
	case b.Err != nil:
		d.QueueError = p.cfg.Recorder.scrub(b.Err.Error())
	case b.At.IsZero():
		d.QueueError = "not read yet"
	}
}

// tables builds the table cards from the ledger's minutes, this process's
// loader and its recent loads, adding an alert for each table not fresh.
func (p *Page) tables(d *Data, minutes []warehouse.LoadedMinute, loaded warehouse.Stats, newest map[string]time.Time, now time.Time) []TableStatus {
	buckets := int(time.Hour / p.cfg.Bucket)
	hourAgo := now.Add(-time.Hour)
	byTable := map[string][]warehouse.LoadedMinute{}
	for _, m := range minutes {
		byTable[m.Table] = append(byTable[m.Table], m)
	}
	var out []TableStatus
	for _, name := range p.cfg.Tables {
		ts := TableStatus{Name: name, Series: make([]int64, buckets), State: "none"}
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
			i := int(m.Minute.Sub(hourAgo) / p.cfg.Bucket)
			if i >= 0 && i < buckets {
				ts.Series[i] += m.Rows
			}
		}
		if !last.IsZero() {
			l := last
			f := math.Max(now.Sub(last).Seconds(), 0)
			ts.LastLoad, ts.FreshnessSeconds = &l, &f
			ts.State = "ok"
			if now.Sub(last) > p.cfg.Target {
				ts.State = "late"
			}
		}
		if t, ok := newest[name]; ok {
			ts.NewestEvent = &t
		}
		if s, ok := loaded.Tables[name]; ok {
			n := s.Pending
			ts.PendingFiles = &n
		}
		if ts.State != "ok" && d.LedgerError == "" {
			d.Alerts = append(d.Alerts, fmt.Sprintf("%s: no load within the freshness target of %s", name, p.cfg.Target))
		}
		out = append(out, ts)
	}
	return out
}

// ServeHTTP serves the page as HTML, or as JSON for ?format=json or a
// request that accepts JSON and not HTML.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d := p.snapshot(r.Context())
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
	if err := pageTemplate.Execute(w, d); err != nil {
		fmt.Fprintf(w, "<p>status page error: %s</p>", template.HTMLEscapeString(p.cfg.Recorder.scrub(err.Error())))
	}
}
