package schema

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDDLGolden pins the DDL of every dialect; refresh with -update.
func TestDDLGolden(t *testing.T) {
	b, err := os.ReadFile("testdata/ddl/tables.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []Dialect{Postgres, Redshift} {
		t.Run(string(d), func(t *testing.T) {
			var out bytes.Buffer
			out.WriteString(CreateSchemaSQL("analytics") + ";\n\n")
			for _, tb := range s.All() {
				out.WriteString(CreateTableSQL(tb, d, "analytics") + ";\n\n")
			}
			tb := s.Table("actions_taken")
			out.WriteString(AddColumnSQL(tb, tb.Columns[len(tb.Columns)-1], d, "analytics") + ";\n\n")
			for _, q := range LedgerSQL(d, "analytics") {
				out.WriteString(q + ";\n\n")
			}
			golden := filepath.Join("testdata", "ddl", string(d)+".sql")
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
				t.Errorf("DDL differs from %s (run go test ./schema -update and review the diff):\n%s", golden, out.String())
			}
		})
	}
}

func TestColumnSQLType(t *testing.T) {
	cases := []struct {
		typ          string
		postgres, rs string
	}{
		{"boolean", "boolean", "boolean"},
		{"smallint", "smallint", "smallint"},
		{"integer", "integer", "integer"},
		{"bigint", "bigint", "bigint"},
		{"real", "real", "real"},
		{"double", "double precision", "double precision"},
		{"decimal(12,2)", "numeric(12,2)", "decimal(12,2)"},
		{"decimal(38)", "numeric(38,0)", "decimal(38,0)"},
		{"varchar(65535)", "varchar(65535)", "varchar(65535)"},
		{"timestamp", "timestamp", "timestamp"},
		{"date", "date", "date"},
		{"json", "jsonb", "SUPER"},
	}
	for _, c := range cases {
		typ, err := ParseType(c.typ)
		if err != nil {
			t.Fatal(err)
		}
		if got := ColumnSQLType(typ, Postgres); got != c.postgres {
			t.Errorf("ColumnSQLType(%s, postgres) = %q, want %q", c.typ, got, c.postgres)
		}
		if got := ColumnSQLType(typ, Redshift); got != c.rs {
			t.Errorf("ColumnSQLType(%s, redshift) = %q, want %q", c.typ, got, c.rs)
		}
	}
}

// TestDDLQuotesIdentifiers checks that a schema name can never break out of
// its quotes.
func TestDDLQuotesIdentifiers(t *testing.T) {
	for _, q := range append(LedgerSQL(Postgres, `x"; DROP TABLE y; --`), CreateSchemaSQL(`x"y`)) {
		if strings.Contains(q, `x";`) || (strings.Contains(q, `x"y`) && !strings.Contains(q, `x""y`)) {
			t.Errorf("identifier not quoted: %s", q)
		}
	}
}
