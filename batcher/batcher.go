// Package batcher buffers warehouse rows per table and writes them to S3 as
// Parquet files, calling each message's ack only once every row it produced
// is in an object in S3 (docs/design.md §2, guarantees 1 and 4).
//
// A buffer is flushed when it holds MaxRows rows ("rows"), when the bytes
// held would exceed MaxBytes (the largest buffers first, "bytes"), when the
// messages held reach MaxInFlight (every buffer, "in_flight"), when its
// oldest row is MaxAge old ("age"), or on Flush ("shutdown", "manual").
// Flushes run on a pool of FlushConcurrency workers, so Add never waits for a
// timer or an upload; it waits only while a cap is reached.
package batcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/wharfdata/wharf/internal/pq"
	"github.com/wharfdata/wharf/schema"
)

// ObjectStore is all the batcher needs from S3. (*s3store.Store satisfies it.)
type ObjectStore interface {
	Put(ctx context.Context, key string, body io.Reader, size int64) error
}

// ErrClosed is the error acks get for rows the batcher gave up on at Close,
// and the error Add and Flush return after Close. A caller releases the
// messages so that they are redelivered.
var ErrClosed = errors.New("batcher closed")

// Reason says why a buffer was flushed. It is logged and is the reason
// label of wharf_flushes_total.
type Reason string

// The flush reasons.
const (
	ReasonRows     Reason = "rows"
	ReasonBytes    Reason = "bytes"
	ReasonAge      Reason = "age"
	ReasonInFlight Reason = "in_flight"
	ReasonShutdown Reason = "shutdown"
	ReasonManual   Reason = "manual"
)

// Stats is a snapshot of what the batcher holds, and of what it has written
// since it started.
type Stats struct {
	Rows     int64 `json:"rows"`     // rows in buffers and in flushes not yet put
	Bytes    int64 `json:"bytes"`    // bytes counted against MaxBytes: buffers and flushes not yet put
	Messages int   `json:"messages"` // messages whose ack has not been called (counted against MaxInFlight)
	Buffers  int   `json:"buffers"`  // tables with rows waiting in a buffer
	Flushing int   `json:"flushing"` // flushes queued or running

	FilesWritten int64 `json:"files_written"` // Parquet files put to S3
	RowsWritten  int64 `json:"rows_written"`  // rows in those files
	BytesWritten int64 `json:"bytes_written"` // bytes of those files
}

// message is one Add call: its ack runs when parts reaches zero.
type message struct {
	ack   func(error)
	parts int   // buffers and flushes holding some of its rows
	err   error // the first error among its parts
}

// buffer holds one table's rows waiting for a flush.
type buffer struct {
	table  *schema.Table
	rows   *schema.TableRows // nil when empty
	msgs   []*message        // each message once, in arrival order
	bytes  int64
	oldest time.Time // when its first row arrived
}

// job is one flush: a detached buffer on its way to one S3 object.
type job struct {
	table  *schema.Table
	rows   *schema.TableRows
	nrows  int
	msgs   []*message
	bytes  int64
	reason Reason
	done   chan struct{} // closed when the job has ended
	err    error         // set before done is closed
}

// options are the batcher's internals that tests replace.
type options struct {
	clock      clock
	backoff    time.Duration // first retry delay
	maxBackoff time.Duration
}

// Batcher buffers rows per table and writes them to S3 as Parquet files.
// Its methods are safe for concurrent use. Every ack passed to Add is called
// exactly once, at the latest when Run returns.
type Batcher struct {
	cfg     Config
	store   ObjectStore
	log     *zap.Logger
	m       *metrics
	clock   clock
	backoff time.Duration
	maxBack time.Duration
	ids     *idSource
	writers writerPool
	hb      heartbeat

	ctx    context.Context // ends at Close; aborts put retries
	cancel context.CancelFunc

	mu            sync.Mutex
	work          *sync.Cond // on mu: queue grew or closed
	running       bool       // Run was called (before Close)
	closed        bool
	bufs          map[*schema.Table]*buffer
	queue         []*job
	active        map[*job]struct{} // queued or running
	bufBytes      int64
	bufRows       int64
	flushingBytes int64
	flushingRows  int64
	flushing      map[*schema.Table]*tableHeld // per table, rows and bytes in flushes not yet put
	held          int
	room          chan struct{} // closed (and replaced) whenever room frees
	written       Stats         // FilesWritten, RowsWritten, BytesWritten

	stop    chan struct{} // closed by Close: stops the age loop
	runEnd  chan struct{} // closed when Run returns
	workers sync.WaitGroup
}

// New returns a Batcher; it starts nothing: Run writes the files, Close
// stops it. reg may be nil (metrics are then kept but not exported).
func New(cfg Config, store ObjectStore, log *zap.Logger, reg prometheus.Registerer) (*Batcher, error) {
	return newBatcher(cfg, store, log, reg, options{clock: realClock{}, backoff: 200 * time.Millisecond, maxBackoff: 15 * time.Second})
}

func newBatcher(cfg Config, store ObjectStore, log *zap.Logger, reg prometheus.Registerer, o options) (*Batcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("batcher: no object store")
	}
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Batcher{
		cfg: cfg, store: store, log: log.With(zap.String("component", "batcher")), m: m,
		clock: o.clock, backoff: o.backoff, maxBack: o.maxBackoff, ids: newIDSource(),
		writers: writerPool{free: map[*schema.Table][]*pq.Writer{}},
		ctx:     ctx, cancel: cancel,
		bufs: map[*schema.Table]*buffer{}, flushing: map[*schema.Table]*tableHeld{}, active: map[*job]struct{}{}, room: make(chan struct{}),
		stop: make(chan struct{}), runEnd: make(chan struct{}),
	}
	b.work = sync.NewCond(&b.mu)
	b.hb.pass(b.clock.Now())
	return b, nil
}

// Run runs the flush workers and the age flushes until Close, or until ctx
// ends, which closes the batcher as Close does. It returns nil then: every
// ack passed to Add has been called. It returns at once when the batcher was
// closed before it ran, and an error when called twice. Rows may be added
// before Run; only Run writes them.
func (b *Batcher) Run(ctx context.Context) error {
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		return nil
	case b.running:
		b.mu.Unlock()
		return errors.New("batcher: Run called twice")
	}
	b.running = true
	b.mu.Unlock()
	defer close(b.runEnd)
	defer context.AfterFunc(ctx, b.shut)()

	b.workers.Add(b.cfg.FlushConcurrency)
	for range b.cfg.FlushConcurrency {
		go b.worker()
	}
	tick, stopTick := b.clock.Ticker(ageTick(b.cfg.MaxAge))
	b.ageLoop(tick, stopTick)
	b.workers.Wait()
	return nil
}

// Add buffers rows, which may belong to several tables (a parent row and its
// child rows), and calls ack exactly once: with nil once every one of the
// rows is in an S3 object, or with the first error that stopped some of them
// (ErrClosed when Close gave up on them). The rows of one Add in one table
// always go to one file.
//
// Add never waits for a flush timer or an upload. It blocks only while the
// byte cap or the in-flight cap is reached (so the caller stops polling until
// a flush frees room); if ctx ends first it returns ctx.Err(). Whenever Add
// returns an error, ack is never called and the batcher keeps none of the
// rows. With no rows, ack(nil) runs at once.
//
// Add copies the rows into its buffers: the caller may reset and reuse rows
// once Add returns. ack runs on a flush worker: it should be quick and must
// not call Add.
func (b *Batcher) Add(ctx context.Context, rows *schema.Rows, ack func(error)) error {
	if rows == nil || rows.Len() == 0 {
		ack(nil)
		return nil
	}
	size := int64(rows.Size())

	b.mu.Lock()
	for {
		if b.closed {
			b.mu.Unlock()
			return ErrClosed
		}
		held := b.bufBytes + b.flushingBytes
		bytesOK := held == 0 || held+size <= b.cfg.MaxBytes
		msgsOK := b.held < b.cfg.MaxInFlight
		if bytesOK && msgsOK {
			break
		}
		if !msgsOK {
			b.flushAllLocked(ReasonInFlight)
		}
		if !bytesOK {
			b.flushForBytesLocked(size)
		}
		room := b.room
		b.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
		b.mu.Lock()
	}

	m := &message{ack: ack}
	now := b.clock.Now()
	var touched []*buffer // usually one or two tables
	for _, tr := range rows.Tables() {
		if tr.Len == 0 {
			continue
		}
		buf := b.bufs[tr.Table]
		if buf == nil {
			buf = &buffer{table: tr.Table}
			b.bufs[tr.Table] = buf
		}
		if buf.rows == nil {
			buf.rows = schema.NewTableRows(tr.Table)
			buf.oldest = now
		}
		buf.msgs = append(buf.msgs, m)
		m.parts++
		touched = append(touched, buf)
		buf.rows.Append(tr)
		buf.bytes += int64(tr.Size())
	}
	b.held++
	b.bufBytes += size
	b.bufRows += int64(rows.Len())
	for _, t := range touched {
		b.tableGaugesLocked(t.table)
	}

	for _, t := range touched {
		if t.rows.Len >= b.cfg.MaxRows {
			b.flushLocked(t, ReasonRows)
		}
	}
	if b.held >= b.cfg.MaxInFlight {
		b.flushAllLocked(ReasonInFlight)
	} else if b.bufBytes+b.flushingBytes > b.cfg.MaxBytes {
		// Only a message bigger than the cap on its own gets here.
		b.flushForBytesLocked(0)
	}
	b.gaugesLocked()
	b.mu.Unlock()
	return nil
}

// Flush flushes every buffer now, with reason (ReasonShutdown or
// ReasonManual), and waits until the flushes then queued or running have
// ended, or ctx ends. It returns ctx.Err() if ctx ended first, or the first
// error of those flushes (whose acks got it too).
func (b *Batcher) Flush(ctx context.Context, reason Reason) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	b.flushAllLocked(reason)
	jobs := make([]*job, 0, len(b.active))
	for j := range b.active {
		jobs = append(jobs, j)
	}
	b.gaugesLocked()
	b.mu.Unlock()

	var first error
	for _, j := range jobs {
		select {
		case <-j.done:
			if j.err != nil && first == nil {
				first = fmt.Errorf("flush %s: %w", j.table.Name, j.err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return first
}

// Close stops the batcher. Rows still in buffers are dropped and flushes
// still retrying are abandoned; their acks get ErrClosed (so the caller
// releases those messages). Call Flush first to write what can be written.
// Close then waits until Run has returned, or until ctx ends (it returns
// ctx's error then). Once Run has returned, every ack passed to Add has been
// called.
func (b *Batcher) Close(ctx context.Context) error {
	b.shut()
	b.mu.Lock()
	running := b.running
	b.mu.Unlock()
	if !running {
		// No worker will take the flushes queued before Run: end them here.
		b.mu.Lock()
		queued := b.queue
		b.queue = nil
		b.mu.Unlock()
		for _, j := range queued {
			b.finish(j, ErrClosed, 0)
		}
		return nil
	}
	select {
	case <-b.runEnd:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("batcher: close: %w", ctx.Err())
	}
}

// shut closes the batcher: it drops the buffers, acking their messages with
// ErrClosed, aborts the puts, and stops the workers and the age loop.
func (b *Batcher) shut() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	var acks []*message
	for t, buf := range b.bufs {
		if buf.len() > 0 {
			b.log.Warn("dropping unflushed buffer at close", zap.String("table", t.Name),
				zap.Int("rows", buf.len()), zap.Int("messages", len(buf.msgs)))
		}
		acks = b.settleLocked(buf.msgs, ErrClosed, acks)
		b.bufBytes -= buf.bytes
		b.bufRows -= int64(buf.len())
		buf.rows, buf.bytes = nil, 0
		b.tableGaugesLocked(t)
	}
	clear(b.bufs)
	b.freeRoomLocked()
	b.gaugesLocked()
	b.cancel()
	b.work.Broadcast()
	b.mu.Unlock()
	callAcks(acks)
	close(b.stop)
}

// Stats returns what the batcher holds now.
func (b *Batcher) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.written
	s.Rows = b.bufRows + b.flushingRows
	s.Bytes = b.bufBytes + b.flushingBytes
	s.Messages = b.held
	s.Flushing = len(b.active)
	for _, buf := range b.bufs {
		if buf.len() > 0 {
			s.Buffers++
		}
	}
	return s
}

// len returns the rows the buffer holds.
func (buf *buffer) len() int {
	if buf.rows == nil {
		return 0
	}
	return buf.rows.Len
}

// flushLocked detaches buf's rows into a job and queues it.
func (b *Batcher) flushLocked(buf *buffer, reason Reason) {
	n := buf.len()
	if n == 0 {
		return
	}
	j := &job{table: buf.table, rows: buf.rows, nrows: n, msgs: buf.msgs, bytes: buf.bytes,
		reason: reason, done: make(chan struct{})}
	b.bufBytes -= buf.bytes
	b.bufRows -= int64(n)
	b.flushingBytes += buf.bytes
	b.flushingRows += int64(n)
	f := b.flushing[buf.table]
	if f == nil {
		f = &tableHeld{}
		b.flushing[buf.table] = f
	}
	f.rows += int64(n)
	f.bytes += buf.bytes
	// No preallocation: capacity kept for every table would be memory that
	// MaxBytes does not count.
	buf.rows = nil
	buf.msgs = nil
	buf.bytes = 0
	b.queue = append(b.queue, j)
	b.active[j] = struct{}{}
	b.m.flushes.WithLabelValues(j.table.Name, string(reason)).Inc()
	b.work.Signal()
}

func (b *Batcher) flushAllLocked(reason Reason) {
	for _, buf := range b.bufs {
		b.flushLocked(buf, reason)
	}
}

// flushForBytesLocked flushes the largest buffers until what stays buffered,
// plus incoming bytes, fits MaxBytes once the flushes finish.
func (b *Batcher) flushForBytesLocked(incoming int64) {
	if b.bufBytes+incoming <= b.cfg.MaxBytes {
		return
	}
	bufs := make([]*buffer, 0, len(b.bufs))
	for _, buf := range b.bufs {
		if buf.bytes > 0 {
			bufs = append(bufs, buf)
		}
	}
	slices.SortFunc(bufs, func(x, y *buffer) int {
		if x.bytes != y.bytes {
			return int(min(max(y.bytes-x.bytes, -1), 1))
		}
		return strings.Compare(x.table.Name, y.table.Name)
	})
	for _, buf := range bufs {
		if b.bufBytes+incoming <= b.cfg.MaxBytes {
			return
		}
		b.flushLocked(buf, ReasonBytes)
	}
}

// settleLocked records that one part of each message has ended with err and
// appends to acks the messages whose every part has ended.
func (b *Batcher) settleLocked(msgs []*message, err error, acks []*message) []*message {
	for _, m := range msgs {
		if err != nil && m.err == nil {
			m.err = err
		}
		m.parts--
		if m.parts == 0 {
			b.held--
			acks = append(acks, m)
		}
	}
	return acks
}

func callAcks(acks []*message) {
	for _, m := range acks {
		m.ack(m.err)
	}
}

// freeRoomLocked wakes every Add waiting for room.
func (b *Batcher) freeRoomLocked() {
	close(b.room)
	b.room = make(chan struct{})
}

func (b *Batcher) gaugesLocked() {
	b.m.messagesHeld.Set(float64(b.held))
}

// tableHeld is what one table holds in memory.
type tableHeld struct{ rows, bytes int64 }

// tableGaugesLocked sets t's buffered gauges: the rows and bytes of its
// buffer and of its flushes not yet put.
func (b *Batcher) tableGaugesLocked(t *schema.Table) {
	var h tableHeld
	if buf := b.bufs[t]; buf != nil {
		h.rows, h.bytes = int64(buf.len()), buf.bytes
	}
	if f := b.flushing[t]; f != nil {
		h.rows += f.rows
		h.bytes += f.bytes
	}
	b.m.rowsBuffered.WithLabelValues(t.Name).Set(float64(h.rows))
	b.m.bytesBuffered.WithLabelValues(t.Name).Set(float64(h.bytes))
}

// ageLoop flushes buffers whose oldest row is MaxAge old. It ends when stop
// is closed.
func (b *Batcher) ageLoop(tick <-chan time.Time, stopTick func()) {
	defer stopTick()
	for {
		select {
		case <-b.stop:
			return
		case <-tick:
			now := b.clock.Now()
			b.mu.Lock()
			for _, buf := range b.bufs {
				if buf.len() > 0 && now.Sub(buf.oldest) >= b.cfg.MaxAge {
					b.flushLocked(buf, ReasonAge)
				}
			}
			b.gaugesLocked()
			b.mu.Unlock()
			b.hb.pass(now)
		}
	}
}
