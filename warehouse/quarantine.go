package warehouse

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse/dialect"
)

// A file that cannot load (a dialect's dialect.FileError) is quarantined:
// recorded in wharf_quarantine with its reason, left out of every later
// load, and reported (the error log "file quarantined", the metric
// wharf_load_quarantined_total, `wharf load` and /status), so that it never
// holds back the rest of its table. `wharf load --retry-quarantined` takes
// the files out of quarantine and loads them again, after an upgrade or a
// fix. The SQL is the same on both dialects.

// QuarantinedFile is one file in quarantine.
type QuarantinedFile struct {
	Key    string    `json:"file"`
	Table  string    `json:"table"`
	Reason string    `json:"reason"`
	At     time.Time `json:"quarantined_at"`
}

// maxReasonBytes is the width of wharf_quarantine.reason.
const maxReasonBytes = 4096

// quarantine records key, a file of t, with its reason, replacing an older
// record of the same file.
func (l *Loader) quarantine(ctx context.Context, t *schema.Table, key string, cause error) error {
	reason := cause.Error()
	if len(reason) > maxReasonBytes {
		reason = reason[:maxReasonBytes]
		for !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	q := schema.QualifiedName(l.cfg.Schema, schema.QuarantineTable)
	err := pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM `+q+` WHERE "file_key" = CAST($1 AS varchar(1024))`, key); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+q+` ("file_key", "table_name", "reason", "quarantined_at")
VALUES (CAST($1 AS varchar(1024)), CAST($2 AS varchar(127)), CAST($3 AS varchar(4096)), CAST($4 AS timestamp))`,
			key, t.Name, reason, dialect.Timestamp(l.now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("quarantine %s: %w", key, err)
	}
	l.m.quarantined.WithLabelValues(t.Name).Inc()
	l.stats.update(t.Name, func(s *TableStats) { s.Quarantined++ })
	l.log.Error("file quarantined", zap.String("table", t.Name), zap.String("file", key), zap.String("reason", reason))
	return nil
}

// quarantinedKeys returns the keys of table's files in quarantine.
func (l *Loader) quarantinedKeys(ctx context.Context, table string) (map[string]bool, error) {
	files, err := l.Quarantined(ctx, table)
	if err != nil {
		return nil, err
	}
	keys := make(map[string]bool, len(files))
	for _, f := range files {
		keys[f.Key] = true
	}
	return keys, nil
}

// Quarantined returns the files in quarantine of the named tables (every
// table when none is named), oldest first.
func (l *Loader) Quarantined(ctx context.Context, tables ...string) ([]QuarantinedFile, error) {
	sql := `SELECT "file_key", "table_name", "reason", "quarantined_at" FROM ` + schema.QualifiedName(l.cfg.Schema, schema.QuarantineTable)
	var args []any
	if len(tables) == 1 {
		sql += ` WHERE "table_name" = CAST($1 AS varchar(127))`
		args = append(args, tables[0])
	}
	rows, err := l.pool.Query(ctx, sql+` ORDER BY "quarantined_at", "file_key"`, args...)
	if err != nil {
		return nil, fmt.Errorf("read quarantine: %w", err)
	}
	want := map[string]bool{}
	for _, t := range tables {
		want[t] = true
	}
	var out []QuarantinedFile
	var f QuarantinedFile
	_, err = pgx.ForEachRow(rows, []any{&f.Key, &f.Table, &f.Reason, &f.At}, func() error {
		if len(want) == 0 || want[f.Table] {
			f.At = f.At.UTC()
			out = append(out, f)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read quarantine: %w", err)
	}
	return out, nil
}

// ReleaseQuarantined takes the files of the named tables (every table when
// none is named) out of quarantine and returns how many; the next load
// that reconciles (the first of each process, then every
// ReconcileInterval) loads them again, or quarantines again those that
// still cannot load.
func (l *Loader) ReleaseQuarantined(ctx context.Context, tables ...string) (int, error) {
	files, err := l.Quarantined(ctx, tables...)
	if err != nil {
		return 0, err
	}
	q := schema.QualifiedName(l.cfg.Schema, schema.QuarantineTable)
	for _, f := range files {
		if _, err := l.pool.Exec(ctx, `DELETE FROM `+q+` WHERE "file_key" = CAST($1 AS varchar(1024))`, f.Key); err != nil {
			return 0, fmt.Errorf("release %s from quarantine: %w", f.Key, err)
		}
	}
	l.reconcileMu.Lock()
	for _, f := range files {
		delete(l.reconciled, f.Table) // the next load of the table lists every day
	}
	l.reconcileMu.Unlock()
	return len(files), nil
}
