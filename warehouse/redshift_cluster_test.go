package warehouse

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap/zaptest"

	"github.com/wharfdata/wharf/internal/fault"
	"github.com/wharfdata/wharf/internal/pq"
	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/internal/stacktest"
	"github.com/wharfdata/wharf/schema"
)

// runRedshiftCluster is TestRedshiftCluster's body: the real COPY, the real
// SUPER, the real SYS_LOAD_ERROR_DETAIL, which the PostgreSQL runs of the
// redshift SQL cannot show.
func runRedshiftCluster(t *testing.T, dsn, role, bucket string) {
	ctx := context.Background()
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	RedshiftPoolConfig(pc)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ac, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	store := s3store.New(s3.NewFromConfig(ac), bucket)
	id := stacktest.ID()
	db, prefix := "wharf_test_"+id, "wharf-test-"+id+"/"
	t.Cleanup(func() {
		pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{db}.Sanitize()+" CASCADE")
		keys, _ := store.ListKeys(context.Background(), prefix)
		for _, k := range keys {
			store.Delete(context.Background(), k)
		}
	})
	sch := parseSchema(t, testTables)
	cfg := DefaultConfig()
	cfg.Dialect, cfg.Schema, cfg.Prefix, cfg.IAMRole, cfg.MaxFilesPerLoad = schema.Redshift, db, prefix, role, 3
	l, err := New(cfg, pool, store, sch, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Apply(ctx); err != nil {
		t.Fatalf("second apply: %v", err)
	}
	n := 0
	put := func(tb *schema.Table, rows ...schema.Row) string {
		var buf bytes.Buffer
		if err := pq.Encode(&buf, tb, rows); err != nil {
			t.Fatal(err)
		}
		n++
		key := fmt.Sprintf("%s%s/dt=%s/%06d.parquet", prefix, tb.Name, today, n)
		if err := store.Put(ctx, key, bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
			t.Fatal(err)
		}
		return key
	}
	ev := sch.Table("ev")
	put(ev,
		row(ev, "max", 0, map[string]schema.Value{
			"b": num(1), "i16": num(32767), "i32": num(2147483647), "i64": num(9223372036854775807),
			"f32": schema.FloatValue(1.5), "f64": schema.FloatValue(3.141592653589793),
			"d_small": num(-1234567), "d_big": str("-123456789012345678901234567890123"),
			"s": str("héllo ☃"), "ts": num(time.Date(2024, 3, 4, 5, 6, 7, 123456000, time.UTC).UnixMicro()),
			"day": num(19786), "j": str(`{"b":"x","a":[1,2,{"c":null}]}`),
		}),
		row(ev, "nulls", 0, nil), row(ev, "dup", 5, nil), row(ev, "dup", 2, nil))
	for i := range 5 {
		put(ev, row(ev, fmt.Sprintf("e%d", i), 0, nil), row(ev, "dup", 9, nil))
	}
	res, err := l.Load(ctx, "ev")
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Tables["ev"]; got.Files != 6 || got.Rows != 8 {
		t.Errorf("ev: %+v, want 6 files, 8 rows", got)
	}
	var got []string
	rows, err := pool.Query(ctx, `SELECT event_id || '|' || coalesce(CAST(i64 AS varchar), 'NULL') || '|' || coalesce(CAST(d_big AS varchar), 'NULL')
		|| '|' || coalesce(s, 'NULL') || '|' || coalesce(CAST(ts AS varchar), 'NULL') || '|' || coalesce(JSON_TYPEOF(j), 'NULL')
		FROM `+schema.QualifiedName(db, "ev")+` WHERE event_id IN ('max', 'nulls') ORDER BY event_id`)
	if err != nil {
		t.Fatal(err)
	}
	got, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"max|9223372036854775807|-12345678901234567890123456789.0123|héllo ☃|2024-03-04 05:06:07.123456|object", "nulls|NULL|NULL|NULL|NULL|NULL"}
	if !slices.Equal(got, want) {
		t.Errorf("values:\n got %q\nwant %q", got, want)
	}
	if res, err := l.Load(ctx, "ev"); err != nil || res.Files() != 0 {
		t.Errorf("second load: %+v, %v; want nothing", res, err)
	}

	// What every other command asks of the warehouse, each a subtest; the
	// report at the end says which passed.
	var report []string
	step := func(name string, f func(t *testing.T)) {
		ok := t.Run(name, f)
		report = append(report, fmt.Sprintf("%-28s %s", name, map[bool]string{true: "ok", false: "FAILED"}[ok]))
	}
	step("audit (hourly counts)", func(t *testing.T) {
		counts, err := l.HourlyCounts(ctx, "ev", base.Add(-time.Hour), base.Add(time.Hour))
		if err != nil || counts[base] != 8 {
			t.Errorf("HourlyCounts = %v, %v; want %v: 8", counts, err, base)
		}
	})
	step("backfill --since warehouse", func(t *testing.T) {
		got, ok, err := l.MaxReceivedAt(ctx, "ev")
		if err != nil || !ok || !got.Equal(base.Add(2*time.Second)) {
			t.Errorf("MaxReceivedAt = %v, %v, %v; want %v", got, ok, err, base.Add(2*time.Second))
		}
	})
	step("a read during a merge", func(t *testing.T) {
		var readErr error
		rcfg := cfg
		rcfg.Fault = func(point fault.Point) {
			if point != fault.BeforeCommit {
				return
			}
			conn, err := pool.Acquire(ctx)
			if err != nil {
				readErr = err
				return
			}
			defer conn.Release()
			if _, err := conn.Exec(ctx, "SET statement_timeout TO 10000"); err != nil {
				readErr = err
				return
			}
			var n int64
			readErr = conn.QueryRow(ctx, "SELECT count(*) FROM "+schema.QualifiedName(db, "ev")).Scan(&n)
			_, _ = conn.Exec(ctx, "RESET statement_timeout")
		}
		lr, err := New(rcfg, pool, store, sch, zaptest.NewLogger(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		put(ev, row(ev, "during", 0, nil))
		if res, err := lr.Load(ctx, "ev"); err != nil || res.Tables["ev"].Rows != 1 {
			t.Fatalf("load: %+v, %v", res, err)
		}
		if readErr != nil {
			t.Errorf("a SELECT during the merge: %v (it waited for the merge)", readErr)
		}
	})
	step("widened column, old files", func(t *testing.T) {
		const v1 = "tables:\n  - name: wid\n    events: [wid]\n    columns:\n      - {name: a, path: a, type: integer}\n      - {name: d, path: d, type: \"decimal(20,2)\"}\n"
		s1 := parseSchema(t, v1)
		l1, err := New(cfg, pool, store, s1, zaptest.NewLogger(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := l1.Apply(ctx); err != nil {
			t.Fatal(err)
		}
		old := s1.Table("wid")
		put(old, row(old, "old", 0, map[string]schema.Value{"a": num(7), "d": str("123456789012345678.91")}))
		s2 := parseSchema(t, strings.Replace(v1, "type: integer", "type: bigint", 1))
		l2, err := New(cfg, pool, store, s2, zaptest.NewLogger(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		p, err := l2.Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := l2.ApplyPlan(ctx, p); err != nil {
			t.Fatal(err)
		}
		nw := s2.Table("wid")
		put(nw, row(nw, "new", 0, map[string]schema.Value{"a": num(1 << 40), "d": str("-0.01")}))
		if res, err := l2.Load(ctx, "wid"); err != nil || res.Tables["wid"].Rows != 2 {
			t.Fatalf("load: %+v, %v; want both files' rows", res, err)
		}
		rows, err := pool.Query(ctx, "SELECT event_id || '|' || CAST(a AS varchar) || '|' || CAST(d AS varchar) FROM "+schema.QualifiedName(db, "wid")+" ORDER BY 1")
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if want := []string{"new|1099511627776|-0.01", "old|7|123456789012345678.91"}; err != nil || !slices.Equal(got, want) {
			t.Errorf("rows %q, %v; want %q", got, err, want)
		}
	})
	step("backfill --rebuild (swap)", func(t *testing.T) {
		q := func(n string) string { return schema.QualifiedName(db, n) }
		for _, sql := range []string{
			"CREATE TABLE " + q("ev__rebuild") + " (LIKE " + q("ev") + ")",
			"INSERT INTO " + q("ev__rebuild") + " SELECT * FROM " + q("ev") + " WHERE event_id = 'max'",
		} {
			if _, err := pool.Exec(ctx, sql); err != nil {
				t.Fatal(err)
			}
		}
		var before int64
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+q("ev")).Scan(&before); err != nil {
			t.Fatal(err)
		}
		if err := l.ReplaceTables(ctx, []Replacement{{Target: "ev", Rebuilt: "ev__rebuild"}}); err != nil {
			t.Fatal(err)
		}
		var after, old int64
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+q("ev")).Scan(&after); err != nil {
			t.Fatal(err)
		}
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+q("ev"+ReplacedSuffix)).Scan(&old); err != nil {
			t.Fatal(err)
		}
		if after != before || old != before {
			t.Errorf("after the swap ev has %d rows and ev%s %d, want %d each (the rows the rebuild lacks carried over)", after, ReplacedSuffix, old, before)
		}
	})
	t.Logf("Redshift cluster report:\n  %s", strings.Join(report, "\n  "))

	// A file the table cannot take (a string longer than varchar(16)):
	// COPY fails, and the error names the file, the column and the reason.
	wide := parseSchema(t, strings.Replace(testTables, "type: varchar(16)}", "type: varchar(64)}", 1)).Table("ev")
	bad := put(wide, row(wide, "long", 0, map[string]schema.Value{"s": str(strings.Repeat("x", 40))}))
	_, err = l.Load(ctx, "ev")
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "column s") {
		t.Errorf("load of a bad file: %v; want the file %s and column s named", err, bad)
	}
	p, err := l.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Empty() {
		t.Errorf("plan after apply: %+v", p)
	}
}
