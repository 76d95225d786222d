package warehouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wharfdata/wharf/schema"
)

// LoadedMinute is what the ledger records of one table's loads in one
// minute: every loader's, in every process.
type LoadedMinute struct {
	Table  string    `json:"table"`
	Minute time.Time `json:"minute"` // UTC, truncated to the minute
	Files  int64     `json:"files"`
	Rows   int64     `json:"rows"`  // rows in the files (duplicates included)
	Bytes  int64     `json:"bytes"` // bytes of the files
	Last   time.Time `json:"last"`  // the last load in the minute
}

// LedgerSummary reads the ledger's loads of the named tables at or after
// since (whose UTC day is also the oldest day of files it looks at, less one
// day), per table and minute, oldest first. It reads only: it is the
// status page's view of every loader at once. Each table's query is a range
// on the ledger's primary key (the file key, which starts with the table and
// the dt= day), so the ledger's size does not slow it.
func LedgerSummary(ctx context.Context, pool *pgxpool.Pool, cfg Config, tables []string, since time.Time) ([]LoadedMinute, error) {
	prefix := cfg.Prefix
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	since = since.UTC()
	fromDay := since.AddDate(0, 0, -1).Format(dayLayout)
	q := ledgerSummarySQL(cfg.Schema)
	var out []LoadedMinute
	for _, t := range tables {
		base := prefix + t + "/dt="
		rows, err := pool.Query(ctx, q, t, base+fromDay, base+"9999", since)
		if err != nil {
			return nil, fmt.Errorf("read ledger of %s: %w", t, err)
		}
		for rows.Next() {
			m := LoadedMinute{Table: t}
			if err := rows.Scan(&m.Minute, &m.Files, &m.Rows, &m.Bytes, &m.Last); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read ledger of %s: %w", t, err)
			}
			m.Minute, m.Last = m.Minute.UTC(), m.Last.UTC()
			out = append(out, m)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read ledger of %s: %w", t, err)
		}
	}
	return out, nil
}

// ledgerSummarySQL groups one table's ledger rows ($1 table, file keys in
// [$2, $3), loaded at or after $4) by minute. The same SQL runs on Redshift.
func ledgerSummarySQL(dbSchema string) string {
	return fmt.Sprintf(`SELECT date_trunc('minute', "loaded_at"), count(*), coalesce(sum("rows"), 0), coalesce(sum("bytes"), 0), max("loaded_at")
FROM %s
WHERE "table_name" = $1 AND "file_key" >= $2 AND "file_key" < $3 AND "loaded_at" >= $4
GROUP BY 1
ORDER BY 1`, schema.QualifiedName(dbSchema, schema.LedgerTable))
}
