// Package warehouse loads the batcher's Parquet files from S3 into the
// warehouse (docs/design.md §1, §6).
//
// A table's pending files are the objects under PREFIX/TABLE/dt=DAY/ that the
// ledger (wharf_loads) does not name. A load merges them in batches, each in
// one transaction: lock the target, re-read the ledger, fill a staging table,
// insert the rows whose key is in neither the rest of the batch nor the
// target, and record every file in the ledger. So a row reaches its table
// once however often its event was delivered, its file was replayed or the
// load was retried, and a crash at any point leaves each file either merged
// and recorded, or neither (docs/design.md §2, guarantee 2).
package warehouse

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/wharfdata/wharf/internal/fault"
	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse/dialect"
	"github.com/wharfdata/wharf/warehouse/postgres"
	"github.com/wharfdata/wharf/warehouse/redshift"
)

// ObjectStore is what the loader needs from S3.
type ObjectStore interface {
	// List returns the objects under prefix sorting after startAfter, in key order.
	List(ctx context.Context, prefix, startAfter string) ([]s3store.Object, error)
	// ListPrefixes returns the common prefixes one level below prefix.
	ListPrefixes(ctx context.Context, prefix, delimiter string) ([]string, error)
	// Get reads a whole object.
	Get(ctx context.Context, key string) ([]byte, error)
}

var _ ObjectStore = (*s3store.Store)(nil)

// Result says what one Load did, per table loaded.
type Result struct {
	Tables map[string]TableResult
}

// TableResult says what a load did to one table.
type TableResult struct {
	Files      int   // files merged and recorded in the ledger
	RowsIn     int64 // rows read from those files
	Rows       int64 // rows added to the table
	Duplicates int64 // rows read but not added: duplicates in the files or already in the table
	Pending    int   // files still pending when the load ended (non-zero only after an error)
	// Late counts the files merged that a reconciliation found in a day
	// partition before the table's watermark (see Config.ReconcileInterval).
	Late int
	// Quarantined counts the files this load set aside because they cannot
	// load (see Loader.Quarantined).
	Quarantined int
}

// Files returns the files merged, across tables.
func (r Result) Files() int {
	n := 0
	for _, t := range r.Tables {
		n += t.Files
	}
	return n
}

// Rows returns the rows added, across tables.
func (r Result) Rows() int64 {
	var n int64
	for _, t := range r.Tables {
		n += t.Rows
	}
	return n
}

// batch is what merging one batch of files did.
type batch struct {
	files      int           // files merged by this transaction
	skipped    int           // files another loader merged first
	rowsIn     int64         // rows in the merged files
	rowsLoaded int64         // rows added to the target
	childGone  int64         // rows of its child tables deleted as another delivery's (see dialect.Dialect.Merge)
	copying    time.Duration // reading the files and filling staging
	merging    time.Duration // the dedupe and insert into the target
	oldest     time.Time     // the earliest event_time among the staged rows (zero: none)
	newest     time.Time     // the latest event_time among the staged rows
}

// Load is what one merged batch of files did to one table, or the error
// that stopped a table's load, as Config.OnLoad receives it.
type Load struct {
	Table    string
	At       time.Time     // when the merge committed (or failed)
	Files    int           // files merged and recorded in the ledger
	RowsIn   int64         // rows read from those files
	Rows     int64         // rows added to the table
	Duration time.Duration // the merge's transaction, retries included
	// OldestEvent and NewestEvent bound the event_time of the rows read
	// (zero when the batch merged no file).
	OldestEvent, NewestEvent time.Time
	Err                      error // non-nil: the load of Table failed; its files stay pending
}

// Loader loads pending S3 files into the warehouse's tables. It is safe for
// concurrent use, and any number of Loaders, in one process or in many, may
// load the same tables at once: each table's merges run one at a time under
// the table's lock, and none merges a file the ledger names.
type Loader struct {
	cfg   Config
	sch   *schema.Schema
	store ObjectStore
	pool  *pgxpool.Pool
	d     dialect.Dialect
	log   *zap.Logger
	m     *metrics
	now   func() time.Time
	retry time.Duration // first retry delay of Run after a failed load

	reconcileMu sync.Mutex
	reconciled  map[string]time.Time // per table, when its last reconciling load succeeded

	stats stats
}

// New returns a Loader for the tables of sch. It does not touch the warehouse:
// call Apply to create the tables. log and reg may be nil.
func New(cfg Config, pool *pgxpool.Pool, store ObjectStore, sch *schema.Schema, log *zap.Logger, reg prometheus.Registerer) (*Loader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case pool == nil:
		return nil, errors.New("warehouse: no connection pool")
	case store == nil:
		return nil, errors.New("warehouse: no object store")
	case sch == nil:
		return nil, errors.New("warehouse: no schema")
	}
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("component", "warehouse"))
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	var d dialect.Dialect
	switch cfg.Dialect {
	case schema.Postgres:
		pg, err := postgres.New(pool, store, cfg.Schema, sch, log)
		if err != nil {
			return nil, err
		}
		d = pg
	case schema.Redshift:
		rs, ok := store.(redshift.Store)
		if !ok {
			return nil, errors.New("warehouse: the redshift dialect needs an object store that can put manifests and read ranges")
		}
		d = redshift.New(pool, rs, redshift.Config{Schema: cfg.Schema, Prefix: cfg.Prefix, IAMRole: cfg.IAMRole}, log)
	default:
		return nil, fmt.Errorf("warehouse.dialect %s: the loader does not support it", cfg.Dialect)
	}
	return &Loader{cfg: cfg, sch: sch, store: store, pool: pool, d: d, log: log, m: m, now: time.Now, retry: time.Second,
		reconciled: map[string]time.Time{}}, nil
}

// Apply creates, when missing, the warehouse schema, every table of the
// schema file with its columns, and the ledger tables. It only adds: a column
// removed from the schema file stays in the warehouse, and a changed type is
// not altered. It is idempotent and safe to run from several processes at once.
func (l *Loader) Apply(ctx context.Context) error {
	if err := l.d.Apply(ctx, l.sch.All()); err != nil {
		return fmt.Errorf("apply schema to warehouse: %w", err)
	}
	return nil
}

// Load merges the pending files of the named tables (every table when none
// is named) now, once, and returns what it did. Up to LoadConcurrency
// tables load at once (a parent and its children one after another), so a
// table stuck on a lock or a slow COPY does not hold up the others. A table
// whose load fails does not stop the others; the error joins every table's
// error, and a failed table's files stay pending for the next load.
func (l *Loader) Load(ctx context.Context, tables ...string) (Result, error) {
	var list []*schema.Table
	if len(tables) == 0 {
		list = l.sch.All()
	}
	for _, name := range tables {
		t := l.sch.Table(name)
		if t == nil {
			return Result{}, fmt.Errorf("load: unknown table %q", name)
		}
		list = append(list, t)
	}
	res := Result{Tables: make(map[string]TableResult, len(list))}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, l.cfg.LoadConcurrency)
	)
	for _, family := range families(list) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			for _, t := range family {
				tr, err := l.loadTable(ctx, t)
				mu.Lock()
				res.Tables[t.Name] = tr
				if err != nil {
					l.m.errors.WithLabelValues(t.Name).Inc()
					l.stats.update(t.Name, func(s *TableStats) { s.Errors++ })
					errs = append(errs, fmt.Errorf("load %s: %w", t.Name, err))
				}
				mu.Unlock()
				if ctx.Err() != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil && len(errs) == 0 {
		errs = append(errs, err)
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return res, errors.Join(errs...)
}

// families groups tables by parent, in order: a parent and then its
// children are loaded one after another (a child's merge reads its parent's
// rows), the families side by side (Config.LoadConcurrency).
func families(list []*schema.Table) [][]*schema.Table {
	var out [][]*schema.Table
	index := map[*schema.Table]int{}
	for _, t := range list {
		root := t
		if t.Parent != nil {
			root = t.Parent
		}
		i, ok := index[root]
		if !ok {
			i = len(out)
			index[root] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], t)
	}
	return out
}

// Run loads every LoadInterval, starting at once, until ctx ends, and then
// returns nil. A failed load is logged and retried with exponential backoff
// from one second, never later than the load interval; it is never fatal.
func (l *Loader) Run(ctx context.Context) error {
	failures := 0
	for {
		delay := l.cfg.LoadInterval
		if _, err := l.Load(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures++
			delay = min(l.cfg.LoadInterval, dialect.Backoff(l.retry, failures))
			l.log.Error("load failed; will retry", zap.Error(err), zap.Int("failures", failures), zap.Duration("retry_in", delay))
		} else {
			failures = 0
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// loadTable merges the pending files of t, oldest day first, in batches of
// MaxFilesPerLoad, then advances t's watermark.
//
// The watermark is a day before which every partition was fully loaded when
// it moved, so most loads list only the partitions from it on. After a load
// it moves to the oldest day that still has a pending file, and never beyond
// yesterday (UTC): a file for today, or a late put for yesterday, can still
// appear. A file can still land in a day before the watermark (a put retried
// past midnight, a skewed clock, a replay), so every ReconcileInterval, and
// on the first load after the process starts, the load lists every day
// partition and merges whatever the ledger does not name: every file under
// the table's prefix is loaded, or its error reported, whatever its day.
func (l *Loader) loadTable(ctx context.Context, t *schema.Table) (TableResult, error) {
	var res TableResult
	wm, hasWM, err := l.d.Watermark(ctx, t.Name)
	if err != nil {
		return res, err
	}
	started := l.now()
	reconcile := l.reconcileDue(t.Name, started)
	pending, late, err := l.pending(ctx, t, wm, hasWM, reconcile)
	if err != nil {
		return res, err
	}
	l.setPending(t.Name, len(pending))
	for len(pending) > 0 {
		n := l.d.BatchSize(ctx, len(pending), l.cfg.MaxFilesPerLoad)
		start := time.Now()
		b, err := l.mergeBatch(ctx, t, pending[:n])
		var fe *dialect.FileError
		if err != nil && ctx.Err() == nil && errors.As(err, &fe) && slices.ContainsFunc(pending[:n], func(o s3store.Object) bool { return o.Key == fe.Key }) {
			// One file cannot load: set it aside and merge the rest.
			if qerr := l.quarantine(ctx, t, fe.Key, err); qerr != nil {
				err = errors.Join(err, qerr)
			} else {
				res.Quarantined++
				pending = slices.DeleteFunc(pending, func(o s3store.Object) bool { return o.Key == fe.Key })
				l.setPending(t.Name, len(pending))
				continue
			}
		}
		if err != nil {
			res.Pending = len(pending)
			if l.cfg.OnLoad != nil {
				l.cfg.OnLoad(Load{Table: t.Name, At: l.now(), Duration: time.Since(start), Err: err})
			}
			// The files merged so far still let the watermark move up to
			// the oldest file left.
			if werr := l.advance(ctx, t, wm, hasWM, pending); werr != nil {
				err = errors.Join(err, werr)
			}
			return res, err
		}
		reason := "all_pending" // why the batch is this size
		if n == l.cfg.MaxFilesPerLoad && len(pending) > n {
			reason = "max_files_per_load"
		}
		files := pending[:n]
		pending = pending[n:]
		l.setPending(t.Name, len(pending))
		l.merged(t, &res, b, files, late, reason, start)
	}
	if err := l.advance(ctx, t, wm, hasWM, nil); err != nil {
		return res, err
	}
	if reconcile {
		l.reconcileMu.Lock()
		l.reconciled[t.Name] = started
		l.reconcileMu.Unlock()
	}
	return res, nil
}

// mergeBatch merges files into t within warehouse.merge_timeout.
func (l *Loader) mergeBatch(ctx context.Context, t *schema.Table, files []s3store.Object) (batch, error) {
	start := time.Now()
	mctx, cancel := context.WithTimeoutCause(ctx, l.cfg.MergeTimeout, errMergeTimeout)
	defer cancel()
	b, err := l.merge(mctx, t, files)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(mctx), errMergeTimeout) {
		err = fmt.Errorf("%w after %s (warehouse.merge_timeout); %d files stay pending: %w", errMergeTimeout, l.cfg.MergeTimeout, len(files), err)
	}
	l.m.seconds.Observe(time.Since(start).Seconds())
	return b, err
}

// merged counts, logs and reports a batch b of files merged into t, begun
// at start; late names the files that arrived behind the watermark.
func (l *Loader) merged(t *schema.Table, res *TableResult, b batch, files []s3store.Object, late map[string]bool, reason string, start time.Time) {
	lateMerged := 0
	for _, f := range files {
		if late[f.Key] {
			lateMerged++
		}
	}
	res.Late += lateMerged
	l.m.late.WithLabelValues(t.Name).Add(float64(lateMerged))
	dups := b.rowsIn - b.rowsLoaded
	res.Files += b.files
	res.RowsIn += b.rowsIn
	res.Rows += b.rowsLoaded
	res.Duplicates += dups
	l.m.files.WithLabelValues(t.Name).Add(float64(b.files))
	l.m.rows.WithLabelValues(t.Name).Add(float64(b.rowsLoaded))
	l.stats.update(t.Name, func(s *TableStats) { s.Files += int64(b.files); s.Rows += b.rowsLoaded })
	l.m.duplicates.WithLabelValues(t.Name).Add(float64(dups))
	l.observeLag(t.Name, b)
	l.log.Info("loaded", zap.String("table", t.Name), zap.Int("files", b.files),
		zap.Int64("rows", b.rowsLoaded), zap.String("reason", reason), zap.String("file", files[0].Key), zap.String("last_file", files[len(files)-1].Key),
		zap.Int64("rows_in", b.rowsIn), zap.Int64("rows_loaded", b.rowsLoaded), zap.Int64("child_rows_removed", b.childGone),
		zap.Int64("duplicates", dups), zap.Int("files_already_loaded", b.skipped),
		zap.Duration("duration", time.Since(start)), zap.Duration("copy", b.copying), zap.Duration("merge", b.merging),
		zap.Float64("lag_seconds", lagSeconds(l.now(), b.oldest)))
	if l.cfg.OnLoad != nil && b.files > 0 {
		l.cfg.OnLoad(Load{Table: t.Name, At: l.now(), Files: b.files, RowsIn: b.rowsIn, Rows: b.rowsLoaded,
			Duration: time.Since(start), OldestEvent: b.oldest, NewestEvent: b.newest})
	}
}

// setPending records the files of table still pending, in its gauge and
// its Stats.
func (l *Loader) setPending(table string, n int) {
	l.m.pending.WithLabelValues(table).Set(float64(n))
	l.stats.update(table, func(s *TableStats) { s.Pending = n })
}

// reconcileDue reports whether a load of table starting at now lists the days
// before the watermark too: on its first load, and when the last load that
// did succeeded ReconcileInterval or more before now.
func (l *Loader) reconcileDue(table string, now time.Time) bool {
	l.reconcileMu.Lock()
	defer l.reconcileMu.Unlock()
	last, ok := l.reconciled[table]
	return !ok || !now.Before(last.Add(l.cfg.ReconcileInterval))
}

// errMergeTimeout is the cause of a merge cancelled by Config.MergeTimeout.
var errMergeTimeout = errors.New("merge timed out")

// dayLayout is the layout of the dt= partitions (docs/design.md §5).
const dayLayout = dialect.DayLayout

// pending lists t's files in the day partitions from the watermark on (every
// day partition when reconcile is set) and returns those the ledger does not
// name, in key order (so oldest day first), and the set of those found in a
// day before the watermark: files found late.
func (l *Loader) pending(ctx context.Context, t *schema.Table, wm time.Time, hasWM, reconcile bool) ([]s3store.Object, map[string]bool, error) {
	base := l.cfg.Prefix + t.Name + "/"
	prefixes, err := l.store.ListPrefixes(ctx, base, "/")
	if err != nil {
		return nil, nil, err
	}
	var days []string
	for _, p := range prefixes {
		day, ok := parseDay(base, p)
		if !ok {
			l.log.Warn("ignoring a prefix that is not a day partition", zap.String("table", t.Name), zap.String("prefix", p))
			continue
		}
		if hasWM && day.Before(wm) && !reconcile {
			continue
		}
		days = append(days, p)
	}
	slices.Sort(days)
	var files []s3store.Object
	for _, p := range days {
		objs, err := l.store.List(ctx, p, "")
		if err != nil {
			return nil, nil, err
		}
		for _, o := range objs {
			if strings.HasSuffix(o.Key, ".parquet") && !strings.Contains(o.Key[len(p):], "/") {
				files = append(files, o)
			}
		}
	}
	if len(files) == 0 {
		return nil, nil, nil
	}
	keys := make([]string, len(files))
	for i, f := range files {
		keys[i] = f.Key
	}
	done, err := l.d.Loaded(ctx, l.pool, keys)
	if err != nil {
		return nil, nil, err
	}
	held, err := l.quarantinedKeys(ctx, t.Name)
	if err != nil {
		return nil, nil, err
	}
	files = slices.DeleteFunc(files, func(o s3store.Object) bool { return done[o.Key] || held[o.Key] })
	slices.SortFunc(files, func(a, b s3store.Object) int { return strings.Compare(a.Key, b.Key) })
	var late map[string]bool
	for _, f := range files {
		day, _ := parseDay(base, f.Key[:strings.LastIndexByte(f.Key, '/')+1])
		if hasWM && day.Before(wm) {
			if late == nil {
				late = map[string]bool{}
			}
			late[f.Key] = true
			l.log.Warn("file found late: its day is before the table's watermark; loading it", zap.String("table", t.Name),
				zap.String("file", f.Key), zap.String("watermark", wm.Format(dayLayout)))
		}
	}
	return files, late, nil
}

// parseDay returns the day of a partition prefix BASE + "dt=YYYY-MM-DD/".
func parseDay(base, prefix string) (time.Time, bool) {
	s, ok := strings.CutPrefix(prefix, base+"dt=")
	if !ok {
		return time.Time{}, false
	}
	s, ok = strings.CutSuffix(s, "/")
	if !ok {
		return time.Time{}, false
	}
	day, err := time.Parse(dayLayout, s)
	if err != nil {
		return time.Time{}, false
	}
	return day, true
}

// advance moves t's watermark up to the day of the oldest file of left (the
// files still pending), but never beyond yesterday (UTC).
func (l *Loader) advance(ctx context.Context, t *schema.Table, wm time.Time, hasWM bool, left []s3store.Object) error {
	now := l.now().UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
	base := l.cfg.Prefix + t.Name + "/"
	for _, o := range left {
		slash := strings.LastIndexByte(o.Key, '/')
		if d, ok := parseDay(base, o.Key[:slash+1]); ok && d.Before(day) {
			day = d
		}
	}
	if hasWM && !day.After(wm) {
		return nil
	}
	if err := l.d.AdvanceWatermark(ctx, t.Name, day); err != nil {
		return err
	}
	l.log.Debug("watermark advanced", zap.String("table", t.Name), zap.String("day", day.Format(dayLayout)))
	return nil
}

// observeLag records, after a merge committed, the end-to-end lag of its
// rows: one observation per merged batch, now − the batch's oldest
// event_time, which bounds from above the lag of every row in the batch
// (an event time in the future counts as no lag). It also keeps the newest
// event time loaded per table, for freshness.
func (l *Loader) observeLag(table string, b batch) {
	if b.files == 0 || b.oldest.IsZero() {
		return
	}
	l.m.lag.WithLabelValues(table).Observe(lagSeconds(l.now(), b.oldest))
	g := l.m.newest.WithLabelValues(table)
	l.m.newestMu.Lock()
	defer l.m.newestMu.Unlock()
	if v := float64(b.newest.UnixMicro()) / 1e6; v > l.m.newestSeen[table] {
		l.m.newestSeen[table] = v
		g.Set(v)
	}
}

// lagSeconds is now − t in seconds, never negative; 0 for a zero t.
func lagSeconds(now, t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return max(now.Sub(t).Seconds(), 0)
}

// Merge retries of a serialization failure or deadlock.
const (
	mergeAttempts = 5
	mergeBackoff  = 100 * time.Millisecond
)

// merge reads what staging needs of files, then merges them into t in one
// transaction, again after a conflict the dialect calls retryable.
func (l *Loader) merge(ctx context.Context, t *schema.Table, files []s3store.Object) (batch, error) {
	if err := l.d.Prepare(ctx, t, files); err != nil {
		return batch{}, err
	}
	for attempt := 1; ; attempt++ {
		b, err := l.mergeOnce(ctx, t, files)
		if err == nil || attempt == mergeAttempts || !l.d.Retryable(err) {
			return b, err
		}
		wait := dialect.Backoff(mergeBackoff, attempt)
		l.log.Warn("merge conflicted; retrying", zap.String("table", t.Name), zap.Int("attempt", attempt), zap.Duration("retry_in", wait), zap.Error(err))
		select {
		case <-ctx.Done():
			return batch{}, errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// mergeOnce merges files into t in one transaction (docs/design.md §2,
// guarantee 2), the one protocol of every dialect:
//
//  1. the dialect's lock, the transaction's first statement: it serialises
//     the merges into t of every process and never makes a reader wait;
//  2. the ledger again, under the lock: files another loader merged are
//     dropped from the batch;
//  3. every row of the remaining files into staging, and their count
//     checked against the files' own;
//  4. the staged rows that win their key and are not in t yet, into t;
//  5. each file into the ledger; commit.
//
// A crash at any point leaves each file merged and recorded, or neither.
func (l *Loader) mergeOnce(ctx context.Context, t *schema.Table, files []s3store.Object) (batch, error) {
	var b batch
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return b, fmt.Errorf("connect: %w", err)
	}
	defer conn.Release()
	tx, err := conn.BeginTx(ctx, l.d.TxOptions())
	if err != nil {
		return b, fmt.Errorf("begin: %w", err)
	}
	// After Commit, Rollback is a no-op; after a failure the error that
	// matters is the one returned, so Rollback's own is dropped.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	if err := l.d.Lock(ctx, tx, t); err != nil {
		return b, fmt.Errorf("lock %s: %w", t.Name, err)
	}
	keys := make([]string, len(files))
	for i, f := range files {
		keys[i] = f.Key
	}
	done, err := l.d.Loaded(ctx, tx, keys)
	if err != nil {
		return b, err
	}
	todo := slices.DeleteFunc(slices.Clone(files), func(o s3store.Object) bool { return done[o.Key] })
	b.skipped = len(files) - len(todo)
	if len(todo) == 0 {
		return b, tx.Commit(ctx)
	}

	start := time.Now()
	rows, err := l.d.Stage(ctx, tx, t, todo)
	if err != nil {
		return b, err
	}
	b.copying = time.Since(start)
	staged, oldest, newest, err := l.d.Staged(ctx, tx)
	if err != nil {
		return b, err
	}
	var want int64
	for _, n := range rows {
		want += n
	}
	if staged != want {
		return b, fmt.Errorf("stage %s: staged %d rows, the files' footers say %d", t.Name, staged, want)
	}
	b.oldest, b.newest = oldest, newest

	start = time.Now()
	if staged > 0 {
		if b.rowsLoaded, b.childGone, err = l.d.Merge(ctx, tx, t, oldest, newest); err != nil {
			return b, err
		}
	}
	b.merging = time.Since(start)
	if err := l.d.Record(ctx, tx, t, todo, rows); err != nil {
		return b, err
	}
	if l.cfg.Fault != nil {
		l.cfg.Fault(fault.BeforeCommit)
	}
	if err := tx.Commit(ctx); err != nil {
		return b, fmt.Errorf("commit: %w", err)
	}
	if l.cfg.Fault != nil {
		l.cfg.Fault(fault.AfterCommit)
	}
	b.files = len(todo)
	b.rowsIn = staged
	return b, nil
}

// RedshiftPoolConfig sets what a pgx pool needs to talk to Redshift (see
// redshift.PoolConfig).
func RedshiftPoolConfig(pc *pgxpool.Config) { redshift.PoolConfig(pc) }
