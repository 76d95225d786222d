package warehouse

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/wharfdata/wharf/internal/pq"
	"github.com/wharfdata/wharf/internal/stacktest"
	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse/postgres"
	"github.com/wharfdata/wharf/warehouse/redshift"
)

const testRole = "arn:aws:iam::123456789012:role/wharf-copy"

func TestRedshiftConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Dialect = schema.Redshift
	for _, role := range []string{testRole, testRole + ",arn:aws:iam::210987654321:role/chained", "arn:aws-cn:iam::123456789012:role/path/x", IAMRoleDefault} {
		cfg.IAMRole = role
		if err := cfg.Validate(); err != nil {
			t.Errorf("role %q: %v", role, err)
		}
	}
	for _, role := range []string{"wharf-copy", "arn:aws:iam::123456789012:role/x' --", "arn:aws:iam::123:role/x"} {
		cfg.IAMRole = role
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "warehouse.iam_role") {
			t.Errorf("role %q: %v, want an error naming warehouse.iam_role", role, err)
		}
	}
	cfg.IAMRole, cfg.Prefix = testRole, `ev'ents/`
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "s3.prefix") {
		t.Errorf("quote in prefix: %v", err)
	}
}

// rsEnv runs the redshift dialect against the local PostgreSQL: every
// statement but COPY is the one Redshift gets. The pool runs them as the
// production Redshift pool does (QueryExecModeDescribeExec), with the test
// schema first on the search path, where three stand-ins live: json_parse
// (Redshift's JSON_PARSE), stv_slices (four slices) and
// sys_load_error_detail. COPY from S3 is replaced by pgCopy, which reads the
// manifest the dialect wrote and streams the files' rows into staging.
type rsEnv struct {
	*env
	rsPool *pgxpool.Pool

	mu        sync.Mutex
	copies    [][]string // per COPY, the files it loaded
	manifests []redshift.Manifest
	copyHook  func(tx pgx.Tx, g redshift.CopyGroup) error // runs before each COPY; an error fails it
}

func newRSEnv(t *testing.T, yaml string) *rsEnv {
	t.Helper()
	e := &rsEnv{env: newEnv(t, yaml)}
	e.env.dialect, e.env.rs = schema.Redshift, e
	st := stacktest.Get(t)
	pc, err := pgxpool.ParseConfig(st.WarehouseDSN)
	if err != nil {
		t.Fatal(err)
	}
	RedshiftPoolConfig(pc)
	pc.ConnConfig.RuntimeParams["search_path"] = e.db + ",public"
	e.rsPool, err = pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.rsPool.Close)
	q := pgx.Identifier{e.db}.Sanitize()
	for _, s := range []string{
		`CREATE FUNCTION ` + q + `.json_parse(text) RETURNS jsonb LANGUAGE sql IMMUTABLE AS 'SELECT $1::jsonb'`,
		`CREATE VIEW ` + q + `.stv_slices AS SELECT g AS slice FROM generate_series(0, 3) g`,
		`CREATE TABLE ` + q + `.sys_load_error_detail (session_id integer, start_time timestamp, file_name char(256),
			column_name char(127), column_type char(10), column_length char(10), error_code integer, error_message char(512))`,
	} {
		if _, err := e.pool.Exec(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// pgDDL strips what PostgreSQL lacks from Redshift DDL: the DISTKEY,
// DISTSTYLE, SORTKEY and ENCODE clauses after the column list, and SUPER.
func pgDDL(q string) string {
	if strings.HasPrefix(q, "CREATE TABLE") {
		if i := strings.LastIndex(q, "\n)"); i >= 0 {
			q = q[:i+2]
		}
	}
	return strings.ReplaceAll(q, " SUPER", " jsonb")
}

func (e *rsEnv) loader(mod func(*Config)) (*Loader, *redshift.Dialect) {
	e.t.Helper()
	l := e.env.loader(mod)
	return l, l.d.(*redshift.Dialect)
}

// pgCopy stands in for COPY … FORMAT AS PARQUET MANIFEST: it reads the
// manifest, checks it names exactly the group's files (mandatory, with
// their lengths), refuses a file whose Parquet types the target's columns
// do not take as they are (Redshift's COPY does not coerce Parquet types;
// see strictCopy) and loads each file's columns, in file order, into the
// target.
func (e *rsEnv) pgCopy(ctx context.Context, tx pgx.Tx, t *schema.Table, into string, g redshift.CopyGroup) error {
	if e.copyHook != nil {
		if err := e.copyHook(tx, g); err != nil {
			return err
		}
	}
	body, err := e.store.Get(ctx, g.Manifest)
	if err != nil {
		return err
	}
	var m redshift.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	var keys []string
	for i, en := range m.Entries {
		f := g.Files[i]
		if en.URL != "s3://"+e.store.Bucket()+"/"+f.Key || !en.Mandatory || en.Meta.ContentLength != f.Size {
			return fmt.Errorf("manifest entry %d = %+v, want %s (%d bytes, mandatory)", i, en, f.Key, f.Size)
		}
		keys = append(keys, f.Key)
	}
	if len(m.Entries) != len(g.Files) {
		return fmt.Errorf("manifest has %d entries, want %d", len(m.Entries), len(g.Files))
	}
	e.mu.Lock()
	e.copies = append(e.copies, keys)
	e.manifests = append(e.manifests, m)
	e.mu.Unlock()
	idx := make([]int, len(g.Columns))
	conv := make([]func(schema.Value) (any, error), len(g.Columns))
	for i, name := range g.Columns {
		idx[i] = t.Column(name)
		conv[i] = postgres.Converter(t.Columns[idx[i]].Type)
	}
	for _, f := range g.Files {
		data, err := e.store.Get(ctx, f.Key)
		if err != nil {
			return err
		}
		if err := strictCopy(ctx, tx, into, f.Key, data); err != nil {
			return err
		}
		r, err := pq.Open(data, t)
		if err != nil {
			return err
		}
		vals := make([]schema.Value, len(t.Columns))
		var rows [][]any
		for {
			if err := r.Read(vals); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return err
			}
			row := make([]any, len(idx))
			for i, c := range idx {
				if !vals[c].Null {
					if row[i], err = conv[i](vals[c]); err != nil {
						return err
					}
				}
			}
			rows = append(rows, row)
		}
		r.Close()
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{into}, g.Columns, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
	}
	return nil
}

// strictCopy refuses, as Redshift's COPY of Parquet does, a file column
// whose Parquet type the temporary table's column of the same name does not
// take as it is: an INT32 into a bigint, an INT64 into an integer, a
// decimal whose physical type does not fit the column's precision (INT32 up
// to 9 digits, INT64 up to 18, a FIXED_LEN_BYTE_ARRAY of exactly the bytes
// the precision needs). It reads the file with parquet-go directly, not
// through wharf's reader.
func strictCopy(ctx context.Context, tx pgx.Tx, table, key string, data []byte) error {
	rows, err := tx.Query(ctx, `SELECT column_name, data_type, coalesce(numeric_precision, 0)
FROM information_schema.columns
WHERE table_schema = (SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()) AND table_name = $1`, table)
	if err != nil {
		return err
	}
	type col struct {
		typ       string
		precision int
	}
	cols := map[string]col{}
	var name, typ string
	var precision int
	if _, err := pgx.ForEachRow(rows, []any{&name, &typ, &precision}, func() error { cols[name] = col{typ, precision}; return nil }); err != nil {
		return err
	}
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return err
	}
	for _, field := range f.Schema().Fields() {
		c, ok := cols[field.Name()]
		if !ok {
			continue
		}
		pt := field.Type()
		var logical any
		if lt := pt.LogicalType(); lt != nil {
			logical = lt.Value
		}
		_, isDecimal := logical.(*format.DecimalType)
		intType, isInt := logical.(*format.IntType)
		var ok2 bool
		switch pt.Kind() {
		case parquet.Int32:
			switch {
			case isDecimal:
				ok2 = c.typ == "numeric" && c.precision <= 9
			case isInt && intType.BitWidth == 16:
				ok2 = c.typ == "smallint"
			case isInt || logical == nil:
				ok2 = c.typ == "integer"
			default:
				ok2 = c.typ == "date"
			}
		case parquet.Int64:
			switch {
			case isDecimal:
				ok2 = c.typ == "numeric" && c.precision > 9 && c.precision <= 18
			case isInt || logical == nil:
				ok2 = c.typ == "bigint"
			default:
				ok2 = strings.HasPrefix(c.typ, "timestamp")
			}
		case parquet.FixedLenByteArray:
			ok2 = isDecimal && c.typ == "numeric" && pt.Length() == fixedDecimalBytes(c.precision)
		default:
			ok2 = true // booleans, floats and strings are never retyped by a widening
		}
		if !ok2 {
			return fmt.Errorf("COPY %s: column %s is Parquet %s, which %s column %s does not take (Redshift does not coerce Parquet types)",
				key, field.Name(), pt, c.typ, field.Name())
		}
	}
	return nil
}

// fixedDecimalBytes is the size Redshift expects of a FIXED_LEN_BYTE_ARRAY
// decimal of precision p: the fewest bytes whose two's complement holds every
// p-digit integer.
func fixedDecimalBytes(p int) int {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(p)), nil)
	n := 1
	for new(big.Int).Lsh(big.NewInt(1), uint(8*n-1)).Cmp(limit) < 0 {
		n++
	}
	return n
}

// TestRedshiftLoadOnPostgres runs the redshift merge on PostgreSQL: every
// type lands exactly (json parsed by JSON_PARSE, not stored as a string),
// duplicates within a file, across files and across loads collapse with the
// first delivery winning, the ledger records every file, and the manifests
// are gone afterwards.
func TestRedshiftLoadOnPostgres(t *testing.T) {
	e := newRSEnv(t, testTables)
	l, _ := e.loader(nil)
	ctx := context.Background()
	ev, tags := e.sch.Table("ev"), e.sch.Table("ev_tags")
	e.put(ev, today,
		row(ev, "max", 0, map[string]schema.Value{
			"b": num(1), "i16": num(32767), "i32": num(2147483647), "i64": num(9223372036854775807),
			"f32": schema.FloatValue(1.5), "f64": schema.FloatValue(3.141592653589793),
			"d_small": num(-1234567), "d_big": str("-123456789012345678901234567890123"),
			"s": str("héllo ☃ 😀"), "ts": num(time.Date(2024, 3, 4, 5, 6, 7, 123456000, time.UTC).UnixMicro()),
			"day": num(19786), "j": str(`{"b":"x","a":[1,2,{"c":null}],"u":"\u00e9"}`),
		}),
		row(ev, "nulls", 0, nil),
		row(ev, "dup", 5, map[string]schema.Value{"s": str("later")}),
		row(ev, "dup", 2, map[string]schema.Value{"s": str("first")}),
	)
	e.put(ev, today, row(ev, "dup", 9, map[string]schema.Value{"s": str("latest")}), row(ev, "max", 9, nil))
	tagRow := func(id string, idx int64, tag string) schema.Row {
		return row(tags, id, 0, map[string]schema.Value{"idx": num(idx), "tag": str(tag)})
	}
	e.put(tags, today, tagRow("max", 0, "a"), tagRow("max", 1, "b"), tagRow("max", 0, "a"))
	res, err := l.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Tables["ev"], (TableResult{Files: 2, RowsIn: 6, Rows: 3, Duplicates: 3}); got != want {
		t.Errorf("ev: %+v, want %+v", got, want)
	}
	if got, want := res.Tables["ev_tags"], (TableResult{Files: 1, RowsIn: 3, Rows: 2, Duplicates: 1}); got != want {
		t.Errorf("ev_tags: %+v, want %+v", got, want)
	}
	got := e.query(`SELECT event_id, b::text, i16::text, i32::text, i64::text, f32::text, f64::text, d_small::text, d_big::text,
		s, ts::text, day::text, j::text, jsonb_typeof(j) FROM ` + schema.QualifiedName(e.db, "ev") + " ORDER BY event_id")
	want := [][]string{
		{"dup", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "first", "NULL", "NULL", "NULL", "NULL"},
		{"max", "true", "32767", "2147483647", "9223372036854775807", "1.5", "3.141592653589793", "-12345.67",
			"-12345678901234567890123456789.0123", "héllo ☃ 😀", "2024-03-04 05:06:07.123456", "2024-03-04",
			`{"a": [1, 2, {"c": null}], "b": "x", "u": "é"}`, "object"},
		{"nulls", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL"},
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("ev rows:\n got %q\nwant %q", got, want)
	}
	if got := e.query("SELECT event_id, idx::text, tag FROM " + schema.QualifiedName(e.db, "ev_tags") + " ORDER BY idx"); !slices.EqualFunc(got, [][]string{{"max", "0", "a"}, {"max", "1", "b"}}, slices.Equal) {
		t.Errorf("ev_tags rows: %q", got)
	}
	if len(e.copies) != 2 || len(e.copies[0]) != 2 || len(e.copies[1]) != 1 {
		t.Errorf("COPYs = %q, want one per table (2 files, then 1)", e.copies)
	}

	// A replayed file and a redelivered event add nothing; the ledger has every file.
	e.put(ev, today, row(ev, "dup", 1, map[string]schema.Value{"s": str("replayed")}), row(ev, "new", 1, nil))
	res, err = l.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Tables["ev"], (TableResult{Files: 1, RowsIn: 2, Rows: 1, Duplicates: 1}); got != want {
		t.Errorf("replay: %+v, want %+v", got, want)
	}
	if got := e.ids("ev"); !slices.Equal(got, []string{"dup", "max", "new", "nulls"}) {
		t.Errorf("ids = %v", got)
	}
	ledger := e.query(`SELECT table_name, count(*)::text, sum("rows")::text, bool_and("bytes" > 0)::text, bool_and(loaded_at > now() AT TIME ZONE 'UTC' - interval '1 hour')::text FROM ` +
		schema.QualifiedName(e.db, schema.LedgerTable) + " GROUP BY 1 ORDER BY 1")
	if want := [][]string{{"ev", "3", "8", "true", "true"}, {"ev_tags", "1", "3", "true", "true"}}; !slices.EqualFunc(ledger, want, slices.Equal) {
		t.Errorf("ledger: got %q, want %q", ledger, want)
	}
	left, err := e.store.ListKeys(ctx, e.prefix+redshift.ManifestPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("manifests left behind: %q", left)
	}
}

// TestRedshiftWindow shows what the windowed check finds: a row already
// in the target is skipped when its event_time is inside the batch's
// window, and only then (a known limit, for an event that has no time of
// its own and was sent twice as two messages: see the README).
func TestRedshiftWindow(t *testing.T) {
	e := newRSEnv(t, testTables)
	l, _ := e.loader(nil)
	ev := e.sch.Table("ev")
	at := func(r schema.Row, ts time.Time) schema.Row {
		r.Values[ev.Column(schema.ColEventTime)] = num(ts.UnixMicro())
		return r
	}
	e.put(ev, today, at(row(ev, "a", 0, nil), base), at(row(ev, "b", 0, nil), base.Add(time.Hour)))
	if _, err := l.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	// "a" again with its own time (inside this batch's window): skipped.
	e.put(ev, today, at(row(ev, "a", 5, nil), base), at(row(ev, "c", 0, nil), base.Add(2*time.Hour)))
	res, err := l.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Tables["ev"]; got.Rows != 1 || got.Duplicates != 1 {
		t.Errorf("redelivery in the window: %+v, want 1 row, 1 duplicate", got)
	}
	if n := e.count("ev"); n != 3 {
		t.Errorf("rows = %d, want 3", n)
	}
	// "b" again, but with another event time, alone in its batch: the
	// window [base+5h, base+5h] does not reach its first copy.
	e.put(ev, today, at(row(ev, "b", 0, nil), base.Add(5*time.Hour)))
	if _, err := l.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := e.count("ev"); n != 4 {
		t.Errorf("rows = %d, want 4 (the limit of the window)", n)
	}
}

// TestRedshiftSchemaChange loads, in one batch, files written before a
// column was added and after: one COPY per file layout (COPY of Parquet
// matches by position), the old files' rows NULL in the new column.
func TestRedshiftSchemaChange(t *testing.T) {
	const v1 = `
tables:
  - name: ev
    events: [ev]
    columns:
      - {name: a, path: a, type: integer}
      - {name: j, path: j, type: json}
`
	const v2 = `
tables:
  - name: ev
    events: [ev]
    columns:
      - {name: a, path: a, type: integer}
      - {name: added, path: added, type: varchar(8)}
      - {name: j, path: j, type: json}
`
	e := newRSEnv(t, v1)
	old := e.sch.Table("ev")
	e.loader(nil)
	e.put(old, today, row(old, "old1", 0, map[string]schema.Value{"a": num(1), "j": str(`[1]`)}))
	e.put(old, today, row(old, "old2", 0, map[string]schema.Value{"a": num(2)}))

	e.sch = parseSchema(t, v2)
	l, _ := e.loader(nil) // Apply adds the column
	ev := e.sch.Table("ev")
	e.put(ev, today, row(ev, "new", 0, map[string]schema.Value{"a": num(3), "added": str("x"), "j": str(`{"k":true}`)}))
	res, err := l.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Tables["ev"]; got.Files != 3 || got.Rows != 3 {
		t.Errorf("ev: %+v, want 3 files, 3 rows", got)
	}
	if len(e.copies) != 2 || len(e.copies[0]) != 2 || len(e.copies[1]) != 1 {
		t.Errorf("COPYs = %q, want two: the two old files, then the new one", e.copies)
	}
	got := e.query("SELECT event_id, a::text, added, j::text FROM " + schema.QualifiedName(e.db, "ev") + " ORDER BY event_id")
	want := [][]string{{"new", "3", "x", `{"k": true}`}, {"old1", "1", "NULL", "[1]"}, {"old2", "2", "NULL", "NULL"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("rows: got %q, want %q", got, want)
	}
}

// TestRedshiftBatchesBySlices: with four slices and at most six files per
// merge, ten pending files load as four (a multiple of the slices), then
// the six left (all that remain fit one COPY).
func TestRedshiftBatchesBySlices(t *testing.T) {
	e := newRSEnv(t, testTables)
	l, rs := e.loader(func(c *Config) { c.MaxFilesPerLoad = 6 })
	ev := e.sch.Table("ev")
	for i := range 10 {
		e.put(ev, today, row(ev, fmt.Sprintf("e%d", i), 0, nil))
	}
	res, err := l.Load(context.Background(), "ev")
	if err != nil {
		t.Fatal(err)
	}
	if n := rs.BatchSize(context.Background(), 1000, 6); n != 4 {
		t.Errorf("batch of 1000 pending, at most 6 = %d, want 4 (stv_slices has 4)", n)
	}
	var sizes []int
	for _, c := range e.copies {
		sizes = append(sizes, len(c))
	}
	if !slices.Equal(sizes, []int{4, 6}) {
		t.Errorf("files per COPY = %v, want [4 6]", sizes)
	}
	if got := res.Tables["ev"]; got.Files != 10 || got.Rows != 10 {
		t.Errorf("ev: %+v", got)
	}
}

// TestRedshiftCopyError: a COPY that refuses a value of one file
// quarantines that file, with what SYS_LOAD_ERROR_DETAIL says of it (file,
// column, reason); a COPY that fails without naming a file leaves every
// file pending; released from quarantine, the file loads.
func TestRedshiftCopyError(t *testing.T) {
	e := newRSEnv(t, testTables)
	l, _ := e.loader(nil)
	ev := e.sch.Table("ev")
	key := e.put(ev, today, row(ev, "e1", 0, map[string]schema.Value{"s": str("x")}))
	e.copyHook = func(tx pgx.Tx, g redshift.CopyGroup) error {
		// Redshift records load errors outside the failing transaction.
		_, err := e.pool.Exec(context.Background(), `INSERT INTO `+pgx.Identifier{e.db}.Sanitize()+`.sys_load_error_detail
			VALUES ($1, now() AT TIME ZONE 'UTC', $2, 's', 'varchar', '16', 1204, 'String length exceeds DDL length')`,
			int32(tx.Conn().PgConn().PID()), "s3://"+e.store.Bucket()+"/"+key)
		if err != nil {
			return err
		}
		return &pgconn.PgError{Severity: "ERROR", Code: "XX000", Message: "Load into table 'wharf_staging' failed. Check 'sys_load_error_detail' system table for details."}
	}
	ctx := context.Background()
	res, err := l.Load(ctx, "ev")
	if err != nil || res.Tables["ev"].Quarantined != 1 || res.Tables["ev"].Files != 0 {
		t.Fatalf("load with a value COPY refuses: %+v, %v; want the file quarantined, no error", res.Tables["ev"], err)
	}
	q, err := l.Quarantined(ctx)
	if err != nil || len(q) != 1 || q[0].Key != key {
		t.Fatalf("quarantine = %+v, %v; want %s", q, err, key)
	}
	for _, want := range []string{"Load into table 'wharf_staging' failed", "file s3://" + e.store.Bucket() + "/" + key, "column s (varchar(16))", "String length exceeds DDL length", "code 1204"} {
		if !strings.Contains(q[0].Reason, want) {
			t.Errorf("quarantine reason lacks %q:\n%v", want, q[0].Reason)
		}
	}
	if n := e.count(schema.LedgerTable); n != 0 {
		t.Errorf("ledger has %d rows after a failed COPY", n)
	}

	// A COPY that fails without naming a file (the role cannot read the
	// bucket, say) quarantines nothing: the files stay pending.
	other := e.put(ev, today, row(ev, "e2", 0, nil))
	e.copyHook = func(pgx.Tx, redshift.CopyGroup) error {
		return &pgconn.PgError{Severity: "ERROR", Code: "XX000", Message: "S3ServiceException:Access Denied"}
	}
	res, err = l.Load(ctx, "ev")
	if err == nil || !strings.Contains(err.Error(), "Access Denied") || res.Tables["ev"].Pending != 1 || res.Tables["ev"].Quarantined != 0 {
		t.Errorf("load with a COPY that names no file: %+v, %v; want the error and %s pending", res.Tables["ev"], err, other)
	}

	e.copyHook = nil
	if n, err := l.ReleaseQuarantined(ctx, "ev"); err != nil || n != 1 {
		t.Fatalf("release = %d, %v; want 1", n, err)
	}
	res, err = l.Load(ctx, "ev")
	if err != nil {
		t.Fatal(err)
	}
	if res.Tables["ev"].Rows != 2 {
		t.Errorf("after the release: %+v, want both files' rows", res.Tables["ev"])
	}
	if q, err := l.Quarantined(ctx); err != nil || len(q) != 0 {
		t.Errorf("quarantine after the release = %+v, %v; want empty", q, err)
	}
}

// TestRedshiftRetriesConflict: a serialization conflict (error 1023) makes
// the merge start over, and the second attempt loads the files once.
func TestRedshiftRetriesConflict(t *testing.T) {
	e := newRSEnv(t, testTables)
	l, _ := e.loader(nil)
	ev := e.sch.Table("ev")
	e.put(ev, today, row(ev, "e1", 0, nil), row(ev, "e2", 0, nil))
	calls := 0
	e.copyHook = func(pgx.Tx, redshift.CopyGroup) error {
		calls++
		if calls == 1 {
			return &pgconn.PgError{Code: "XX000", Message: "1023", Detail: "Serializable isolation violation on table - 100, transactions forming the cycle are: 1, 2"}
		}
		return nil
	}
	res, err := l.Load(context.Background(), "ev")
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 || res.Tables["ev"].Rows != 2 || e.count("ev") != 2 {
		t.Errorf("calls = %d, result %+v, rows %d; want 2 attempts, 2 rows", calls, res.Tables["ev"], e.count("ev"))
	}
}

// TestRedshiftWatermarkAndApply: the watermark rises and never falls, and
// Apply twice, then the plan, find nothing to do.
func TestRedshiftWatermarkAndApply(t *testing.T) {
	e := newRSEnv(t, testTables)
	l, rs := e.loader(nil)
	ctx := context.Background()
	if err := l.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	for _, offset := range []int{-9, -7, -8} {
		d, _ := time.Parse(time.DateOnly, day(offset))
		if err := rs.AdvanceWatermark(ctx, "ev", d); err != nil {
			t.Fatal(err)
		}
	}
	wm, ok, err := rs.Watermark(ctx, "ev")
	if err != nil || !ok || wm.Format(time.DateOnly) != day(-7) {
		t.Errorf("watermark = %v %v %v, want %s", wm, ok, err, day(-7))
	}
	p, err := l.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Empty() {
		var b strings.Builder
		p.WriteSQL(&b)
		p.WriteRefusals(&b)
		t.Errorf("plan after apply is not empty:\n%s", b.String())
	}
}

// TestRedshiftCluster runs the redshift dialect against a real cluster. It
// is opt-in: it runs only when WHARF_REDSHIFT_DSN, WHARF_REDSHIFT_IAM_ROLE
// and WHARF_REDSHIFT_BUCKET are set (AWS credentials from the SDK's default
// chain, and the bucket in the cluster's region), and skips otherwise even
// under WHARF_REQUIRE_STACK=1: a Redshift cluster is not part of the local
// stack. It creates and drops its own schema and S3 prefix.
func TestRedshiftCluster(t *testing.T) {
	dsn, role, bucket := os.Getenv("WHARF_REDSHIFT_DSN"), os.Getenv("WHARF_REDSHIFT_IAM_ROLE"), os.Getenv("WHARF_REDSHIFT_BUCKET")
	if dsn == "" || role == "" || bucket == "" {
		t.Skip("set WHARF_REDSHIFT_DSN, WHARF_REDSHIFT_IAM_ROLE and WHARF_REDSHIFT_BUCKET to run against a Redshift cluster")
	}
	runRedshiftCluster(t, dsn, role, bucket)
}

// TestRedshiftCatalogSuper: a column information_schema reports as
// USER-DEFINED (as Redshift may report SUPER) takes its type from
// SVV_COLUMNS, so a json column plans as unchanged, not as a retype.
func TestRedshiftCatalogSuper(t *testing.T) {
	e := newRSEnv(t, testTables)
	l, _ := e.loader(nil)
	ctx := context.Background()
	q := pgx.Identifier{e.db}.Sanitize()
	ev := schema.QualifiedName(e.db, "ev")
	for _, s := range []string{
		// The stand-in: an enum is USER-DEFINED in information_schema.
		`CREATE TYPE ` + q + `.fake_super AS ENUM ('x')`,
		`ALTER TABLE ` + ev + ` DROP COLUMN j`,
		`ALTER TABLE ` + ev + ` ADD COLUMN j ` + q + `.fake_super`,
		`CREATE VIEW ` + q + `.svv_columns AS SELECT table_schema, table_name, column_name,
			CASE WHEN data_type = 'USER-DEFINED' THEN 'super' ELSE data_type END AS data_type FROM information_schema.columns`,
	} {
		if _, err := e.pool.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	p, err := l.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Empty() || len(p.Refusals) > 0 {
		var b strings.Builder
		p.WriteSQL(&b)
		t.Errorf("plan with SUPER reported as USER-DEFINED is not empty:\n%s\nrefusals: %v", b.String(), p.Refusals)
	}
}

// TestRedshiftWidenFallback: when Redshift refuses ALTER COLUMN … TYPE (as
// it does on some column encodings), schema apply rebuilds the column
// instead (add, copy, drop, rename), keeping its values.
func TestRedshiftWidenFallback(t *testing.T) {
	const v1 = "tables:\n  - name: ev\n    events: [ev]\n    columns:\n      - {name: s, path: s, type: varchar(4)}\n"
	const v2 = "tables:\n  - name: ev\n    events: [ev]\n    columns:\n      - {name: s, path: s, type: varchar(32)}\n"
	ctx := context.Background()
	e := newRSEnv(t, v1)
	l, _ := e.loader(nil)
	ev := e.sch.Table("ev")
	e.put(ev, today, row(ev, "a", 0, map[string]schema.Value{"s": str("abcd")}))
	if _, err := l.Load(ctx); err != nil {
		t.Fatal(err)
	}
	e.sch = parseSchema(t, v2)
	l, rs := e.loader(nil)
	refused := 0
	rs.DDL = func(q string) string {
		if strings.Contains(q, "ALTER COLUMN") {
			refused++
			return "SELECT CAST('ALTER COLUMN TYPE refused (encoding)' AS integer)"
		}
		return pgDDL(q)
	}
	p, err := l.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 1 || p.Changes[0].Kind != schema.WidenVarchar || len(p.Changes[0].Fallback) == 0 {
		t.Fatalf("plan = %+v, want one varchar widening with a fallback", p.Changes)
	}
	if err := l.ApplyPlan(ctx, p); err != nil {
		t.Fatal(err)
	}
	if refused != 1 {
		t.Errorf("ALTER COLUMN TYPE tried %d times, want 1", refused)
	}
	got := e.query(`SELECT character_maximum_length::text FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'ev' AND column_name = 's'`, e.db)
	if len(got) != 1 || got[0][0] != "32" {
		t.Errorf("s is varchar(%v), want 32", got)
	}
	if got := e.query("SELECT s FROM " + schema.QualifiedName(e.db, "ev")); len(got) != 1 || got[0][0] != "abcd" {
		t.Errorf("values after the rebuild: %q, want abcd", got)
	}
	if p, err := l.Plan(ctx); err != nil || !p.Empty() {
		t.Errorf("plan after apply: %+v, %v; want empty", p, err)
	}
}

// TestRedshiftWidenedColumnOldFiles: after an integer is widened, files
// written before (INT32) and after (INT64) the change load together; the
// stand-in's COPY, like Redshift's, would refuse INT32 into bigint, so the
// older files are staged in their own types and cast.
func TestRedshiftWidenedColumnOldFiles(t *testing.T) {
	const v1 = "tables:\n  - name: ev\n    events: [ev]\n    columns:\n      - {name: a, path: a, type: integer}\n      - {name: s, path: s, type: varchar(8)}\n"
	const v2 = "tables:\n  - name: ev\n    events: [ev]\n    columns:\n      - {name: a, path: a, type: bigint}\n      - {name: s, path: s, type: varchar(8)}\n"
	ctx := context.Background()
	e := newRSEnv(t, v1)
	e.loader(nil)
	old := e.sch.Table("ev")
	e.put(old, today, row(old, "old", 0, map[string]schema.Value{"a": num(7), "s": str("x")}))

	e.sch = parseSchema(t, v2)
	l, _ := e.loader(nil)
	p, err := l.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.ApplyPlan(ctx, p); err != nil {
		t.Fatal(err)
	}
	ev := e.sch.Table("ev")
	e.put(ev, today, row(ev, "new", 0, map[string]schema.Value{"a": num(1 << 40), "s": str("y")}))
	res, err := l.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Tables["ev"]; got.Files != 2 || got.Rows != 2 {
		t.Errorf("ev: %+v, want 2 files, 2 rows", got)
	}
	got := e.query("SELECT event_id, a::text, s FROM " + schema.QualifiedName(e.db, "ev") + " ORDER BY event_id")
	want := [][]string{{"new", "1099511627776", "y"}, {"old", "7", "x"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("rows: got %q, want %q", got, want)
	}
}
