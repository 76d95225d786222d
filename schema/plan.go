package schema

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// CatalogColumn is a warehouse column as information_schema.columns
// describes it (the same view on PostgreSQL and Redshift).
type CatalogColumn struct {
	Name      string
	DataType  string // data_type, lower case: "character varying", "bigint", "numeric", …
	Length    int    // character_maximum_length (varchar: bytes on Redshift, characters on PostgreSQL)
	Precision int    // numeric_precision
	Scale     int    // numeric_scale
}

// Type returns the schema type that writes this column, and false when the
// column has a type wharf never creates.
func (c CatalogColumn) Type() (Type, bool) {
	switch strings.ToLower(c.DataType) {
	case "boolean":
		return Type{Kind: Boolean}, true
	case "smallint":
		return Type{Kind: Smallint}, true
	case "integer":
		return Type{Kind: Integer}, true
	case "bigint":
		return Type{Kind: Bigint}, true
	case "real":
		return Type{Kind: Real}, true
	case "double precision":
		return Type{Kind: Double}, true
	case "numeric":
		return Type{Kind: Decimal, Precision: c.Precision, Scale: c.Scale}, true
	case "character varying":
		return Type{Kind: Varchar, Length: c.Length}, true
	case "timestamp without time zone":
		return Type{Kind: Timestamp}, true
	case "date":
		return Type{Kind: Date}, true
	case "jsonb", "json", "super":
		return Type{Kind: JSON}, true
	}
	return Type{}, false
}

// Catalog is what a warehouse schema holds: each table's columns in
// ordinal order.
type Catalog struct {
	Exists bool // the warehouse schema exists
	Tables map[string][]CatalogColumn
}

// HasTable reports whether the catalog has the table.
func (c *Catalog) HasTable(name string) bool {
	_, ok := c.Tables[name]
	return ok
}

// Column returns the named column of a table, or nil.
func (c *Catalog) Column(table, column string) *CatalogColumn {
	for i, col := range c.Tables[table] {
		if col.Name == column {
			return &c.Tables[table][i]
		}
	}
	return nil
}

// ChangeKind names what a Change does.
type ChangeKind string

// The changes a plan makes: only additions and widenings, which keep every
// stored value and every file already written loadable.
const (
	CreateWarehouseSchema ChangeKind = "create_schema"
	CreateLedger          ChangeKind = "create_ledger"
	CreateTable           ChangeKind = "create_table"
	AddColumn             ChangeKind = "add_column"
	WidenVarchar          ChangeKind = "widen_varchar"
	WidenInteger          ChangeKind = "widen_integer"
)

// Change is one step of a plan: statements to run in order.
type Change struct {
	Kind     ChangeKind
	Table    string
	Column   string
	From, To string // the types of a widening
	SQL      []string
	// Atomic: the statements must run together in one transaction.
	Atomic bool
	// Alone: the statement cannot run inside a transaction block
	// (Redshift's ALTER COLUMN … TYPE).
	Alone bool
	// Fallback, when set, is what to run, in one transaction, if SQL is
	// refused: Redshift refuses ALTER COLUMN … TYPE on some column
	// encodings, and the column is then rebuilt (add, copy, drop, rename).
	Fallback []string
}

// Refusal is a change the plan will not make, with why and how to make it
// by hand.
type Refusal struct {
	Table, Column string
	Reason        string
	Steps         []string
}

// Plan is what it takes to bring a warehouse schema to a schema file.
type Plan struct {
	Dialect  Dialect
	Schema   string // the warehouse schema
	Changes  []Change
	Refusals []Refusal
}

// Diff compares the schema file with the warehouse's catalog and returns
// the plan: the warehouse schema, the ledger, new tables and new columns,
// VARCHAR widening and integer widening (smallint → integer → bigint). A
// column dropped from the file, a narrower type or any other change of type
// is refused, with the manual steps; a table of the warehouse schema that
// the file does not name is not wharf's and is left alone.
func Diff(s *Schema, cat *Catalog, d Dialect, dbSchema string) *Plan {
	p := &Plan{Dialect: d, Schema: dbSchema}
	if !cat.Exists {
		p.Changes = append(p.Changes, Change{Kind: CreateWarehouseSchema, SQL: []string{CreateSchemaSQL(dbSchema)}})
	}
	if !cat.HasTable(LedgerTable) || !cat.HasTable(WatermarksTable) || !cat.HasTable(QuarantineTable) {
		p.Changes = append(p.Changes, Change{Kind: CreateLedger, Table: LedgerTable, SQL: LedgerSQL(d, dbSchema)})
	}
	for _, t := range s.All() {
		if !cat.HasTable(t.Name) {
			p.Changes = append(p.Changes, Change{Kind: CreateTable, Table: t.Name, SQL: []string{CreateTableSQL(t, d, dbSchema)}})
			continue
		}
		for _, c := range t.Columns {
			have := cat.Column(t.Name, c.Name)
			if have == nil {
				p.Changes = append(p.Changes, Change{Kind: AddColumn, Table: t.Name, Column: c.Name, To: c.Type.String(),
					SQL: []string{AddColumnSQL(t, c, d, dbSchema)}})
				continue
			}
			p.diffColumn(t, c, *have)
		}
		for _, have := range cat.Tables[t.Name] {
			if t.Column(have.Name) >= 0 {
				continue
			}
			q := QualifiedName(dbSchema, t.Name) + "." + QuoteIdent(have.Name)
			p.Refusals = append(p.Refusals, Refusal{Table: t.Name, Column: have.Name,
				Reason: fmt.Sprintf("column %s is in the warehouse (%s) but not in the schema file; wharf never drops a column", q, catalogTypeName(have)),
				Steps: []string{
					fmt.Sprintf("to keep it, declare it again in table %s of the schema file (its old values stay; files written meanwhile load NULL in it)", t.Name),
					"to drop it, first make sure `wharf load` finds no pending file and no running wharf still uses an older schema file that has it",
					fmt.Sprintf("then run: ALTER TABLE %s DROP COLUMN %s;", QualifiedName(dbSchema, t.Name), QuoteIdent(have.Name)),
				}})
		}
	}
	return p
}

var intRank = map[Kind]int{Smallint: 1, Integer: 2, Bigint: 3}

func catalogTypeName(c CatalogColumn) string {
	if t, ok := c.Type(); ok {
		return t.String()
	}
	return c.DataType
}

func (p *Plan) diffColumn(t *Table, c Column, have CatalogColumn) {
	want := c.Type
	got, known := have.Type()
	table := QualifiedName(p.Schema, t.Name)
	col := QuoteIdent(c.Name)
	name := t.Name + "." + c.Name
	if known && got == want {
		return
	}
	refuse := func(reason string, steps ...string) {
		p.Refusals = append(p.Refusals, Refusal{Table: t.Name, Column: c.Name, Reason: reason, Steps: steps})
	}
	retypeSteps := func() []string {
		return []string{
			fmt.Sprintf("keep %s in the schema file as the warehouse has it (%s), or", c.Name, catalogTypeName(have)),
			fmt.Sprintf("add a new column (say %s_v2 %s) to the file and apply: new files fill it, old rows keep %s", c.Name, want, c.Name),
			fmt.Sprintf("copy the old values over if you need them: UPDATE %s SET %s = CAST(%s AS %s);", table, QuoteIdent(c.Name+"_v2"), col, ColumnSQLType(want, p.Dialect)),
			fmt.Sprintf("remove %s from the file once no pending file and no running wharf still writes it", c.Name),
		}
	}
	switch {
	case !known:
		refuse(fmt.Sprintf("%s has warehouse type %q, which wharf does not write; the file declares %s", name, have.DataType, want), retypeSteps()...)
	case got.Kind == Varchar && want.Kind == Varchar:
		if want.Length < got.Length {
			refuse(fmt.Sprintf("%s: narrowing varchar(%d) to varchar(%d) could cut stored values", name, got.Length, want.Length),
				fmt.Sprintf("keep varchar(%d) in the schema file: the warehouse column holds everything the narrower one would", got.Length),
				fmt.Sprintf("or narrow by hand after checking: SELECT max(octet_length(%s)) FROM %s;", col, table))
			return
		}
		ch := Change{Kind: WidenVarchar, Table: t.Name, Column: c.Name, From: got.String(), To: want.String(),
			SQL:   []string{fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s", table, col, ColumnSQLType(want, p.Dialect))},
			Alone: p.Dialect == Redshift}
		if p.Dialect == Redshift && t.DistKey != c.Name && !slices.Contains(t.SortKey, c.Name) {
			ch.Fallback = rebuildColumnSQL(p.Schema, t, c, want)
		}
		p.Changes = append(p.Changes, ch)
	case intRank[got.Kind] > 0 && intRank[want.Kind] > 0:
		if intRank[want.Kind] < intRank[got.Kind] {
			refuse(fmt.Sprintf("%s: narrowing %s to %s could overflow stored values", name, got, want),
				fmt.Sprintf("keep %s in the schema file: the warehouse column holds every %s", got, want))
			return
		}
		p.widenInteger(t, c, got, want)
	default:
		refuse(fmt.Sprintf("%s: changing type %s to %s is not a widening wharf makes (old files and stored rows have the old type)", name, got, want), retypeSteps()...)
	}
}

// widenInteger widens an integer column. PostgreSQL alters the type in
// place (rewriting the table under an exclusive lock). Redshift cannot alter
// an integer's type, so the column is rebuilt in one transaction: add a
// column of the new type, copy, drop the old one, rename (the column moves
// to the end of the table, which wharf does not mind: every COPY and INSERT
// names its columns). Redshift cannot drop a DISTKEY or SORTKEY column: that
// is refused, with the deep copy to do by hand.
func (p *Plan) widenInteger(t *Table, c Column, got, want Type) {
	table := QualifiedName(p.Schema, t.Name)
	col := QuoteIdent(c.Name)
	ch := Change{Kind: WidenInteger, Table: t.Name, Column: c.Name, From: got.String(), To: want.String()}
	if p.Dialect != Redshift {
		ch.SQL = []string{fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s", table, col, ColumnSQLType(want, p.Dialect))}
		p.Changes = append(p.Changes, ch)
		return
	}
	if t.DistKey == c.Name || slices.Contains(t.SortKey, c.Name) {
		p.Refusals = append(p.Refusals, Refusal{Table: t.Name, Column: c.Name,
			Reason: fmt.Sprintf("%s.%s: Redshift cannot change the type of a DISTKEY or SORTKEY column in place", t.Name, c.Name),
			Steps: []string{
				"stop the loaders (wharf serve --no-load elsewhere keeps ingesting; files wait in S3)",
				fmt.Sprintf("CREATE TABLE %s (LIKE %s); then change %s to %s in its DDL (or create it from `wharf schema ddl`)", QualifiedName(p.Schema, t.Name+"_new"), table, c.Name, want),
				fmt.Sprintf("INSERT INTO %s SELECT * FROM %s;", QualifiedName(p.Schema, t.Name+"_new"), table),
				fmt.Sprintf("in one transaction: ALTER TABLE %s RENAME TO %s; ALTER TABLE %s RENAME TO %s;", table, QuoteIdent(t.Name+"_old"), QualifiedName(p.Schema, t.Name+"_new"), QuoteIdent(t.Name)),
				"start the loaders again, and drop the _old table when satisfied",
			}})
		return
	}
	ch.Atomic = true
	ch.SQL = rebuildColumnSQL(p.Schema, t, c, want)
	p.Changes = append(p.Changes, ch)
}

// rebuildColumnSQL changes c's type to want on Redshift by rebuilding the
// column, to run in one transaction: add a column of the new type, copy,
// drop the old one, rename (the column moves to the end of the table).
func rebuildColumnSQL(dbSchema string, t *Table, c Column, want Type) []string {
	table := QualifiedName(dbSchema, t.Name)
	col := QuoteIdent(c.Name)
	tmp := "wharf_widen_" + c.Name
	if len(tmp) > MaxIdentifier {
		tmp = tmp[:MaxIdentifier]
	}
	q := QuoteIdent(tmp)
	return []string{
		"LOCK " + table,
		fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", table, q, ColumnSQLType(want, Redshift)),
		fmt.Sprintf("UPDATE %s SET %s = %s", table, q, col),
		fmt.Sprintf("ALTER TABLE %s DROP COLUMN %s", table, col),
		fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", table, q, col),
	}
}

// Empty reports whether the plan changes nothing and refuses nothing.
func (p *Plan) Empty() bool { return len(p.Changes) == 0 && len(p.Refusals) == 0 }

func (c Change) describe() string {
	switch c.Kind {
	case CreateWarehouseSchema:
		return "create the warehouse schema"
	case CreateLedger:
		return "create wharf's ledger tables"
	case CreateTable:
		return "new table " + c.Table
	case AddColumn:
		return fmt.Sprintf("new column %s.%s %s", c.Table, c.Column, c.To)
	case WidenVarchar, WidenInteger:
		return fmt.Sprintf("widen %s.%s from %s to %s", c.Table, c.Column, c.From, c.To)
	}
	return string(c.Kind)
}

// WriteSQL writes the plan's DDL, each change under a comment saying what
// it does and how it runs.
func (p *Plan) WriteSQL(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "-- plan for warehouse schema %s (%s): %d changes, %d refused\n", p.Schema, p.Dialect, len(p.Changes), len(p.Refusals))
	if len(p.Changes) == 0 {
		b.WriteString("-- nothing to change\n")
	}
	for _, c := range p.Changes {
		fmt.Fprintf(&b, "\n-- %s", c.describe())
		switch {
		case c.Atomic:
			b.WriteString(" (in one transaction)")
		case c.Alone:
			b.WriteString(" (outside a transaction block)")
		}
		b.WriteString("\n")
		if c.Atomic {
			b.WriteString("BEGIN;\n")
		}
		for _, q := range c.SQL {
			b.WriteString(q + ";\n")
		}
		if c.Atomic {
			b.WriteString("COMMIT;\n")
		}
		if len(c.Fallback) > 0 {
			b.WriteString("-- if that is refused (some column encodings), instead, in one transaction:\n")
			for _, q := range c.Fallback {
				b.WriteString("--   " + q + ";\n")
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteRefusals writes each refused change with its reason and manual steps.
func (p *Plan) WriteRefusals(w io.Writer) error {
	var b strings.Builder
	for _, r := range p.Refusals {
		fmt.Fprintf(&b, "refused: %s\n", r.Reason)
		for i, s := range r.Steps {
			fmt.Fprintf(&b, "  %d. %s\n", i+1, s)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
