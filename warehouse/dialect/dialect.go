// Package dialect is what the warehouse loader asks of a warehouse: the
// Dialect interface that warehouse/postgres and warehouse/redshift
// implement, and the little they share. The loader (package warehouse) owns
// the merge's transaction protocol; a dialect supplies only its staging, its
// merge and ledger SQL, its DDL and its catalog (docs/design.md §6).
package dialect

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/schema"
)

// Querier is a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Dialect is one warehouse's side of the loader. The loader merges a batch
// of files into a table in one transaction, begun with TxOptions on a
// connection of its own, calling in order: Lock, Loaded (the ledger again,
// under the lock), Stage, Staged, Merge, Record, then Commit; Prepare runs
// before the transaction, and a failed merge for which Retryable is true
// runs again. Every method is required: a dialect that lacks one does not
// compile.
type Dialect interface {
	// Apply creates, when missing, the warehouse schema, the tables (adding
	// missing columns) and the ledger tables. It only adds, is idempotent,
	// and is safe to run from several processes at once.
	Apply(ctx context.Context, tables []*schema.Table) error
	// Catalog reads the warehouse schema's tables and columns.
	Catalog(ctx context.Context) (*schema.Catalog, error)
	// Execute runs a plan's changes (schema.Diff).
	Execute(ctx context.Context, p *schema.Plan) error

	// Loaded returns which of keys the ledger names, read through q: the
	// pool, or a merge's transaction.
	Loaded(ctx context.Context, q Querier, keys []string) (map[string]bool, error)
	// Watermark returns the table's watermark day, and false when it has
	// none.
	Watermark(ctx context.Context, table string) (time.Time, bool, error)
	// AdvanceWatermark raises the table's watermark to day; it never
	// lowers it.
	AdvanceWatermark(ctx context.Context, table string, day time.Time) error

	// BatchSize returns how many of pending files one merge takes, at
	// most max.
	BatchSize(ctx context.Context, pending, max int) int
	// Prepare reads what Stage needs to know of files before the merge's
	// transaction begins, so that no lock is held while S3 answers.
	Prepare(ctx context.Context, t *schema.Table, files []s3store.Object) error
	// TxOptions returns the options of a merge's transaction.
	TxOptions() pgx.TxOptions
	// Lock is a merge's first statement: it serialises the merges into t
	// of every process, and never makes a reader of t wait. (Under
	// snapshot isolation the snapshot is taken by the first statement, so
	// one taken before the lock would miss a merge committed meanwhile.)
	Lock(ctx context.Context, tx pgx.Tx, t *schema.Table) error
	// Stage fills the transaction's staging table with every row of files
	// and returns each file's row count, as its footer gives it.
	Stage(ctx context.Context, tx pgx.Tx, t *schema.Table, files []s3store.Object) ([]int64, error)
	// Staged returns the rows in staging and the range of their
	// event_time (zero times when staging is empty).
	Staged(ctx context.Context, tx pgx.Tx) (rows int64, oldest, newest time.Time, err error)
	// Merge inserts into t the staged rows that rank first for their key
	// (a parent's earliest delivery) and whose key t does not hold; a
	// dialect may look for the key only among t's rows with event_time in
	// [oldest, newest]. Then it deletes the rows of t's child tables whose
	// parent, now in t, came from another delivery (they loaded before their
	// parent). It returns the rows added to t and the child rows deleted.
	Merge(ctx context.Context, tx pgx.Tx, t *schema.Table, oldest, newest time.Time) (added, childRowsRemoved int64, err error)
	// Record records each file, with its row count, in the ledger, and
	// drops staging where it does not drop itself at commit.
	Record(ctx context.Context, tx pgx.Tx, t *schema.Table, files []s3store.Object, rows []int64) error
	// Retryable reports an error after which the whole merge may run
	// again: a serialization conflict or a deadlock.
	Retryable(err error) bool
}

// FileError is the error a dialect returns when one file of a batch cannot
// load however often it is retried: it is not Parquet, was written by a
// newer schema, or holds a value the warehouse refuses. The loader
// quarantines the file with its reason and loads the rest of the batch
// (docs/design.md §2, guarantee 2). An error that is not a FileError (the
// warehouse or S3 unreachable, a timeout) leaves every file pending.
type FileError struct {
	Key string // the file's S3 key
	Err error  // why it cannot load; its message names the file
}

func (e *FileError) Error() string { return e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }
