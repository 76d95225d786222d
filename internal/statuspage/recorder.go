package statuspage

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wharfdata/wharf/warehouse"
)

// Recorder keeps this process's recent loads (fed by the loader's OnLoad)
// and recent warnings and errors (fed by a zap core), scrubbed of secrets.
type Recorder struct {
	scrub func(string) string // hides secrets, as in every log line

	mu     sync.Mutex
	loads  []LoadEntry // newest last, at most keepRecent
	errs   []LogEntry  // newest last, at most keepRecent
	newest map[string]time.Time
}

const keepRecent = 30

// LoadEntry is one recent load of this process.
type LoadEntry struct {
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

// LogEntry is one recent warning or error of this process: its message, its
// error fields, and every other field as the line carries it. The page
// reads no field by name, so a renamed field shows under its new name.
type LogEntry struct {
	At      time.Time `json:"at"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
	Fields  []Field   `json:"fields,omitempty"` // in the order logged, errors excepted
	Error   string    `json:"error,omitempty"`  // the line's error fields (zap.Error), joined
}

// Field is one field of a log line.
type Field struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// NewRecorder returns a recorder that passes everything it keeps through
// scrub (the scrubber of the log lines).
func NewRecorder(scrub func(string) string) *Recorder {
	return &Recorder{scrub: scrub, newest: map[string]time.Time{}}
}

// OnLoad is the loader's Config.OnLoad.
func (r *Recorder) OnLoad(l warehouse.Load) {
	e := LoadEntry{At: l.At.UTC(), Table: l.Table, Files: l.Files, RowsIn: l.RowsIn, Rows: l.Rows,
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

// recent returns the recent loads and log entries, newest first, and the
// newest event loaded per table.
func (r *Recorder) recent() ([]LoadEntry, []LogEntry, map[string]time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	loads, errs := slices.Clone(r.loads), slices.Clone(r.errs)
	slices.Reverse(loads)
	slices.Reverse(errs)
	newest := make(map[string]time.Time, len(r.newest))
	for k, v := range r.newest {
		newest[k] = v
	}
	return loads, errs, newest
}

func appendRecent[T any](s []T, v T) []T {
	s = append(s, v)
	if len(s) > keepRecent {
		s = slices.Delete(s, 0, len(s)-keepRecent)
	}
	return s
}

// Wrap returns log, whose warnings and errors the recorder also keeps.
func (r *Recorder) Wrap(log *zap.Logger) *zap.Logger {
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewTee(c, &recorderCore{rec: r})
	}))
}

// recorderCore is a zap core that keeps warnings and errors for the page.
type recorderCore struct {
	rec    *Recorder
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
	le := LogEntry{At: e.Time.UTC(), Level: e.Level.String(), Message: c.rec.scrub(e.Message)}
	var errs []string
	for _, f := range append(slices.Clip(c.fields), fs...) {
		if f.Type == zapcore.ErrorType {
			if err, ok := f.Interface.(error); ok && err != nil {
				errs = append(errs, c.rec.scrub(err.Error()))
			}
			continue
		}
		enc := zapcore.NewMapObjectEncoder()
		f.AddTo(enc)
		for k, v := range enc.Fields {
			le.Fields = append(le.Fields, Field{Key: k, Value: c.rec.scrub(fmt.Sprint(v))})
		}
	}
	le.Error = strings.Join(errs, "; ")
	c.rec.mu.Lock()
	c.rec.errs = appendRecent(c.rec.errs, le)
	c.rec.mu.Unlock()
	return nil
}

func (c *recorderCore) Sync() error { return nil }
