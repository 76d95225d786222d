package postgres

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse/internal/whtest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// testTables has a column of every type, and a child table.
const testTables = whtest.Tables

func parseSchema(t testing.TB, yaml string) *schema.Schema { return whtest.Schema(t, yaml) }

// TestSQLGolden pins the merge transaction's SQL; refresh with -update.
func TestSQLGolden(t *testing.T) {
	s := parseSchema(t, testTables)
	var out bytes.Buffer
	for _, tb := range s.All() {
		out.WriteString("-- " + tb.Name + "\n")
		for _, q := range []string{lockSQL(tb, "wh"), stagingSQL(tb, "wh"), mergeSQL(tb, "wh")} {
			out.WriteString(q + ";\n\n")
		}
		for _, c := range tb.Children {
			out.WriteString(childCleanupSQL(c, "wh") + ";\n\n")
		}
	}
	out.WriteString("-- ledger\n" + ledgerInsertSQL("wh") + ";\n")
	golden := "testdata/postgres.sql"
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, out.Bytes()) {
		t.Errorf("SQL differs from %s (run go test ./warehouse/postgres -update and review the diff):\n%s", golden, out.String())
	}
}

func TestPostgresNameLength(t *testing.T) {
	long := strings.Repeat("a", 64)
	sch, err := schema.Parse([]byte("tables:\n- name: t\n  events: [t]\n  columns:\n  - {name: " + long + ", path: a, type: integer}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckNames(sch); err == nil || !strings.Contains(err.Error(), "line 5") {
		t.Fatalf("got %v, want an error naming line 5", err)
	}
}
