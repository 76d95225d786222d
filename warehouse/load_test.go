package warehouse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/wharfdata/wharf/internal/pq"
	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/internal/s3store/s3storetest"
	"github.com/wharfdata/wharf/internal/stacktest"
	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse/redshift"
)

// env is one integration test's slice of the local stack: a warehouse
// schema, an S3 prefix and a schema file.
type env struct {
	t      testing.TB
	pool   *pgxpool.Pool
	db     string
	store  *s3store.Store
	prefix string
	sch    *schema.Schema
	n      atomic.Int64

	dialect schema.Dialect // the loaders' dialect
	rs      *rsEnv         // the Redshift stand-in, when dialect is redshift
}

func newEnv(t testing.TB, yaml string) *env {
	t.Helper()
	st := stacktest.Get(t)
	pool, db := st.Warehouse(t)
	return &env{t: t, pool: pool, db: db, store: s3store.New(st.S3(t), st.Bucket), prefix: st.Prefix(), sch: parseSchema(t, yaml), dialect: schema.Postgres}
}

// loader returns a Loader of the env's dialect with cfg changed by mod,
// after Apply.
func (e *env) loader(mod func(*Config)) *Loader {
	e.t.Helper()
	l := e.build(e.store, prometheus.NewRegistry(), mod)
	if err := l.Apply(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	return l
}

// build returns a Loader of the env's dialect on store, registering its
// metrics on reg (nil: none), with cfg changed by mod, without Apply. Its
// clock is the tests' clock; on the Redshift stand-in, its DDL and COPY are
// the stand-in's (rsEnv).
func (e *env) build(store ObjectStore, reg prometheus.Registerer, mod func(*Config)) *Loader {
	e.t.Helper()
	cfg := DefaultConfig()
	cfg.Dialect, cfg.Schema, cfg.Prefix = e.dialect, e.db, e.prefix
	pool := e.pool
	if e.rs != nil {
		cfg.IAMRole, pool = testRole, e.rs.rsPool
	}
	if mod != nil {
		mod(&cfg)
	}
	l, err := New(cfg, pool, store, e.sch, zaptest.NewLogger(e.t), reg)
	if err != nil {
		e.t.Fatal(err)
	}
	l.now = clock
	if e.rs != nil {
		rs := l.d.(*redshift.Dialect)
		rs.DDL, rs.Copy = pgDDL, e.rs.pgCopy
	}
	return l
}

// put writes rows of table tb as a new Parquet file in day partition day
// (YYYY-MM-DD) and returns its key.
func (e *env) put(tb *schema.Table, day string, rows ...schema.Row) string {
	e.t.Helper()
	var buf bytes.Buffer
	if err := pq.Encode(&buf, tb, rows); err != nil {
		e.t.Fatal(err)
	}
	key := fmt.Sprintf("%s%s/dt=%s/%06d.parquet", e.prefix, tb.Name, day, e.n.Add(1))
	e.putRaw(key, buf.Bytes())
	return key
}

func (e *env) putRaw(key string, data []byte) {
	e.t.Helper()
	if err := e.store.Put(context.Background(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		e.t.Fatal(err)
	}
}

// query returns the rows of sql, each column as text ("NULL" for NULL).
func (e *env) query(sql string, args ...any) [][]string {
	e.t.Helper()
	rows, err := e.pool.Query(context.Background(), sql, args...)
	if err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	var out [][]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			e.t.Fatal(err)
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				row[i] = "NULL"
			} else {
				row[i] = fmt.Sprint(v)
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) count(table string) int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+schema.QualifiedName(e.db, table)).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// ids returns the event ids in table, sorted.
func (e *env) ids(table string) []string {
	var out []string
	for _, r := range e.query("SELECT event_id FROM " + schema.QualifiedName(e.db, table) + " ORDER BY 1") {
		out = append(out, r[0])
	}
	return out
}

// base is the tests' clock: noon (UTC) of the day the test binary started.
// Every loader a test makes reads it (clock), and every day partition and
// event time a test writes is derived from it, so no test ages with the
// calendar.
var base = func() time.Time {
	now := time.Now().UTC()
	return time.Date(now.Year(), now.Month(), now.Day(), 12, 0, 0, 0, time.UTC)
}()

// clock is the loaders' injected clock: always base.
func clock() time.Time { return base }

// day returns the dt= partition offset days from base's day.
func day(offset int) string { return base.AddDate(0, 0, offset).Format(time.DateOnly) }

// sqlTime is t as PostgreSQL prints a timestamp.
func sqlTime(t time.Time) string { return t.Format("2006-01-02 15:04:05.999999") }

// row returns a row of tb for event id, received sec seconds after base,
// with the named values; every other column is NULL.
func row(tb *schema.Table, id string, sec int, vals map[string]schema.Value) schema.Row {
	r := schema.Row{Table: tb, Values: make([]schema.Value, len(tb.Columns))}
	for i, c := range tb.Columns {
		switch c.Name {
		case schema.ColEventID:
			r.Values[i] = schema.Value{S: id}
		case schema.ColEventTime:
			r.Values[i] = schema.Value{I: base.UnixMicro()}
		case schema.ColReceivedAt:
			r.Values[i] = schema.Value{I: base.Add(time.Duration(sec) * time.Second).UnixMicro()}
		default:
			v, ok := vals[c.Name]
			if !ok {
				v = schema.NullValue
			}
			r.Values[i] = v
		}
	}
	return r
}

func str(s string) schema.Value { return schema.Value{S: s} }
func num(i int64) schema.Value  { return schema.Value{I: i} }

// today is base's day partition.
var today = day(0)

// TestLoadValues checks that every column type lands with its exact value,
// NULLs included, in parent and child tables.
func TestLoadValues(t *testing.T) {
	eachDialect(t, testTables, func(t *testing.T, e *env) {
		l := e.loader(nil)
		ev, tags := e.sch.Table("ev"), e.sch.Table("ev_tags")
		e.put(ev, today,
			row(ev, "max", 0, map[string]schema.Value{
				"b": num(1), "i16": num(32767), "i32": num(2147483647), "i64": num(9223372036854775807),
				"f32": schema.FloatValue(1.5), "f64": schema.FloatValue(3.141592653589793),
				"d_small": num(-1234567), "d_big": str("-123456789012345678901234567890123"),
				"s": str("héllo ☃ 😀"), "ts": num(time.Date(2024, 3, 4, 5, 6, 7, 123456000, time.UTC).UnixMicro()),
				"day": num(19786), "j": str(`{"b":"x","a":[1,2,{"c":null}],"u":"\u00e9"}`),
			}),
			row(ev, "min", 0, map[string]schema.Value{
				"b": num(0), "i16": num(-32768), "i32": num(-2147483648), "i64": num(-9223372036854775808),
				"f32": schema.FloatValue(-0.25), "f64": schema.FloatValue(1e300),
				"d_small": num(9999999999), "d_big": str("99999999999999999999999999999999999999"),
				"s": str(""), "ts": num(-1), "day": num(-1), "j": str(`"just a string"`),
			}),
			row(ev, "nulls", 0, nil),
		)
		e.put(tags, today,
			row(tags, "max", 0, map[string]schema.Value{"idx": num(0), "tag": str("a")}),
			row(tags, "max", 0, map[string]schema.Value{"idx": num(1)}),
		)
		res, err := l.Load(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Tables["ev"]; got.Files != 1 || got.Rows != 3 || got.RowsIn != 3 {
			t.Errorf("ev: %+v, want 1 file, 3 rows", got)
		}
		if got := res.Tables["ev_tags"]; got.Files != 1 || got.Rows != 2 {
			t.Errorf("ev_tags: %+v, want 1 file, 2 rows", got)
		}
		got := e.query(`SELECT event_id, event_time::text, received_at::text, b::text, i16::text, i32::text, i64::text,
		f32::text, f64::text, d_small::text, d_big::text, s, ts::text, day::text, j::text
		FROM ` + schema.QualifiedName(e.db, "ev") + " ORDER BY event_id")
		want := [][]string{
			{"max", sqlTime(base), sqlTime(base), "true", "32767", "2147483647", "9223372036854775807",
				"1.5", "3.141592653589793", "-12345.67", "-12345678901234567890123456789.0123", "héllo ☃ 😀",
				"2024-03-04 05:06:07.123456", "2024-03-04", `{"a": [1, 2, {"c": null}], "b": "x", "u": "é"}`},
			{"min", sqlTime(base), sqlTime(base), "false", "-32768", "-2147483648", "-9223372036854775808",
				"-0.25", "1e+300", "99999999.99", "9999999999999999999999999999999999.9999", "",
				"1969-12-31 23:59:59.999999", "1969-12-31", `"just a string"`},
			{"nulls", sqlTime(base), sqlTime(base), "NULL", "NULL", "NULL", "NULL",
				"NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL"},
		}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("ev rows:\n got %q\nwant %q", got, want)
		}
		gotTags := e.query("SELECT event_id, idx::text, tag FROM " + schema.QualifiedName(e.db, "ev_tags") + " ORDER BY idx")
		wantTags := [][]string{{"max", "0", "a"}, {"max", "1", "NULL"}}
		if !slices.EqualFunc(gotTags, wantTags, slices.Equal) {
			t.Errorf("ev_tags rows: got %q, want %q", gotTags, wantTags)
		}
		// jsonb holds JSON, not a string of JSON.
		if got := e.query("SELECT jsonb_typeof(j) FROM " + schema.QualifiedName(e.db, "ev") + " WHERE event_id = 'max'"); got[0][0] != "object" {
			t.Errorf("jsonb_typeof(j) = %s, want object", got[0][0])
		}
	})
}

// TestLoadDedupe checks that duplicate events, within a file, across files
// of a batch and across loads, reach the table once, the first delivery
// winning; that loading again loads nothing; and that a replayed file adds
// no row.
func TestLoadDedupe(t *testing.T) {
	eachDialect(t, testTables, func(t *testing.T, e *env) {
		l := e.loader(nil)
		ev := e.sch.Table("ev")
		tags := e.sch.Table("ev_tags")
		v := func(s string) map[string]schema.Value { return map[string]schema.Value{"s": str(s)} }
		ctx := context.Background()

		e.put(ev, today, row(ev, "e1", 1, v("first")), row(ev, "e2", 5, v("later")), row(ev, "e2", 2, v("first")))
		e.put(ev, today, row(ev, "e2", 9, v("latest")), row(ev, "e3", 3, v("first")), row(ev, "e1", 0, v("earliest")))
		// The tags of each event's first delivery (e1 at 0 s, e2 at 2 s).
		tagRow := func(id string, sec int, idx int64, tag string) schema.Row {
			return row(tags, id, sec, map[string]schema.Value{"idx": num(idx), "tag": str(tag)})
		}
		e.put(tags, today, tagRow("e1", 0, 0, "a"), tagRow("e1", 0, 1, "b"), tagRow("e1", 0, 0, "a"))
		e.put(tags, today, tagRow("e1", 0, 1, "b"), tagRow("e2", 2, 0, "c"))
		res, err := l.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := TableResult{Files: 2, RowsIn: 6, Rows: 3, Duplicates: 3}
		if got := res.Tables["ev"]; got != want {
			t.Errorf("ev: %+v, want %+v", got, want)
		}
		if got := res.Tables["ev_tags"]; got.Rows != 3 || got.Duplicates != 2 {
			t.Errorf("ev_tags: %+v, want 3 rows, 2 duplicates", got)
		}
		got := e.query("SELECT event_id, s FROM " + schema.QualifiedName(e.db, "ev") + " ORDER BY event_id")
		wantRows := [][]string{{"e1", "earliest"}, {"e2", "first"}, {"e3", "first"}}
		if !slices.EqualFunc(got, wantRows, slices.Equal) {
			t.Errorf("rows: got %q, want %q", got, wantRows)
		}

		// Again: the ledger has every file.
		res, err = l.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Files() != 0 || res.Rows() != 0 {
			t.Errorf("second load: %+v, want nothing", res)
		}

		// A replayed file and a redelivered event add no row.
		e.put(ev, today, row(ev, "e1", 1, v("replayed")), row(ev, "e3", 3, v("replayed")), row(ev, "e4", 4, v("new")))
		res, err = l.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want = TableResult{Files: 1, RowsIn: 3, Rows: 1, Duplicates: 2}
		if got := res.Tables["ev"]; got != want {
			t.Errorf("replay: %+v, want %+v", got, want)
		}
		if got := e.ids("ev"); !slices.Equal(got, []string{"e1", "e2", "e3", "e4"}) {
			t.Errorf("ids = %v", got)
		}
		if got := e.query("SELECT s FROM " + schema.QualifiedName(e.db, "ev") + " WHERE event_id = 'e1'"); got[0][0] != "earliest" {
			t.Errorf("e1 was overwritten by a replay: %q", got)
		}
		ledger := e.query(`SELECT table_name, count(*)::text, sum("rows")::text FROM ` + schema.QualifiedName(e.db, schema.LedgerTable) + " GROUP BY 1 ORDER BY 1")
		wantLedger := [][]string{{"ev", "3", "9"}, {"ev_tags", "2", "5"}}
		if !slices.EqualFunc(ledger, wantLedger, slices.Equal) {
			t.Errorf("ledger: got %q, want %q", ledger, wantLedger)
		}
		// The loader's snapshot: what it merged, since it started.
		st := l.Stats()
		if got := st.Tables["ev"]; got != (TableStats{Files: 3, Rows: 4}) || st.Tables["ev_tags"].Rows != 3 || st.Rows() != 7 {
			t.Errorf("Stats() = %+v, want ev 3 files and 4 rows, ev_tags 3 rows, none pending", st)
		}
	})
}

// TestConcurrentLoaders runs two loaders (as two ECS tasks would) on the
// same files at once: every event lands once and every file is in the
// ledger once.
func TestConcurrentLoaders(t *testing.T) {
	eachDialect(t, testTables, func(t *testing.T, e *env) {
		ev := e.sch.Table("ev")
		const files, perFile = 24, 50
		unique := map[string]bool{}
		for f := 0; f < files; f++ {
			var rows []schema.Row
			for i := 0; i < perFile; i++ {
				id := fmt.Sprintf("e%04d", f*perFile/2+i) // half of each file repeats the previous one
				unique[id] = true
				rows = append(rows, row(ev, id, i, nil))
			}
			e.put(ev, today, rows...)
		}
		small := func(c *Config) { c.MaxFilesPerLoad = 3 }
		loaders := []*Loader{e.loader(small), e.loader(small), e.loader(small)}
		results := make([]Result, len(loaders))
		errs := make([]error, len(loaders))
		var wg sync.WaitGroup
		for i, l := range loaders {
			wg.Go(func() { results[i], errs[i] = l.Load(context.Background(), "ev") })
		}
		wg.Wait()
		total, rows := 0, int64(0)
		for i := range loaders {
			if errs[i] != nil {
				t.Fatalf("loader %d: %v", i, errs[i])
			}
			total += results[i].Files()
			rows += results[i].Rows()
		}
		if total != files {
			t.Errorf("files merged across loaders = %d, want %d", total, files)
		}
		if n := e.count("ev"); n != len(unique) || rows != int64(len(unique)) {
			t.Errorf("rows = %d (reported %d), want %d", n, rows, len(unique))
		}
		if got := e.query(`SELECT count(*) FROM ` + schema.QualifiedName(e.db, schema.LedgerTable)); got[0][0] != fmt.Sprint(files) {
			t.Errorf("ledger rows = %s, want %d", got[0][0], files)
		}
	})
}

// countingStore records the prefixes listed.
type countingStore struct {
	*s3store.Store
	mu     sync.Mutex
	listed []string
}

func (c *countingStore) List(ctx context.Context, prefix, startAfter string) ([]s3store.Object, error) {
	c.mu.Lock()
	c.listed = append(c.listed, prefix)
	c.mu.Unlock()
	return c.Store.List(ctx, prefix, startAfter)
}

func (c *countingStore) takeListed() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.listed
	c.listed = nil
	return out
}

func (e *env) watermark(table string) string {
	e.t.Helper()
	got := e.query(`SELECT day::text FROM `+schema.QualifiedName(e.db, schema.WatermarksTable)+` WHERE table_name = $1`, table)
	if len(got) == 0 {
		return ""
	}
	return got[0][0]
}

// TestWatermark checks that after a load the watermark is yesterday, that
// days before it are not listed again until the next reconciliation (a file
// put there is not seen), and that a file put in a day from it on is found.
func TestWatermark(t *testing.T) {
	eachDialect(t, testTables, func(t *testing.T, e *env) {
		cs := &countingStore{Store: e.store}
		l := e.build(cs, nil, nil)
		if err := l.Apply(context.Background()); err != nil {
			t.Fatal(err)
		}
		midnight := base.Truncate(24 * time.Hour)
		l.now = func() time.Time { return midnight.Add(30 * time.Minute) }
		ev := e.sch.Table("ev")
		e.put(ev, day(-24), row(ev, "a", 0, nil))
		e.put(ev, day(-2), row(ev, "b", 0, nil))
		e.put(ev, day(-1), row(ev, "c", 0, nil))
		e.put(ev, day(0), row(ev, "d", 0, nil))
		ctx := context.Background()
		if res, err := l.Load(ctx, "ev"); err != nil || res.Files() != 4 {
			t.Fatalf("first load: %+v, %v; want 4 files", res, err)
		}
		if got := e.watermark("ev"); got != day(-1) {
			t.Errorf("watermark = %q, want %s (yesterday)", got, day(-1))
		}
		cs.takeListed()

		e.put(ev, day(-2), row(ev, "old", 0, nil)) // before the watermark: not seen before the next reconciliation
		e.put(ev, day(-1), row(ev, "late", 0, nil))
		e.put(ev, day(0), row(ev, "now", 0, nil))
		res, err := l.Load(ctx, "ev")
		if err != nil || res.Files() != 2 {
			t.Fatalf("second load: %+v, %v; want 2 files", res, err)
		}
		wantListed := []string{e.prefix + "ev/dt=" + day(-1) + "/", e.prefix + "ev/dt=" + day(0) + "/"}
		if got := cs.takeListed(); !slices.Equal(got, wantListed) {
			t.Errorf("listed %q, want %q", got, wantListed)
		}
		if got := e.ids("ev"); !slices.Equal(got, []string{"a", "b", "c", "d", "late", "now"}) {
			t.Errorf("ids = %v", got)
		}

		// The next day, the watermark moves on, never backwards.
		l.now = func() time.Time { return midnight.AddDate(0, 0, 1).Add(8 * time.Hour) }
		if _, err := l.Load(ctx, "ev"); err != nil {
			t.Fatal(err)
		}
		if got := e.watermark("ev"); got != day(0) {
			t.Errorf("watermark = %q, want %s", got, day(0))
		}
		l.now = func() time.Time { return midnight.AddDate(0, 0, -5).Add(8 * time.Hour) }
		if _, err := l.Load(ctx, "ev"); err != nil {
			t.Fatal(err)
		}
		if got := e.watermark("ev"); got != day(0) {
			t.Errorf("watermark after a clock going back = %q, want %s", got, day(0))
		}
	})
}

// TestLateFile writes files into a day the watermark has already passed:
// loads within ReconcileInterval do not list that day, the first load after
// it loads the file and counts it as late, and a new loader (a restart)
// reconciles on its first load.
func TestLateFile(t *testing.T) {
	eachDialect(t, testTables, func(t *testing.T, e *env) {
		const reconcile = time.Hour
		l := e.build(e.store, prometheus.NewRegistry(), func(c *Config) { c.ReconcileInterval = reconcile })
		ctx := context.Background()
		if err := l.Apply(ctx); err != nil {
			t.Fatal(err)
		}
		now := base
		l.now = func() time.Time { return now }
		ev := e.sch.Table("ev")
		e.put(ev, day(-3), row(ev, "a", 0, nil))
		if res, err := l.Load(ctx, "ev"); err != nil || res.Tables["ev"] != (TableResult{Files: 1, RowsIn: 1, Rows: 1}) {
			t.Fatalf("first load: %+v, %v; want 1 file, none late", res, err)
		}
		if got := e.watermark("ev"); got != day(-1) {
			t.Fatalf("watermark = %q, want %s", got, day(-1))
		}
		late := testutil.ToFloat64(l.m.late.WithLabelValues("ev"))

		e.put(ev, day(-3), row(ev, "late", 0, nil))
		now = base.Add(reconcile - time.Second)
		if res, err := l.Load(ctx, "ev"); err != nil || res.Files() != 0 {
			t.Fatalf("load before the reconciliation: %+v, %v; want no file (the day is not listed)", res, err)
		}
		now = base.Add(reconcile)
		res, err := l.Load(ctx, "ev")
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Tables["ev"]; got.Files != 1 || got.Late != 1 || got.Rows != 1 {
			t.Errorf("reconciling load: %+v, want 1 file, 1 late, 1 row", got)
		}
		if got := testutil.ToFloat64(l.m.late.WithLabelValues("ev")) - late; got != 1 {
			t.Errorf("wharf_load_late_files_total rose by %v, want 1", got)
		}
		if got := e.ids("ev"); !slices.Equal(got, []string{"a", "late"}) {
			t.Errorf("ids = %v", got)
		}
		if res, err := l.Load(ctx, "ev"); err != nil || res.Files() != 0 {
			t.Errorf("load after: %+v, %v; want nothing", res, err)
		}

		// A restarted process reconciles on its first load.
		e.put(ev, day(-10), row(ev, "after-restart", 0, nil))
		l2 := e.loader(nil)
		l2.now = func() time.Time { return now }
		if res, err := l2.Load(ctx, "ev"); err != nil || res.Tables["ev"].Late != 1 {
			t.Fatalf("first load of a new loader: %+v, %v; want the late file", res, err)
		}
		if got := e.ids("ev"); !slices.Equal(got, []string{"a", "after-restart", "late"}) {
			t.Errorf("ids = %v", got)
		}
	})
}

// TestQuarantine: a file that cannot load (not Parquet) is set aside with
// its reason and never holds back the rest of its table; the watermark
// moves on; released after a fix, it loads. The test fails without the
// quarantine: the corrupt file blocked every file after it.
func TestQuarantine(t *testing.T) {
	eachDialect(t, testTables, func(t *testing.T, e *env) {
		reg := prometheus.NewRegistry()
		l := e.build(e.store, reg, func(c *Config) { c.MaxFilesPerLoad = 1 })
		ctx := context.Background()
		if err := l.Apply(ctx); err != nil {
			t.Fatal(err)
		}
		ev := e.sch.Table("ev")
		e.put(ev, day(-22), row(ev, "a", 0, nil))
		bad := e.put(ev, day(-20), row(ev, "b", 0, nil))
		e.put(ev, day(-18), row(ev, "c", 0, nil))
		e.putRaw(bad, []byte("not parquet"))
		res, err := l.Load(ctx, "ev")
		if err != nil {
			t.Fatalf("load with a corrupt file: %v, want it quarantined and no error", err)
		}
		if got := res.Tables["ev"]; got.Files != 2 || got.Quarantined != 1 || got.Pending != 0 {
			t.Errorf("result %+v, want 2 files merged, 1 quarantined, none pending", got)
		}
		if got := e.ids("ev"); !slices.Equal(got, []string{"a", "c"}) {
			t.Errorf("ids = %v, want a c", got)
		}
		if got := e.watermark("ev"); got != day(-1) {
			t.Errorf("watermark = %q, want %s (the quarantined file holds nothing back)", got, day(-1))
		}
		q, err := l.Quarantined(ctx, "ev")
		if err != nil || len(q) != 1 || q[0].Key != bad || q[0].Table != "ev" || !strings.Contains(q[0].Reason, bad) {
			t.Fatalf("quarantine = %+v, %v; want %s with a reason naming it", q, err, bad)
		}
		if got := testutil.ToFloat64(l.m.quarantined.WithLabelValues("ev")); got != 1 {
			t.Errorf("wharf_load_quarantined_total = %v, want 1", got)
		}
		if got := l.Stats().Tables["ev"]; got != (TableStats{Files: 2, Rows: 2, Quarantined: 1}) {
			t.Errorf("Stats() ev = %+v, want 2 files, 2 rows, 1 quarantined, none pending", got)
		}
		if res, err := l.Load(ctx, "ev"); err != nil || res.Files() != 0 || res.Tables["ev"].Quarantined != 0 {
			t.Errorf("next load: %+v, %v; want nothing (the file stays in quarantine, not retried)", res, err)
		}

		// Fixed (an upgrade, a rewrite), released, loaded.
		var buf bytes.Buffer
		if err := pq.Encode(&buf, ev, []schema.Row{row(ev, "b", 0, nil)}); err != nil {
			t.Fatal(err)
		}
		e.putRaw(bad, buf.Bytes())
		if n, err := l.ReleaseQuarantined(ctx); err != nil || n != 1 {
			t.Fatalf("release = %d, %v; want 1", n, err)
		}
		if res, err := l.Load(ctx, "ev"); err != nil || res.Files() != 1 {
			t.Fatalf("load after the release: %+v, %v; want the file", res, err)
		}
		if got := e.ids("ev"); !slices.Equal(got, []string{"a", "b", "c"}) {
			t.Errorf("ids = %v", got)
		}
		if q, err := l.Quarantined(ctx); err != nil || len(q) != 0 {
			t.Errorf("quarantine after the release = %+v, %v; want empty", q, err)
		}
	})
}

// TestNewColumn checks that Apply adds a column added to the schema file,
// and that a file written before it loads with NULL there.
func TestNewColumn(t *testing.T) {
	const v1 = `
tables:
  - name: ev
    events: [ev]
    columns:
      - {name: a, path: a, type: integer}
`
	const v2 = v1 + `      - {name: added, path: added, type: varchar(8)}
`
	eachDialect(t, v1, func(t *testing.T, e *env) {
		old := e.sch.Table("ev")
		e.loader(nil)
		e.put(old, today, row(old, "old", 0, map[string]schema.Value{"a": num(1)}))

		e.sch = parseSchema(t, v2)
		l := e.loader(nil) // Apply adds the column
		ev := e.sch.Table("ev")
		e.put(ev, today, row(ev, "new", 0, map[string]schema.Value{"a": num(2), "added": str("x")}))
		if _, err := l.Load(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := e.query("SELECT event_id, a, added FROM " + schema.QualifiedName(e.db, "ev") + " ORDER BY event_id")
		want := [][]string{{"new", "2", "x"}, {"old", "1", "NULL"}}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("rows: got %q, want %q", got, want)
		}
	})
}

// TestApplyConcurrent runs Apply from several loaders at once, twice.
func TestApplyConcurrent(t *testing.T) {
	eachDialect(t, testTables, func(t *testing.T, e *env) {
		pool, fresh := e.pool, e.db+"_new" // Apply creates the schema too
		t.Cleanup(func() {
			pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{fresh}.Sanitize()+" CASCADE")
		})
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			l := e.build(e.store, nil, func(c *Config) { c.Schema = fresh })
			wg.Go(func() {
				if errs[i] = l.Apply(context.Background()); errs[i] == nil {
					errs[i] = l.Apply(context.Background())
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1", fresh).Scan(&n); err != nil {
			t.Fatal(err)
		}
		want := 5 // ev, ev_tags, wharf_loads, wharf_watermarks, wharf_quarantine
		if e.dialect == schema.Redshift {
			want += 2 // wharf_lock_ev, wharf_lock_ev_tags
		}
		if n != want {
			t.Errorf("tables = %d, want %d", n, want)
		}
	})
}

// failingStore fails the first n Lists.
type failingStore struct {
	*s3store.Store
	fails atomic.Int64
}

func (f *failingStore) ListPrefixes(ctx context.Context, prefix, delimiter string) ([]string, error) {
	if f.fails.Add(-1) >= 0 {
		return nil, fmt.Errorf("list %s: injected failure", prefix)
	}
	return f.Store.ListPrefixes(ctx, prefix, delimiter)
}

// The stores wrapped to count or fail calls keep the contract of the store
// they wrap while they let calls through.
func TestWrappedStoresContract(t *testing.T) {
	st := stacktest.Get(t)
	s3storetest.Run(t, &countingStore{Store: s3store.New(st.S3(t), st.Bucket)}, st.Prefix())
	s3storetest.Run(t, &failingStore{Store: s3store.New(st.S3(t), st.Bucket)}, st.Prefix())
}

// TestRun checks that Run loads, retries a failed load before the next
// interval, counts the failure, and returns when its context ends.
func TestRun(t *testing.T) {
	eachDialect(t, testTables, func(t *testing.T, e *env) {
		fs := &failingStore{Store: e.store}
		fs.fails.Store(2)
		l := e.build(fs, nil, func(c *Config) { c.LoadInterval = time.Hour })
		l.retry = 10 * time.Millisecond
		if err := l.Apply(context.Background()); err != nil {
			t.Fatal(err)
		}
		ev := e.sch.Table("ev")
		e.put(ev, today, row(ev, "a", 0, nil))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- l.Run(ctx) }()
		stacktest.WaitFor(30*time.Second, func() bool { return e.count("ev") > 0 })
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		if n := e.count("ev"); n != 1 {
			t.Errorf("rows = %d, want 1", n)
		}
		if got := testutil.ToFloat64(l.m.errors.WithLabelValues("ev")); got < 1 {
			t.Errorf("wharf_load_errors_total = %v, want ≥ 1", got)
		}
		if got := testutil.ToFloat64(l.m.files.WithLabelValues("ev")); got != 1 {
			t.Errorf("wharf_load_files_total{table=ev} = %v, want 1", got)
		}
	})
}

// TestLoadFlattened sends awkward events through the real path — Decode,
// Flatten, Parquet, S3, Load — and checks that each row lands, with JSON
// the warehouse reads as JSON: escapes, lone surrogates, astral characters,
// huge numbers, deep nesting, unmapped fields in _extras.
func TestLoadFlattened(t *testing.T) {
	const yaml = `
tables:
  - name: ev
    events: [ev]
    columns:
      - {name: s,       path: s,       type: varchar(8)}
      - {name: payload, path: payload, type: json}
      - {name: n,       path: n,       type: "decimal(38,10)"}
    extras: true
    children:
      - name: ev_items
        path: items
        columns:
          - {name: v, path: ., type: json}
`
	eachDialect(t, yaml, func(t *testing.T, e *env) {
		l := e.loader(nil)
		d := schema.NewDecoder(e.sch, schema.DefaultEnvelope())
		events := []string{
			`{"event":"ev","id":"a","timestamp":"2026-11-25T10:00:00.123456Z","s":"a\u00e9\ud83d\ude00xxxxxxx","payload":{"q":"\"quoted\" \\ back\\slash\n\t","astral":"😀","big":1e300,"neg":-0,"deep":[[[[[[[[[[{"x":null}]]]]]]]]]]},"n":"-1234567890123456789012345678.0123456789","other":{"kept":true},"items":[1,"two",{"three":3},null,[]]}`,
			`{"event":"ev","id":"b","timestamp":1700000000,"payload":"plain string","items":[]}`,
			`{"event":"ev","id":"c","timestamp":1700000000000,"payload":null}`,
		}
		var rows []schema.Row
		for i, body := range events {
			ev, err := d.Decode([]byte(body), fmt.Sprint("m", i), base)
			if err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
			rows, err = d.Flatten(ev, rows)
			if err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
		}
		byTable := map[*schema.Table][]schema.Row{}
		for _, r := range rows {
			byTable[r.Table] = append(byTable[r.Table], r)
		}
		for tb, rs := range byTable {
			e.put(tb, today, rs...)
		}
		res, err := l.Load(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.Tables["ev"].Rows != 3 || res.Tables["ev_items"].Rows != 5 {
			t.Fatalf("result %+v, want 3 ev rows and 5 ev_items rows", res)
		}
		// Every stored value equals what Flatten produced, compared as JSON by
		// PostgreSQL itself.
		for _, r := range rows {
			tb := r.Table
			for i, c := range tb.Columns {
				if c.Type.Kind != schema.JSON || r.Values[i].Null {
					continue
				}
				key := "event_id = $1"
				args := []any{r.Values[0].S}
				if tb.IsChild() {
					key += " AND idx = $2"
					args = append(args, r.Values[tb.Column("idx")].I)
				}
				var same bool
				q := fmt.Sprintf("SELECT %s = $%d::jsonb FROM %s WHERE %s", schema.QuoteIdent(c.Name), len(args)+1, schema.QualifiedName(e.db, tb.Name), key)
				if err := e.pool.QueryRow(context.Background(), q, append(args, r.Values[i].S)...).Scan(&same); err != nil {
					t.Fatalf("%s.%s of %v: %v", tb.Name, c.Name, args, err)
				}
				if !same {
					t.Errorf("%s.%s of %v differs from %s", tb.Name, c.Name, args, r.Values[i].S)
				}
			}
		}
		got := e.query(`SELECT event_id, event_time::text, s, n::text, payload->>'astral', payload->'deep'->0->0->0->0->0->0->0->0->0->0->>'x', _extras->'other'->>'kept'
		FROM ` + schema.QualifiedName(e.db, "ev") + " ORDER BY event_id")
		want := [][]string{
			{"a", "2026-11-25 10:00:00.123456", "aé😀x", "-1234567890123456789012345678.0123456789", "😀", "NULL", "true"},
			{"b", "2023-11-14 22:13:20", "NULL", "NULL", "NULL", "NULL", "NULL"},
			{"c", "2023-11-14 22:13:20", "NULL", "NULL", "NULL", "NULL", "NULL"},
		}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("rows:\n got %q\nwant %q", got, want)
		}
	})
}

// A merge blocked past warehouse.merge_timeout (here by a lock another
// session holds on the table) is cancelled and rolled back: the load fails
// with a clear error, the files stay pending, and the next load, with the
// lock gone, loads them once.
func TestMergeTimeout(t *testing.T) {
	eachDialect(t, testTables, func(t *testing.T, e *env) {
		l := e.loader(func(c *Config) { c.MergeTimeout = 2 * time.Second })
		ev := e.sch.Table("ev")
		ctx := context.Background()
		e.put(ev, today, row(ev, "e1", 1, nil), row(ev, "e2", 2, nil))

		tx, err := e.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "LOCK TABLE "+schema.QualifiedName(e.db, "ev")+" IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		res, err := l.Load(ctx, "ev")
		if err == nil || !strings.Contains(err.Error(), "warehouse.merge_timeout") || !errors.Is(err, errMergeTimeout) {
			t.Fatalf("load under a held lock: %v, want a merge timeout", err)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("the load gave up after %s, long past the 2s merge timeout", d)
		}
		if got := res.Tables["ev"]; got.Files != 0 || got.Pending != 1 {
			t.Errorf("timed-out load: %+v, want nothing merged and 1 file pending", got)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		res, err = l.Load(ctx, "ev")
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Tables["ev"]; got.Files != 1 || got.Rows != 2 {
			t.Errorf("load after the lock: %+v, want 1 file and 2 rows", got)
		}
		if got := e.ids("ev"); !slices.Equal(got, []string{"e1", "e2"}) {
			t.Errorf("ids = %v", got)
		}
	})
}
