package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wharfdata/wharf/backfill"
	"github.com/wharfdata/wharf/internal/stacktest"
	"github.com/wharfdata/wharf/schema"
)

// schemaEnv runs `wharf schema …` in-process against the local stack, with
// a warehouse schema and a Mongo database of its own.
type schemaEnv struct {
	t      *testing.T
	st     *stacktest.Stack
	dir    string
	cfg    string
	db     string // warehouse schema
	mongo  string // Mongo database
	tables string // the schema file's path
}

func newSchemaEnv(t *testing.T) *schemaEnv {
	st := stacktest.Get(t)
	pool, db := st.Warehouse(t)
	_ = pool
	_, mdb := st.Mongo(t)
	e := &schemaEnv{t: t, st: st, dir: t.TempDir(), db: db, mongo: mdb}
	e.cfg = filepath.Join(e.dir, "wharf.yaml")
	e.tables = filepath.Join(e.dir, "tables.yaml")
	conf := fmt.Sprintf("warehouse: {dialect: postgres, schema: %s}\ns3: {bucket: %s, path_style: true}\nmongo: {database: %s}\nschema: tables.yaml\n", db, st.Bucket, mdb)
	if err := os.WriteFile(e.cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *schemaEnv) writeTables(yaml string) {
	e.t.Helper()
	if err := os.WriteFile(e.tables, []byte(yaml), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// wharf runs the command and returns its exit code, stdout and stderr.
func (e *schemaEnv) wharf(args ...string) (int, string, string) {
	e.t.Helper()
	env := mapEnv{"WHARF_WAREHOUSE_DSN": e.st.WarehouseDSN, "WHARF_MONGO_URI": e.st.MongoURI}
	for k, v := range e.st.Env {
		if strings.HasPrefix(k, "AWS_") {
			env[k] = v
		}
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, env, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func (e *schemaEnv) columns(table string) string {
	e.t.Helper()
	pool, _ := e.st.Warehouse(e.t)
	rows, err := pool.Query(context.Background(), `SELECT column_name || ' ' || data_type || coalesce('(' || character_maximum_length || ')', '')
		FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, e.db, table)
	if err != nil {
		e.t.Fatal(err)
	}
	var cols []string
	for rows.Next() {
		var c string
		rows.Scan(&c)
		cols = append(cols, c)
	}
	return strings.Join(cols, ", ")
}

const schemaV1 = `
tables:
  - name: ev
    events: [ev]
    columns:
      - {name: url, path: url, type: varchar(64)}
      - {name: n,   path: n,   type: integer}
`

// TestSchemaPlanApply: plan shows the DDL against the live warehouse and
// changes nothing; apply runs it; new columns, varchar widening and
// integer → bigint are planned and applied; a narrowing or a dropped column
// is refused with the manual steps, exit 1, and nothing changes.
func TestSchemaPlanApply(t *testing.T) {
	e := newSchemaEnv(t)
	e.writeTables(schemaV1)
	code, out, errOut := e.wharf("schema", "plan", "-c", e.cfg)
	if code != 0 || !strings.Contains(out, `CREATE TABLE IF NOT EXISTS "`+e.db+`"."ev"`) || !strings.Contains(out, "wharf_loads") {
		t.Fatalf("plan on an empty schema: exit %d\n%s\n%s", code, out, errOut)
	}
	if cols := e.columns("ev"); cols != "" {
		t.Fatalf("plan changed the warehouse: %s", cols)
	}
	if code, out, errOut := e.wharf("schema", "apply", "-c", e.cfg); code != 0 || !strings.Contains(out, "applied 2 changes") {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, _ := e.wharf("schema", "plan", "-c", e.cfg); code != 0 || !strings.Contains(out, "nothing to change") {
		t.Fatalf("plan after apply: exit %d\n%s", code, out)
	}

	e.writeTables(strings.Replace(strings.Replace(schemaV1, "varchar(64)", "varchar(300)", 1), "type: integer}", "type: bigint}\n      - {name: added, path: added, type: boolean}", 1))
	code, out, errOut = e.wharf("schema", "plan", "-c", e.cfg)
	for _, want := range []string{`ALTER COLUMN "url" TYPE varchar(300)`, `ALTER COLUMN "n" TYPE bigint`, `ADD COLUMN IF NOT EXISTS "added" boolean`} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("plan of v2 lacks %q: exit %d\n%s\n%s", want, code, out, errOut)
		}
	}
	if code, out, errOut := e.wharf("schema", "apply", "-c", e.cfg); code != 0 {
		t.Fatalf("apply v2: exit %d\n%s\n%s", code, out, errOut)
	}
	want := "event_id character varying(64), event_time timestamp without time zone, received_at timestamp without time zone, url character varying(300), n bigint, added boolean"
	if got := e.columns("ev"); got != want {
		t.Errorf("columns after v2:\n got %s\nwant %s", got, want)
	}

	// Narrowing url and dropping added: refused, nothing applied.
	e.writeTables(strings.Replace(strings.Replace(schemaV1, "varchar(64)", "varchar(10)", 1), "type: integer}", "type: bigint}", 1))
	code, out, errOut = e.wharf("schema", "apply", "-c", e.cfg)
	if code != 1 {
		t.Errorf("apply of a narrowing: exit %d, want 1", code)
	}
	for _, want := range []string{"refused: ev.url: narrowing varchar(300) to varchar(10)", `refused: column "` + e.db + `"."ev"."added" is in the warehouse (boolean)`, "DROP COLUMN", "2 changes refused"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("refusal lacks %q:\n%s", want, errOut)
		}
	}
	if got := e.columns("ev"); got != want {
		t.Errorf("a refused plan changed the warehouse: %s", got)
	}
}

// TestSchemaInferFallback samples a collection on FerretDB, which answers
// that $sample is not implemented: infer falls back to a reservoir sample
// over a scan, and writes a schema file that parses. On a real MongoDB the
// same command uses $sample.
func TestSchemaInferFallback(t *testing.T) {
	e := newSchemaEnv(t)
	client, _ := e.st.Mongo(t)
	coll := client.Database(e.mongo).Collection("clicks")
	var docs []any
	for i := range 60 {
		d := bson.D{{Key: "event", Value: "click"}, {Key: "user_id", Value: int64(i)}, {Key: "page", Value: bson.D{{Key: "url", Value: fmt.Sprintf("/p/%d", i)}}}, {Key: "tags", Value: bson.A{"a", "b"}}}
		if i == 7 {
			d = append(d, bson.E{Key: "once", Value: true})
		}
		docs = append(docs, d)
	}
	if _, err := coll.InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
	e.writeTables(schemaV1)
	out := filepath.Join(e.dir, "inferred.yaml")
	code, stdout, errOut := e.wharf("schema", "infer", "-c", e.cfg, "--collection", "clicks", "--sample", "20", "--seed", "7", "-o", out)
	if code != 0 {
		t.Fatalf("infer: exit %d\n%s\n%s", code, stdout, errOut)
	}
	if !strings.Contains(errOut, "sampled 20 documents of clicks ("+backfill.SampledByReservoir) && !strings.Contains(errOut, "("+backfill.SampledByServer) {
		t.Errorf("infer does not say how it sampled:\n%s", errOut)
	}
	// The whole collection (60 < 100): the field seen once is reported.
	code, stdout, errOut = e.wharf("schema", "infer", "-c", e.cfg, "--collection", "clicks", "--sample", "100", "-o", out)
	if code != 0 || !strings.Contains(errOut, "sampled 60 documents") || !strings.Contains(errOut, "too rare to decide (left to _extras): once: seen in 1 of 60 documents") {
		t.Errorf("infer of the whole collection: exit %d\n%s\n%s", code, stdout, errOut)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	s, err := schema.Parse(b)
	if err != nil {
		t.Fatalf("inferred file does not parse: %v\n%s", err, b)
	}
	tb := s.Table("clicks")
	if tb == nil || tb.Column("user_id") < 0 || tb.Column("page_url") < 0 || tb.Column("tags_0") < 0 || tb.Column("tags_1") < 0 {
		t.Errorf("inferred file:\n%s", b)
	}
}

// TestSchemaDocsAndJSONSchema writes the dictionary (Markdown and HTML)
// and a JSON Schema per event type of the demo's schema file.
func TestSchemaDocsAndJSONSchema(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(stacktest.RepoRoot(), "deploy", "local", "wharf.yaml")
	var out, errOut bytes.Buffer
	env := mapEnv{}
	html := filepath.Join(dir, "dict.html")
	if code := run(context.Background(), []string{"schema", "docs", "-c", cfg, "--format", "html", "-o", html}, env, nil, &out, &errOut); code != 0 {
		t.Fatalf("docs: %d %s", code, errOut.String())
	}
	b, _ := os.ReadFile(html)
	if !bytes.Contains(b, []byte(`<h2 id="page_views">page_views</h2>`)) || !bytes.Contains(b, []byte("<code>page.url</code>")) {
		t.Errorf("HTML dictionary:\n%.2000s", b)
	}
	out.Reset()
	if code := run(context.Background(), []string{"schema", "docs", "-c", cfg}, env, nil, &out, &errOut); code != 0 || !strings.Contains(out.String(), "| url | varchar(1024) | varchar(1024) | `page.url` |") {
		t.Errorf("markdown dictionary: %d\n%s", code, out.String())
	}
	out.Reset()
	js := filepath.Join(dir, "schemas")
	if code := run(context.Background(), []string{"schema", "jsonschema", "-c", cfg, "-o", js}, env, nil, &out, &errOut); code != 0 {
		t.Fatalf("jsonschema: %d %s", code, errOut.String())
	}
	for _, ev := range []string{"page_view", "actions_taken", "order_completed", "signup"} {
		b, err := os.ReadFile(filepath.Join(js, ev+".schema.json"))
		if err != nil || !bytes.Contains(b, []byte(`"const": "`+ev+`"`)) {
			t.Errorf("%s: %v\n%.500s", ev, err, b)
		}
	}
}

// TestSchemaInferRoutes infers a schema from a collection whose documents
// carry their type at the envelope's type path (_meta.type, two types),
// applies it, and streams the same events through serve: every one lands
// in the inferred table, none is dead-lettered as an unknown type (the
// table's events are the documents' types, not the collection's name).
func TestSchemaInferRoutes(t *testing.T) {
	e := newE2E(t)
	e.env = append(e.env, "WHARF_EVENTS_TYPE_PATH=_meta.type")
	client, _ := e.st.Mongo(t)
	coll := client.Database(e.mongoDB).Collection("notifications")
	var lines []string
	var docs []any
	var want []string
	for i := range 12 {
		typ := "push"
		if i%3 == 2 {
			typ = "push_opened"
		}
		id := fmt.Sprintf("n-%02d", i)
		want = append(want, id)
		line := fmt.Sprintf(`{"_meta":{"type":%q,"app":"ios"},"id":%q,"timestamp":"2026-11-20T10:%02d:00Z","user_id":%d,"title":"hello %d"}`, typ, id, i, 100+i, i)
		lines = append(lines, line)
		var d bson.D
		if err := bson.UnmarshalExtJSON([]byte(line), false, &d); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
	if _, err := coll.InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
	inferred := filepath.Join(e.dir, "inferred.yaml")
	out := e.run(nil, "schema", "infer", "-c", e.cfg, "--collection", "notifications", "--sample", "100", "-o", inferred)
	b, err := os.ReadFile(inferred)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("schema infer:\n%s\n%s", out, b)
	if !strings.Contains(string(b), `events: ["push", "push_opened"]`) {
		t.Fatalf("inferred events are not the documents' types:\n%s", b)
	}
	withSchema := "WHARF_SCHEMA=" + inferred
	c := e.cmd("schema", "apply", "-c", e.cfg)
	c.Env = append(c.Env, withSchema)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("schema apply: %v\n%s", err, out)
	}
	p := e.serveHTTP(withSchema)
	if out := e.run([]byte(strings.Join(lines, "\n")+"\n"), "send", "-c", e.cfg); !strings.Contains(out, "sent 12 messages") {
		t.Fatalf("send: %s", out)
	}
	stacktest.Eventually(t, "12 events loaded or dead-lettered", 2*time.Minute, func() bool {
		return len(e.eventIDs("notifications"))+len(e.deadLetters()) >= 12
	})
	e.settled("notifications")
	if dl := e.deadLetters(); len(dl) != 0 {
		for _, r := range dl {
			t.Errorf("dead-lettered (%s: %s): %s", r.Reason, r.Detail, r.Body)
		}
	}
	if got := e.eventIDs("notifications"); !slices.Equal(got, want) {
		t.Fatalf("notifications holds %v, want %v", got, want)
	}
	p.stop(t)
}
