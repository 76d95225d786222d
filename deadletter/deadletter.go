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
}

// Dir is the folder of the dead letters under prefix.
func Dir(prefix string) string { return prefix + "_deadletter/" }

type pending struct {
	rec Record
	ack func(error)
}

// Writer buffers records and writes them in batches. Add never blocks on S3;
// each record's ack runs once the file holding it is written.
type Writer struct {
	cfg   Config
	store ObjectStore
	log   *zap.Logger
	count *prometheus.CounterVec

	mu      sync.Mutex
	buf     []pending
	oldest  time.Time
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	entropy io.Reader
}

// NewWriter starts a writer; Close stops it.
func NewWriter(cfg Config, store ObjectStore, log *zap.Logger, reg prometheus.Registerer) *Writer {
	if cfg.MaxRecords <= 0 {
		cfg.MaxRecords = 500
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 2 * time.Second
	}
	w := &Writer{
		cfg: cfg, store: store, log: log.With(zap.String("component", "deadletter")),
		count: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wharf_deadletters_total", Help: "Messages written to the dead-letter store, by reason."}, []string{"reason"}),
		kick:  make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		entropy: ulid.Monotonic(rand.Reader, 0),
	}
	if reg != nil {
		reg.MustRegister(w.count)
	}
	go w.loop()
	return w
}

// Add queues a record. ack runs exactly once: nil when the record is in S3.
func (w *Writer) Add(rec Record, ack func(error)) {
	w.mu.Lock()
	if len(w.buf) == 0 {
		w.oldest = time.Now()
	}
	w.buf = append(w.buf, pending{rec, ack})
	full := len(w.buf) >= w.cfg.MaxRecords
	w.mu.Unlock()
	if full {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

func (w *Writer) loop() {
	defer close(w.done)
	t := time.NewTicker(w.cfg.MaxAge / 4)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
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
	names := make([]string, 0, len(reasons))
	for r := range reasons {
		names = append(names, r)
	}
	sort.Strings(names)
	// rows and reason as on every batch line (reason lists the records'
	// reasons); no body, ever.
	w.log.Info("dead letters written", zap.String("file", key), zap.Int("rows", len(batch)), zap.String("reason", strings.Join(names, ",")),
		zap.Int("records", len(batch)), zap.Any("reasons", reasons))
	for _, p := range batch {
		p.ack(nil)
	}
	return nil
}

// Close flushes what is buffered (until ctx ends) and stops the writer.
func (w *Writer) Close(ctx context.Context) error {
	close(w.stop)
	<-w.done
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
// (dt=YYYY-MM-DD) is in [since, until] (zero values: unbounded), with the key
// of the file each came from. A record that cannot be read is skipped; use
// ReadReport to learn which.
func Read(ctx context.Context, store ObjectStore, prefix string, since, until time.Time) ([]Record, []string, error) {
	recs, from, _, err := ReadReport(ctx, store, prefix, since, until)
	return recs, from, err
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
func ReadReport(ctx context.Context, store ObjectStore, prefix string, since, until time.Time) ([]Record, []string, []Unreadable, error) {
	keys, err := store.ListKeys(ctx, Dir(prefix))
	if err != nil {
		return nil, nil, nil, err
	}
	var recs []Record
	var from []string
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
			return nil, nil, nil, err
		}
		broken := readFile(bytes.NewReader(b), func(line int, rec []byte) {
			var r Record
			if err := json.Unmarshal(rec, &r); err != nil {
				bad = append(bad, Unreadable{File: key, Line: line, Err: err})
				return
			}
			recs = append(recs, r)
			from = append(from, key)
		})
		if broken != nil {
			bad = append(bad, Unreadable{File: key, Line: broken.line, Err: broken.err})
		}
	}
	return recs, from, bad, nil
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
