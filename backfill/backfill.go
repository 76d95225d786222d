// Package backfill streams historical MongoDB documents through the same
// flatten → batcher → S3 → loader path as live events (docs/design.md §1), so that
// history and live data land in the same tables by the same rules.
//
// Each of the table's collections is split into half-open _id ranges (from a
// sample of _ids); a job's ranges are fixed in its plan in S3, so that
// --workers K scans K ranges at once and --shard i/N runs range r in shard
// r mod N, with no overlap and no gap. A range is read with one cursor sorted
// by _id (on MongoDB a walk of the _id index); a cursor that fails is
// reopened after the last document read. Each document becomes JSON, is
// decoded with its _id as the event id, flattened and handed to the sink
// with an ack, exactly as an SQS message is; bad documents go to the
// dead-letter store.
//
// A range's checkpoint is the last _id whose rows, and the rows of every
// document before it in the range, are in S3: it moves only on acks, which
// arrive after the S3 put. A job killed at any instant and run again with the
// same name resumes each range after its checkpoint; documents re-read are
// duplicates the loader's merge removes (docs/design.md §2, guarantee 2).
package backfill

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.uber.org/zap"

	"github.com/wharfdata/wharf/deadletter"
	"github.com/wharfdata/wharf/schema"
)

// Sink takes the rows of one document. ack runs exactly once, with nil when
// the rows are durable in S3, or the error that stopped them. Add may block
// while the sink is at its memory cap. Flush writes what is buffered and
// waits for it. (Job adapts *batcher.Batcher: its Flush takes the
// batcher's flush reason, and a backfill's is always "manual".)
type Sink interface {
	Add(ctx context.Context, rows *schema.Rows, ack func(error)) error
	Flush(ctx context.Context) error
}

// DeadLetters keeps documents that can never be loaded as they are. ack runs
// once the record is durable. (*deadletter.Writer satisfies it.)
type DeadLetters interface {
	Add(ctx context.Context, rec deadletter.Record, ack func(error)) error
	Flush(ctx context.Context) error
}

// Skip reasons: documents read but not loaded, and not dead letters either.
const (
	SkipFiltered  = "outside_time_range" // event time before --since or from --until on, or received before --since warehouse
	SkipOtherType = "other_event_type"   // an event type that another table takes, or none
)

// Config says what a backfill reads and how. Start from DefaultConfig.
type Config struct {
	// Job names the job; its plan and checkpoints live under
	// PREFIX/_backfill/JOB/. Running a job again resumes it.
	Job string
	// Table is the parent table to fill (its child tables come with it).
	Table string
	// Since and Until bound the table's event time: Since ≤ t < Until. Zero
	// is open.
	Since, Until time.Time
	// ReceivedSince bounds the time a document reached Mongo (insertion, not
	// event time): documents received before it are skipped. A document's
	// received time is the one serve stored in it (ReceivedAtField), else
	// the creation time of its ObjectId _id; a document with neither is
	// bounded by its event time instead. Zero is open.
	ReceivedSince time.Time
	// SinceFrom is "warehouse" when ReceivedSince (or, in a plan made before
	// ReceivedSince existed, Since) was read from the warehouse: a job
	// reads with the bounds in its plan, not this run's reading.
	SinceFrom string
	// Windows, when set, narrow the event time further to these half-open
	// intervals, sorted and apart (`wharf audit --repair` backfills exactly
	// the hours that differ).
	Windows []Window
	// Filter is a MongoDB query in (extended) JSON, applied on the server.
	Filter string
	// Shard and Shards: this process scans ranges r with r mod Shards = Shard.
	Shard, Shards int
	// Workers is how many ranges this process scans at once. Default 2.
	Workers int
	// BatchSize is the documents per cursor batch. Default 1000.
	BatchSize int32
	// ReadPreference is a MongoDB read preference mode. Default
	// secondaryPreferred (keeps the load off the primary).
	ReadPreference string
	// Prefix is the S3 prefix wharf writes under ("events/").
	Prefix string
	// CheckpointInterval is how often changed checkpoints are written.
	// Default 5 s.
	CheckpointInterval time.Duration
	// MaxPending caps documents handed on and not yet acked. Default 100,000.
	MaxPending int
	// SettleDelay is how long a shard of a new job waits for the other
	// shards' plans. Default 5 s.
	SettleDelay time.Duration
	// MaxRetries is how often a range's cursor is reopened without any
	// document read in between before the backfill fails. Default 8.
	MaxRetries int
	// DrainTimeout bounds the final flush after an interruption. Default 25 s.
	DrainTimeout time.Duration
	// ScanOnly reads the documents and discards them, writing nothing, not
	// even a plan (the bare scan that benchmarks compare against).
	ScanOnly bool
}

// Window is a half-open interval of event time: From ≤ t < To.
type Window struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// inWindows reports whether t is in one of the sorted windows ws.
func inWindows(ws []Window, t time.Time) bool {
	i := sort.Search(len(ws), func(i int) bool { return ws[i].To.After(t) })
	return i < len(ws) && !t.Before(ws[i].From)
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Shards: 1, Workers: 2, BatchSize: 1000, ReadPreference: "secondaryPreferred",
		CheckpointInterval: 5 * time.Second, MaxPending: 100_000, SettleDelay: 5 * time.Second,
		MaxRetries: 8, DrainTimeout: 25 * time.Second,
	}
}

var jobRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Validate names the first bad field, as the command line calls it.
func (c Config) Validate() error {
	switch {
	case !jobRE.MatchString(c.Job):
		return fmt.Errorf("--job %q: use letters, digits, '.', '_' and '-' (at most 128)", c.Job)
	case c.Table == "":
		return errors.New("--table is required")
	case c.Shards < 1 || c.Shard < 0 || c.Shard >= c.Shards:
		return fmt.Errorf("--shard %d/%d: want i/N with 0 ≤ i < N", c.Shard, c.Shards)
	case c.Workers < 1 || c.Workers > 64:
		return fmt.Errorf("--workers %d: want 1 to 64", c.Workers)
	case c.BatchSize < 1:
		return fmt.Errorf("backfill.batch_size %d: want at least 1", c.BatchSize)
	case c.SinceFrom != "" && c.SinceFrom != "warehouse":
		return fmt.Errorf("since_from %q: want \"warehouse\" or nothing", c.SinceFrom)
	case !c.Since.IsZero() && !c.Until.IsZero() && !c.Until.After(c.Since):
		return fmt.Errorf("--until %s is not after --since %s", c.Until.Format(time.RFC3339), c.Since.Format(time.RFC3339))
	case c.CheckpointInterval <= 0:
		return errors.New("backfill.checkpoint_interval must be positive")
	case c.MaxPending < 1:
		return errors.New("backfill.max_pending must be positive")
	case c.MaxRetries < 0:
		return errors.New("backfill.max_retries must not be negative")
	case c.DrainTimeout <= 0:
		return errors.New("drain_timeout must be positive")
	}
	for i, w := range c.Windows {
		if !w.To.After(w.From) || i > 0 && w.From.Before(c.Windows[i-1].To) {
			return fmt.Errorf("time windows must be sorted, apart and not empty (window %d: %s to %s)", i, w.From.Format(time.RFC3339), w.To.Format(time.RFC3339))
		}
	}
	if _, err := readpref.ModeFromString(c.ReadPreference); err != nil {
		return fmt.Errorf("backfill.read_preference %q: %w", c.ReadPreference, err)
	}
	if _, _, err := parseFilter(c.Filter); err != nil {
		return err
	}
	return nil
}

// parseFilter reads a JSON query, returning it and its canonical text.
func parseFilter(s string) (bson.D, string, error) {
	if s == "" {
		return nil, "", nil
	}
	var d bson.D
	if err := bson.UnmarshalExtJSON([]byte(s), false, &d); err != nil {
		return nil, "", fmt.Errorf("--filter: not a JSON object: %v", err)
	}
	canon, err := bson.MarshalExtJSON(d, true, false)
	if err != nil {
		return nil, "", fmt.Errorf("--filter: %v", err)
	}
	return d, string(canon), nil
}

// Summary is what a run did.
type Summary struct {
	Job         string
	Ranges      int              // ranges of this shard
	RangesDone  int              // of them, scanned to the end with every document durable
	Read        int64            // documents read in this run
	Rows        map[string]int64 // rows handed to the sink, per table
	DeadLetters map[string]int64 // by reason
	Skipped     map[string]int64 // by reason (SkipFiltered, SkipOtherType)
	Elapsed     time.Duration
}

// Complete reports whether every range of this shard is done.
func (s Summary) Complete() bool { return s.RangesDone == s.Ranges }

// Progress is a snapshot of a running backfill.
type Progress struct {
	Ranges  []RangeProgress
	Read    int64 // documents read in this run
	Rows    int64 // rows handed to the sink in this run
	Durable int64 // documents durable, over every run
	Elapsed time.Duration
	// ReadStart is when this run read its first document (zero before):
	// the time before it was spent planning, and a rate or an ETA counts
	// from it.
	ReadStart time.Time
}

// RangeProgress is one range's progress.
type RangeProgress struct {
	Index      int
	Collection string
	Done       int64 // documents read, over every run (durable before this run + read in it)
	Estimate   int64 // documents in the range, roughly; 0 when unknown
	Scanning   bool
	Finished   bool // scanned to its end (in this run or an earlier one)
}

// Backfill runs one job (or one shard of it).
type Backfill struct {
	cfg        Config
	table      *schema.Table
	sch        *schema.Schema
	env        schema.Envelope
	src        *source
	sink       Sink
	dl         DeadLetters
	store      ObjectStore
	log        *zap.Logger
	filter     bson.D
	filterText string
	timeFilter bson.D
	typePath   []string // the envelope's type path, split
	fallback   string   // the event type of a document without one ("": none)

	win    *window
	start  time.Time
	ranges atomic.Pointer[[]*rangeState] // this shard's ranges, once planned
	read   atomic.Int64
	rows   atomic.Int64
	// readStart is when the first document of this run was read, in Unix
	// nanoseconds; 0 before.
	readStart atomic.Int64

	mu      sync.Mutex
	perRows map[string]int64
	dead    map[string]int64
	skipped map[string]int64
}

// rangeState is one range being scanned.
type rangeState struct {
	r        Range
	tr       *tracker
	prior    int64 // documents durable before this run
	read     atomic.Int64
	estimate atomic.Int64
	scanning atomic.Bool
	scanned  atomic.Bool // read to its end, in this run
	finished bool        // done in an earlier run
}

// New returns a backfill of cfg.Table. sink, dl and store may be nil with
// ScanOnly. log may be nil.
func New(cfg Config, sch *schema.Schema, env schema.Envelope, db *mongo.Database, sink Sink, dl DeadLetters, store ObjectStore, log *zap.Logger) (*Backfill, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := sch.Table(cfg.Table)
	if t == nil {
		return nil, fmt.Errorf("--table: no table %q in the schema", cfg.Table)
	}
	if t.IsChild() {
		return nil, fmt.Errorf("--table %s is a child table: backfill its parent, %s", t.Name, t.Parent.Name)
	}
	if !cfg.ScanOnly && (sink == nil || dl == nil || store == nil) {
		return nil, errors.New("backfill: a sink, a dead-letter store and an object store are required")
	}
	src, err := newSource(db, cfg.ReadPreference, cfg.BatchSize)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	filter, text, _ := parseFilter(cfg.Filter)
	b := &Backfill{
		cfg: cfg, table: t, sch: sch, env: env, src: src, sink: sink, dl: dl, store: store,
		log: log.With(zap.String("component", "backfill"), zap.String("job", cfg.Job)), filter: filter, filterText: text,
		win: newWindow(cfg.MaxPending), perRows: map[string]int64{}, dead: map[string]int64{}, skipped: map[string]int64{},
	}
	b.setBounds()
	b.typePath, b.fallback = strings.Split(env.TypePath, "."), t.FallbackEvent()
	return b, nil
}

// setBounds derives the server-side time filter from the configured bounds.
func (b *Backfill) setBounds() {
	since, until := b.cfg.Since, b.cfg.Until
	if n := len(b.cfg.Windows); n > 0 {
		if since.IsZero() || b.cfg.Windows[0].From.After(since) {
			since = b.cfg.Windows[0].From
		}
		if until.IsZero() || b.cfg.Windows[n-1].To.Before(until) {
			until = b.cfg.Windows[n-1].To
		}
	}
	b.timeFilter = and(timeFilter(b.timePath(), since, until), receivedFilter(b.cfg.ReceivedSince))
}

// receivedFilter narrows the scan on the server to documents that may have
// been received at or after since: it drops documents whose stored receive
// time (ReceivedAtField) is before since, and those whose ObjectId _id was
// made before since (on MongoDB a bound on the _id index). $lt on a date or
// an ObjectId matches only values of that type, so $not keeps documents
// without such a value, which the client-side check settles. (serve writes
// string _ids, so no document of wharf's has both.)
func receivedFilter(since time.Time) bson.D {
	if since.IsZero() {
		return nil
	}
	return and(
		bson.D{{Key: ReceivedAtField, Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$lt", Value: since}}}}}},
		bson.D{{Key: "_id", Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$lt", Value: bson.NewObjectIDFromTimestamp(since.Truncate(time.Second))}}}}}},
	)
}

// adoptPlanBounds makes a job read with the bounds it was planned with. A
// bound read from the warehouse (--since warehouse) is read again by every
// run, and the warehouse moves on between runs (the job's own rows, live
// traffic): a resumed job, or a shard adopting another shard's plan, must
// not use its own reading, or the ranges not yet scanned would skip the
// documents between the two.
func (b *Backfill) adoptPlanBounds(p *Plan) {
	if p.SinceFrom != "warehouse" {
		return
	}
	var since, recv time.Time
	if p.Since != nil {
		since = *p.Since
	}
	if p.ReceivedSince != nil {
		recv = *p.ReceivedSince
	}
	if !since.Equal(b.cfg.Since) || !recv.Equal(b.cfg.ReceivedSince) {
		b.log.Info("reading with the bound the job was planned with", zap.Time("received_since", recv), zap.Time("since", since),
			zap.Time("this_run_received_since", b.cfg.ReceivedSince))
	}
	b.cfg.Since, b.cfg.ReceivedSince = since, recv
	b.setBounds()
}

// timePath is the path of the table's event time in a document.
func (b *Backfill) timePath() string {
	if b.table.Time != "" {
		return b.table.Time
	}
	return b.env.TimePath
}

// timeFilter narrows the scan on the server to documents whose event time
// may be in [since, until): it only drops documents whose time is a BSON
// date outside the bounds ($not keeps strings, numbers and missing times,
// which the client-side check after decoding settles). So it is never
// narrower than the exact filter, and it needs no $or.
func timeFilter(path string, since, until time.Time) bson.D {
	var parts []bson.D
	if !since.IsZero() {
		parts = append(parts, bson.D{{Key: path, Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$lt", Value: since}}}}}})
	}
	if !until.IsZero() {
		parts = append(parts, bson.D{{Key: path, Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$gte", Value: until}}}}}})
	}
	return and(parts...)
}

// Run plans the job (or reads its plan), scans this shard's ranges that are
// not done, flushes, and writes the final checkpoints. It returns when every
// document read is durable, or when ctx ends or something fails (after a
// bounded drain that saves the progress made). The warehouse load is the
// caller's.
func (b *Backfill) Run(ctx context.Context) (Summary, error) {
	b.start = time.Now()
	plan, err := b.jobPlan(ctx)
	if err != nil {
		return Summary{Job: b.cfg.Job}, err
	}
	b.adoptPlanBounds(plan)
	var states []*rangeState
	for _, r := range plan.Ranges {
		if r.Index%b.cfg.Shards != b.cfg.Shard {
			continue
		}
		st := &rangeState{r: r}
		st.estimate.Store(r.Estimate)
		if b.cfg.ScanOnly {
			st.tr = newTracker(nil, 0)
		} else {
			cp, err := b.loadCheckpoint(ctx, r.Index)
			if err != nil {
				return Summary{Job: b.cfg.Job}, err
			}
			st.tr, st.prior, st.finished = newTracker(cp.After, cp.Docs), cp.Docs, cp.Done
		}
		states = append(states, st)
	}
	b.ranges.Store(&states)
	b.log.Info("backfill starting", zap.String("table", b.table.Name), zap.Int("ranges", len(states)),
		zap.Int("shard", b.cfg.Shard), zap.Int("shards", b.cfg.Shards), zap.Int("workers", b.cfg.Workers),
		zap.Bool("scan_only", b.cfg.ScanOnly))

	var bg sync.WaitGroup
	bgCtx, stopBG := context.WithCancel(ctx)
	defer func() { stopBG(); bg.Wait() }()
	bg.Add(1)
	go func() { defer bg.Done(); b.estimate(bgCtx, states) }()
	if !b.cfg.ScanOnly {
		bg.Add(1)
		go func() { defer bg.Done(); b.checkpointLoop(bgCtx, states) }()
	}

	scanErr := b.scan(ctx, plan, states)
	if b.cfg.ScanOnly {
		return b.summary(states), scanErr
	}
	return b.finish(ctx, states, scanErr, func() { stopBG(); bg.Wait() })
}

// finish flushes whatever was handed on, even after a failure or a signal,
// and writes the final checkpoints, so that they keep the progress made.
// stopBG stops the checkpoint loop once every document is durable.
func (b *Backfill) finish(ctx context.Context, states []*rangeState, scanErr error, stopBG func()) (Summary, error) {
	dctx, cancel := ctx, context.CancelFunc(func() {})
	if scanErr != nil || ctx.Err() != nil {
		dctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), b.cfg.DrainTimeout)
	}
	defer cancel()
	var errs []error
	if scanErr != nil {
		errs = append(errs, scanErr)
	}
	if err := b.sink.Flush(dctx); err != nil {
		errs = append(errs, fmt.Errorf("flush rows: %w", err))
	}
	if err := b.dl.Flush(dctx); err != nil {
		// The writer keeps failed records and tries again; waiting for
		// every ack below says whether they made it.
		b.log.Warn("dead letters not flushed yet", zap.Error(err))
	}
	if err := b.win.drained(dctx); err != nil {
		errs = append(errs, fmt.Errorf("waiting for %d documents to be durable: %w", b.win.count(), err))
	}
	stopBG()
	for _, st := range states {
		if err := b.writeCheckpoint(dctx, st, true); err != nil {
			errs = append(errs, err)
		}
		if _, _, _, _, err := st.tr.state(false); err != nil {
			errs = append(errs, fmt.Errorf("range %d: %w", st.r.Index, err))
		}
	}
	sum := b.summary(states)
	b.log.Info("backfill finished", zap.Int64("documents", sum.Read), zap.Any("rows", sum.Rows),
		zap.Any("dead_letters", sum.DeadLetters), zap.Any("skipped", sum.Skipped),
		zap.Int("ranges_done", sum.RangesDone), zap.Int("ranges", sum.Ranges), zap.Duration("elapsed", sum.Elapsed))
	return sum, errors.Join(errs...)
}

// scan runs Workers goroutines over the ranges not done, and returns the
// first error (after which the others stop).
func (b *Backfill) scan(ctx context.Context, plan *Plan, states []*rangeState) error {
	queue := make(chan *rangeState, len(states))
	for _, st := range states {
		if !st.finished {
			queue <- st
		}
	}
	close(queue)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range b.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{dec: schema.NewDecoder(b.sch, b.env), fallback: plan.Created}
			for st := range queue {
				if sctx.Err() != nil {
					return
				}
				if err := b.scanRange(sctx, st, w); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return first
}

// worker is one scanning goroutine's reusable state.
type worker struct {
	dec      *schema.Decoder
	ev       schema.Event // a document's event, reused
	rows     schema.Rows  // a document's rows, reused (the sink copies them)
	conv     converter
	fallback time.Time // received time of documents without an ObjectId _id
}

// scanRange reads a range to its end with one cursor sorted by _id,
// reopening it after the last document read when it fails.
func (b *Backfill) scanRange(ctx context.Context, st *rangeState, w *worker) error {
	st.scanning.Store(true)
	defer st.scanning.Store(false)
	pos, _, _, _, _ := st.tr.state(false)
	failures := 0
	delay := 500 * time.Millisecond
	log := b.log.With(zap.Int("range", st.r.Index), zap.String("collection", st.r.Collection))
	for {
		filter := and(rangeFilter(st.r.Lo, st.r.Hi, pos, st.r.Types), b.filter, b.timeFilter)
		cur, err := b.src.scan(ctx, st.r.Collection, filter)
		if err == nil {
			for cur.Next(ctx) {
				idv, ierr := cur.Current.LookupErr("_id")
				if ierr != nil {
					err = errNoID
					break
				}
				k := keyOf(idv)
				if herr := b.handle(ctx, st, w, cur.Current, k); herr != nil {
					_ = cur.Close(context.WithoutCancel(ctx))
					return herr
				}
				pos = &k
				failures = 0
				delay = 500 * time.Millisecond
			}
			if err == nil {
				err = cur.Err()
			}
			// Closing tells the server to drop the cursor; its error changes nothing.
			_ = cur.Close(context.WithoutCancel(ctx))
			if err == nil {
				st.scanned.Store(true)
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		failures++
		if !transient(err) || failures > b.cfg.MaxRetries {
			return fmt.Errorf("range %d of %s: %w", st.r.Index, st.r.Collection, err)
		}
		after := "(start)"
		if pos != nil {
			after = pos.String()
		}
		log.Warn("cursor failed; reopening after the last document read", zap.Error(err),
			zap.String("after", after), zap.Int("attempt", failures), zap.Duration("retry_in", delay))
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// handle takes one document from a range: JSON, decode with _id as the event
// id, the time filter, flatten, and the sink (or the dead-letter store). It
// returns an error only when the backfill must stop.
func (b *Backfill) handle(ctx context.Context, st *rangeState, w *worker, doc bson.Raw, k Key) error {
	if b.read.Add(1) == 1 {
		b.readStart.Store(time.Now().UnixNano())
	}
	st.read.Add(1)
	if b.cfg.ScanOnly {
		return nil
	}
	if err := b.win.acquire(ctx); err != nil {
		return err
	}
	seq := st.tr.push(k)
	ack := func(err error) {
		st.tr.ack(seq, err)
		b.win.release()
	}
	id, err := idString(k.RawValue)
	if err == nil && len(id) > schema.EventIDLength {
		err = fmt.Errorf("the _id is %d bytes, more than %d", len(id), schema.EventIDLength)
	}
	if err != nil {
		return b.deadLetter(ctx, st, doc, nil, id, &schema.InvalidError{Reason: schema.ReasonBadEventID, Detail: err.Error()}, w.fallback, ack)
	}
	recv, recvKnown := receivedAt(doc, k.RawValue, w.fallback)
	body, _, err := w.conv.eventJSON(doc, b.typePath, b.fallback)
	if err != nil {
		return b.deadLetter(ctx, st, doc, nil, id, &schema.InvalidError{Reason: schema.ReasonBadJSON, Detail: err.Error()}, recv, ack)
	}
	ev := &w.ev
	err = w.dec.DecodeInto(ev, body, id, recv)
	if err != nil {
		if schema.Reason(err) == schema.ReasonUnknownEventType {
			b.skip(SkipOtherType, ack)
			return nil
		}
		return b.deadLetter(ctx, st, doc, body, id, err, recv, ack)
	}
	ev.ID = id // docs/design.md §3: in backfill the event id is the _id
	routed := false
	for _, t := range ev.Tables {
		routed = routed || t == b.table
	}
	if !routed {
		b.skip(SkipOtherType, ack)
		return nil
	}
	ev.Tables = []*schema.Table{b.table}
	if outside, err := b.outside(w, ev, recv, recvKnown); err != nil {
		return b.deadLetter(ctx, st, doc, body, id, err, recv, ack)
	} else if outside {
		b.skip(SkipFiltered, ack)
		return nil
	}
	rows := &w.rows
	rows.Reset()
	if err := w.dec.FlattenInto(ev, rows); err != nil {
		return b.deadLetter(ctx, st, doc, body, id, err, recv, ack)
	}
	b.count(rows)
	if err := b.sink.Add(ctx, rows, ack); err != nil {
		// ack will never run: the document stays pending in its range, so
		// the checkpoint stops before it; only its place in the window is
		// given back, so the final drain does not wait for it.
		b.win.release()
		return err
	}
	return nil
}

// outside reports whether ev is outside the bounds: received before
// ReceivedSince (by its event time when its receive time is unknown), or
// its event time before Since, from Until on, or outside the Windows. An
// event time that cannot be read is an error (a dead letter).
func (b *Backfill) outside(w *worker, ev *schema.Event, recv time.Time, recvKnown bool) (bool, error) {
	if recvKnown && !b.cfg.ReceivedSince.IsZero() && recv.Before(b.cfg.ReceivedSince) {
		return true, nil
	}
	byEventTime := !recvKnown && !b.cfg.ReceivedSince.IsZero()
	if !byEventTime && b.cfg.Since.IsZero() && b.cfg.Until.IsZero() && len(b.cfg.Windows) == 0 {
		return false, nil
	}
	t, err := w.dec.EventTime(ev, b.table)
	if err != nil {
		return false, err
	}
	return (!b.cfg.Since.IsZero() && t.Before(b.cfg.Since)) || (!b.cfg.Until.IsZero() && !t.Before(b.cfg.Until)) ||
		(byEventTime && t.Before(b.cfg.ReceivedSince)) ||
		(len(b.cfg.Windows) > 0 && !inWindows(b.cfg.Windows, t)), nil
}

// count adds a document's rows to the run's counts.
func (b *Backfill) count(rows *schema.Rows) {
	b.mu.Lock()
	for _, tr := range rows.Tables() {
		if tr.Len > 0 {
			b.perRows[tr.Table.Name] += int64(tr.Len)
		}
	}
	b.mu.Unlock()
	b.rows.Add(int64(rows.Len()))
}

func (b *Backfill) skip(reason string, ack func(error)) {
	b.mu.Lock()
	b.skipped[reason]++
	b.mu.Unlock()
	ack(nil)
}

// deadLetter hands a document to the dead-letter store. A body larger than
// deadletter.MaxBody is not kept (Record.BodyBytes gives its size): the
// document stays in Mongo under its _id, and SQS could not carry it for a
// replay anyway. It returns an error only when the backfill must stop (ctx
// ended while the store was full); ack then never runs.
func (b *Backfill) deadLetter(ctx context.Context, st *rangeState, doc bson.Raw, body []byte, id string, err error, recv time.Time, ack func(error)) error {
	reason := schema.Reason(err)
	if reason == "" {
		reason = "invalid"
	}
	if body == nil {
		if ext, merr := bson.MarshalExtJSON(doc, false, false); merr == nil {
			body = ext
		}
	}
	rec := deadletter.Record{
		Body: string(body), Reason: reason, Detail: err.Error(), EventID: id,
		Attributes: map[string]string{"collection": st.r.Collection, "job": b.cfg.Job},
		ReceivedAt: recv, Source: "backfill",
	}
	if v, lerr := doc.LookupErr(strings.Split(b.env.TypePath, ".")...); lerr == nil {
		rec.EventType, _ = v.StringValueOK()
	} else if body != nil && b.fallback != "" {
		rec.EventType = b.fallback // the type the body was given (a document without one)
	}
	if len(rec.Body) > deadletter.MaxBody {
		rec.BodyBytes = len(rec.Body)
		rec.Body = ""
		rec.Detail += fmt.Sprintf(" (the document, %d bytes as JSON, is not kept: more than %d; it stays in Mongo under its _id in %s)", rec.BodyBytes, deadletter.MaxBody, st.r.Collection)
	}
	b.mu.Lock()
	b.dead[reason]++
	b.mu.Unlock()
	if err := b.dl.Add(ctx, rec, ack); err != nil {
		// As for the sink: the document stays pending in its range.
		b.win.release()
		return err
	}
	return nil
}

// checkpointLoop writes the changed checkpoints every CheckpointInterval
// until ctx ends.
func (b *Backfill) checkpointLoop(ctx context.Context, states []*rangeState) {
	t := time.NewTicker(b.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, st := range states {
				if err := b.writeCheckpoint(ctx, st, false); err != nil && ctx.Err() == nil {
					b.log.Warn("checkpoint not written; will retry", zap.Int("range", st.r.Index), zap.Error(err))
				}
			}
		}
	}
}

// writeCheckpoint writes st's checkpoint if it moved; final also marks the
// range done when it was read to its end and every document is durable.
func (b *Backfill) writeCheckpoint(ctx context.Context, st *rangeState, final bool) error {
	after, durable, changed, unacked, err := st.tr.state(true)
	done := st.finished || (final && st.scanned.Load() && unacked == 0 && err == nil)
	if !changed && !(final && done && !st.finished) {
		return nil
	}
	cp := Checkpoint{Range: st.r.Index, After: after, Docs: durable, Done: done, Updated: time.Now().UTC()}
	if werr := b.saveCheckpoint(ctx, cp); werr != nil {
		st.tr.mu.Lock()
		st.tr.dirty = true
		st.tr.mu.Unlock()
		return werr
	}
	return nil
}

// estimate fills in the sizes of ranges the plan has none for (one range
// per collection: nothing was sampled).
func (b *Backfill) estimate(ctx context.Context, states []*rangeState) {
	for _, st := range states {
		if st.r.Estimate > 0 || st.finished || st.r.Lo != nil || st.r.Hi != nil {
			continue
		}
		n, err := b.src.estimatedCount(ctx, st.r.Collection)
		if err != nil {
			if ctx.Err() == nil {
				b.log.Debug("no document count for progress", zap.String("collection", st.r.Collection), zap.Error(err))
			}
			continue
		}
		st.estimate.Store(n)
	}
}

// Progress returns a snapshot; before planning it has no ranges.
func (b *Backfill) Progress() Progress {
	p := Progress{Read: b.read.Load(), Rows: b.rows.Load()}
	if !b.start.IsZero() {
		p.Elapsed = time.Since(b.start)
	}
	if ns := b.readStart.Load(); ns != 0 {
		p.ReadStart = time.Unix(0, ns)
	}
	sp := b.ranges.Load()
	if sp == nil {
		return p
	}
	for _, st := range *sp {
		_, durable, _, _, _ := st.tr.state(false)
		p.Durable += durable
		rp := RangeProgress{Index: st.r.Index, Collection: st.r.Collection, Done: st.prior + st.read.Load(),
			Estimate: st.estimate.Load(), Scanning: st.scanning.Load(), Finished: st.finished || st.scanned.Load()}
		if st.finished {
			rp.Done = st.prior
			rp.Estimate = st.prior
		}
		p.Ranges = append(p.Ranges, rp)
	}
	return p
}

func (b *Backfill) summary(states []*rangeState) Summary {
	s := Summary{Job: b.cfg.Job, Ranges: len(states), Read: b.read.Load(), Elapsed: time.Since(b.start)}
	for _, st := range states {
		_, _, _, unacked, err := st.tr.state(false)
		if st.finished || (st.scanned.Load() && unacked == 0 && err == nil) {
			s.RangesDone++
		}
	}
	b.mu.Lock()
	s.Rows, s.DeadLetters, s.Skipped = maps.Clone(b.perRows), maps.Clone(b.dead), maps.Clone(b.skipped)
	b.mu.Unlock()
	return s
}

// ParseShard reads a shard as the command line gives it: "i/N", shard i of
// N (Config.Shard, Config.Shards).
func ParseShard(s string) (i, n int, err error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("--shard %q: want i/N with 0 ≤ i < N, such as 0/4", s)
	}
	return i, n, nil
}

// ParseTime reads a time as the command line gives it: RFC 3339, a date
// and time without a zone (UTC), or a date (midnight UTC).
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time or a YYYY-MM-DD date", s)
}
