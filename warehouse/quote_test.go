package warehouse

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wharfdata/wharf/internal/stacktest"
	"github.com/wharfdata/wharf/schema"
)

// quoteIdentCorpus returns names that try to break out of their quotes,
// and every input the fuzzer kept for schema's FuzzQuoteIdent.
func quoteIdentCorpus(t *testing.T) []string {
	names := []string{"user_id", "_extras", `a"b`, `"`, `""`, `x"; DROP TABLE t; --`, `"" OR 1=1 --`, "Wharf_Rank", "é", "日本語",
		"a b", `\`, `\"`, "U&\"x\"", "$1", "'", "a\nb", "a\tb", "😀", strings.Repeat("a", 63), strings.Repeat(`"`, 31)}
	files, _ := filepath.Glob(filepath.Join("..", "schema", "testdata", "fuzz", "FuzzQuoteIdent", "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// go test fuzz v1, then string("…") on the next line.
		if _, rest, ok := strings.Cut(string(b), "\nstring("); ok {
			if s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimSpace(rest), ")")); err == nil {
				names = append(names, s)
			}
		}
	}
	return names
}

// Names quoted by schema.QuoteIdent and schema.QualifiedName come back from
// a real PostgreSQL exactly as they were: as the name of a result column,
// and as the names of a schema and a table created with them. (Names the
// server cannot hold are left out: NUL, invalid UTF-8, or longer than its
// 63 bytes, which it truncates.)
func TestQuoteIdentPostgres(t *testing.T) {
	st := stacktest.Get(t)
	pool, dbSchema := st.Warehouse(t)
	ctx := context.Background()
	for _, name := range quoteIdentCorpus(t) {
		if name == "" || len(name) > 63 || strings.IndexByte(name, 0) >= 0 || !utf8.ValidString(name) {
			continue
		}
		rows, err := pool.Query(ctx, "SELECT 1 AS "+schema.QuoteIdent(name))
		if err != nil {
			t.Fatalf("SELECT 1 AS %s: %v", schema.QuoteIdent(name), err)
		}
		got := string(rows.FieldDescriptions()[0].Name)
		rows.Close()
		if got != name {
			t.Errorf("column %s comes back as %q, want %q", schema.QuoteIdent(name), got, name)
		}
		if _, err := pool.Exec(ctx, "CREATE TABLE "+schema.QualifiedName(dbSchema, name)+" ("+schema.QuoteIdent(name)+" integer)"); err != nil {
			t.Fatalf("create table %s: %v", schema.QualifiedName(dbSchema, name), err)
		}
		var table, column string
		err = pool.QueryRow(ctx, `SELECT c.relname, a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = 1 WHERE n.nspname = $1 AND c.relname = $2`, dbSchema, name).Scan(&table, &column)
		if err != nil || table != name || column != name {
			t.Errorf("table %s: found %q.%q (%v)", schema.QualifiedName(dbSchema, name), table, column, err)
		}
	}
}
