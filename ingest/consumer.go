// Package ingest is wharf's SQS consumer: it polls the queue, writes each raw
// event to Mongo, flattens it, hands the rows to a Sink with an ack, and
// deletes the message only once that ack says the rows are durable in S3 (or
// the message is safe in the dead-letter store).
package ingest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.uber.org/zap"

	"github.com/wharfdata/wharf/deadletter"
	"github.com/wharfdata/wharf/internal/fault"
	"github.com/wharfdata/wharf/schema"
)

// Sink takes the rows of one message. ack runs exactly once, with nil when
// the rows are durable in S3, or the error that stopped them. Add may block
// while the sink is at its memory cap; it returns ctx.Err() (without calling
// ack) if ctx ends first.
type Sink interface {
	Add(ctx context.Context, rows *schema.Rows, ack func(error)) error
}

// DeadLetters keeps messages that can never be loaded. ack runs once the
// record is durable. Add may block while the store is at its memory cap;
// it returns ctx.Err() (without calling ack) if ctx ends first.
type DeadLetters interface {
	Add(ctx context.Context, rec deadletter.Record, ack func(error)) error
}

// Config of the consumer.
type Config struct {
	QueueURL    string
	Pollers     int           // concurrent long polls; default 16 (docs/operations.md, "Sizing sqs.pollers")
	MaxInFlight int           // messages held at once; default 100000 (SQS allows about 120,000 in flight per queue)
	WaitTime    time.Duration // long-poll wait; default 20s
	// Visibility is the queue's visibility timeout; 0 reads it from the queue.
	Visibility time.Duration
	// Fault, when set, is called at the crash-test points fault.AfterReceive
	// (a batch received, nothing written) and fault.AfterMongo (its raw
	// documents written, no row given to the sink); see internal/fault. nil
	// does nothing.
	Fault func(fault.Point)

	Replay *ReplayAuth // honours wharf.* attributes only when signed by replay (replay.go); nil honours none
}

func (c Config) fault(point fault.Point) {
	if c.Fault != nil {
		c.Fault(point)
	}
}

// DefaultConfig returns the defaults of docs/design.md §8.
func DefaultConfig() Config {
	return Config{Pollers: 16, MaxInFlight: 100000, WaitTime: 20 * time.Second}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.QueueURL == "":
		return errors.New("sqs.queue_url is required")
	case c.Pollers < 1 || c.Pollers > 256:
		return fmt.Errorf("sqs.pollers must be 1..256, not %d", c.Pollers)
	case c.MaxInFlight < 10 || c.MaxInFlight > 120000:
		return fmt.Errorf("sqs.max_in_flight must be 10..120000 (SQS allows about 120,000 in flight), not %d", c.MaxInFlight)
	case c.WaitTime < 0 || c.WaitTime > 20*time.Second:
		return fmt.Errorf("sqs.wait_time must be 0..20s, not %s", c.WaitTime)
	}
	return nil
}

type metrics struct {
	received, deleted, extensions   *counter               // read back by Stats
	truncated                       *prometheus.CounterVec // table
	overLimit                       prometheus.Counter
	calls, failedEntries, rawErrors *prometheus.CounterVec
	rawRetries                      *prometheus.CounterVec
	held                            prometheus.Gauge
	oldestHeld                      *gauge // read back by Stats
	rawDenied                       prometheus.Gauge
}

// counter is a Prometheus counter that Stats reads back, by value and not
// through the registry.
type counter struct {
	prometheus.Counter
	n atomic.Int64
}

func newCounter(opts prometheus.CounterOpts) *counter {
	return &counter{Counter: prometheus.NewCounter(opts)}
}

func (c *counter) Inc()          { c.Counter.Inc(); c.n.Add(1) }
func (c *counter) Add(v float64) { c.Counter.Add(v); c.n.Add(int64(v)) }
func (c *counter) value() int64  { return c.n.Load() }

// gauge is a Prometheus gauge that Stats reads back.
type gauge struct {
	prometheus.Gauge
	bits atomic.Uint64
}

func (g *gauge) Set(v float64)  { g.Gauge.Set(v); g.bits.Store(math.Float64bits(v)) }
func (g *gauge) value() float64 { return math.Float64frombits(g.bits.Load()) }

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		received:      newCounter(prometheus.CounterOpts{Name: "wharf_received_messages_total", Help: "SQS messages received."}),
		deleted:       newCounter(prometheus.CounterOpts{Name: "wharf_deleted_messages_total", Help: "SQS messages deleted after their rows were durable."}),
		extensions:    newCounter(prometheus.CounterOpts{Name: "wharf_visibility_extensions_total", Help: "Visibility extensions of held messages."}),
		truncated:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wharf_truncations_total", Help: "Strings cut to their column's byte length, by table."}, []string{"table"}),
		overLimit:     prometheus.NewCounter(prometheus.CounterOpts{Name: "wharf_sqs_over_limit_total", Help: "Receives SQS refused with OverLimit (the queue's in-flight limit reached)."}),
		calls:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wharf_sqs_calls_total", Help: "SQS API calls by kind (what SQS bills)."}, []string{"call"}),
		failedEntries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wharf_sqs_failed_entries_total", Help: "Failed entries of batch calls."}, []string{"call"}),
		rawErrors:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wharf_raw_write_errors_total", Help: "Raw documents not written to Mongo (left for redelivery)."}, []string{"collection"}),
		rawRetries:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wharf_raw_write_retries_total", Help: "Raw writes retried because Mongo could not be reached (the messages stay held)."}, []string{"collection"}),
		held:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "wharf_sqs_held_messages", Help: "SQS messages received and not yet deleted."}),
		oldestHeld:    &gauge{Gauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "wharf_oldest_held_message_age_seconds", Help: "Age of the oldest held message."})},
		rawDenied:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "wharf_raw_store_denied", Help: "1 while Mongo refuses wharf's credentials or permissions: polling stops and held messages are kept, extended."}),
	}
	if reg != nil {
		reg.MustRegister(m.received, m.deleted, m.extensions, m.truncated, m.overLimit, m.calls, m.failedEntries, m.rawErrors, m.rawRetries, m.held, m.oldestHeld)
		reg.MustRegister(m.rawDenied)
	}
	return m
}

// Consumer polls one queue.
type Consumer struct {
	cfg     Config
	api     SQSAPI
	schema  *schema.Schema
	env     schema.Envelope
	raw     RawStore // nil: raw writes disabled
	sink    Sink
	dl      DeadLetters
	log     *zap.Logger
	m       *metrics
	tracker *tracker
	rows    rowsPool // the Rows messages are flattened into, reused after Add

	stopDeletes, stopExtend chan struct{}
	deleter, extender       sync.WaitGroup
	started                 atomic.Bool // Run was called
	background              atomic.Bool // Run started the deleter and the extender
	closed                  sync.Once
	closeErr                error
	stoppedAt               atomic.Int64 // when Run returned, in Unix nanoseconds

	// denied is nil while raw writes may go on, and a channel closed when
	// they go through again while Mongo refuses wharf's credentials or
	// permissions (ErrDenied): pollers wait on it before they receive.
	deniedMu sync.Mutex
	denied   chan struct{}

	clock clock // tests replace it
	// beats holds, per poller's receiver (the first Pollers) and per
	// poller's handler (the rest), when the step it is in began (Unix
	// nanoseconds), or 0 while it waits by design (see Heartbeat).
	beats []atomic.Int64
	// writes holds the heartbeats of raw writes under way in parallel (one
	// per collection of a batch), which stand for their handler's.
	writesMu sync.Mutex
	writes   map[*atomic.Int64]struct{}
	// overLimit is set while SQS refuses receives with OverLimit: the
	// episode is logged once when it starts and once when it ends.
	overLimit      atomic.Bool
	overLimitCount atomic.Int64  // refusals in the current episode
	overLimitWait  time.Duration // the first wait after OverLimit; tests shorten it
}

// New returns a consumer; it makes no call and starts nothing (Run does).
// raw may be nil to disable raw writes. When cfg.Visibility is 0, Run reads
// the queue's visibility timeout before it polls.
func New(cfg Config, api SQSAPI, sch *schema.Schema, env schema.Envelope, raw RawStore, sink Sink, dl DeadLetters, log *zap.Logger, reg prometheus.Registerer) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log = log.With(zap.String("component", "ingest"))
	m := newMetrics(reg)
	c := &Consumer{cfg: cfg, api: api, schema: sch, env: env, raw: raw, sink: sink, dl: dl, log: log, m: m,
		tracker:     newTracker(api, cfg.QueueURL, cfg.Visibility, cfg.MaxInFlight, log, m, realClock{}),
		stopDeletes: make(chan struct{}), stopExtend: make(chan struct{}),
		clock: realClock{}, beats: make([]atomic.Int64, 2*cfg.Pollers), overLimitWait: overLimitBackoff}
	c.tracker.deleters = deleteWorkers(cfg.Pollers)
	return c, nil
}

// Stats is a snapshot of the consumer: what it holds now, and its counts
// since it started.
type Stats struct {
	Received   int64         `json:"received"`    // messages received
	Deleted    int64         `json:"deleted"`     // messages deleted once their rows were durable
	Extensions int64         `json:"extensions"`  // visibility extensions of held messages
	Held       int           `json:"held"`        // messages received and not yet deleted
	OldestHeld time.Duration `json:"oldest_held"` // age of the oldest held message, as of the last extension pass
}

// Stats returns the consumer's snapshot.
func (c *Consumer) Stats() Stats {
	return Stats{
		Received:   c.m.received.value(),
		Deleted:    c.m.deleted.value(),
		Extensions: c.m.extensions.value(),
		Held:       c.Held(),
		OldestHeld: time.Duration(c.m.oldestHeld.value() * float64(time.Second)),
	}
}

// Held returns how many messages the consumer holds.
func (c *Consumer) Held() int { return c.tracker.count() }

// Heartbeat returns when the oldest step a poller is in began — a receive,
// or the handling of a received batch (decoding, raw writes, each attempt
// of a raw write Mongo could not take) — and false when no poller is in
// one: polling has not started or has ended, or every poller waits by
// design, for room under sqs.max_in_flight or in the sink (the batcher's
// own heartbeat answers for a sink that never makes room) or out a backoff.
// A receive SQS answers ends within the poll wait time, so a step much
// older than that is a poll loop that has stopped.
func (c *Consumer) Heartbeat() (time.Time, bool) {
	var oldest int64
	older := func(b int64) {
		if b != 0 && (oldest == 0 || b < oldest) {
			oldest = b
		}
	}
	for i := range c.beats {
		older(c.beats[i].Load())
	}
	c.writesMu.Lock()
	for b := range c.writes {
		older(b.Load())
	}
	c.writesMu.Unlock()
	if oldest == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, oldest), true
}

// step marks the start of a poller's step (nil: no heartbeat to keep).
func (c *Consumer) step(beat *atomic.Int64) {
	if beat != nil {
		beat.Store(c.clock.Now().UnixNano())
	}
}

// idle marks a poller as waiting by design.
func idle(beat *atomic.Int64) {
	if beat != nil {
		beat.Store(0)
	}
}

// Run reads the queue's visibility timeout (unless Config.Visibility gives
// it), starts the deletes and visibility extensions, which go on until
// Close, and polls until ctx ends; it then returns once every poller has
// handed what it received to the sink or the dead-letter store. It returns
// nil when ctx ended it, and otherwise the error that stopped it: the
// visibility timeout cannot be read, or the sink or the dead-letter store
// refuses messages for good (closed). Run may be called once.
//
// When ctx ends no new poll starts, but a long poll under way is given up to
// shutdownGrace to return: SQS may answer a poll whose client has gone
// away, and the messages it hands out then stay invisible until their
// visibility timeout (delayed, never lost). A queue with messages answers
// at once, so the grace costs time only on an idle queue.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("ingest: Run called twice")
	}
	if c.cfg.Visibility == 0 {
		v, err := QueueVisibility(ctx, c.api, c.cfg.QueueURL)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		c.cfg.Visibility, c.tracker.visibility = v, v
	}
	c.log.Info("consumer ready", zap.Duration("visibility", c.cfg.Visibility), zap.Int("pollers", c.cfg.Pollers), zap.Int("max_in_flight", c.cfg.MaxInFlight))
	c.background.Store(true)
	c.deleter.Add(1)
	c.extender.Add(1)
	go func() { defer c.deleter.Done(); c.tracker.runDeleter(c.stopDeletes) }()
	go func() { defer c.extender.Done(); c.tracker.runExtender(c.stopExtend) }()

	recvCtx, cancelRecv := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRecv()
	go func() {
		select {
		case <-ctx.Done():
			c.tracker.stopping.Store(true)
		case <-recvCtx.Done():
			return
		}
		t := time.NewTimer(min(c.cfg.WaitTime, shutdownGrace))
		defer t.Stop()
		select {
		case <-t.C:
			cancelRecv()
		case <-recvCtx.Done():
		}
	}()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := 0; i < c.cfg.Pollers; i++ {
		// Each poller is a pipeline of two: while its handler writes one
		// received batch (raw documents, rows to the sink), its receiver
		// has the next ReceiveMessage in flight, so a poller's cycle is the
		// longer of the two steps, not their sum. The receiver hands over
		// one batch at a time: a poller holds at most two received batches,
		// each within sqs.max_in_flight.
		batches := make(chan []types.Message)
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer close(batches)
			c.poll(ctx, recvCtx, &c.beats[i], batches)
		}()
		go func() {
			defer wg.Done()
			if err := c.handleAll(recvCtx, batches, &c.beats[c.cfg.Pollers+i]); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				cancelRecv() // the other pollers stop too
			}
		}()
	}
	wg.Wait()
	c.tracker.stopping.Store(true)
	c.stoppedAt.Store(time.Now().UnixNano())
	return errors.Join(errs...)
}

// shutdownGrace bounds how long a long poll under way may take after stop.
const shutdownGrace = 5 * time.Second

// Close ends the consumer after Run has returned and the sink has flushed:
// it deletes every acked message, releases (visibility 0) every message still
// held, and stops the background work. Every SQS call it makes, and every
// one the background work still has in flight, ends by ctx's deadline:
// deletes get the budget less a reserve for the release (a quarter of what
// is left, at most two seconds), the release gets the rest. It returns an
// error when ctx ended first: messages not deleted then come back after
// their visibility timeout, and the loader drops the duplicates.
//
// A long poll cancelled at shutdown may still be answered by SQS, taking
// messages that become visible meanwhile; so before releasing, Close waits
// until the poll wait time has passed since polling stopped, as far as ctx
// leaves time for it (keeping the reserve for the release itself).
func (c *Consumer) Close(ctx context.Context) error {
	c.closed.Do(func() {
		c.drain(ctx)
		if err := ctx.Err(); err != nil {
			c.closeErr = fmt.Errorf("ingest: drain cut short: %w", context.Cause(ctx))
		}
	})
	return c.closeErr
}

func (c *Consumer) drain(ctx context.Context) {
	c.tracker.stopping.Store(true)
	if !c.background.Load() {
		// Run never started the deletes and extensions.
		close(c.stopDeletes)
		close(c.stopExtend)
		c.releaseAll(ctx)
		return
	}
	// Extensions in flight end with the budget; deletes keep a reserve.
	defer context.AfterFunc(ctx, c.tracker.cancelExt)()
	delCtx := ctx
	dl, hasDeadline := ctx.Deadline()
	if hasDeadline {
		reserve := min(2*time.Second, time.Until(dl)/4)
		var cancel context.CancelFunc
		delCtx, cancel = context.WithDeadline(ctx, dl.Add(-reserve))
		defer cancel()
	}
	stopDeletes := context.AfterFunc(delCtx, c.tracker.cancelDel)
	close(c.stopDeletes)
	c.deleter.Wait()
	stopDeletes()
	c.tracker.cancelDel()
	if at := c.stoppedAt.Load(); at != 0 {
		wait := time.Until(time.Unix(0, at).Add(c.cfg.WaitTime + 500*time.Millisecond))
		if d, ok := delCtx.Deadline(); ok {
			wait = min(wait, time.Until(d))
		}
		if wait > 0 && c.tracker.unacked() > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
	}
	close(c.stopExtend)
	c.extender.Wait()
	c.releaseAll(ctx)
}

// releaseAll releases every message still held, for redelivery.
func (c *Consumer) releaseAll(ctx context.Context) {
	if n := c.tracker.releaseAll(ctx); n > 0 {
		c.log.Info("released held messages for redelivery", zap.Int("messages", n))
	}
}

// handleAll handles the batches a poller's receiver hands over until it
// closes batches. It runs under recvCtx: a batch received before stop is
// handed to the sink (or left held for the drain to release). It returns an
// error only when the sink or the dead-letter store refuses messages while
// polling goes on.
func (c *Consumer) handleAll(ctx context.Context, batches <-chan []types.Message, beat *atomic.Int64) error {
	dec := schema.NewDecoder(c.schema, c.env)
	defer idle(beat)
	for msgs := range batches {
		c.step(beat)
		if err := c.handle(ctx, dec, msgs, beat); err != nil {
			return err
		}
		idle(beat) // waiting for the next batch
	}
	return nil
}

// poll receives while ctx lasts and hands each non-empty batch to its
// handler (handleAll); calls run under recvCtx, which outlives ctx by the
// shutdown grace.
func (c *Consumer) poll(ctx, recvCtx context.Context, beat *atomic.Int64, batches chan<- []types.Message) {
	backoff := 100 * time.Millisecond
	defer idle(beat)
	for ctx.Err() == nil {
		idle(beat) // waiting for room under max_in_flight
		if c.waitAccess(ctx) != nil {
			return
		}
		got, err := c.tracker.acquire(ctx, 10)
		if err != nil {
			return
		}
		c.step(beat)
		out, err := c.api.ReceiveMessage(recvCtx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(c.cfg.QueueURL),
			MaxNumberOfMessages:         10,
			WaitTimeSeconds:             int32(c.cfg.WaitTime / time.Second),
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateFirstReceiveTimestamp, types.MessageSystemAttributeNameApproximateReceiveCount},
			MessageAttributeNames:       []string{"All"},
		}, receiveOnce)
		c.m.calls.WithLabelValues("receive").Inc()
		if err != nil {
			c.tracker.releaseSlots(got)
			if ctx.Err() != nil || recvCtx.Err() != nil {
				return
			}
			wait, ceiling := backoff, 10*time.Second
			if errors.As(err, new(*types.OverLimit)) {
				// The queue holds as many messages in flight as SQS allows
				// (about 120,000, across every consumer): room comes only as
				// messages are deleted or time out, so asking again at once
				// only spends calls. Logged once per episode.
				wait, ceiling = max(backoff, c.overLimitWait), overLimitMaxBackoff
				c.m.overLimit.Inc()
				c.overLimitCount.Add(1)
				if c.overLimit.CompareAndSwap(false, true) {
					c.log.Warn("receive refused: the queue is at SQS's in-flight limit (OverLimit); backing off until messages are deleted or time out",
						zap.Error(err), zap.Duration("backoff", wait))
				}
			} else {
				// SQS may have handed out messages in a response that did
				// not arrive: they stay invisible until their visibility
				// timeout ends, then come back (delayed, not lost; each such
				// loss counts one receive towards the queue's
				// maxReceiveCount).
				c.log.Warn("receive failed; messages of a lost answer reappear after the visibility timeout; backing off",
					zap.Error(err), zap.Duration("visibility", c.cfg.Visibility), zap.Duration("backoff", wait))
			}
			idle(beat)
			if !sleepCtx(ctx, wait) {
				return
			}
			backoff = min(wait*2, ceiling)
			continue
		}
		backoff = 100 * time.Millisecond
		if c.overLimit.CompareAndSwap(true, false) {
			c.log.Info("receives accepted again after OverLimit", zap.Int64("refused", c.overLimitCount.Swap(0)))
		}
		c.tracker.releaseSlots(got - len(out.Messages))
		if len(out.Messages) > 0 {
			c.m.received.Add(float64(len(out.Messages)))
			now := c.clock.Now()
			for _, msg := range out.Messages {
				c.tracker.hold(msg, now) // extended from now on, while it waits for its handler
			}
			idle(beat) // the handler is busy with the previous batch: its heartbeat answers
			select {
			case batches <- out.Messages:
			case <-recvCtx.Done():
				return // its handler stopped: the messages stay held, and Close releases them
			}
		}
	}
}

// The backoff of receives refused with OverLimit: from a second, doubling,
// at most half a minute.
const (
	overLimitBackoff    = time.Second
	overLimitMaxBackoff = 30 * time.Second
)

// receiveOnce makes ReceiveMessage a single attempt: the poll loop retries
// with its own backoff, and a failure is logged, not hidden inside the SDK.
// A retry cannot bring back the messages of a lost answer (a standard queue
// has no receive-attempt id), so a failure is the one trace that they will
// come back late.
func receiveOnce(o *sqs.Options) { o.RetryMaxAttempts = 1 }

type item struct {
	msg     types.Message
	ev      *schema.Event // &event once decoded
	event   schema.Event
	rows    *schema.Rows // from c.rows
	bad     error        // dead-letter it
	refused bool         // the raw store rejected its document for good (ErrRejected): dead-letter it
	coll    string
	stored  bool // the raw document is in Mongo (or raw writes are off)
	rawWant bool // a raw document was written for it
	receipt string

	// again is set when its rows were dropped after the first flatten
	// (past heldRowsBytes): it is decoded and flattened again just before
	// its Add, from its body, fallback id and time and Mongo _id.
	again    bool
	fallback string
	received time.Time
	mongo    string
}

// heldRowsBytes bounds the rows (schema.Rows.Size) a poller keeps from its
// received batch while it writes the raw documents and adds the rows to the
// sink one message after another (the sink counts rows only once added):
// past it, a message's rows are flattened again just before its Add. So a
// poller holds at most this plus one message's rows outside the sink's cap.
const heldRowsBytes = 1 << 20

// handle processes one received batch: decode and flatten each message, write
// the raw documents, then hand rows to the sink and bad messages to the
// dead-letter store. A message whose raw write failed is left for
// redelivery while the rest of its batch goes on; one whose raw document the
// store rejects for good (ErrRejected) is dead-lettered with
// ReasonRawWriteRejected, and its rows are not loaded. It returns an error
// when the sink or the dead-letter store refuses a message while ctx lasts.
func (c *Consumer) handle(ctx context.Context, dec *schema.Decoder, msgs []types.Message, beat *atomic.Int64) error {
	c.cfg.fault(fault.AfterReceive)
	now := c.clock.Now()
	items := make([]item, len(msgs))
	var heldRows int64
	byColl := map[string][]int{}
	var docs = map[string][]bson.Raw{}
	for i, msg := range msgs {
		it := &items[i]
		it.msg = msg
		it.receipt = aws.ToString(msg.ReceiptHandle)
		msg = c.cfg.Replay.Trusted(msg) // wharf.* attributes only from a signed replay
		fallbackID, received := deadletter.Origin(msg, now)
		it.fallback, it.received = fallbackID, received
		body := []byte(aws.ToString(msg.Body))
		ev := &it.event
		err := dec.DecodeInto(ev, body, fallbackID, received)
		it.ev = ev
		if err != nil {
			it.bad = err
			continue
		}
		fromMongo := deadletter.MongoID(msg)
		if fromMongo != "" {
			// A replayed backfill dead letter: its id is its document's _id,
			// as the backfill would have given it.
			if len(fromMongo) > schema.EventIDLength {
				it.bad = &schema.InvalidError{Reason: schema.ReasonBadEventID, Detail: fmt.Sprintf("the _id is %d bytes, more than %d", len(fromMongo), schema.EventIDLength)}
				continue
			}
			ev.ID = fromMongo
			it.mongo = fromMongo
		}
		it.rows = c.rows.get()
		if it.bad = dec.FlattenInto(ev, it.rows); it.bad == nil {
			for _, tr := range it.rows.Tables() {
				if tr.Truncated > 0 {
					c.m.truncated.WithLabelValues(tr.Table.Name).Add(float64(tr.Truncated))
				}
			}
			if heldRows > heldRowsBytes {
				c.rows.put(it.rows)
				it.rows, it.again = nil, true
			} else {
				heldRows += int64(it.rows.Size())
			}
		} else {
			c.rows.put(it.rows)
			it.rows = nil
		}
		it.coll, _ = c.schema.CollectionFor(ev.Type)
		if c.raw != nil && fromMongo == "" {
			it.rawWant = true
			byColl[it.coll] = append(byColl[it.coll], i)
			docs[it.coll] = append(docs[it.coll], rawDocument(nil, ev.ID, ev.ReceivedAt, ev.Root()))
		} else {
			it.stored = true
		}
	}
	results := c.storeAll(ctx, docs, beat)
	for coll, idx := range byColl {
		perDoc, err := results[coll].perDoc, results[coll].err
		for j, i := range idx {
			if err == nil && perDoc[j] == nil {
				items[i].stored = true
				continue
			}
			e := err
			if e == nil {
				e = perDoc[j]
			}
			if err == nil && errors.Is(e, ErrRejected) {
				it := &items[i]
				detail := e.Error()
				if it.bad != nil {
					detail += "; the event is also invalid: " + it.bad.Error()
				}
				it.bad = &schema.InvalidError{Reason: ReasonRawWriteRejected, Detail: detail}
				c.rows.put(it.rows)
				it.refused, it.rows = true, nil
				c.log.Warn("raw write rejected; message dead-lettered", zap.String("collection", coll), zap.String("event_id", it.ev.ID), zap.Error(e))
				continue
			}
			c.m.rawErrors.WithLabelValues(coll).Inc()
			c.log.Warn("raw write failed; message left for redelivery", zap.String("collection", coll), zap.String("event_id", items[i].ev.ID), zap.Error(e))
		}
	}
	docs = nil // written: the rows of each message are all it holds now
	c.cfg.fault(fault.AfterMongo)
	for i := range items {
		it := &items[i]
		receipt := it.receipt
		ack := func(err error) {
			if err != nil {
				c.log.Warn("rows not stored; message left for redelivery", zap.Error(err))
				c.tracker.nack(receipt)
				return
			}
			c.tracker.ack(receipt)
		}
		if it.bad != nil {
			if it.rawWant && !it.stored && !it.refused {
				// The raw write of a known-type event failed: retry the whole message later.
				c.tracker.nack(receipt)
				continue
			}
			idle(beat) // the dead-letter store may hold us at its cap
			err := c.dl.Add(ctx, c.record(it), ack)
			c.step(beat)
			if err != nil {
				// Shutting down while the store is full, or the store
				// closed: Close releases the message and the rest.
				return refused(ctx, "dead-letter store", err)
			}
			continue
		}
		if !it.stored {
			c.tracker.nack(receipt)
			continue
		}
		rows := it.rows
		if it.again {
			var err error
			if rows, err = c.reflatten(dec, it); err != nil {
				// It decoded and flattened the first time: cannot happen.
				c.log.Error("event not decoded again; message left for redelivery", zap.String("event_id", it.ev.ID), zap.Error(err))
				c.tracker.nack(receipt)
				continue
			}
		}
		it.rows = nil // the sink copies them, and counts them
		idle(beat)    // the sink may hold us at its cap
		err := c.sink.Add(ctx, rows, ack)
		c.rows.put(rows)
		c.step(beat)
		if err != nil {
			// Shutting down while the sink is full, or the sink closed:
			// Close releases the message and the rest.
			return refused(ctx, "sink", err)
		}
	}
	return nil
}

// refused is the error of an Add that failed: nil when ctx ended it (the
// consumer is stopping), and otherwise what stops the consumer.
func refused(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("ingest: the %s refuses messages: %w", what, err)
}

type stored struct {
	perDoc []error
	err    error
}

// storeAll writes the raw documents of a batch, one storeRaw per
// collection, all at once: a batch's round trips to Mongo overlap instead
// of adding up. While they run, each write's own heartbeat stands for the
// handler's (beat).
func (c *Consumer) storeAll(ctx context.Context, docs map[string][]bson.Raw, beat *atomic.Int64) map[string]stored {
	out := make(map[string]stored, len(docs))
	if len(docs) == 1 {
		for coll, d := range docs {
			perDoc, err := c.storeRaw(ctx, coll, d, beat)
			out[coll] = stored{perDoc, err}
		}
		return out
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	beats := make([]atomic.Int64, len(docs))
	c.writesMu.Lock()
	if c.writes == nil {
		c.writes = map[*atomic.Int64]struct{}{}
	}
	for i := range beats {
		c.step(&beats[i])
		c.writes[&beats[i]] = struct{}{}
	}
	c.writesMu.Unlock()
	idle(beat)
	i := 0
	for coll, d := range docs {
		wg.Add(1)
		go func(b *atomic.Int64) {
			defer wg.Done()
			perDoc, err := c.storeRaw(ctx, coll, d, b)
			idle(b)
			mu.Lock()
			out[coll] = stored{perDoc, err}
			mu.Unlock()
		}(&beats[i])
		i++
	}
	wg.Wait()
	c.step(beat)
	c.writesMu.Lock()
	for i := range beats {
		delete(c.writes, &beats[i])
	}
	c.writesMu.Unlock()
	return out
}

// storeRaw writes one collection's raw documents. A call that fails because
// Mongo cannot be reached (ErrUnavailable) is retried with backoff, while the
// messages stay held and their visibility is extended, until it succeeds or
// ctx ends. Leaving them for redelivery instead would spend a receive of each
// on every try, so that an outage of a few minutes would push live messages
// to the queue's dead-letter queue; retrying here also stops this poller
// from taking more messages meanwhile. A call Mongo refuses for wharf's
// credentials or permissions (ErrDenied) is retried the same way, and also
// stops every poller (waitAccess) until a write goes through: no write can
// succeed meanwhile, so messages taken would only spend receives. Any other
// error is returned at once.
func (c *Consumer) storeRaw(ctx context.Context, coll string, docs []bson.Raw, beat *atomic.Int64) ([]error, error) {
	backoff := 200 * time.Millisecond
	for {
		c.step(beat) // each attempt is a step: an outage is not a stall
		perDoc, err := c.raw.Store(ctx, coll, docs)
		denied := errors.Is(err, ErrDenied)
		if err == nil {
			c.allow()
		}
		if err == nil || !denied && !errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
			return perDoc, err
		}
		c.m.rawRetries.WithLabelValues(coll).Inc()
		if denied {
			c.deny(coll, err)
		} else if !c.isDenied() { // during a denial, the pool's refusals are part of it
			c.log.Warn("raw write failed: Mongo unreachable; retrying", zap.String("collection", coll),
				zap.Int("documents", len(docs)), zap.Duration("retry_in", backoff), zap.Error(err))
		}
		idle(beat)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return perDoc, err
		case <-t.C:
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// reflatten decodes and flattens an item's message again, as the first time.
func (c *Consumer) reflatten(dec *schema.Decoder, it *item) (*schema.Rows, error) {
	ev, err := dec.Decode([]byte(aws.ToString(it.msg.Body)), it.fallback, it.received)
	if err != nil {
		return nil, err
	}
	if it.mongo != "" {
		ev.ID = it.mongo
	}
	rows := c.rows.get()
	if err := dec.FlattenInto(ev, rows); err != nil { // its truncations were counted the first time
		c.rows.put(rows)
		return nil, err
	}
	return rows, nil
}

// ReasonRawWriteRejected is the dead-letter reason of a message whose raw
// document Mongo refuses for good (ErrRejected: a validator, a document too
// large, a key or value it cannot store, a duplicate on another unique
// index); the detail carries Mongo's code and message. Replay it once the
// cause is fixed.
const ReasonRawWriteRejected = "raw_write_rejected"

// deny records that Mongo refuses wharf's credentials or permissions: the
// first time, it stops polling (waitAccess), sets wharf_raw_store_denied
// and logs one error.
func (c *Consumer) deny(coll string, err error) {
	c.deniedMu.Lock()
	first := c.denied == nil
	if first {
		c.denied = make(chan struct{})
	}
	c.deniedMu.Unlock()
	if first {
		c.m.rawDenied.Set(1)
		c.log.Error("Mongo refuses wharf's credentials or permissions: polling stopped; held messages are kept and extended until a raw write goes through",
			zap.String("collection", coll), zap.Error(err))
	}
}

// isDenied reports whether raw writes are denied now.
func (c *Consumer) isDenied() bool {
	c.deniedMu.Lock()
	defer c.deniedMu.Unlock()
	return c.denied != nil
}

// allow ends a denial: polling resumes.
func (c *Consumer) allow() {
	c.deniedMu.Lock()
	ch := c.denied
	c.denied = nil
	c.deniedMu.Unlock()
	if ch != nil {
		close(ch)
		c.m.rawDenied.Set(0)
		c.log.Info("Mongo accepts raw writes again: polling resumed")
	}
}

// waitAccess returns once raw writes are not denied, or ctx has ended.
func (c *Consumer) waitAccess(ctx context.Context) error {
	c.deniedMu.Lock()
	ch := c.denied
	c.deniedMu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Consumer) record(it *item) deadletter.Record {
	rec := deadletter.Record{
		Body:       aws.ToString(it.msg.Body),
		Reason:     schema.Reason(it.bad),
		Detail:     it.bad.Error(),
		MessageID:  aws.ToString(it.msg.MessageId),
		ReceivedAt: time.Now().UTC(),
		Source:     "sqs",
	}
	if rec.Reason == "" {
		rec.Reason = "invalid"
	}
	if it.ev != nil {
		rec.EventType, rec.EventID = it.ev.Type, it.ev.ID
		rec.ReceivedAt = it.ev.ReceivedAt
	}
	rec.ReceiveCount, _ = strconv.Atoi(it.msg.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	for k, v := range it.msg.MessageAttributes {
		if rec.Attributes == nil {
			rec.Attributes = map[string]string{}
		}
		rec.Attributes[k] = aws.ToString(v.StringValue)
	}
	return rec
}
