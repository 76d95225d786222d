package schema

import (
	"fmt"
	"slices"
	"strings"
)

// Dialect is a warehouse's SQL dialect (docs/design.md §6).
type Dialect string

// The warehouse dialects.
const (
	Postgres Dialect = "postgres"
	Redshift Dialect = "redshift"
)

// Names of wharf's own warehouse tables (docs/design.md §5).
const (
	LedgerTable     = "wharf_loads"
	WatermarksTable = "wharf_watermarks"
	QuarantineTable = "wharf_quarantine"
)

// QualifiedName returns "schema"."name", each part quoted.
func QualifiedName(dbSchema, name string) string {
	return QuoteIdent(dbSchema) + "." + QuoteIdent(name)
}

// ColumnSQLType returns the warehouse type of a column. A varchar's length is
// in bytes, as Redshift counts it; PostgreSQL counts characters, and a string
// cut to n bytes never has more than n characters, so every value wharf
// writes fits both. Timestamps are without time zone and hold UTC.
func ColumnSQLType(t Type, d Dialect) string {
	switch t.Kind {
	case Boolean:
		return "boolean"
	case Smallint:
		return "smallint"
	case Integer:
		return "integer"
	case Bigint:
		return "bigint"
	case Real:
		return "real"
	case Double:
		return "double precision"
	case Decimal:
		if d == Redshift {
			return fmt.Sprintf("decimal(%d,%d)", t.Precision, t.Scale)
		}
		return fmt.Sprintf("numeric(%d,%d)", t.Precision, t.Scale)
	case Varchar:
		return fmt.Sprintf("varchar(%d)", t.Length)
	case Timestamp:
		return "timestamp"
	case Date:
		return "date"
	case JSON:
		if d == Redshift {
			return "SUPER"
		}
		return "jsonb"
	}
	panic(fmt.Sprintf("schema: column type %v has no SQL type", t))
}

// CreateSchemaSQL creates the warehouse schema if it is missing.
func CreateSchemaSQL(dbSchema string) string {
	return "CREATE SCHEMA IF NOT EXISTS " + QuoteIdent(dbSchema)
}

// CreateTableSQL creates table t in dbSchema if it is missing. The key columns
// (t.Key()) are NOT NULL. On PostgreSQL they are the primary key, which the
// loader's merge relies on to find rows already loaded. Redshift enforces no
// key, so there the table gets its distribution (DISTKEY of dist_key, or
// DISTSTYLE AUTO), a compound sort key and automatic encoding instead; the
// loader's dedupe is what keeps keys unique.
func CreateTableSQL(t *Table, d Dialect, dbSchema string) string {
	var b strings.Builder
	key := t.Key()
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s (\n", QualifiedName(dbSchema, t.Name))
	for i, c := range t.Columns {
		fmt.Fprintf(&b, "  %s %s", QuoteIdent(c.Name), ColumnSQLType(c.Type, d))
		if slices.Contains(key, c.Name) {
			b.WriteString(" NOT NULL")
		}
		if i < len(t.Columns)-1 || d != Redshift {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	if d != Redshift {
		fmt.Fprintf(&b, "  PRIMARY KEY (%s)\n)", quoteList(key))
		return b.String()
	}
	b.WriteString(")\n")
	if t.DistKey != "" {
		fmt.Fprintf(&b, "DISTKEY (%s)\n", QuoteIdent(t.DistKey))
	} else {
		b.WriteString("DISTSTYLE AUTO\n")
	}
	if len(t.SortKey) > 0 {
		fmt.Fprintf(&b, "COMPOUND SORTKEY (%s)\n", quoteList(t.SortKey))
	}
	b.WriteString("ENCODE AUTO")
	return b.String()
}

// AddColumnSQL adds column c to table t in dbSchema. PostgreSQL skips a column
// that exists; Redshift has no IF NOT EXISTS for columns, so its caller must
// first check that the column is missing.
func AddColumnSQL(t *Table, c Column, d Dialect, dbSchema string) string {
	ifNotExists := ""
	if d != Redshift {
		ifNotExists = "IF NOT EXISTS "
	}
	return fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s%s %s",
		QualifiedName(dbSchema, t.Name), ifNotExists, QuoteIdent(c.Name), ColumnSQLType(c.Type, d))
}

// LedgerSQL creates wharf's own tables in dbSchema if they are missing:
// wharf_loads, one row per S3 file merged (written in the merge's
// transaction, so a file is never merged twice), and wharf_watermarks, per
// table the day before which every file partition is fully loaded, and
// wharf_quarantine, the files the loader set aside because they cannot load,
// each with its reason, until `wharf load --retry-quarantined`.
func LedgerSQL(d Dialect, dbSchema string) []string {
	// On Redshift, which enforces no key, the ledger is sorted by file key:
	// the loader looks keys up and the status page reads key ranges.
	sortKey := ""
	if d == Redshift {
		sortKey = "\nSORTKEY (\"file_key\")"
	}
	return []string{
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  "file_key" varchar(1024) PRIMARY KEY,
  "table_name" varchar(127) NOT NULL,
  "rows" bigint NOT NULL,
  "bytes" bigint NOT NULL,
  "loaded_at" timestamp NOT NULL
)%s`, QualifiedName(dbSchema, LedgerTable), sortKey),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  "table_name" varchar(127) PRIMARY KEY,
  "day" date NOT NULL
)`, QualifiedName(dbSchema, WatermarksTable)),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  "file_key" varchar(1024) PRIMARY KEY,
  "table_name" varchar(127) NOT NULL,
  "reason" varchar(4096) NOT NULL,
  "quarantined_at" timestamp NOT NULL
)`, QualifiedName(dbSchema, QuarantineTable)),
	}
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = QuoteIdent(n)
	}
	return strings.Join(q, ", ")
}
