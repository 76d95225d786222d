package warehouse

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wharfdata/wharf/internal/fault"
	"github.com/wharfdata/wharf/schema"
)

// readerBound is how long a reader may wait for a merge, or a merge for a
// reader, before the test calls it blocked: PostgreSQL's statement_timeout
// and the loader's merge_timeout, so a wait fails the test instead of
// hanging it.
const readerBound = 5 * time.Second

// TestReadersNeverWait runs, on both dialects (Redshift on its PostgreSQL
// stand-in), an analyst's SELECT on a target table against a merge into it:
// a SELECT made while a merge is in its transaction answers without waiting
// for it, and a merge that starts while a long SELECT holds the table
// commits without waiting for the SELECT (docs/design.md §6: the loaders serialise
// on a lock of their own, never on an exclusive lock of a target).
func TestReadersNeverWait(t *testing.T) {
	eachDialect(t, testTables, func(t *testing.T, e *env) {
		ctx := context.Background()
		during := make(chan error, 1) // the SELECT run inside the merge
		hook := func(c *Config) {
			c.MergeTimeout = readerBound
			c.Fault = func(point fault.Point) {
				if point == fault.BeforeCommit {
					during <- e.timedSelect(ctx, "ev")
				}
			}
		}
		l := e.loader(hook)
		ev := e.sch.Table("ev")

		// A merge while a long SELECT holds the target.
		e.put(ev, today, row(ev, "a", 0, nil))
		reader, err := e.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = reader.Rollback(ctx) }()
		var n int
		if err := reader.QueryRow(ctx, "SELECT count(*) FROM "+schema.QualifiedName(e.db, "ev")).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if res, err := l.Load(ctx, "ev"); err != nil || res.Tables["ev"].Rows != 1 {
			t.Fatalf("load while a reader holds the table: %+v, %v; want 1 row, no wait", res, err)
		}
		if err := <-during; err != nil {
			t.Errorf("a SELECT during the merge: %v", err)
		}
		if err := reader.Commit(ctx); err != nil {
			t.Fatal(err)
		}

		// Two loaders at once still add each row once.
		e.put(ev, today, row(ev, "a", 1, nil), row(ev, "b", 0, nil))
		e.put(ev, today, row(ev, "b", 1, nil), row(ev, "c", 0, nil))
		l2 := e.loader(hook)
		errs := make(chan error, 2)
		for _, x := range []*Loader{l, l2} {
			go func() {
				_, err := x.Load(ctx, "ev")
				errs <- err
			}()
		}
		go func() {
			for range during {
			}
		}()
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		close(during)
		if got := e.ids("ev"); !slices.Equal(got, []string{"a", "b", "c"}) {
			t.Errorf("ids = %v, want a b c once each", got)
		}
	})
}

// timedSelect counts table's rows on a connection of its own, failing after
// readerBound instead of waiting longer.
func (e *env) timedSelect(ctx context.Context, table string) error {
	conn, err := e.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", readerBound.Milliseconds())); err != nil {
		return err
	}
	var n int
	err = tx.QueryRow(ctx, "SELECT count(*) FROM "+schema.QualifiedName(e.db, table)).Scan(&n)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "57014" {
		return errors.New("the SELECT waited for the merge past statement_timeout")
	}
	return err
}
