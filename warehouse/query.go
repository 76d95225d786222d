package warehouse

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wharfdata/wharf/schema"
)

// Read-only questions about a table's contents, for backfill and audit.

// inspector is the part of a dialect that reads a table's contents.
type inspector interface {
	maxEventTime(ctx context.Context, t *schema.Table) (time.Time, bool, error)
	hourlyCounts(ctx context.Context, t *schema.Table, since, until time.Time) (map[time.Time]int64, error)
}

func (l *Loader) inspector() (inspector, error) {
	in, ok := l.d.(inspector)
	if !ok {
		return nil, fmt.Errorf("warehouse.dialect %s cannot inspect tables yet", l.cfg.Dialect)
	}
	return in, nil
}

// MaxEventTime returns the latest event_time in the named table, and false
// when the table is empty (`wharf backfill --since warehouse`).
func (l *Loader) MaxEventTime(ctx context.Context, table string) (time.Time, bool, error) {
	t := l.sch.Table(table)
	if t == nil {
		return time.Time{}, false, fmt.Errorf("unknown table %q", table)
	}
	in, err := l.inspector()
	if err != nil {
		return time.Time{}, false, err
	}
	return in.maxEventTime(ctx, t)
}

// HourlyCounts returns the rows of the named table per hour of event_time
// (UTC, each key the start of its hour) in [since, until); hours without
// rows are absent (`wharf audit`).
func (l *Loader) HourlyCounts(ctx context.Context, table string, since, until time.Time) (map[time.Time]int64, error) {
	t := l.sch.Table(table)
	if t == nil {
		return nil, fmt.Errorf("unknown table %q", table)
	}
	in, err := l.inspector()
	if err != nil {
		return nil, err
	}
	return in.hourlyCounts(ctx, t, since.UTC(), until.UTC())
}

func (p *postgres) maxEventTime(ctx context.Context, t *schema.Table) (time.Time, bool, error) {
	var ts *time.Time
	err := p.pool.QueryRow(ctx, fmt.Sprintf(`SELECT max(%s) FROM %s`, schema.QuoteIdent(schema.ColEventTime), p.qualified(t.Name))).Scan(&ts)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("latest event_time of %s: %w", t.Name, err)
	}
	if ts == nil {
		return time.Time{}, false, nil
	}
	return ts.UTC(), true, nil
}

func (p *postgres) hourlyCounts(ctx context.Context, t *schema.Table, since, until time.Time) (map[time.Time]int64, error) {
	col := schema.QuoteIdent(schema.ColEventTime)
	sql := fmt.Sprintf(`SELECT date_trunc('hour', %s) AS h, count(*) FROM %s WHERE %s >= $1 AND %s < $2 GROUP BY 1`,
		col, p.qualified(t.Name), col, col)
	// event_time is a timestamp without time zone holding UTC; pgx sends a
	// time's wall clock, so the bounds go as UTC times.
	rows, err := p.pool.Query(ctx, sql, since.UTC(), until.UTC())
	if err != nil {
		return nil, fmt.Errorf("hourly counts of %s: %w", t.Name, err)
	}
	out := map[time.Time]int64{}
	var h time.Time
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&h, &n}, func() error { out[h.UTC()] = n; return nil }); err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, fmt.Errorf("hourly counts of %s: %w", t.Name, err)
	}
	return out, nil
}
