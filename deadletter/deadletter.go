// Package deadletter is the dead-letter store of docs/design.md §5: messages that can
// never be loaded as they are, each kept with its reason in gzipped JSON
// lines under PREFIX/_deadletter/dt=YYYY-MM-DD/, so that nothing is lost and
// an operator can replay them after a schema fix.
package deadletter

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Record is one dead-lettered message.
type Record struct {
	Body         string            `json:"body"`
	Reason       string            `json:"reason"`
	Detail       string            `json:"detail,omitempty"`
	EventType    string            `json:"event_type,omitempty"`
	EventID      string            `json:"event_id,omitempty"`
	MessageID    string            `json:"message_id,omitempty"`
	Attributes   map[string]string `json:"attributes,omitempty"`
	ReceiveCount int               `json:"receive_count,omitempty"`
	ReceivedAt   time.Time         `json:"received_at"`
	Source       string            `json:"source"` // sqs, backfill or replay
	// BodyBytes is the size of a body not kept (Body is then empty): a
	// backfill document larger than MaxBody, which stays in Mongo under
	// its _id (EventID) in its collection (Attributes["collection"]).
	BodyBytes int `json:"body_bytes,omitempty"`
	// File is the key of the dead-letter file the record was read from:
	// Read sets it; it is not written.
	File string `json:"-"`
}

// MaxBody is the largest body a backfill dead letter keeps: SQS's largest
// message, so that a body cut away is one `deadletter replay` could not
// send anyway. The document stays in Mongo, found by its _id.
const MaxBody = 1 << 20

// recordOverhead is what a record costs beyond its strings, as counted
// against Config.MaxBytes.
const recordOverhead = 512

// Size is what rec counts against Config.MaxBytes: its strings and a fixed
// overhead.
func (rec *Record) Size() int64 {
	n := len(rec.Body) + len(rec.Reason) + len(rec.Detail) + len(rec.EventType) + len(rec.EventID) + len(rec.MessageID) + len(rec.Source) + recordOverhead
	for k, v := range rec.Attributes {
		n += len(k) + len(v) + 64
	}
	return int64(n)
}

// ObjectStore is what the store needs from S3.
type ObjectStore interface {
	Put(ctx context.Context, key string, body io.Reader, size int64) error
	Get(ctx context.Context, key string) ([]byte, error)
	ListKeys(ctx context.Context, prefix string) ([]string, error)
}

// Config of the writer.
type Config struct {
	Prefix     string        // the S3 prefix wharf writes under ("events/")
	MaxRecords int           // flush after this many records; default 500
	MaxAge     time.Duration // flush a record at most this long after it arrives; default 2s
	// MaxBytes caps the records held (Record.Size), buffered or being
	// written: Add blocks while one more would exceed it, so that an S3
	// outage stops the callers instead of growing the buffer. A record
	// larger than MaxBytes on its own is taken when nothing else is held.
	// Default DefaultMaxBytes.
	MaxBytes int64
}

// DefaultMaxBytes is the default Config.MaxBytes (16 MiB).
const DefaultMaxBytes = 16 << 20

// ErrClosed is what Add returns after Close.
var ErrClosed = errors.New("dead-letter writer closed")

// Stats is a snapshot of what the writer holds, and of what it has written
// since it started.
type Stats struct {
	Records int              `json:"records"` // records whose ack has not run
	Bytes   int64            `json:"bytes"`   // their Record.Size, counted against MaxBytes
	Waiting int              `json:"waiting"` // Add calls waiting for room
	Written map[string]int64 `json:"written"` // records written, by reason
}

// Dir is the folder of the dead letters under prefix.
func Dir(prefix string) string { return prefix + "_deadletter/" }

type pending struct {
	rec Record
	ack func(error)
}

// Writer buffers records and writes them in batches; each record's ack runs
// once the file holding it is written. Add blocks only while MaxBytes is
// reached (S3 failing or slow), never for a timer.
type Writer struct {
	cfg   Config
	store ObjectStore
	log   *zap.Logger
	count *prometheus.CounterVec
	held  prometheus.Gauge

	mu      sync.Mutex
	buf     []pending
	records int           // held: buffered and being written
	bytes   int64         // their Record.Size
	room    chan struct{} // closed (and replaced) when bytes go down
	waiting int           // Add calls waiting for room
	written map[string]int64
	running bool // Run was called (before Close)
	closed  bool
	oldest  time.Time
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	entropy io.Reader
}

// NewWriter returns a writer; it starts nothing: Run writes batches as they
// fill or age, Close writes the rest and stops it.
func NewWriter(cfg Config, store ObjectStore, log *zap.Logger, reg prometheus.Registerer) *Writer {
	if cfg.MaxRecords <= 0 {
		cfg.MaxRecords = 500
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 2 * time.Second
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	w := &Writer{
		cfg: cfg, store: store, log: log.With(zap.String("component", "deadletter")),
		count: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wharf_deadletters_total", Help: "Messages written to the dead-letter store, by reason."}, []string{"reason"}),
		held:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "wharf_deadletter_held_bytes", Help: "Bytes of dead letters held, waiting for S3 (capped by the writer's max bytes)."}),
		kick:  make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), room: make(chan struct{}),
		written: map[string]int64{},
		entropy: ulid.Monotonic(rand.Reader, 0),
	}
	if reg != nil {
		reg.MustRegister(w.count, w.held)
	}
	return w
}

// Add queues a record. ack runs exactly once: nil when the record is in S3.
// While the records held would exceed MaxBytes, Add starts a flush and
// waits for room; if ctx ends first (or the writer is closed) it returns
// the error, keeps nothing and never calls ack.
func (w *Writer) Add(ctx context.Context, rec Record, ack func(error)) error {
	size := rec.Size()
	w.mu.Lock()
	for {
		if w.closed {
			w.mu.Unlock()
			return ErrClosed
		}
		if w.bytes == 0 || w.bytes+size <= w.cfg.MaxBytes {
			break
		}
		room := w.room
		w.waiting++
		w.mu.Unlock()
		w.kickFlush()
		var err error
		select {
		case <-room:
		case <-ctx.Done():
			err = ctx.Err()
		}
		w.mu.Lock()
		w.waiting--
		if err != nil {
			w.mu.Unlock()
			return err
		}
	}
	if len(w.buf) == 0 {
		w.oldest = time.Now()
	}
	w.buf = append(w.buf, pending{rec, ack})
	w.records++
	w.bytes += size
	w.held.Set(float64(w.bytes))
	full := len(w.buf) >= w.cfg.MaxRecords
	w.mu.Unlock()
	if full {
		w.kickFlush()
	}
	return nil
}

func (w *Writer) kickFlush() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Stats returns what the writer holds now.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return Stats{Records: w.records, Bytes: w.bytes, Waiting: w.waiting, Written: maps.Clone(w.written)}
}

// release gives back the room of records whose ack is about to run.
func (w *Writer) release(batch []pending) {
	var n int64
	for _, p := range batch {
		n += p.rec.Size()
	}
	w.mu.Lock()
	w.records -= len(batch)
	w.bytes -= n
	w.held.Set(float64(w.bytes))
	close(w.room)
	w.room = make(chan struct{})
	w.mu.Unlock()
}

// Run writes a batch when MaxRecords records wait, when the oldest has
// waited MaxAge, or when Add waits for room, until Close or until ctx ends;
// it returns nil then (Close writes what is left). It returns an error when
// called twice.
func (w *Writer) Run(ctx context.Context) error {
	w.mu.Lock()
	switch {
	case w.closed:
		w.mu.Unlock()
		return nil
	case w.running:
		w.mu.Unlock()
		return errors.New("deadletter: Run called twice")
	}
	w.running = true
	w.mu.Unlock()
	defer close(w.done)
	t := time.NewTicker(w.cfg.MaxAge / 4)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return nil
		case <-ctx.Done():
			return nil
		case <-t.C:
			w.mu.Lock()
			due := len(w.buf) > 0 && time.Since(w.oldest) >= w.cfg.MaxAge
			w.mu.Unlock()
			if due {
				w.Flush(context.Background())
			}
		case <-w.kick:
			w.Flush(context.Background())
		}
	}
}

// Flush writes every buffered record now. On a put error the records go
// back to the buffer to be tried again, unless ctx has ended, in which case
// their acks get the error.
func (w *Writer) Flush(ctx context.Context) error {
	w.mu.Lock()
	batch := w.buf
	w.buf = nil
	w.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	var raw bytes.Buffer
	zw := gzip.NewWriter(&raw)
	enc := json.NewEncoder(zw)
	enc.SetEscapeHTML(false)
	for _, p := range batch {
		if err := enc.Encode(p.rec); err != nil {
			return fmt.Errorf("encode dead letter: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("gzip dead letters: %w", err)
	}
	now := time.Now().UTC()
	w.mu.Lock()
	id := ulid.MustNew(ulid.Timestamp(now), w.entropy)
	w.mu.Unlock()
	key := fmt.Sprintf("%sdt=%s/%s.jsonl.gz", Dir(w.cfg.Prefix), now.Format("2006-01-02"), strings.ToLower(id.String()))
	err := w.store.Put(ctx, key, bytes.NewReader(raw.Bytes()), int64(raw.Len()))
	if err != nil {
		if ctx.Err() != nil {
			w.release(batch)
			for _, p := range batch {
				p.ack(err)
			}
			return err
		}
		w.log.Warn("dead-letter put failed; will retry", zap.Error(err), zap.Int("records", len(batch)))
		w.mu.Lock()
		w.buf = append(batch, w.buf...)
		w.oldest = time.Now()
		w.mu.Unlock()
		return err
	}
	reasons := map[string]int{}
	for _, p := range batch {
		reasons[p.rec.Reason]++
		w.count.WithLabelValues(p.rec.Reason).Inc()
	}
	w.mu.Lock()
	for r, n := range reasons {
		w.written[r] += int64(n)
	}
	w.mu.Unlock()
	names := make([]string, 0, len(reasons))
	for r := range reasons {
		names = append(names, r)
	}
	sort.Strings(names)
	// rows and reason as on every batch line (reason lists the records'
	// reasons); no body, ever.
	w.log.Info("dead letters written", zap.String("file", key), zap.Int("rows", len(batch)), zap.String("reason", strings.Join(names, ",")),
		zap.Int("records", len(batch)), zap.Any("reasons", reasons))
	w.release(batch)
	for _, p := range batch {
		p.ack(nil)
	}
	return nil
}

// Close stops the writer and writes what is buffered, until ctx ends: the
// acks of records not written then get the error.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	first := !w.closed
	w.closed = true
	running := w.running
	close(w.room) // a waiting Add sees closed
	w.room = make(chan struct{})
	w.mu.Unlock()
	if first {
		close(w.stop)
	}
	if running {
		select {
		case <-w.done:
		case <-ctx.Done():
			// Run is still writing a batch: what is left is its to write.
			return fmt.Errorf("deadletter: close: %w", ctx.Err())
		}
	}
	for {
		err := w.Flush(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Read returns every record of the dead-letter files under prefix whose day
// (dt=YYYY-MM-DD) is in [since, until] (zero values: unbounded), each with
// the key of the file it came from (Record.File). A record that cannot be
// read is skipped; use ReadReport to learn which.
func Read(ctx context.Context, store ObjectStore, prefix string, since, until time.Time) ([]Record, error) {
	recs, _, err := ReadReport(ctx, store, prefix, since, until)
	return recs, err
}

// Unreadable is a dead-letter record, or the rest of a file, that could not
// be read.
type Unreadable struct {
	File string
	Line int // 1-based line of the record in the file
	Err  error
}

func (u Unreadable) String() string {
	return fmt.Sprintf("%s line %d: %v", u.File, u.Line, u.Err)
}

// ReadReport is Read, also returning the records it could not read. Records
// are read line by line whatever their size; a line that is not a record is
// reported and the file read on, and a file whose gzip stream breaks is
// reported from that point, with the records before it kept. Only a failure
// to list or to fetch a file is an error.
func ReadReport(ctx context.Context, store ObjectStore, prefix string, since, until time.Time) ([]Record, []Unreadable, error) {
	keys, err := store.ListKeys(ctx, Dir(prefix))
	if err != nil {
		return nil, nil, err
	}
	var recs []Record
	var bad []Unreadable
	for _, key := range keys {
		if !strings.HasSuffix(key, ".jsonl.gz") {
			continue
		}
		day := dayOf(key)
		if !since.IsZero() && day < since.UTC().Format("2006-01-02") || !until.IsZero() && day > until.UTC().Format("2006-01-02") {
			continue
		}
		b, err := store.Get(ctx, key)
		if err != nil {
			return nil, nil, err
		}
		broken := readFile(bytes.NewReader(b), func(line int, rec []byte) {
			var r Record
			if err := json.Unmarshal(rec, &r); err != nil {
				bad = append(bad, Unreadable{File: key, Line: line, Err: err})
				return
			}
			r.File = key
			recs = append(recs, r)
		})
		if broken != nil {
			bad = append(bad, Unreadable{File: key, Line: broken.line, Err: broken.err})
		}
	}
	return recs, bad, nil
}

type lineError struct {
	line int
	err  error
}

// readFile calls fn with each non-empty line of a gzipped JSON-lines file,
// of any length. It stops at the first gzip or read error, returning it
// with the line it broke on.
func readFile(r io.Reader, fn func(line int, rec []byte)) *lineError {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return &lineError{1, fmt.Errorf("gzip: %w", err)}
	}
	br := bufio.NewReaderSize(zr, 64<<10)
	var long []byte
	for line := 1; ; {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, chunk...)
			continue
		}
		rec := chunk
		if long != nil {
			rec = append(long, chunk...)
		}
		if len(bytes.TrimSpace(rec)) > 0 && (err == nil || errors.Is(err, io.EOF)) {
			fn(line, rec)
		}
		long = nil
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return &lineError{line, err}
		}
		line++
	}
}

func dayOf(key string) string {
	i := strings.Index(key, "dt=")
	if i < 0 || len(key) < i+13 {
		return ""
	}
	return key[i+3 : i+13]
}

// Summary counts records by day and reason, keeping a few samples of each.
type Summary struct {
	Day     string   `json:"day"`
	Reason  string   `json:"reason"`
	Count   int      `json:"count"`
	Samples []Record `json:"samples"`
}

// Summarize groups records by day and reason, with up to samples examples.
func Summarize(recs []Record, samples int) []Summary {
	idx := map[[2]string]*Summary{}
	for _, r := range recs {
		k := [2]string{r.ReceivedAt.UTC().Format("2006-01-02"), r.Reason}
		s := idx[k]
		if s == nil {
			s = &Summary{Day: k[0], Reason: k[1]}
			idx[k] = s
		}
		s.Count++
		if len(s.Samples) < samples {
			s.Samples = append(s.Samples, r)
		}
	}
	out := make([]Summary, 0, len(idx))
	for _, s := range idx {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Day != out[j].Day {
			return out[i].Day < out[j].Day
		}
		return out[i].Reason < out[j].Reason
	})
	return out
}

// WriteSummaries writes sums as `wharf deadletter list` prints them: a line
// per day and reason with the detail of its first sample, then the total;
// with asJSON, one JSON line per summary.
func WriteSummaries(w io.Writer, sums []Summary, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, s := range sums {
			enc.Encode(s)
		}
		return
	}
	total := 0
	fmt.Fprintf(w, "%-10s  %-20s  %7s  sample\n", "day", "reason", "count")
	for _, s := range sums {
		sample := ""
		if len(s.Samples) > 0 {
			if sample = s.Samples[0].Detail; len(sample) > 90 {
				sample = sample[:90] + "…"
			}
		}
		fmt.Fprintf(w, "%-10s  %-20s  %7d  %s\n", s.Day, s.Reason, s.Count, sample)
		total += s.Count
	}
	fmt.Fprintf(w, "%d dead letters\n", total)
}
