package pq

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wharfdata/wharf/internal/stacktest"
	"github.com/wharfdata/wharf/schema"
)

// duckdb returns node and the directory holding @duckdb/node-api
// (deploy/local, installed by stack-up.sh), or skips (fails under
// WHARF_REQUIRE_STACK=1, as `make test` sets) when either is missing.
func duckdb(t *testing.T) (node, dir string) {
	t.Helper()
	dir = filepath.Join(stacktest.RepoRoot(), "deploy", "local")
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "@duckdb", "node-api", "package.json"))
	}
	if err != nil {
		if os.Getenv("WHARF_REQUIRE_STACK") == "1" {
			t.Fatalf("node or @duckdb/node-api missing (%v): run `make stack-up`, which installs deploy/local's npm packages", err)
		}
		t.Skipf("node or @duckdb/node-api missing (%v): run `make stack-up`", err)
	}
	return node, dir
}

// TestDuckDBReadsEveryType reads files written by Encode with DuckDB, an
// engine outside Go's ecosystem (C++, through its Node package): every
// column has the type it should have there, and every value (nulls and
// extremes included; dictionary and PLAIN pages, several pages per column)
// reads back exactly as written.
func TestDuckDBReadsEveryType(t *testing.T) {
	node, dir := duckdb(t)
	tb, base := everyType(t)
	for _, rows := range [][]schema.Row{base, manyRows(tb, base, 30_000)} {
		path := filepath.Join(t.TempDir(), "ev.parquet")
		var buf bytes.Buffer
		if err := Encode(&buf, tb, rows); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(node, filepath.Join("testdata", "duckdb_read.cjs"), dir, path)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("duckdb_read.cjs: %v\n%s", err, stderr.Bytes())
		}
		var got struct {
			Version string
			Columns []struct{ Name, Type string }
			Rows    [][]*string
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("duckdb_read.cjs output: %v", err)
		}
		if len(got.Columns) != len(tb.Columns) {
			t.Fatalf("DuckDB %s reads %d columns, want %d", got.Version, len(got.Columns), len(tb.Columns))
		}
		for i, c := range tb.Columns {
			if got.Columns[i].Name != c.Name || got.Columns[i].Type != duckType(c.Type) {
				t.Errorf("DuckDB %s: column %d is %s %s, want %s %s", got.Version, i, got.Columns[i].Name, got.Columns[i].Type, c.Name, duckType(c.Type))
			}
		}
		if len(got.Rows) != len(rows) {
			t.Fatalf("DuckDB %s reads %d rows, want %d", got.Version, len(got.Rows), len(rows))
		}
		for r, row := range got.Rows {
			for i, c := range tb.Columns {
				if err := sameText(c.Type, row[i], rows[r].Values[i]); err != nil {
					t.Fatalf("DuckDB %s: row %d column %s: %v", got.Version, r, c.Name, err)
				}
			}
		}
	}
}

// duckType is the DuckDB type of a column of type t.
func duckType(t schema.Type) string {
	switch t.Kind {
	case schema.Boolean:
		return "BOOLEAN"
	case schema.Smallint:
		return "SMALLINT"
	case schema.Integer:
		return "INTEGER"
	case schema.Bigint:
		return "BIGINT"
	case schema.Real:
		return "FLOAT"
	case schema.Double:
		return "DOUBLE"
	case schema.Decimal:
		return fmt.Sprintf("DECIMAL(%d,%d)", t.Precision, t.Scale)
	case schema.Varchar, schema.JSON:
		return "VARCHAR"
	case schema.Timestamp:
		return "TIMESTAMP WITH TIME ZONE"
	case schema.Date:
		return "DATE"
	}
	return "?"
}

// sameText compares the text duckdb_read.cjs printed for a value with the
// value written.
func sameText(t schema.Type, got *string, want schema.Value) error {
	if got == nil || want.Null {
		if (got == nil) != want.Null {
			return fmt.Errorf("DuckDB read %v, wrote %+v", deref(got), want)
		}
		return nil
	}
	var w string
	switch t.Kind {
	case schema.Boolean:
		w = strconv.FormatBool(want.I != 0)
	case schema.Real, schema.Double:
		f, err := strconv.ParseFloat(*got, 64)
		if err != nil {
			return err
		}
		wf := want.Float()
		if t.Kind == schema.Real {
			wf = float64(float32(wf))
		}
		if f != wf || math.Signbit(f) != math.Signbit(wf) {
			return fmt.Errorf("DuckDB read %s, wrote %v", *got, wf)
		}
		return nil
	case schema.Decimal:
		digits := want.S
		if t.Precision <= 18 {
			digits = strconv.FormatInt(want.I, 10)
		}
		w = decimalText(digits, t.Scale)
	case schema.Varchar, schema.JSON:
		w = want.S
	default: // integers, timestamp (µs), date (days)
		w = strconv.FormatInt(want.I, 10)
	}
	if *got != w {
		return fmt.Errorf("DuckDB read %q, want %q", *got, w)
	}
	return nil
}

// decimalText writes the unscaled digits at scale as DuckDB prints a
// DECIMAL: "-0.01" for -1 at scale 2, "12" for 12 at scale 0.
func decimalText(digits string, scale int) string {
	n, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return "bad digits " + digits
	}
	sign := ""
	if n.Sign() < 0 {
		sign = "-"
		n.Neg(n)
	}
	s := n.String()
	if scale == 0 {
		return sign + s
	}
	if len(s) <= scale {
		s = strings.Repeat("0", scale-len(s)+1) + s
	}
	return sign + s[:len(s)-scale] + "." + s[len(s)-scale:]
}

func deref(s *string) any {
	if s == nil {
		return errors.New("NULL")
	}
	return *s
}
