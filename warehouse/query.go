package warehouse

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse/dialect"
)

// Read-only questions about a table's contents, for backfill and audit. The
// SQL is the same on both dialects: parameters go as strings cast in SQL and
// results are timestamps and integers, which Redshift and PostgreSQL read
// and write alike (Redshift's pool in text formats, see RedshiftPoolConfig).

// MaxReceivedAt returns the latest received_at in the named table, and
// false when it is empty. `wharf backfill --since warehouse` follows
// insertion, not event time: a late arrival (an old event time) received
// after the last run is still read, and one future-dated event does not
// move the bound past everything that follows it.
func (l *Loader) MaxReceivedAt(ctx context.Context, table string) (time.Time, bool, error) {
	t := l.sch.Table(table)
	if t == nil {
		return time.Time{}, false, fmt.Errorf("unknown table %q", table)
	}
	if t.Column(schema.ColReceivedAt) < 0 {
		return time.Time{}, false, fmt.Errorf("table %s has no %s (a child table)", table, schema.ColReceivedAt)
	}
	var ts *time.Time
	q := fmt.Sprintf(`SELECT max(%s) FROM %s`, schema.QuoteIdent(schema.ColReceivedAt), schema.QualifiedName(l.cfg.Schema, t.Name))
	if err := l.pool.QueryRow(ctx, q).Scan(&ts); err != nil {
		return time.Time{}, false, fmt.Errorf("latest received_at of %s: %w", t.Name, err)
	}
	if ts == nil {
		return time.Time{}, false, nil
	}
	return ts.UTC(), true, nil
}

// HourlyCounts returns the rows of the named table per hour of event_time
// (UTC, each key the start of its hour) in [since, until); hours without
// rows are absent (`wharf audit`).
func (l *Loader) HourlyCounts(ctx context.Context, table string, since, until time.Time) (map[time.Time]int64, error) {
	t := l.sch.Table(table)
	if t == nil {
		return nil, fmt.Errorf("unknown table %q", table)
	}
	col := schema.QuoteIdent(schema.ColEventTime)
	// event_time is a timestamp without time zone holding UTC.
	sql := fmt.Sprintf(`SELECT date_trunc('hour', %s) AS h, count(*) FROM %s
WHERE %s >= CAST($1 AS timestamp) AND %s < CAST($2 AS timestamp) GROUP BY 1`,
		col, schema.QualifiedName(l.cfg.Schema, t.Name), col, col)
	rows, err := l.pool.Query(ctx, sql, dialect.Timestamp(since), dialect.Timestamp(until))
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
