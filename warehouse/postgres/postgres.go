// Package postgres is the loader's PostgreSQL dialect (docs/design.md §6):
// staging is filled by reading each Parquet file back from S3 and streaming
// its rows with COPY FROM STDIN; the merge checks a key against the whole
// target through its primary key.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/wharfdata/wharf/internal/pq"
	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse/dialect"
)

// Store is what the dialect needs from S3: reading whole files.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, error)
}

var _ Store = (*s3store.Store)(nil)

// Dialect is the PostgreSQL dialect.
type Dialect struct {
	pool   *pgxpool.Pool
	store  Store
	schema string
	log    *zap.Logger
}

var _ dialect.Dialect = (*Dialect)(nil)

// stagingTable is the temporary table a merge fills; it lives in pg_temp and
// is dropped at the end of the merge's transaction.
const stagingTable = dialect.StagingTable

// applyLockKey is the advisory lock that serializes Apply across processes:
// concurrent CREATE TABLE IF NOT EXISTS of one name can fail in PostgreSQL.
const applyLockKey = 0x77686172660001 // "wharf" 0001

// New returns the dialect for warehouse schema dbSchema. It refuses a schema
// file with a name PostgreSQL would truncate. log may be nil.
func New(pool *pgxpool.Pool, store Store, dbSchema string, sch *schema.Schema, log *zap.Logger) (*Dialect, error) {
	if err := CheckNames(sch); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Dialect{pool: pool, store: store, schema: dbSchema, log: log}, nil
}

// MaxIdentifier is PostgreSQL's NAMEDATALEN - 1: longer names are silently
// truncated, so two names sharing their first 63 bytes would collide and
// apply would try to add an existing column on every start.
const MaxIdentifier = 63

// CheckNames refuses a schema file with a table or column name longer than
// PostgreSQL keeps.
func CheckNames(sch *schema.Schema) error {
	for _, t := range sch.All() {
		if len(t.Name) > MaxIdentifier {
			return fmt.Errorf("schema: table %q (line %d) is %d bytes; PostgreSQL truncates names to %d", t.Name, t.Line, len(t.Name), MaxIdentifier)
		}
		for _, c := range t.Columns {
			if len(c.Name) > MaxIdentifier {
				return fmt.Errorf("schema: column %s.%s (line %d) is %d bytes; PostgreSQL truncates names to %d", t.Name, c.Name, c.Line, len(c.Name), MaxIdentifier)
			}
		}
	}
	return nil
}

func (p *Dialect) qualified(name string) string { return schema.QualifiedName(p.schema, name) }

// Apply creates what is missing under an advisory lock, in one transaction.
func (p *Dialect) Apply(ctx context.Context, tables []*schema.Table) error {
	return pgx.BeginTxFunc(ctx, p.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(applyLockKey)); err != nil {
			return fmt.Errorf("take apply lock: %w", err)
		}
		// CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege on the
		// database even when the schema exists, so look first.
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", p.schema).Scan(&exists); err != nil {
			return fmt.Errorf("look up schema %s: %w", p.schema, err)
		}
		if !exists {
			if _, err := tx.Exec(ctx, schema.CreateSchemaSQL(p.schema)); err != nil {
				return fmt.Errorf("create schema %s: %w", p.schema, err)
			}
		}
		have, err := p.columns(ctx, tx)
		if err != nil {
			return err
		}
		for _, t := range tables {
			cols, ok := have[t.Name]
			if !ok {
				if _, err := tx.Exec(ctx, schema.CreateTableSQL(t, schema.Postgres, p.schema)); err != nil {
					return fmt.Errorf("create table %s: %w", t.Name, err)
				}
				p.log.Info("created table", zap.String("table", t.Name))
				continue
			}
			for _, c := range t.Columns {
				if cols[c.Name] {
					continue
				}
				if _, err := tx.Exec(ctx, schema.AddColumnSQL(t, c, schema.Postgres, p.schema)); err != nil {
					return fmt.Errorf("add column %s.%s: %w", t.Name, c.Name, err)
				}
				p.log.Info("added column", zap.String("table", t.Name), zap.String("column", c.Name))
			}
		}
		for _, q := range schema.LedgerSQL(schema.Postgres, p.schema) {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("create ledger: %w", err)
			}
		}
		return nil
	})
}

// columns returns the columns of every table in the warehouse schema.
func (p *Dialect) columns(ctx context.Context, tx pgx.Tx) (map[string]map[string]bool, error) {
	rows, err := tx.Query(ctx, "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = $1", p.schema)
	if err != nil {
		return nil, fmt.Errorf("list columns of schema %s: %w", p.schema, err)
	}
	have := map[string]map[string]bool{}
	var table, column string
	_, err = pgx.ForEachRow(rows, []any{&table, &column}, func() error {
		if have[table] == nil {
			have[table] = map[string]bool{}
		}
		have[table][column] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list columns of schema %s: %w", p.schema, err)
	}
	return have, nil
}

const ledgerChunk = 10_000

// Loaded looks keys up in the ledger, 10,000 at a time.
func (p *Dialect) Loaded(ctx context.Context, q dialect.Querier, keys []string) (map[string]bool, error) {
	done := map[string]bool{}
	sql := fmt.Sprintf(`SELECT "file_key" FROM %s WHERE "file_key" = ANY($1)`, p.qualified(schema.LedgerTable))
	for chunk := range slices.Chunk(keys, ledgerChunk) {
		rows, err := q.Query(ctx, sql, chunk)
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
func (p *Dialect) Watermark(ctx context.Context, table string) (time.Time, bool, error) {
	var day pgtype.Date
	err := p.pool.QueryRow(ctx, fmt.Sprintf(`SELECT "day" FROM %s WHERE "table_name" = $1`, p.qualified(schema.WatermarksTable)), table).Scan(&day)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read watermark: %w", err)
	}
	return day.Time, day.Valid, nil
}

// AdvanceWatermark raises the watermark with an upsert that keeps the greater day.
func (p *Dialect) AdvanceWatermark(ctx context.Context, table string, day time.Time) error {
	sql := fmt.Sprintf(`INSERT INTO %s AS w ("table_name", "day") VALUES ($1, $2)
ON CONFLICT ("table_name") DO UPDATE SET "day" = GREATEST(w."day", EXCLUDED."day")`, p.qualified(schema.WatermarksTable))
	if _, err := p.pool.Exec(ctx, sql, table, pgtype.Date{Time: day, Valid: true}); err != nil {
		return fmt.Errorf("advance watermark: %w", err)
	}
	return nil
}

// BatchSize is every pending file, up to max.
func (p *Dialect) BatchSize(_ context.Context, pending, max int) int { return min(pending, max) }

// Prepare does nothing: Stage reads each file whole.
func (p *Dialect) Prepare(context.Context, *schema.Table, []s3store.Object) error { return nil }

// TxOptions is READ COMMITTED: the lock serialises merges, and the ledger
// and the NOT EXISTS check read what committed before it was granted.
func (p *Dialect) TxOptions() pgx.TxOptions { return pgx.TxOptions{IsoLevel: pgx.ReadCommitted} }

// Lock takes SHARE ROW EXCLUSIVE on the target, which serialises its
// loaders and leaves readers (ACCESS SHARE) alone.
func (p *Dialect) Lock(ctx context.Context, tx pgx.Tx, t *schema.Table) error {
	_, err := tx.Exec(ctx, lockSQL(t, p.schema))
	return err
}

// Stage creates staging like the target and copies every row of files into
// it.
func (p *Dialect) Stage(ctx context.Context, tx pgx.Tx, t *schema.Table, files []s3store.Object) ([]int64, error) {
	if _, err := tx.Exec(ctx, stagingSQL(t, p.schema)); err != nil {
		return nil, fmt.Errorf("create staging for %s: %w", t.Name, err)
	}
	return p.copyFiles(ctx, tx, t, files)
}

// Staged reads staging's row count and event_time range.
func (p *Dialect) Staged(ctx context.Context, tx pgx.Tx) (int64, time.Time, time.Time, error) {
	var n int64
	var oldest, newest time.Time
	if err := tx.QueryRow(ctx, stagedSQL()).Scan(&n, &oldest, &newest); err != nil {
		return 0, time.Time{}, time.Time{}, fmt.Errorf("read staging: %w", err)
	}
	if n == 0 {
		return 0, time.Time{}, time.Time{}, nil
	}
	return n, oldest.UTC(), newest.UTC(), nil
}

// Merge inserts the winning staged rows whose key the target lacks,
// checked against the whole target through its primary key (the window is
// not needed).
func (p *Dialect) Merge(ctx context.Context, tx pgx.Tx, t *schema.Table, _, _ time.Time) (added, childRowsRemoved int64, err error) {
	tag, err := tx.Exec(ctx, mergeSQL(t, p.schema))
	if err != nil {
		return 0, 0, fmt.Errorf("merge into %s: %w", t.Name, err)
	}
	for _, c := range t.Children {
		gone, err := tx.Exec(ctx, childCleanupSQL(c, p.schema))
		if err != nil {
			return 0, 0, fmt.Errorf("remove rows of %s from another delivery than their parent: %w", c.Name, err)
		}
		childRowsRemoved += gone.RowsAffected()
		if n := gone.RowsAffected(); n > 0 {
			p.log.Info("removed child rows of another delivery than their parent", zap.String("table", c.Name), zap.Int64("rows", n))
		}
	}
	return tag.RowsAffected(), childRowsRemoved, nil
}

// Record inserts every file into the ledger in one statement; staging
// drops itself at commit.
func (p *Dialect) Record(ctx context.Context, tx pgx.Tx, t *schema.Table, files []s3store.Object, rows []int64) error {
	keys := make([]string, len(files))
	sizes := make([]int64, len(files))
	for i, f := range files {
		keys[i], sizes[i] = f.Key, f.Size
	}
	if _, err := tx.Exec(ctx, ledgerInsertSQL(p.schema), keys, t.Name, rows, sizes); err != nil {
		return fmt.Errorf("record %d files in ledger: %w", len(files), err)
	}
	return nil
}

// Retryable is a serialization failure or a deadlock.
func (p *Dialect) Retryable(err error) bool { return dialect.SerializationFailure(err) }

// Catalog reads information_schema.
func (p *Dialect) Catalog(ctx context.Context) (*schema.Catalog, error) {
	return dialect.ReadCatalog(ctx, p.pool, p.schema)
}

// Execute runs every change in one transaction under the apply lock, so a
// plan applies whole or not at all.
func (p *Dialect) Execute(ctx context.Context, plan *schema.Plan) error {
	return pgx.BeginTxFunc(ctx, p.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(applyLockKey)); err != nil {
			return fmt.Errorf("take apply lock: %w", err)
		}
		for _, c := range plan.Changes {
			for _, q := range c.SQL {
				if _, err := tx.Exec(ctx, q); err != nil {
					return fmt.Errorf("%s %s: %w", c.Kind, c.Table, err)
				}
			}
		}
		return nil
	})
}

// fetched is one file read from S3.
type fetched struct {
	obj  s3store.Object
	data []byte
	err  error
}

// copyFiles streams the rows of files into staging and returns each file's
// row count. One goroutine reads the next file from S3 while the current one
// is copied; copyFiles stops it and waits for it before returning.
func (p *Dialect) copyFiles(ctx context.Context, tx pgx.Tx, t *schema.Table, files []s3store.Object) ([]int64, error) {
	fctx, cancel := context.WithCancel(ctx)
	ch := make(chan fetched, 1)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for _, f := range files {
			data, err := p.store.Get(fctx, f.Key)
			select {
			case ch <- fetched{obj: f, data: data, err: err}:
			case <-fctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		cancel()
		<-stopped
	}()

	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = c.Name
	}
	src := newRowSource(t)
	counts := make([]int64, 0, len(files))
	for range files {
		var f fetched
		select {
		case f = <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if f.err != nil {
			return nil, f.err
		}
		r, err := pq.Open(f.data, t)
		if err != nil {
			return nil, &dialect.FileError{Key: f.obj.Key, Err: fmt.Errorf("%s: %w", f.obj.Key, err)}
		}
		src.reset(r)
		n, err := tx.CopyFrom(ctx, pgx.Identifier{"pg_temp", stagingTable}, cols, src)
		if cerr := r.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			err = fmt.Errorf("copy %s into staging for %s: %w", f.obj.Key, t.Name, err)
			if src.err != nil || dataException(err) {
				// The file's own fault: a page that does not decode, or a
				// value PostgreSQL refuses.
				err = &dialect.FileError{Key: f.obj.Key, Err: err}
			}
			return nil, err
		}
		if n != r.NumRows() {
			return nil, &dialect.FileError{Key: f.obj.Key, Err: fmt.Errorf("copy %s into staging for %s: copied %d rows of %d", f.obj.Key, t.Name, n, r.NumRows())}
		}
		counts = append(counts, n)
	}
	return counts, nil
}

// dataException reports PostgreSQL's class 22 (data exception: a value too
// long, out of range, invalid text): the value's fault, not the server's.
func dataException(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && strings.HasPrefix(pe.Code, "22")
}

// rowSource feeds one Parquet file's rows to CopyFrom, converting each value
// to the Go type pgx encodes for its column.
type rowSource struct {
	r    *pq.Reader
	conv []func(schema.Value) (any, error)
	vals []schema.Value
	row  []any
	err  error
}

var _ pgx.CopyFromSource = (*rowSource)(nil)

func newRowSource(t *schema.Table) *rowSource {
	s := &rowSource{
		conv: make([]func(schema.Value) (any, error), len(t.Columns)),
		vals: make([]schema.Value, len(t.Columns)),
		row:  make([]any, len(t.Columns)),
	}
	for i, c := range t.Columns {
		s.conv[i] = Converter(c.Type)
	}
	return s
}

func (s *rowSource) reset(r *pq.Reader) { s.r, s.err = r, nil }

func (s *rowSource) Next() bool {
	if err := s.r.Read(s.vals); err != nil {
		if !errors.Is(err, io.EOF) {
			s.err = err
		}
		return false
	}
	for i, v := range s.vals {
		if v.Null {
			s.row[i] = nil
			continue
		}
		x, err := s.conv[i](v)
		if err != nil {
			s.err = err
			return false
		}
		s.row[i] = x
	}
	return true
}

// Values returns the current row; pgx encodes it before the next Next, so
// the slice is reused.
func (s *rowSource) Values() ([]any, error) { return s.row, nil }

func (s *rowSource) Err() error { return s.err }

// Converter returns the function turning a non-NULL schema.Value of type t
// into the value pgx sends for the column's PostgreSQL type.
func Converter(t schema.Type) func(schema.Value) (any, error) {
	switch t.Kind {
	case schema.Boolean:
		return func(v schema.Value) (any, error) { return v.I != 0, nil }
	case schema.Smallint, schema.Integer, schema.Bigint:
		// pgx checks the range of an int64 against int2 and int4.
		return func(v schema.Value) (any, error) { return v.I, nil }
	case schema.Real:
		return func(v schema.Value) (any, error) { return float32(v.Float()), nil }
	case schema.Double:
		return func(v schema.Value) (any, error) { return v.Float(), nil }
	case schema.Decimal:
		exp := int32(-t.Scale)
		if t.Precision <= 18 {
			return func(v schema.Value) (any, error) {
				return pgtype.Numeric{Int: big.NewInt(v.I), Exp: exp, Valid: true}, nil
			}
		}
		return func(v schema.Value) (any, error) {
			n, ok := new(big.Int).SetString(v.S, 10)
			if !ok {
				return nil, fmt.Errorf("decimal %q is not an unscaled integer", v.S)
			}
			return pgtype.Numeric{Int: n, Exp: exp, Valid: true}, nil
		}
	case schema.Varchar:
		return func(v schema.Value) (any, error) { return v.S, nil }
	case schema.JSON:
		// pgx sends a string to a jsonb column as JSON text, unchanged.
		return func(v schema.Value) (any, error) { return v.S, nil }
	case schema.Timestamp:
		return func(v schema.Value) (any, error) { return time.UnixMicro(v.I).UTC(), nil }
	case schema.Date:
		return func(v schema.Value) (any, error) {
			return pgtype.Date{Time: time.Unix(v.I*86400, 0).UTC(), Valid: true}, nil
		}
	}
	return func(schema.Value) (any, error) { return nil, fmt.Errorf("no PostgreSQL value for column type %s", t) }
}

// --- SQL text ---

// lockSQL locks t, and a parent's child tables, whose rows of another
// delivery its merge deletes.
func lockSQL(t *schema.Table, dbSchema string) string {
	names := []string{schema.QualifiedName(dbSchema, t.Name)}
	for _, c := range t.Children {
		names = append(names, schema.QualifiedName(dbSchema, c.Name))
	}
	return "LOCK TABLE " + strings.Join(names, ", ") + " IN SHARE ROW EXCLUSIVE MODE"
}

func stagingSQL(t *schema.Table, dbSchema string) string {
	return fmt.Sprintf("CREATE TEMP TABLE %s (LIKE %s) ON COMMIT DROP",
		schema.QuoteIdent(stagingTable), schema.QualifiedName(dbSchema, t.Name))
}

// rankColumn numbers the staged rows of one key; upper case, it cannot clash
// with a column of the schema file.
const rankColumn = `"Wharf_Rank"`

// mergeSQL inserts the staged rows that rank first for their key and whose
// key the target does not hold: a parent keeps its earliest delivery
// (received_at). A child table's rows follow their parent (childMergeSQL).
func mergeSQL(t *schema.Table, dbSchema string) string {
	if t.IsChild() {
		return childMergeSQL(t, dbSchema)
	}
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = schema.QuoteIdent(c.Name)
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
	target := schema.QualifiedName(dbSchema, t.Name)
	list := strings.Join(cols, ", ")
	return fmt.Sprintf(`INSERT INTO %s (%s)
SELECT %s
FROM (
  SELECT s.*, row_number() OVER (PARTITION BY %s ORDER BY %s) AS %s
  FROM pg_temp.%s s
) d
WHERE d.%s = 1
  AND NOT EXISTS (SELECT 1 FROM %s t WHERE %s)`,
		target, list, list,
		strings.Join(key, ", "), strings.Join(order, ", "), rankColumn,
		schema.QuoteIdent(stagingTable),
		rankColumn, target, strings.Join(match, " AND "))
}

// childMergeSQL inserts the staged rows of a child table that are first for
// their key and delivery (received_at) and whose parent, when the target
// holds it, came from the same delivery; a row of another delivery is a
// duplicate. A row whose parent is not loaded yet goes in, and the parent's
// merge deletes it if the parent came from another delivery
// (childCleanupSQL): so a parent and all of its children come from one
// delivery, whichever file loads first. A row of a file written before
// child tables carried received_at (NULL) is deduplicated on its key alone.
func childMergeSQL(t *schema.Table, dbSchema string) string {
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = schema.QuoteIdent(c.Name)
	}
	list := strings.Join(cols, ", ")
	id, idx, rec := schema.QuoteIdent(schema.ColEventID), schema.QuoteIdent(schema.ColIndex), schema.QuoteIdent(schema.ColReceivedAt)
	target, parent := schema.QualifiedName(dbSchema, t.Name), schema.QualifiedName(dbSchema, t.Parent.Name)
	return fmt.Sprintf(`INSERT INTO %[1]s (%[2]s)
SELECT %[2]s
FROM (
  SELECT s.*, row_number() OVER (PARTITION BY %[3]s, %[4]s, %[5]s ORDER BY %[6]s) AS %[7]s
  FROM pg_temp.%[8]s s
) d
WHERE d.%[7]s = 1
  AND NOT EXISTS (SELECT 1 FROM %[1]s t WHERE t.%[3]s = d.%[3]s AND t.%[4]s = d.%[4]s
    AND (d.%[5]s IS NULL OR t.%[5]s IS NULL OR t.%[5]s = d.%[5]s))
  AND (d.%[5]s IS NULL OR NOT EXISTS (SELECT 1 FROM %[9]s p WHERE p.%[3]s = d.%[3]s AND p.%[5]s <> d.%[5]s))`,
		target, list, id, idx, rec, schema.QuoteIdent(schema.ColEventTime), rankColumn, schema.QuoteIdent(stagingTable), parent)
}

// childCleanupSQL deletes, after a parent's merge, the rows of child table c
// whose parent (an event of this batch) came from another delivery: rows
// that loaded before their parent.
func childCleanupSQL(c *schema.Table, dbSchema string) string {
	id, rec := schema.QuoteIdent(schema.ColEventID), schema.QuoteIdent(schema.ColReceivedAt)
	child, parent := schema.QualifiedName(dbSchema, c.Name), schema.QualifiedName(dbSchema, c.Parent.Name)
	return fmt.Sprintf(`DELETE FROM %[1]s USING %[2]s p
WHERE %[1]s.%[3]s = p.%[3]s AND %[1]s.%[4]s <> p.%[4]s
  AND p.%[3]s IN (SELECT %[3]s FROM pg_temp.%[5]s)`, child, parent, id, rec, schema.QuoteIdent(stagingTable))
}

// ledgerInsertSQL records files ($1 keys, $3 rows, $4 bytes) of table $2.
// loaded_at is UTC, like every timestamp wharf writes.
func ledgerInsertSQL(dbSchema string) string {
	return fmt.Sprintf(`INSERT INTO %s ("file_key", "table_name", "rows", "bytes", "loaded_at")
SELECT k, $2, r, b, now() AT TIME ZONE 'UTC'
FROM unnest($1::text[], $3::bigint[], $4::bigint[]) AS f(k, r, b)`, schema.QualifiedName(dbSchema, schema.LedgerTable))
}

// stagedSQL reads staging's row count and the range of its event_time; a
// NULL (empty staging) scans as the zero time.
func stagedSQL() string {
	c := schema.QuoteIdent(schema.ColEventTime)
	return fmt.Sprintf(`SELECT count(*), coalesce(min(%s), '0001-01-01'), coalesce(max(%s), '0001-01-01') FROM pg_temp.%s`, c, c, schema.QuoteIdent(stagingTable))
}
