package warehouse

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/wharfdata/wharf/schema"
)

// Replacement pairs a live table with the table rebuilt to take its place.
type Replacement struct {
	Target  string // the table analysts query, such as page_views
	Rebuilt string // the rebuilt table, such as page_views__rebuild
	Child   bool   // a child table (keyed by event_id and idx)
}

// ReplacedSuffix names what becomes of a table that a rebuild replaced: it
// is kept, renamed TABLE__replaced, until an operator drops it.
const ReplacedSuffix = "__replaced"

// ReplaceTables swaps rebuilt tables in for their targets in one transaction
// (`wharf backfill --rebuild`), on either dialect: under an exclusive lock on
// the ledger (so no merge runs meanwhile) and on every table, the
// rows a target holds for events the rebuild lacks (events that reached the
// warehouse after their documents were read) are copied into the rebuilt
// table, in the columns both have; then each target is renamed
// TARGET__replaced (dropping an older one) and each rebuilt table takes the
// target's name. Readers see the old tables or the new ones, never a mix,
// and no event's row is lost. The parent's replacement comes first, its
// children's after.
func (l *Loader) ReplaceTables(ctx context.Context, reps []Replacement) error {
	if len(reps) == 0 || reps[0].Child {
		return fmt.Errorf("replace tables: the parent table comes first")
	}
	tx, err := l.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	// After Commit, Rollback is a no-op; after a failure the error returned
	// is the one that matters.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	q := func(name string) string { return schema.QualifiedName(l.cfg.Schema, name) }
	// LOCK TABLE without a mode is ACCESS EXCLUSIVE on PostgreSQL, and
	// Redshift's only lock. The ledger comes first, as in every merge.
	locked := []string{q(schema.LedgerTable)}
	for _, r := range reps {
		locked = append(locked, q(r.Target), q(r.Rebuilt))
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+strings.Join(locked, ", ")); err != nil {
		return fmt.Errorf("lock the ledger and %d tables: %w", 2*len(reps), err)
	}
	parent := reps[0]
	// Children first: their rows are carried for the events whose parent row
	// the rebuilt parent lacks (before those parent rows are carried too).
	for _, r := range append(slices.Clone(reps[1:]), parent) {
		cols, err := commonColumns(ctx, tx, l.cfg.Schema, r.Target, r.Rebuilt)
		if err != nil {
			return err
		}
		list := strings.Join(cols, ", ")
		sql := fmt.Sprintf(`INSERT INTO %s (%s) SELECT %s FROM %s t
WHERE NOT EXISTS (SELECT 1 FROM %s r WHERE r.%s = t.%s)`,
			q(r.Rebuilt), list, list, q(r.Target), q(parent.Rebuilt),
			schema.QuoteIdent(schema.ColEventID), schema.QuoteIdent(schema.ColEventID))
		tag, err := tx.Exec(ctx, sql)
		if err != nil {
			return fmt.Errorf("carry rows of %s into %s: %w", r.Target, r.Rebuilt, err)
		}
		if n := tag.RowsAffected(); n > 0 {
			l.log.Info("rows carried into the rebuilt table", zap.String("table", r.Target), zap.Int64("rows", n))
		}
	}
	for _, r := range reps {
		old := r.Target + ReplacedSuffix
		for _, sql := range []string{
			"DROP TABLE IF EXISTS " + q(old),
			fmt.Sprintf("ALTER TABLE %s RENAME TO %s", q(r.Target), schema.QuoteIdent(old)),
			fmt.Sprintf("ALTER TABLE %s RENAME TO %s", q(r.Rebuilt), schema.QuoteIdent(r.Target)),
		} {
			if _, err := tx.Exec(ctx, sql); err != nil {
				return fmt.Errorf("swap %s: %w", r.Target, err)
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// commonColumns returns the quoted names of the columns both tables have, in
// the rebuilt table's order.
func commonColumns(ctx context.Context, tx pgx.Tx, dbSchema, target, rebuilt string) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT CAST(column_name AS varchar(128)) FROM information_schema.columns
WHERE table_schema = CAST($1 AS varchar(128)) AND table_name = CAST($2 AS varchar(128))
  AND column_name IN (SELECT column_name FROM information_schema.columns
    WHERE table_schema = CAST($1 AS varchar(128)) AND table_name = CAST($3 AS varchar(128)))
ORDER BY ordinal_position`, dbSchema, rebuilt, target)
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", rebuilt, err)
	}
	var cols []string
	var c string
	if _, err := pgx.ForEachRow(rows, []any{&c}, func() error { cols = append(cols, schema.QuoteIdent(c)); return nil }); err != nil {
		return nil, fmt.Errorf("columns of %s: %w", rebuilt, err)
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("%s and %s have no column in common", target, rebuilt)
	}
	return cols, nil
}
