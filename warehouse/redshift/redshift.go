// Package redshift is the loader's Amazon Redshift dialect
// (docs/design.md §6): COPY of Parquet from S3 through a manifest, a merge
// that checks a key within the batch's event_time window, a ledger lock that
// readers never wait on, and the catalog and DDL fallbacks Redshift needs.
package redshift

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"
	"go.uber.org/zap"

	"github.com/wharfdata/wharf/internal/pq"
	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse/dialect"
)

// Store is what the dialect needs from S3: writing and removing COPY
// manifests and reading Parquet footers by range.
type Store interface {
	Put(ctx context.Context, key string, body io.Reader, size int64) error
	Delete(ctx context.Context, key string) error
	GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error)
	Bucket() string
}

var _ Store = (*s3store.Store)(nil)

// Dialect is the loader's Redshift side (docs/design.md §6). A merge of one
// batch (the loader runs the steps, in one transaction):
//
//  1. LOCK the table's own lock table (rsLockSQL): never the target, so
//     readers never wait, and never the ledger, so one stuck table holds up
//     no other (new clusters default to snapshot isolation, where two
//     merges would otherwise both commit or one fail late); re-read the
//     ledger under the lock;
//  2. write a manifest of the files (mandatory, with content_length, which
//     Parquet COPY requires) and COPY them into a temporary staging table,
//     one COPY per file layout (normally one: a schema change makes two,
//     because COPY of Parquet matches columns by position);
//  3. insert the staged rows that rank first for their key (ROW_NUMBER) and
//     whose key the target does not hold within the batch's event_time
//     window (so the sort key's zone maps keep the check cheap);
//  4. record each file in the ledger, drop staging, commit.
//
// Serialization conflicts (Redshift error 1023, SQLSTATE 40001) are
// Retryable. A failed COPY is reported with SYS_LOAD_ERROR_DETAIL's file,
// column and reason.
//
// Every statement but COPY also runs on PostgreSQL (the tests execute them
// there), so the SQL keeps to what both accept: no arrays, no ON CONFLICT,
// no temp-table ON COMMIT, parameters only where a value goes, each cast
// explicitly.
type Dialect struct {
	// Copy and DDL are seams for running the dialect on PostgreSQL, as the
	// tests do; set them before the first use.
	//
	// Copy fills the temporary table into (staging, or a group's own) with
	// the rows of one group of files of t; nil is COPY from S3.
	Copy func(ctx context.Context, tx pgx.Tx, t *schema.Table, into string, g CopyGroup) error
	// DDL rewrites a CREATE TABLE or ALTER TABLE before it runs; nil runs
	// it as written. Tests strip what PostgreSQL lacks (DISTKEY, SORTKEY,
	// ENCODE, SUPER).
	DDL func(string) string

	pool    *pgxpool.Pool
	store   Store
	schema  string
	prefix  string
	iamRole string
	log     *zap.Logger
	now     func() time.Time

	mu            sync.Mutex
	lockTables    map[string]bool      // per table, its lock table exists
	slices        int                  // the cluster's slice count, once read
	slicesWarned  bool                 // the slice count could not be read (logged once)
	layouts       map[string]pq.Layout // per file key; files never change
	layoutsMaxLen int
}

var _ dialect.Dialect = (*Dialect)(nil)

// CopyGroup is one COPY: files of one layout, through one manifest.
type CopyGroup struct {
	Columns  []string      // the files' columns, in file order
	Types    []schema.Type // per column, the type the files hold (pq.Layout.Types)
	Files    []s3store.Object
	Rows     []int64 // per file, from its footer
	Manifest string  // the manifest's key
}

// PoolConfig sets what a pgx pool needs to talk to Redshift.
// Queries run in QueryExecModeDescribeExec: the extended protocol with the
// unnamed statement, so no prepared statement outlives a schema change
// (apply alters tables under a running loader), and parameter types come
// from the server, not from Go types (Redshift turns a client-declared
// text parameter into VARCHAR(256)). The simple protocol is no option:
// pgx interpolates parameters only when the server reports
// standard_conforming_strings=on, which Redshift, forked from PostgreSQL
// 8.0, does not promise. Statements without parameters (DDL, LOCK, COPY)
// go over the simple protocol in every mode. Every parameter wharf sends is
// a string or an int64, and every value read is text, an integer or a
// timestamp.
//
// Redshift documents neither binary parameters nor binary results, while
// pgx asks for binary wherever it has a binary codec (int8, timestamp, …);
// so every type of the connection's map is registered again as text only:
// each parameter goes, and each result comes back, in the text format.
func PoolConfig(pc *pgxpool.Config) {
	pc.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec
	next := pc.AfterConnect
	pc.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		textFormatsOnly(c.TypeMap())
		if next != nil {
			return next(ctx, c)
		}
		return nil
	}
}

// maxBuiltinOID bounds the OIDs textFormatsOnly looks at: PostgreSQL's
// built-in types, the ones pgx registers, are below it.
const maxBuiltinOID = 20_000

// textFormatsOnly re-registers every type m knows with a codec that
// supports only the text format.
func textFormatsOnly(m *pgtype.Map) {
	for oid := uint32(1); oid < maxBuiltinOID; oid++ {
		t, ok := m.TypeForOID(oid)
		if !ok {
			continue
		}
		if _, done := t.Codec.(textCodec); done {
			continue
		}
		m.RegisterType(&pgtype.Type{Name: t.Name, OID: t.OID, Codec: textCodec{t.Codec}})
	}
}

// textCodec is a pgtype.Codec that refuses the binary format.
type textCodec struct{ pgtype.Codec }

func (c textCodec) FormatSupported(format int16) bool { return format == pgtype.TextFormatCode }
func (c textCodec) PreferredFormat() int16            { return pgtype.TextFormatCode }

// Config is what the dialect needs to know of the deployment.
type Config struct {
	Schema  string // the warehouse schema (warehouse.schema)
	Prefix  string // the S3 prefix, ending in "/" unless empty (s3.prefix)
	IAMRole string // the role COPY assumes (warehouse.iam_role), or IAMRoleDefault
}

// IAMRoleDefault as the IAM role makes COPY use the cluster's default IAM
// role (COPY … IAM_ROLE default).
const IAMRoleDefault = "default"

// New returns the dialect. log may be nil.
func New(pool *pgxpool.Pool, store Store, cfg Config, log *zap.Logger) *Dialect {
	if log == nil {
		log = zap.NewNop()
	}
	return &Dialect{pool: pool, store: store, schema: cfg.Schema, prefix: cfg.Prefix, iamRole: cfg.IAMRole,
		log: log, now: time.Now, layouts: map[string]pq.Layout{}, layoutsMaxLen: 100_000, lockTables: map[string]bool{}}
}

func (r *Dialect) qualified(name string) string { return schema.QualifiedName(r.schema, name) }

func (r *Dialect) runDDL(ctx context.Context, q string) error {
	if r.DDL != nil {
		q = r.DDL(q)
	}
	_, err := r.pool.Exec(ctx, q)
	return err
}

// Apply creates what is missing, one statement at a time: Redshift runs
// some ALTER TABLEs only outside a transaction block, and has no advisory
// lock, so two processes applying at once can race; the loser of a race
// ("already exists") reads the catalog again and goes on.
func (r *Dialect) Apply(ctx context.Context, tables []*schema.Table) error {
	for attempt := 1; ; attempt++ {
		err := r.applyOnce(ctx, tables)
		if err == nil || attempt == applyAttempts || !alreadyExists(err) {
			return err
		}
		r.log.Info("schema apply raced another process; reading the catalog again", zap.Error(err))
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(dialect.Backoff(applyBackoff, attempt)):
		}
	}
}

func (r *Dialect) applyOnce(ctx context.Context, tables []*schema.Table) error {
	var n int64
	if err := r.pool.QueryRow(ctx, dialect.SchemaExistsSQL, r.schema).Scan(&n); err != nil {
		return fmt.Errorf("look up schema %s: %w", r.schema, err)
	}
	if n == 0 {
		if err := r.runDDL(ctx, schema.CreateSchemaSQL(r.schema)); err != nil {
			return fmt.Errorf("create schema %s: %w", r.schema, err)
		}
	}
	cat, err := dialect.ReadCatalog(ctx, r.pool, r.schema)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if !cat.HasTable(t.Name) {
			if err := r.runDDL(ctx, schema.CreateTableSQL(t, schema.Redshift, r.schema)); err != nil {
				return fmt.Errorf("create table %s: %w", t.Name, err)
			}
			r.log.Info("created table", zap.String("table", t.Name))
			continue
		}
		for _, c := range t.Columns {
			if cat.Column(t.Name, c.Name) != nil {
				continue
			}
			if err := r.runDDL(ctx, schema.AddColumnSQL(t, c, schema.Redshift, r.schema)); err != nil {
				return fmt.Errorf("add column %s.%s: %w", t.Name, c.Name, err)
			}
			r.log.Info("added column", zap.String("table", t.Name), zap.String("column", c.Name))
		}
	}
	for _, q := range schema.LedgerSQL(schema.Redshift, r.schema) {
		if err := r.runDDL(ctx, q); err != nil {
			return fmt.Errorf("create ledger: %w", err)
		}
	}
	for _, t := range tables {
		if err := r.ensureLockTable(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// ensureLockTable creates, once per process, the table whose LOCK
// serialises the merges into t (rsLockTable).
func (r *Dialect) ensureLockTable(ctx context.Context, t *schema.Table) error {
	r.mu.Lock()
	done := r.lockTables[t.Name]
	r.mu.Unlock()
	if done {
		return nil
	}
	if err := r.runDDL(ctx, rsCreateLockTableSQL(r.schema, t)); err != nil && !alreadyExists(err) {
		return fmt.Errorf("create the lock table of %s: %w", t.Name, err)
	}
	r.mu.Lock()
	r.lockTables[t.Name] = true
	r.mu.Unlock()
	return nil
}

// Attempts of Apply that raced another process: each loses at most one
// race per object, so a handful of processes settle in a few attempts.
const (
	applyAttempts = 8
	applyBackoff  = 20 * time.Millisecond
)

// alreadyExists reports a duplicate table, column or schema.
func alreadyExists(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "42P07", "42701", "42P06", "23505":
		return true
	}
	return strings.Contains(pe.Message, "already exists")
}

// ledgerInChunk is the most file keys one ledger lookup names.
const ledgerInChunk = 500

// Loaded looks keys up in the ledger, ledgerInChunk at a time.
func (r *Dialect) Loaded(ctx context.Context, q dialect.Querier, keys []string) (map[string]bool, error) {
	done := map[string]bool{}
	for start := 0; start < len(keys); start += ledgerInChunk {
		chunk := keys[start:min(start+ledgerInChunk, len(keys))]
		args := make([]any, len(chunk))
		for i, k := range chunk {
			args[i] = k
		}
		rows, err := q.Query(ctx, rsLoadedSQL(r.schema, len(chunk)), args...)
		if err != nil {
			return nil, fmt.Errorf("read ledger: %w", err)
		}
		var key string
		if _, err := pgx.ForEachRow(rows, []any{&key}, func() error { done[key] = true; return nil }); err != nil {
			return nil, fmt.Errorf("read ledger: %w", err)
		}
	}
	return done, nil
}

// Watermark reads the table's watermark day.
func (r *Dialect) Watermark(ctx context.Context, table string) (time.Time, bool, error) {
	var day string
	err := r.pool.QueryRow(ctx, rsWatermarkSQL(r.schema), table).Scan(&day)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read watermark: %w", err)
	}
	d, err := time.Parse(dialect.DayLayout, strings.TrimSpace(day))
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read watermark: %q is not a day", day)
	}
	return d, true, nil
}

// AdvanceWatermark raises the watermark under a LOCK of the watermarks
// table (Redshift has no ON CONFLICT), and retries a serialization conflict.
func (r *Dialect) AdvanceWatermark(ctx context.Context, table string, day time.Time) error {
	want := day.Format(dialect.DayLayout)
	return r.retry(ctx, "advance watermark", table, func() error {
		return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, rsLockWatermarksSQL(r.schema)); err != nil {
				return fmt.Errorf("lock watermarks: %w", err)
			}
			var have string
			err := tx.QueryRow(ctx, rsWatermarkSQL(r.schema), table).Scan(&have)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				_, err = tx.Exec(ctx, rsWatermarkInsertSQL(r.schema), table, want)
			case err != nil:
			case strings.TrimSpace(have) < want:
				_, err = tx.Exec(ctx, rsWatermarkUpdateSQL(r.schema), want, table)
			}
			if err != nil {
				return fmt.Errorf("advance watermark: %w", err)
			}
			return nil
		})
	})
}

// retry runs f again after a serialization conflict, with backoff.
func (r *Dialect) retry(ctx context.Context, what, table string, f func() error) error {
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || attempt == retryAttempts || !r.Retryable(err) {
			return err
		}
		wait := dialect.Backoff(retryBackoff, attempt)
		r.log.Warn(what+" conflicted; retrying", zap.String("table", table), zap.Int("attempt", attempt), zap.Duration("retry_in", wait), zap.Error(err))
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// Retry attempts of a watermark update after a serialization conflict.
const (
	retryAttempts = 5
	retryBackoff  = 100 * time.Millisecond
)

// Retryable reports a serialization conflict: SQLSTATE 40001, a deadlock,
// or Redshift's error 1023 ("Serializable isolation violation on table"),
// which it reports as XX000.
func (r *Dialect) Retryable(err error) bool {
	if dialect.SerializationFailure(err) {
		return true
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	text := strings.ToLower(pe.Message + " " + pe.Detail)
	return strings.HasPrefix(strings.TrimSpace(pe.Message), "1023") || strings.Contains(text, "serializable isolation violation")
}

// layout reads a file's footer through ranged reads, once per file.
func (r *Dialect) layout(ctx context.Context, t *schema.Table, f s3store.Object) (pq.Layout, error) {
	r.mu.Lock()
	l, ok := r.layouts[f.Key]
	r.mu.Unlock()
	if ok {
		return l, nil
	}
	rr := &rangeReader{ctx: ctx, store: r.store, key: f.Key, size: f.Size}
	l, err := pq.ReadLayout(rr, f.Size, t)
	if err != nil {
		err = fmt.Errorf("%s: %w", f.Key, err)
		if rr.storeErr == nil { // the footer was read, and is not one the table can take
			err = &dialect.FileError{Key: f.Key, Err: err}
		}
		return l, err
	}
	r.mu.Lock()
	if len(r.layouts) >= r.layoutsMaxLen {
		clear(r.layouts) // loaded files are never asked for again; a rare reset costs a few reads
	}
	r.layouts[f.Key] = l
	r.mu.Unlock()
	return l, nil
}

// rangeReader is an io.ReaderAt over an S3 object. Its first read fetches
// the object's last footerGuess bytes, which hold the whole footer of every
// file wharf writes but very wide ones, so opening a footer costs one GET.
type rangeReader struct {
	ctx     context.Context
	store   Store
	key     string
	size    int64
	tail    []byte
	tailOff int64
	// storeErr is the first error S3 answered, if any: a footer that could
	// not be read is not a file that cannot load.
	storeErr error
}

const footerGuess = 64 << 10

func (rr *rangeReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= rr.size {
		return 0, io.EOF
	}
	if rr.tail == nil {
		rr.tailOff = max(0, rr.size-footerGuess)
		b, err := rr.store.GetRange(rr.ctx, rr.key, rr.tailOff, rr.size-rr.tailOff)
		if err != nil {
			rr.storeErr = err
			return 0, err
		}
		rr.tail = b
	}
	end := off + int64(len(p))
	if off >= rr.tailOff && end <= rr.tailOff+int64(len(rr.tail)) {
		return copy(p, rr.tail[off-rr.tailOff:]), nil
	}
	n := min(int64(len(p)), rr.size-off)
	b, err := rr.store.GetRange(rr.ctx, rr.key, off, n)
	if err != nil {
		rr.storeErr = err
		return 0, err
	}
	c := copy(p, b)
	if c < len(p) {
		return c, io.EOF
	}
	return c, nil
}

// groupFiles splits files by layout, keeping key order within a group and
// the groups in the order of their first file.
func groupFiles(files []s3store.Object, layouts []pq.Layout) []CopyGroup {
	var groups []CopyGroup
	index := map[string]int{}
	for i, f := range files {
		sig := strings.Join(layouts[i].Columns, ",") + "|" + fmt.Sprint(layouts[i].Types)
		g, ok := index[sig]
		if !ok {
			g = len(groups)
			index[sig] = g
			groups = append(groups, CopyGroup{Columns: layouts[i].Columns, Types: layouts[i].Types})
		}
		groups[g].Files = append(groups[g].Files, f)
		groups[g].Rows = append(groups[g].Rows, layouts[i].Rows)
	}
	return groups
}

// Prepare reads the footers of files (one ranged GET each, cached), before
// the merge's transaction begins: no lock is held while S3 answers.
func (r *Dialect) Prepare(ctx context.Context, t *schema.Table, files []s3store.Object) error {
	if err := r.ensureLockTable(ctx, t); err != nil {
		return err
	}
	for _, f := range files {
		if _, err := r.layout(ctx, t, f); err != nil {
			return err
		}
	}
	return nil
}

// TxOptions is the cluster's default isolation (snapshot isolation on new
// clusters, serializable on older ones); Lock serialises the merges.
func (r *Dialect) TxOptions() pgx.TxOptions { return pgx.TxOptions{} }

// Lock locks t's own lock table, never the target: Redshift's LOCK is
// always exclusive, and a lock on the target would make every reader wait;
// nor the ledger, which would make every table's merge wait for the
// slowest.
func (r *Dialect) Lock(ctx context.Context, tx pgx.Tx, t *schema.Table) error {
	_, err := tx.Exec(ctx, rsLockSQL(r.schema, t))
	return err
}

// Stage writes a manifest per file layout and COPYs each into staging; a
// layout whose files hold a column in another type than the table (written
// before a widening) goes through a temporary table of its own types and
// is cast into staging, since COPY does not coerce Parquet types. The
// manifests are removed when Stage returns. A failed COPY rolls the
// transaction back and returns what SYS_LOAD_ERROR_DETAIL says of it.
func (r *Dialect) Stage(ctx context.Context, tx pgx.Tx, t *schema.Table, files []s3store.Object) ([]int64, error) {
	layouts := make([]pq.Layout, len(files))
	for i, f := range files {
		l, err := r.layout(ctx, t, f)
		if err != nil {
			return nil, err
		}
		layouts[i] = l
	}
	groups := groupFiles(files, layouts)
	defer r.removeManifests(context.WithoutCancel(ctx), groups)
	for i := range groups {
		if err := r.putManifest(ctx, t, &groups[i]); err != nil {
			return nil, err
		}
	}
	if err := r.runTx(ctx, tx, rsStagingSQL(t)); err != nil {
		return nil, fmt.Errorf("create staging for %s: %w", t.Name, err)
	}
	rows := map[string]int64{}
	for i, g := range groups {
		into := rsStagingTable
		if g.needsCast(t) {
			into = fmt.Sprintf("%s_%d", rsStagingTable, i)
			if err := r.runTx(ctx, tx, rsGroupStagingSQL(into, g)); err != nil {
				return nil, fmt.Errorf("create staging for older files of %s: %w", t.Name, err)
			}
		}
		copyStart := r.now().UTC()
		if err := r.copy(ctx, tx, t, into, g); err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			return nil, r.copyError(ctx, tx.Conn(), t, g, copyStart, err)
		}
		if into != rsStagingTable {
			if _, err := tx.Exec(ctx, rsCastInsertSQL(t, g, into)); err != nil {
				return nil, fmt.Errorf("cast older files of %s into staging: %w", t.Name, err)
			}
			if err := r.runTx(ctx, tx, "DROP TABLE "+schema.QuoteIdent(into)); err != nil {
				return nil, fmt.Errorf("drop staging for older files of %s: %w", t.Name, err)
			}
		}
		for j, f := range g.Files {
			rows[f.Key] = g.Rows[j]
		}
	}
	out := make([]int64, len(files))
	for i, f := range files {
		out[i] = rows[f.Key]
	}
	return out, nil
}

// copy runs Copy, or COPY from S3 when it is nil.
func (r *Dialect) copy(ctx context.Context, tx pgx.Tx, t *schema.Table, into string, g CopyGroup) error {
	if r.Copy != nil {
		return r.Copy(ctx, tx, t, into, g)
	}
	return r.copyFromS3(ctx, tx, into, g)
}

// Staged reads staging's row count and event_time range.
func (r *Dialect) Staged(ctx context.Context, tx pgx.Tx) (int64, time.Time, time.Time, error) {
	var oldest, newest *time.Time
	var n int64
	if err := tx.QueryRow(ctx, rsWindowSQL()).Scan(&oldest, &newest, &n); err != nil {
		return 0, time.Time{}, time.Time{}, fmt.Errorf("read staging: %w", err)
	}
	if n == 0 || oldest == nil || newest == nil {
		return n, time.Time{}, time.Time{}, nil
	}
	return n, oldest.UTC(), newest.UTC(), nil
}

// Merge inserts the winning staged rows whose key the target does not hold
// among its rows with event_time in [oldest, newest].
func (r *Dialect) Merge(ctx context.Context, tx pgx.Tx, t *schema.Table, oldest, newest time.Time) (added, childRowsRemoved int64, err error) {
	tag, err := tx.Exec(ctx, rsMergeSQL(t, r.schema), dialect.Timestamp(oldest), dialect.Timestamp(newest))
	if err != nil {
		return 0, 0, fmt.Errorf("merge into %s: %w", t.Name, err)
	}
	for _, c := range t.Children {
		gone, err := tx.Exec(ctx, rsChildCleanupSQL(c, r.schema), dialect.Timestamp(oldest), dialect.Timestamp(newest))
		if err != nil {
			return 0, 0, fmt.Errorf("remove rows of %s from another delivery than their parent: %w", c.Name, err)
		}
		childRowsRemoved += gone.RowsAffected()
		if n := gone.RowsAffected(); n > 0 {
			r.log.Info("removed child rows of another delivery than their parent", zap.String("table", c.Name), zap.Int64("rows", n))
		}
	}
	return tag.RowsAffected(), childRowsRemoved, nil
}

// Record inserts the files into the ledger, ledgerInChunk/5 rows a
// statement, and drops staging (Redshift has no ON COMMIT DROP).
func (r *Dialect) Record(ctx context.Context, tx pgx.Tx, t *schema.Table, files []s3store.Object, rows []int64) error {
	loadedAt := dialect.Timestamp(r.now())
	const perStatement = ledgerInChunk / 5
	for start := 0; start < len(files); start += perStatement {
		end := min(start+perStatement, len(files))
		args := make([]any, 0, 5*(end-start))
		for i := start; i < end; i++ {
			args = append(args, files[i].Key, t.Name, rows[i], files[i].Size, loadedAt)
		}
		if _, err := tx.Exec(ctx, rsLedgerInsertSQL(r.schema, end-start), args...); err != nil {
			return fmt.Errorf("record %d files in ledger: %w", end-start, err)
		}
	}
	if err := r.runTx(ctx, tx, rsDropStagingSQL()); err != nil {
		return fmt.Errorf("drop staging for %s: %w", t.Name, err)
	}
	return nil
}

// runTx runs DDL inside the merge's transaction, rewritten like runDDL.
func (r *Dialect) runTx(ctx context.Context, tx pgx.Tx, q string) error {
	if r.DDL != nil {
		q = r.DDL(q)
	}
	_, err := tx.Exec(ctx, q)
	return err
}

// Manifest is a COPY manifest (docs/design.md §6): every file mandatory, with its
// length, which COPY of Parquet requires.
type Manifest struct {
	Entries []ManifestEntry `json:"entries"`
}

// ManifestEntry is one file of a Manifest.
type ManifestEntry struct {
	URL       string       `json:"url"`
	Mandatory bool         `json:"mandatory"`
	Meta      ManifestMeta `json:"meta"`
}

// ManifestMeta is what COPY of Parquet requires of each file.
type ManifestMeta struct {
	ContentLength int64 `json:"content_length"`
}

// manifestJSON returns the manifest of files in bucket.
func manifestJSON(bucket string, files []s3store.Object) []byte {
	m := Manifest{Entries: make([]ManifestEntry, len(files))}
	for i, f := range files {
		m.Entries[i] = ManifestEntry{URL: "s3://" + bucket + "/" + f.Key, Mandatory: true, Meta: ManifestMeta{ContentLength: f.Size}}
	}
	out, _ := json.MarshalIndent(m, "", "  ")
	return append(out, '\n')
}

// ManifestPrefix is where manifests go, under the S3 prefix; each is
// removed once its merge ends, committed or not.
const ManifestPrefix = "_manifests/"

func (r *Dialect) putManifest(ctx context.Context, t *schema.Table, g *CopyGroup) error {
	g.Manifest = r.prefix + ManifestPrefix + t.Name + "/" + ulid.Make().String() + ".manifest"
	body := manifestJSON(r.store.Bucket(), g.Files)
	if err := r.store.Put(ctx, g.Manifest, bytes.NewReader(body), int64(len(body))); err != nil {
		return fmt.Errorf("write manifest for %s: %w", t.Name, err)
	}
	return nil
}

func (r *Dialect) removeManifests(ctx context.Context, groups []CopyGroup) {
	for _, g := range groups {
		if g.Manifest == "" {
			continue
		}
		if err := r.store.Delete(ctx, g.Manifest); err != nil {
			r.log.Warn("could not remove a manifest", zap.String("key", g.Manifest), zap.Error(err))
		}
	}
}

// copyFromS3 is COPY from S3 through the group's manifest.
func (r *Dialect) copyFromS3(ctx context.Context, tx pgx.Tx, into string, g CopyGroup) error {
	_, err := tx.Exec(ctx, rsCopySQL(into, g.Columns, "s3://"+r.store.Bucket()+"/"+g.Manifest, r.iamRole))
	return err
}

// needsCast reports whether g's files hold a column in another type than
// t declares.
func (g CopyGroup) needsCast(t *schema.Table) bool {
	for i, name := range g.Columns {
		if g.Types[i] != t.Columns[t.Column(name)].Type {
			return true
		}
	}
	return false
}

// LoadError is one row of SYS_LOAD_ERROR_DETAIL: why COPY refused a value.
type LoadError struct {
	File    string
	Column  string
	Type    string
	Length  string
	Code    int64
	Message string // the reason; Redshift puts the offending value in it where it can
}

func (e LoadError) String() string {
	s := fmt.Sprintf("file %s column %s", e.File, e.Column)
	if e.Type != "" {
		s += " (" + e.Type
		if e.Length != "" && e.Length != "0" {
			s += "(" + e.Length + ")"
		}
		s += ")"
	}
	return s + fmt.Sprintf(": %s [code %d]", e.Message, e.Code)
}

// copyError reads, after a failed COPY and its rollback, what
// SYS_LOAD_ERROR_DETAIL says of this session's COPY, logs each error and
// returns them in the error.
func (r *Dialect) copyError(ctx context.Context, conn *pgx.Conn, t *schema.Table, g CopyGroup, since time.Time, cause error) error {
	err := fmt.Errorf("copy %d files (manifest s3://%s/%s) into staging for %s: %w", len(g.Files), r.store.Bucket(), g.Manifest, t.Name, cause)
	details, derr := readLoadErrors(ctx, conn, since.Add(-time.Minute))
	if derr != nil {
		r.log.Warn("could not read SYS_LOAD_ERROR_DETAIL", zap.String("table", t.Name), zap.Error(derr))
		return err
	}
	if len(details) == 0 {
		return err
	}
	var parts []string
	for _, d := range details {
		r.log.Error("copy refused a value", zap.String("table", t.Name), zap.String("file", d.File),
			zap.String("column", d.Column), zap.String("column_type", d.Type), zap.Int64("code", d.Code), zap.String("reason", d.Message))
		parts = append(parts, d.String())
	}
	err = fmt.Errorf("%w; load errors: %s", err, strings.Join(parts, "; "))
	// SYS_LOAD_ERROR_DETAIL names the file whose value COPY refused (as
	// its s3:// URL): that file cannot load.
	for _, d := range details {
		for _, f := range g.Files {
			if d.File == f.Key || strings.HasSuffix(d.File, "/"+f.Key) {
				return &dialect.FileError{Key: f.Key, Err: err}
			}
		}
	}
	return err
}

func readLoadErrors(ctx context.Context, conn *pgx.Conn, since time.Time) ([]LoadError, error) {
	rows, err := conn.Query(ctx, rsLoadErrorsSQL(), dialect.Timestamp(since))
	if err != nil {
		return nil, err
	}
	var out []LoadError
	var e LoadError
	_, err = pgx.ForEachRow(rows, []any{&e.File, &e.Column, &e.Type, &e.Length, &e.Code, &e.Message}, func() error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// BatchSize returns how many of pending files one merge takes: all of them
// when they fit max (one COPY per table per load), else the largest
// multiple of the cluster's slice count that fits, so every slice loads as
// many files as the others.
func (r *Dialect) BatchSize(ctx context.Context, pending, max int) int {
	return sliceBatch(pending, max, r.sliceCount(ctx))
}

func sliceBatch(pending, limit, slices int) int {
	if pending <= limit {
		return pending
	}
	if slices <= 1 || limit < slices {
		return limit
	}
	return limit - limit%slices
}

// sliceCount reads the cluster's slices once. Where STV_SLICES cannot be
// read (Redshift Serverless, missing privileges) it is 1: batches are then
// MaxFilesPerLoad files.
func (r *Dialect) sliceCount(ctx context.Context) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.slices > 0 {
		return r.slices
	}
	var n int64
	if err := r.pool.QueryRow(ctx, rsSlicesSQL()).Scan(&n); err != nil || n < 1 {
		if !r.slicesWarned {
			r.slicesWarned = true
			r.log.Warn("could not read the slice count; batches ignore it", zap.Error(err))
		}
		return 1
	}
	r.slices = int(n)
	r.log.Info("cluster slices", zap.Int("slices", r.slices))
	return r.slices
}

// --- SQL text (golden in testdata/redshift.sql) ---

// rsStagingTable is the temporary staging table; Redshift has no ON COMMIT
// DROP, so the merge drops it before committing (a rollback undoes its
// creation).
const rsStagingTable = "wharf_staging"

// rsRankColumn numbers the staged rows of one key. Redshift folds quoted
// identifiers to lower case, so the name holds a space, which no column of
// the schema file can.
const rsRankColumn = `"wharf rank"`

// rsJSONStaging is the staging type of a json column: COPY of Parquet
// refuses a string into SUPER without SERIALIZETOJSON (an option made for
// Parquet's nested types), so it is staged as text and parsed with
// JSON_PARSE by the merge.
const rsJSONStaging = "varchar(65535)"

// rsLockSQL serialises wharf's own merges into t on a one-column table of
// t's own (Redshift has no advisory lock and no row lock). Redshift's LOCK
// is always exclusive, so the target is never named: an analyst's SELECT on
// it neither waits for a merge nor holds one up (the merge's INSERT takes
// only a write lock, which readers do not conflict with); and the ledger is
// not locked either, so a table stuck on a lock or a long COPY holds up no
// other table's merge (their ledger inserts, at the end, write to the same
// table and wait only for each other's commit). Every write wharf makes to
// t happens under this lock, so two merges into t never interleave.
func rsLockSQL(dbSchema string, t *schema.Table) string {
	return "LOCK " + schema.QualifiedName(dbSchema, rsLockTable(t))
}

// rsLockTable names t's lock table: wharf_lock_TABLE, or, for a name too
// long for that, its first bytes and a hash of the whole.
func rsLockTable(t *schema.Table) string {
	name := "wharf_lock_" + t.Name
	if len(name) <= schema.MaxIdentifier {
		return name
	}
	h := fnv.New32a()
	h.Write([]byte(t.Name))
	return fmt.Sprintf("%s_%08x", name[:schema.MaxIdentifier-9], h.Sum32())
}

func rsCreateLockTableSQL(dbSchema string, t *schema.Table) string {
	return "CREATE TABLE IF NOT EXISTS " + schema.QualifiedName(dbSchema, rsLockTable(t)) + " (\"locked\" integer)"
}

func rsLoadedSQL(dbSchema string, n int) string {
	return fmt.Sprintf(`SELECT "file_key" FROM %s WHERE "file_key" IN (%s)`, schema.QualifiedName(dbSchema, schema.LedgerTable), placeholders(1, n))
}

func placeholders(from, n int) string {
	p := make([]string, n)
	for i := range p {
		p[i] = fmt.Sprintf("$%d", from+i)
	}
	return strings.Join(p, ", ")
}

func rsStagingSQL(t *schema.Table) string {
	names := make([]string, len(t.Columns))
	types := make([]schema.Type, len(t.Columns))
	for i, c := range t.Columns {
		names[i], types[i] = c.Name, c.Type
	}
	return rsTempTableSQL(rsStagingTable, names, types)
}

// rsGroupStagingSQL creates the staging table of a group of files that hold
// a column in another type than the table: its columns are the files', in
// the files' types.
func rsGroupStagingSQL(name string, g CopyGroup) string {
	return rsTempTableSQL(name, g.Columns, g.Types)
}

func rsTempTableSQL(name string, columns []string, types []schema.Type) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TEMP TABLE %s (\n", schema.QuoteIdent(name))
	for i, c := range columns {
		fmt.Fprintf(&b, "  %s %s", schema.QuoteIdent(c), rsStageType(types[i]))
		if i < len(columns)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString(")")
	return b.String()
}

// rsStageType is the type a column of type t is staged as.
func rsStageType(t schema.Type) string {
	if t.Kind == schema.JSON {
		return rsJSONStaging
	}
	return schema.ColumnSQLType(t, schema.Redshift)
}

// rsCastInsertSQL moves the rows of a group's own staging table into
// staging, casting each column whose type differs from the table's.
func rsCastInsertSQL(t *schema.Table, g CopyGroup, from string) string {
	cols := make([]string, len(g.Columns))
	sel := make([]string, len(g.Columns))
	for i, name := range g.Columns {
		cols[i] = schema.QuoteIdent(name)
		sel[i] = cols[i]
		if want := t.Columns[t.Column(name)].Type; g.Types[i] != want {
			sel[i] = fmt.Sprintf("CAST(%s AS %s)", cols[i], rsStageType(want))
		}
	}
	return fmt.Sprintf("INSERT INTO %s (%s)\nSELECT %s FROM %s", schema.QuoteIdent(rsStagingTable),
		strings.Join(cols, ", "), strings.Join(sel, ", "), schema.QuoteIdent(from))
}

// rsCopySQL loads the files of a manifest into staging. Only parameters
// COPY of Parquet accepts: no MAXERROR, no REGION, no COMPUPDATE;
// STATUPDATE OFF skips the statistics COPY would otherwise compute on the
// empty staging table at every load.
func rsCopySQL(into string, columns []string, manifestURL, iamRole string) string {
	q := make([]string, len(columns))
	for i, c := range columns {
		q[i] = schema.QuoteIdent(c)
	}
	return fmt.Sprintf("COPY %s (%s)\nFROM %s\nIAM_ROLE %s\nFORMAT AS PARQUET\nMANIFEST\nSTATUPDATE OFF",
		schema.QuoteIdent(into), strings.Join(q, ", "), sqlLiteral(manifestURL), iamRoleSQL(iamRole))
}

// iamRoleSQL is COPY's IAM_ROLE argument: the keyword default, or the
// quoted ARN (or chain of ARNs).
func iamRoleSQL(role string) string {
	if role == IAMRoleDefault {
		return IAMRoleDefault
	}
	return sqlLiteral(role)
}

// sqlLiteral quotes s as a string literal. Config.Validate keeps quotes and
// backslashes out of what reaches it (Redshift treats a backslash in a
// literal as an escape, PostgreSQL does not).
func sqlLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func rsWindowSQL() string {
	c := schema.QuoteIdent(schema.ColEventTime)
	return fmt.Sprintf("SELECT min(%s), max(%s), count(*) FROM %s", c, c, schema.QuoteIdent(rsStagingTable))
}

// rsMergeSQL inserts the staged rows that rank first for their key and
// whose key the target does not hold among its rows with event_time in
// [$1, $2], the batch's window: a duplicate has the same event time as its
// first copy (the envelope's time, or SQS's first-receive time), so the
// window finds it, and with event_time leading the sort key Redshift reads
// only the blocks of that window. A parent keeps its earliest delivery.
func rsMergeSQL(t *schema.Table, dbSchema string) string {
	if t.IsChild() {
		return rsChildMergeSQL(t, dbSchema)
	}
	cols := make([]string, len(t.Columns))
	sel := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = schema.QuoteIdent(c.Name)
		sel[i] = "d." + cols[i]
		if c.Type.Kind == schema.JSON {
			sel[i] = "JSON_PARSE(" + sel[i] + ")"
		}
	}
	key := make([]string, len(t.Key()))
	match := make([]string, len(t.Key()))
	for i, k := range t.Key() {
		key[i] = schema.QuoteIdent(k)
		match[i] = fmt.Sprintf("t.%s = d.%s", key[i], key[i])
	}
	order := []string{schema.QuoteIdent(schema.ColEventTime)}
	if t.Column(schema.ColReceivedAt) >= 0 {
		order = []string{schema.QuoteIdent(schema.ColReceivedAt), schema.QuoteIdent(schema.ColEventTime)}
	}
	et := schema.QuoteIdent(schema.ColEventTime)
	target := schema.QualifiedName(dbSchema, t.Name)
	return fmt.Sprintf(`INSERT INTO %s (%s)
SELECT %s
FROM (
  SELECT s.*, ROW_NUMBER() OVER (PARTITION BY %s ORDER BY %s) AS %s
  FROM %s s
) d
LEFT JOIN (
  SELECT %s FROM %s
  WHERE %s BETWEEN CAST($1 AS timestamp) AND CAST($2 AS timestamp)
) t ON %s
WHERE d.%s = 1
  AND t.%s IS NULL`,
		target, strings.Join(cols, ", "),
		strings.Join(sel, ", "),
		strings.Join(key, ", "), strings.Join(order, ", "), rsRankColumn,
		schema.QuoteIdent(rsStagingTable),
		strings.Join(key, ", "), target,
		et,
		strings.Join(match, " AND "),
		rsRankColumn, key[0])
}

// rsChildMergeSQL is rsMergeSQL for a child table: the staged rows first
// for their key and delivery (received_at) that the target does not hold
// from that delivery, and whose parent, when the target holds it (within the
// window), came from the same delivery. A row whose parent is not loaded
// yet goes in; the parent's merge deletes it if the parent came from
// another delivery (rsChildCleanupSQL). A row of a file written before
// child tables carried received_at (NULL) is deduplicated on its key alone.
func rsChildMergeSQL(t *schema.Table, dbSchema string) string {
	cols := make([]string, len(t.Columns))
	sel := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = schema.QuoteIdent(c.Name)
		sel[i] = "d." + cols[i]
		if c.Type.Kind == schema.JSON {
			sel[i] = "JSON_PARSE(" + sel[i] + ")"
		}
	}
	id, idx, rec, et := schema.QuoteIdent(schema.ColEventID), schema.QuoteIdent(schema.ColIndex), schema.QuoteIdent(schema.ColReceivedAt), schema.QuoteIdent(schema.ColEventTime)
	return fmt.Sprintf(`INSERT INTO %[1]s (%[2]s)
SELECT %[3]s
FROM (
  SELECT s.*, ROW_NUMBER() OVER (PARTITION BY %[4]s, %[5]s, %[6]s ORDER BY %[7]s) AS %[8]s
  FROM %[9]s s
) d
LEFT JOIN (
  SELECT %[4]s, %[5]s, %[6]s FROM %[1]s
  WHERE %[7]s BETWEEN CAST($1 AS timestamp) AND CAST($2 AS timestamp)
) t ON t.%[4]s = d.%[4]s AND t.%[5]s = d.%[5]s AND (d.%[6]s IS NULL OR t.%[6]s IS NULL OR t.%[6]s = d.%[6]s)
LEFT JOIN (
  SELECT %[4]s, %[6]s FROM %[10]s
  WHERE %[7]s BETWEEN CAST($1 AS timestamp) AND CAST($2 AS timestamp)
) p ON p.%[4]s = d.%[4]s AND d.%[6]s IS NOT NULL AND p.%[6]s <> d.%[6]s
WHERE d.%[8]s = 1
  AND t.%[4]s IS NULL
  AND p.%[4]s IS NULL`,
		schema.QualifiedName(dbSchema, t.Name), strings.Join(cols, ", "), strings.Join(sel, ", "),
		id, idx, rec, et, rsRankColumn, schema.QuoteIdent(rsStagingTable), schema.QualifiedName(dbSchema, t.Parent.Name))
}

// rsChildCleanupSQL deletes, after a parent's merge, the rows of child
// table c whose parent (an event of this batch, within its window) came from
// another delivery: rows that loaded before their parent.
func rsChildCleanupSQL(c *schema.Table, dbSchema string) string {
	id, rec, et := schema.QuoteIdent(schema.ColEventID), schema.QuoteIdent(schema.ColReceivedAt), schema.QuoteIdent(schema.ColEventTime)
	child, parent := schema.QualifiedName(dbSchema, c.Name), schema.QualifiedName(dbSchema, c.Parent.Name)
	return fmt.Sprintf(`DELETE FROM %[1]s USING %[2]s
WHERE %[1]s.%[3]s = %[2]s.%[3]s AND %[1]s.%[4]s <> %[2]s.%[4]s
  AND %[2]s.%[5]s BETWEEN CAST($1 AS timestamp) AND CAST($2 AS timestamp)
  AND %[2]s.%[3]s IN (SELECT %[3]s FROM %[6]s)`, child, parent, id, rec, et, schema.QuoteIdent(rsStagingTable))
}

// rsLedgerInsertSQL records n files: per file $k file_key, $k+1 table,
// $k+2 rows, $k+3 bytes, $k+4 loaded_at (UTC, as text).
func rsLedgerInsertSQL(dbSchema string, n int) string {
	vals := make([]string, n)
	for i := range vals {
		k := 5*i + 1
		vals[i] = fmt.Sprintf("($%d, $%d, $%d, $%d, CAST($%d AS timestamp))", k, k+1, k+2, k+3, k+4)
	}
	return fmt.Sprintf("INSERT INTO %s (\"file_key\", \"table_name\", \"rows\", \"bytes\", \"loaded_at\") VALUES\n%s",
		schema.QualifiedName(dbSchema, schema.LedgerTable), strings.Join(vals, ",\n"))
}

func rsDropStagingSQL() string { return "DROP TABLE " + schema.QuoteIdent(rsStagingTable) }

func rsWatermarkSQL(dbSchema string) string {
	return fmt.Sprintf(`SELECT CAST("day" AS varchar(10)) FROM %s WHERE "table_name" = $1`, schema.QualifiedName(dbSchema, schema.WatermarksTable))
}

func rsLockWatermarksSQL(dbSchema string) string {
	return "LOCK " + schema.QualifiedName(dbSchema, schema.WatermarksTable)
}

func rsWatermarkInsertSQL(dbSchema string) string {
	return fmt.Sprintf(`INSERT INTO %s ("table_name", "day") VALUES ($1, CAST($2 AS date))`, schema.QualifiedName(dbSchema, schema.WatermarksTable))
}

func rsWatermarkUpdateSQL(dbSchema string) string {
	return fmt.Sprintf(`UPDATE %s SET "day" = CAST($1 AS date) WHERE "table_name" = $2`, schema.QualifiedName(dbSchema, schema.WatermarksTable))
}

func rsSlicesSQL() string { return "SELECT count(*) FROM stv_slices" }

// rsLoadErrorsSQL reads this session's COPY errors since $1 (UTC).
func rsLoadErrorsSQL() string {
	return `SELECT coalesce(trim(file_name), ''), coalesce(trim(column_name), ''), coalesce(trim(column_type), ''),
  coalesce(trim(column_length), ''), coalesce(error_code, 0), coalesce(trim(error_message), '')
FROM sys_load_error_detail
WHERE session_id = pg_backend_pid() AND start_time >= CAST($1 AS timestamp)
ORDER BY start_time
LIMIT 20`
}

// Catalog reads information_schema as on PostgreSQL; a column it reports
// as USER-DEFINED (how it may name SUPER) takes its type from SVV_COLUMNS,
// Redshift's own view of every column.
func (r *Dialect) Catalog(ctx context.Context) (*schema.Catalog, error) {
	cat, err := dialect.ReadCatalog(ctx, r.pool, r.schema)
	if err != nil || !hasUserDefined(cat) {
		return cat, err
	}
	rows, err := r.pool.Query(ctx, rsSVVColumnsSQL, r.schema)
	if err != nil {
		return nil, fmt.Errorf("list columns of schema %s from svv_columns: %w", r.schema, err)
	}
	types := map[[2]string]string{}
	var table, column, typ string
	if _, err := pgx.ForEachRow(rows, []any{&table, &column, &typ}, func() error {
		types[[2]string{table, column}] = strings.ToLower(typ)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list columns of schema %s from svv_columns: %w", r.schema, err)
	}
	resolveUserDefined(cat, types)
	return cat, nil
}

// rsSVVColumnsSQL lists the columns of schema $1 that information_schema
// reports as USER-DEFINED, with the type SVV_COLUMNS gives them.
const rsSVVColumnsSQL = `SELECT CAST(table_name AS varchar(128)), CAST(column_name AS varchar(128)), CAST(data_type AS varchar(128))
FROM svv_columns
WHERE table_schema = CAST($1 AS varchar(128))`

func hasUserDefined(cat *schema.Catalog) bool {
	for _, cols := range cat.Tables {
		for _, c := range cols {
			if c.DataType == userDefined {
				return true
			}
		}
	}
	return false
}

// userDefined is information_schema's data_type for a type it does not name.
const userDefined = "USER-DEFINED"

// resolveUserDefined replaces each USER-DEFINED data_type of cat with the
// one types gives its table and column, when it gives one.
func resolveUserDefined(cat *schema.Catalog, types map[[2]string]string) {
	for table, cols := range cat.Tables {
		for i, c := range cols {
			if t, ok := types[[2]string{table, c.Name}]; ok && c.DataType == userDefined {
				cols[i].DataType = t
			}
		}
	}
}

// Execute runs each change on its own: an atomic one in a transaction, the
// rest statement by statement, since Redshift runs ALTER COLUMN … TYPE only
// outside a transaction block. A failure stops the plan; the changes before
// it stay, and a new plan shows what is left.
func (r *Dialect) Execute(ctx context.Context, plan *schema.Plan) error {
	for _, c := range plan.Changes {
		var err error
		if c.Atomic {
			err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
				for _, q := range c.SQL {
					if err := r.runTx(ctx, tx, q); err != nil {
						return err
					}
				}
				return nil
			})
		} else {
			for _, q := range c.SQL {
				if err = r.runDDL(ctx, q); err != nil {
					break
				}
			}
			if err != nil && len(c.Fallback) > 0 {
				r.log.Warn("ALTER COLUMN TYPE refused; rebuilding the column instead", zap.String("table", c.Table), zap.String("column", c.Column), zap.Error(err))
				err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
					for _, q := range c.Fallback {
						if err := r.runTx(ctx, tx, q); err != nil {
							return err
						}
					}
					return nil
				})
			}
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", c.Kind, c.Table, err)
		}
	}
	return nil
}
