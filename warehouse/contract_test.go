package warehouse

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/wharfdata/wharf/schema"
)

// eachDialect runs test once per dialect, Redshift on its PostgreSQL
// stand-in (rsEnv), with an env whose loaders are of that dialect: the
// contract every dialect keeps.
func eachDialect(t *testing.T, yaml string, test func(t *testing.T, e *env)) {
	for _, d := range []schema.Dialect{schema.Postgres, schema.Redshift} {
		t.Run(string(d), func(t *testing.T) {
			if d == schema.Redshift {
				test(t, newRSEnv(t, yaml).env)
				return
			}
			test(t, newEnv(t, yaml))
		})
	}
}

// withEventTime sets r's event_time.
func withEventTime(r schema.Row, ts time.Time) schema.Row {
	r.Values[r.Table.Column(schema.ColEventTime)] = num(ts.UnixMicro())
	return r
}

// TestInspectAndReplace: what audit, `backfill --since warehouse`,
// `backfill --rebuild` and the status page ask of the warehouse works on
// both dialects.
func TestInspectAndReplace(t *testing.T) {
	eachDialect(t, testTables, func(t *testing.T, e *env) {
		ctx := context.Background()
		l := e.loader(nil)
		ev, tags := e.sch.Table("ev"), e.sch.Table("ev_tags")
		if _, ok, err := l.MaxReceivedAt(ctx, "ev"); err != nil || ok {
			t.Fatalf("MaxReceivedAt of an empty table: %v, %v; want none", ok, err)
		}
		e.put(ev, today,
			withEventTime(row(ev, "a", 0, nil), base.Add(-90*time.Minute)),
			withEventTime(row(ev, "b", 7, nil), base.Add(10*time.Minute)),
			withEventTime(row(ev, "c", 3, nil), base.Add(50*time.Minute)))
		e.put(tags, today, row(tags, "a", 0, map[string]schema.Value{"idx": num(0), "tag": str("x")}))
		if _, err := l.Load(ctx); err != nil {
			t.Fatal(err)
		}

		got, ok, err := l.MaxReceivedAt(ctx, "ev")
		if err != nil || !ok || !got.Equal(base.Add(7*time.Second)) {
			t.Errorf("MaxReceivedAt = %v, %v, %v; want %v", got, ok, err, base.Add(7*time.Second))
		}
		counts, err := l.HourlyCounts(ctx, "ev", base.Add(-2*time.Hour), base.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		want := map[time.Time]int64{base.Add(-2 * time.Hour): 1, base: 2}
		if !maps.Equal(counts, want) {
			t.Errorf("HourlyCounts = %v, want %v", counts, want)
		}
		if counts, err := l.HourlyCounts(ctx, "ev", base, base.Add(time.Hour)); err != nil || counts[base] != 2 || len(counts) != 1 {
			t.Errorf("HourlyCounts from base = %v, %v; want only %v: 2", counts, err, base)
		}
		// The status page's view of the ledger (loaded_at is the real clock's).
		mins, err := LedgerSummary(ctx, l.pool, l.cfg, []string{"ev", "ev_tags"}, time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		files := map[string]int64{}
		for _, m := range mins {
			files[m.Table] += m.Files
		}
		if files["ev"] != 1 || files["ev_tags"] != 1 {
			t.Errorf("LedgerSummary files per table = %v, want ev 1, ev_tags 1", files)
		}

		// A rebuild that lacks "c" (it reached the warehouse after the
		// rebuild read its documents) and holds "a" anew.
		for _, name := range []string{"ev", "ev_tags"} {
			if _, err := e.pool.Exec(ctx, "CREATE TABLE "+schema.QualifiedName(e.db, name+"__rebuild")+" (LIKE "+schema.QualifiedName(e.db, name)+")"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.pool.Exec(ctx, "INSERT INTO "+schema.QualifiedName(e.db, "ev__rebuild")+` (event_id, event_time, received_at, s)
			VALUES ('a', '2000-01-01', '2000-01-01', 'rebuilt'), ('b', '2000-01-01', '2000-01-01', 'rebuilt')`); err != nil {
			t.Fatal(err)
		}
		err = l.ReplaceTables(ctx, []Replacement{{Target: "ev", Rebuilt: "ev__rebuild"}, {Target: "ev_tags", Rebuilt: "ev_tags__rebuild", Child: true}})
		if err != nil {
			t.Fatal(err)
		}
		rows := e.query("SELECT event_id, coalesce(s, '-') FROM " + schema.QualifiedName(e.db, "ev") + " ORDER BY 1")
		wantRows := [][]string{{"a", "rebuilt"}, {"b", "rebuilt"}, {"c", "-"}}
		if !slices.EqualFunc(rows, wantRows, slices.Equal) {
			t.Errorf("after the swap: %q, want %q (c carried over)", rows, wantRows)
		}
		if n := e.count("ev" + ReplacedSuffix); n != 3 {
			t.Errorf("%s%s holds %d rows, want the old 3", "ev", ReplacedSuffix, n)
		}
		if n := e.count("ev_tags"); n != 0 {
			t.Errorf("ev_tags holds %d rows, want 0 (its event a is in the rebuild, without tags)", n)
		}
	})
}

// TestChildrenFollowParent: a parent and all of its children come from the
// same delivery of an event, whichever files load first. An event id sent
// twice with different arrays: the later delivery's longer array adds no
// child under the first parent (this failed before children carried their
// delivery); children loaded before their parent are removed when the
// parent loads from another delivery.
func TestChildrenFollowParent(t *testing.T) {
	eachDialect(t, testTables, func(t *testing.T, e *env) {
		ctx := context.Background()
		l := e.loader(nil)
		ev, tags := e.sch.Table("ev"), e.sch.Table("ev_tags")
		tag := func(id string, sec int, idx int64, v string) schema.Row {
			return row(tags, id, sec, map[string]schema.Value{"idx": num(idx), "tag": str(v)})
		}
		tagsOf := func(id string) []string {
			var out []string
			for _, r := range e.query(`SELECT idx::text || '=' || tag FROM `+schema.QualifiedName(e.db, "ev_tags")+` WHERE event_id = $1 ORDER BY idx, tag`, id) {
				out = append(out, r[0])
			}
			return out
		}

		// x: delivery A (1 s, two tags) loads; then delivery B (5 s, three).
		e.put(ev, today, row(ev, "x", 1, map[string]schema.Value{"s": str("A")}))
		e.put(tags, today, tag("x", 1, 0, "a0"), tag("x", 1, 1, "a1"))
		if _, err := l.Load(ctx); err != nil {
			t.Fatal(err)
		}
		e.put(ev, today, row(ev, "x", 5, map[string]schema.Value{"s": str("B")}))
		e.put(tags, today, tag("x", 5, 0, "b0"), tag("x", 5, 1, "b1"), tag("x", 5, 2, "b2"))
		if _, err := l.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := tagsOf("x"), []string{"0=a0", "1=a1"}; !slices.Equal(got, want) {
			t.Errorf("x's tags = %v, want %v (all from delivery A, like its parent)", got, want)
		}

		// y: the children of delivery C (9 s) load before any parent; then
		// the parents of C and of D (7 s), of which D wins (earliest), whose
		// children load last.
		e.put(tags, today, tag("y", 9, 0, "c0"), tag("y", 9, 1, "c1"))
		if _, err := l.Load(ctx, "ev_tags"); err != nil {
			t.Fatal(err)
		}
		e.put(ev, today, row(ev, "y", 9, map[string]schema.Value{"s": str("C")}), row(ev, "y", 7, map[string]schema.Value{"s": str("D")}))
		if _, err := l.Load(ctx, "ev"); err != nil {
			t.Fatal(err)
		}
		if got := e.query("SELECT s FROM " + schema.QualifiedName(e.db, "ev") + " WHERE event_id = 'y'"); len(got) != 1 || got[0][0] != "D" {
			t.Fatalf("y's parent = %q, want D", got)
		}
		if got := tagsOf("y"); len(got) != 0 {
			t.Errorf("y's tags after its parent loaded = %v, want none (C's were another delivery's)", got)
		}
		e.put(tags, today, tag("y", 7, 0, "d0"))
		if _, err := l.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := tagsOf("y"), []string{"0=d0"}; !slices.Equal(got, want) {
			t.Errorf("y's tags = %v, want %v (delivery D's only)", got, want)
		}
		// A replay of C's children afterwards adds nothing.
		e.put(tags, today, tag("y", 9, 0, "c0"), tag("y", 9, 1, "c1"))
		if _, err := l.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := tagsOf("y"), []string{"0=d0"}; !slices.Equal(got, want) {
			t.Errorf("y's tags after a replay = %v, want %v", got, want)
		}
	})
}

// TestTablesLoadConcurrently: a table stuck on a lock does not hold up the
// others. Table a is locked by another session; table b, listed after it,
// loads while a's merge still waits (sequential loading would load b only
// after a's merge timed out, long after this test's bound); a loads once
// the lock is gone.
func TestTablesLoadConcurrently(t *testing.T) {
	const two = `
tables:
  - name: a
    events: [a]
    columns: [{name: v, path: v, type: integer}]
  - name: b
    events: [b]
    columns: [{name: v, path: v, type: integer}]
`
	eachDialect(t, two, func(t *testing.T, e *env) {
		ctx := context.Background()
		l := e.loader(func(c *Config) { c.MergeTimeout = time.Minute })
		ta, tb := e.sch.Table("a"), e.sch.Table("b")
		e.put(ta, today, row(ta, "a1", 0, nil))
		e.put(tb, today, row(tb, "b1", 0, nil))
		lock, err := e.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = lock.Rollback(ctx) }()
		if _, err := lock.Exec(ctx, "LOCK TABLE "+schema.QualifiedName(e.db, "a")+" IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		type loaded struct {
			res Result
			err error
		}
		done := make(chan loaded, 1)
		go func() {
			res, err := l.Load(ctx)
			done <- loaded{res, err}
		}()
		deadline := time.Now().Add(30 * time.Second)
		for e.count("b") == 0 {
			select {
			case r := <-done:
				t.Fatalf("the load ended (%+v, %v) before b loaded", r.res, r.err)
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatal("b did not load while a was locked: the tables load one after another")
			}
		}
		select {
		case r := <-done:
			t.Fatalf("the load ended (%+v, %v) while a was still locked", r.res, r.err)
		default:
		}
		if err := lock.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil || r.res.Tables["a"].Rows != 1 || r.res.Tables["b"].Rows != 1 {
			t.Errorf("load: %+v, %v; want a and b loaded", r.res, r.err)
		}
	})
}
