package dialect

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wharfdata/wharf/schema"
)

// StagingTable is the temporary table a merge fills.
const StagingTable = "wharf_staging"

// DayLayout is the layout of the dt= partitions and of watermark days
// (docs/design.md §5).
const DayLayout = time.DateOnly

// Timestamp formats a time, in UTC, as a timestamp literal both Redshift
// and PostgreSQL read exactly (microseconds).
func Timestamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000000") }

// Backoff returns base·2^(n−1), with ±20% jitter, capped at an hour.
func Backoff(base time.Duration, n int) time.Duration {
	d := base << min(n-1, 20)
	if d <= 0 || d > time.Hour {
		d = time.Hour
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// SerializationFailure reports SQLSTATE 40001 (serialization failure) or
// 40P01 (deadlock).
func SerializationFailure(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// SchemaExistsSQL counts the warehouse schemas named $1.
const SchemaExistsSQL = "SELECT count(*) FROM pg_namespace WHERE nspname = $1"

// CatalogSQL lists the columns of every table in warehouse schema $1.
const CatalogSQL = `SELECT table_name, column_name, data_type,
  coalesce(character_maximum_length, 0), coalesce(numeric_precision, 0), coalesce(numeric_scale, 0)
FROM information_schema.columns
WHERE table_schema = $1
ORDER BY table_name, ordinal_position`

// ReadCatalog reads the columns of every table in a warehouse schema from
// information_schema, which PostgreSQL and Redshift both have.
func ReadCatalog(ctx context.Context, q Querier, dbSchema string) (*schema.Catalog, error) {
	cat := &schema.Catalog{Tables: map[string][]schema.CatalogColumn{}}
	var n int64
	rows, err := q.Query(ctx, SchemaExistsSQL, dbSchema)
	if err != nil {
		return nil, fmt.Errorf("look up schema %s: %w", dbSchema, err)
	}
	if _, err := pgx.ForEachRow(rows, []any{&n}, func() error { return nil }); err != nil {
		return nil, fmt.Errorf("look up schema %s: %w", dbSchema, err)
	}
	cat.Exists = n > 0
	rows, err = q.Query(ctx, CatalogSQL, dbSchema)
	if err != nil {
		return nil, fmt.Errorf("list columns of schema %s: %w", dbSchema, err)
	}
	var table string
	var c schema.CatalogColumn
	var length, precision, scale int64
	_, err = pgx.ForEachRow(rows, []any{&table, &c.Name, &c.DataType, &length, &precision, &scale}, func() error {
		c.Length, c.Precision, c.Scale = int(length), int(precision), int(scale)
		cat.Tables[table] = append(cat.Tables[table], c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list columns of schema %s: %w", dbSchema, err)
	}
	return cat, nil
}
