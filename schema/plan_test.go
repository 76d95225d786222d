package schema

import (
	"bytes"
	"strings"
	"testing"
)

const planFile = `
tables:
  - name: ev
    events: [ev]
    dist_key: user_id
    columns:
      - {name: user_id, path: user_id, type: bigint}
      - {name: url,     path: url,     type: varchar(256)}
      - {name: n,       path: n,       type: bigint}
      - {name: added,   path: added,   type: "decimal(12,2)"}
  - name: fresh
    events: [fresh]
    columns:
      - {name: a, path: a, type: integer}
`

// catalogOf is the catalog of a warehouse holding ev as an older file
// declared it: url varchar(64), n integer, no added column.
func catalogOf(extra ...CatalogColumn) *Catalog {
	cols := []CatalogColumn{
		{Name: "event_id", DataType: "character varying", Length: 64},
		{Name: "event_time", DataType: "timestamp without time zone"},
		{Name: "received_at", DataType: "timestamp without time zone"},
		{Name: "user_id", DataType: "bigint"},
		{Name: "url", DataType: "character varying", Length: 64},
		{Name: "n", DataType: "integer"},
	}
	return &Catalog{Exists: true, Tables: map[string][]CatalogColumn{
		"ev":            append(cols, extra...),
		LedgerTable:     nil,
		WatermarksTable: nil, QuarantineTable: nil,
	}}
}

func TestDiffAddsAndWidens(t *testing.T) {
	s, err := Parse([]byte(planFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []Dialect{Postgres, Redshift} {
		p := Diff(s, catalogOf(), d, "wh")
		if len(p.Refusals) != 0 {
			t.Fatalf("%s: refusals %+v", d, p.Refusals)
		}
		var kinds []string
		for _, c := range p.Changes {
			kinds = append(kinds, string(c.Kind)+" "+c.Table+"."+c.Column)
		}
		want := "widen_varchar ev.url,widen_integer ev.n,add_column ev.added,create_table fresh."
		if got := strings.Join(kinds, ","); got != want {
			t.Errorf("%s: changes %s, want %s", d, got, want)
		}
		var out bytes.Buffer
		p.WriteSQL(&out)
		sql := out.String()
		for _, want := range []string{`ALTER TABLE "wh"."ev" ALTER COLUMN "url" TYPE varchar(256);`, `ALTER TABLE "wh"."ev" ADD COLUMN`, `CREATE TABLE IF NOT EXISTS "wh"."fresh"`} {
			if !strings.Contains(sql, want) {
				t.Errorf("%s: plan lacks %q:\n%s", d, want, sql)
			}
		}
		if d == Postgres && !strings.Contains(sql, `ALTER TABLE "wh"."ev" ALTER COLUMN "n" TYPE bigint;`) {
			t.Errorf("postgres: no in-place integer widening:\n%s", sql)
		}
		if d == Redshift {
			for _, want := range []string{"(outside a transaction block)", "BEGIN;\nLOCK \"wh\".\"ev\";", `UPDATE "wh"."ev" SET "wharf_widen_n" = "n";`, `RENAME COLUMN "wharf_widen_n" TO "n";`, "COMMIT;"} {
				if !strings.Contains(sql, want) {
					t.Errorf("redshift: plan lacks %q:\n%s", want, sql)
				}
			}
		}
	}
}

func TestDiffRefuses(t *testing.T) {
	s, err := Parse([]byte(planFile))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		cat   *Catalog
		d     Dialect
		wants []string
	}{
		{"dropped column", catalogOf(CatalogColumn{Name: "gone", DataType: "text"}), Postgres,
			[]string{`column "wh"."ev"."gone" is in the warehouse (text) but not in the schema file`, `ALTER TABLE "wh"."ev" DROP COLUMN "gone";`}},
		{"narrowed varchar", func() *Catalog { c := catalogOf(); c.Tables["ev"][4].Length = 1024; return c }(), Postgres,
			[]string{"ev.url: narrowing varchar(1024) to varchar(256)", "keep varchar(1024) in the schema file"}},
		{"narrowed integer", func() *Catalog {
			c := catalogOf()
			c.Tables["ev"][3].DataType = "numeric"
			c.Tables["ev"][3].Precision = 20
			return c
		}(), Postgres,
			[]string{"ev.user_id: changing type decimal(20,0) to bigint is not a widening"}},
		{"retyped", catalogOf(CatalogColumn{Name: "added", DataType: "double precision"}), Redshift,
			[]string{"ev.added: changing type double to decimal(12,2)", `UPDATE "wh"."ev" SET "added_v2" = CAST("added" AS decimal(12,2));`}},
		{"rescaled decimal", catalogOf(CatalogColumn{Name: "added", DataType: "numeric", Precision: 12, Scale: 4}), Postgres,
			[]string{"changing type decimal(12,4) to decimal(12,2)"}},
		{"distkey integer on redshift", func() *Catalog { c := catalogOf(); c.Tables["ev"][3].DataType = "integer"; return c }(), Redshift,
			[]string{"Redshift cannot change the type of a DISTKEY or SORTKEY column in place", "INSERT INTO"}},
	}
	for _, c := range cases {
		p := Diff(s, c.cat, c.d, "wh")
		var out bytes.Buffer
		p.WriteRefusals(&out)
		if len(p.Refusals) == 0 {
			t.Errorf("%s: nothing refused", c.name)
			continue
		}
		for _, w := range c.wants {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: refusal lacks %q:\n%s", c.name, w, out.String())
			}
		}
	}
}

func TestDiffFreshWarehouse(t *testing.T) {
	s, err := Parse([]byte(planFile))
	if err != nil {
		t.Fatal(err)
	}
	p := Diff(s, &Catalog{Tables: map[string][]CatalogColumn{"analysts_own_table": {{Name: "x", DataType: "text"}}}}, Redshift, "wh")
	if len(p.Refusals) != 0 || len(p.Changes) != 4 || p.Changes[0].Kind != CreateWarehouseSchema || p.Changes[1].Kind != CreateLedger {
		t.Errorf("plan on an empty warehouse: %+v", p)
	}
	same := Diff(s, &Catalog{Exists: true, Tables: map[string][]CatalogColumn{
		LedgerTable: nil, WatermarksTable: nil, QuarantineTable: nil,
		"ev":    {{Name: "event_id", DataType: "character varying", Length: 64}, {Name: "event_time", DataType: "timestamp without time zone"}, {Name: "received_at", DataType: "timestamp without time zone"}, {Name: "user_id", DataType: "bigint"}, {Name: "url", DataType: "character varying", Length: 256}, {Name: "n", DataType: "bigint"}, {Name: "added", DataType: "numeric", Precision: 12, Scale: 2}},
		"fresh": {{Name: "event_id", DataType: "character varying", Length: 64}, {Name: "event_time", DataType: "timestamp without time zone"}, {Name: "received_at", DataType: "timestamp without time zone"}, {Name: "a", DataType: "integer"}},
	}}, Postgres, "wh")
	if !same.Empty() {
		t.Errorf("plan of an up-to-date warehouse: %+v", same)
	}
}
