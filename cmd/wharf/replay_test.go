package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wharfdata/wharf/deadletter"
	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/internal/stacktest"
)

// The schema before and after the fix: `code` was declared an integer, but
// some events send a string such as "A-1"; the fix declares code_text a
// varchar instead.
const (
	replaySchemaA = `tables:
  - name: replays
    events: [replay_test]
    collection: replays
    columns:
      - {name: code, path: code, type: integer}
      - {name: note, path: note, type: varchar(32)}
`
	replaySchemaB = `tables:
  - name: replays
    events: [replay_test]
    collection: replays
    columns:
      - {name: code_text, path: code, type: varchar(16)}
      - {name: note, path: note, type: varchar(32)}
`
)

// allLoaded reports whether every Parquet file of table under the test's
// prefix is in the warehouse ledger.
func (e *e2e) allLoaded(table string) bool {
	e.t.Helper()
	objs, err := s3store.New(e.st.S3(e.t), e.st.Bucket).ListKeys(context.Background(), e.prefix+table+"/")
	if err != nil {
		e.t.Fatal(err)
	}
	var keys []string
	for _, k := range objs {
		if strings.HasSuffix(k, ".parquet") {
			keys = append(keys, k)
		}
	}
	var n int
	if err := e.pool.QueryRow(context.Background(), fmt.Sprintf(`SELECT count(*) FROM %q.wharf_loads WHERE file_key = ANY($1)`, e.schema), keys).Scan(&n); err != nil {
		return false
	}
	return n == len(keys)
}

// settled waits until the queue is empty (every message deleted, so its rows
// are in S3) and every file of table is loaded.
func (e *e2e) settled(table string) {
	e.t.Helper()
	stacktest.Eventually(e.t, "an empty queue and every file of "+table+" loaded", 2*time.Minute, func() bool {
		v, f := e.queueDepth(e.queueURL())
		return v+f == 0 && e.allLoaded(table)
	})
}

var replayedRE = regexp.MustCompile(`(would replay|replayed) (\d+) messages from \d+ files.*; (\d+) already replayed .*; (\d+) of other reasons`)

// replay runs wharf deadletter replay and returns the counts it printed.
func (e *e2e) replay(args ...string) (sent, already, other int, out string) {
	e.t.Helper()
	out = e.run(nil, append([]string{"deadletter", "replay", "-c", e.cfg}, args...)...)
	e.t.Logf("wharf deadletter replay %s:\n%s", strings.Join(args, " "), out)
	m := replayedRE.FindStringSubmatch(out)
	if m == nil {
		e.t.Fatalf("replay printed no summary:\n%s", out)
	}
	fmt.Sscan(m[2], &sent)
	fmt.Sscan(m[3], &already)
	fmt.Sscan(m[4], &other)
	return sent, already, other, out
}

// Events dead-lettered under schema A (type_mismatch) load after the schema
// is fixed (serve restarted with schema B) and `wharf deadletter replay`
// re-sends them: each appears once, with the id and time it first had even
// when the event carries neither. A second replay sends nothing (the files
// are marked replayed), and a forced one (--again) adds no row: the loader
// dedupes replays like any redelivery. Dead letters of other reasons stay.
func TestDeadletterReplayAfterSchemaFix(t *testing.T) {
	e := newE2E(t)
	schemaA := writeFile(t, e.dir, "tables-a.yaml", replaySchemaA)
	schemaB := writeFile(t, e.dir, "tables-b.yaml", replaySchemaB)
	if filepath.Dir(schemaA) != e.dir {
		t.Fatal(schemaA)
	}

	var lines []string
	var okIDs, fixIDs []string
	for i := 0; i < 10; i++ {
		okIDs = append(okIDs, fmt.Sprintf("ok-%d", i))
		lines = append(lines, fmt.Sprintf(`{"event":"replay_test","id":"ok-%d","timestamp":"2026-11-20T10:00:00Z","code":%d,"note":"fine"}`, i, i))
	}
	for i := 0; i < 6; i++ {
		fixIDs = append(fixIDs, fmt.Sprintf("fix-%d", i))
		lines = append(lines, fmt.Sprintf(`{"event":"replay_test","id":"fix-%d","timestamp":"2026-11-20T11:00:00Z","code":"A-%d","note":"was bad"}`, i, i))
	}
	// No id and no time: the event takes the SQS message id and the time it
	// was received, which a replay must keep.
	lines = append(lines, `{"event":"replay_test","code":"N-0","note":"no id"}`, `{"event":"replay_test","code":"N-1","note":"no id"}`)
	lines = append(lines, `{"event":"other_event","id":"other-1"}`)

	p := e.serveHTTP("WHARF_SCHEMA=" + schemaA)
	if out := e.run([]byte(strings.Join(lines, "\n")+"\n"), "send", "-c", e.cfg); !strings.Contains(out, "sent 19 messages") {
		t.Fatalf("send: %s", out)
	}
	stacktest.Eventually(t, "10 rows under schema A", 2*time.Minute, func() bool { return len(e.eventIDs("replays")) == 10 })
	stacktest.Eventually(t, "9 dead letters", time.Minute, func() bool { return len(e.deadLetters()) == 9 })
	e.settled("replays")
	p.stop(t)

	var noID []deadletter.Record
	for _, r := range e.deadLetters() {
		switch {
		case strings.Contains(r.Body, "other_event"):
			if r.Reason != "unknown_event_type" {
				t.Fatalf("other_event dead-lettered as %s", r.Reason)
			}
		case r.Reason != "type_mismatch":
			t.Fatalf("dead letter %s: %s, want type_mismatch", r.Body, r.Reason)
		case strings.Contains(r.Body, `"no id"`):
			noID = append(noID, r)
		}
	}
	if len(noID) != 2 || noID[0].EventID == "" || noID[0].EventID != noID[0].MessageID {
		t.Fatalf("dead letters of events without id: %+v", noID)
	}

	// The fix: serve again with schema B (it adds column code_text).
	p = e.serveHTTP("WHARF_SCHEMA=" + schemaB)

	sent, already, other, out := e.replay("--reason", "type_mismatch", "--dry-run")
	if !strings.Contains(out, "would replay 8 messages") || sent != 8 || already != 0 || other != 1 {
		t.Fatalf("dry run: %s", out)
	}
	// A dry run sends nothing: serve, polling since before it, has gone on
	// polling after it (a poller's second receive from here began after the
	// dry run) and has received no message.
	receives := p.metric(t, "wharf_sqs_calls_total", `call="receive"`)
	pollers := float64(defaultConfig().SQS.Pollers) // the e2e deployment keeps the default
	stacktest.Eventually(t, "serve to poll past the dry run", time.Minute, func() bool {
		return p.metric(t, "wharf_sqs_calls_total", `call="receive"`) >= receives+pollers+1
	})
	if n := p.metric(t, "wharf_received_messages_total"); n != 0 {
		t.Fatalf("a dry run sent %v messages", n)
	}
	if got := len(e.eventIDs("replays")); got != 10 {
		t.Fatalf("a dry run loaded rows: %d", got)
	}

	sent, already, other, out = e.replay("--reason", "type_mismatch")
	if !strings.Contains(out, "replayed 8 messages") || sent != 8 || already != 0 || other != 1 {
		t.Fatalf("replay: %s", out)
	}
	stacktest.Eventually(t, "18 rows after the replay", 2*time.Minute, func() bool { return len(e.eventIDs("replays")) == 18 })
	e.settled("replays")

	want := append(append(slices.Clone(okIDs), fixIDs...), noID[0].EventID, noID[1].EventID)
	sort.Strings(want)
	if got := e.eventIDs("replays"); !slices.Equal(got, want) {
		t.Fatalf("replays holds %v,\nwant %v", got, want)
	}
	for i, id := range fixIDs {
		var code string
		if err := e.pool.QueryRow(context.Background(), fmt.Sprintf(`SELECT code_text FROM %q.replays WHERE event_id = $1`, e.schema), id).Scan(&code); err != nil || code != fmt.Sprintf("A-%d", i) {
			t.Errorf("%s: code_text %q (%v)", id, code, err)
		}
	}
	for _, r := range noID {
		var at time.Time
		if err := e.pool.QueryRow(context.Background(), fmt.Sprintf(`SELECT event_time FROM %q.replays WHERE event_id = $1`, e.schema), r.EventID).Scan(&at); err != nil {
			t.Fatal(err)
		}
		if !at.Equal(r.ReceivedAt.Truncate(time.Microsecond)) {
			t.Errorf("event %s: event_time %s, want its first receive time %s", r.EventID, at, r.ReceivedAt)
		}
	}

	// Again: nothing is sent, the files are marked.
	sent, already, other, out = e.replay("--reason", "type_mismatch")
	if sent != 0 || already != 8 || other != 1 {
		t.Fatalf("second replay: %s", out)
	}
	if v, f := e.queueDepth(e.queueURL()); v+f != 0 {
		t.Fatalf("second replay sent %d messages", v+f)
	}

	// Forced: every message is sent again, and the loader drops them all.
	deleted := p.metric(t, "wharf_deleted_messages_total")
	sent, _, _, out = e.replay("--reason", "type_mismatch", "--again")
	if sent != 8 {
		t.Fatalf("replay --again: %s", out)
	}
	stacktest.Eventually(t, "the 8 messages sent again deleted (their rows in S3)", time.Minute, func() bool {
		return p.metric(t, "wharf_deleted_messages_total") >= deleted+8
	})
	e.settled("replays")
	if got := e.eventIDs("replays"); !slices.Equal(got, want) {
		t.Fatalf("after replay --again, replays holds %v,\nwant %v", got, want)
	}
	if n := p.metric(t, "wharf_deadletters_total"); n != 0 {
		t.Errorf("%v replayed messages dead-lettered again under the fixed schema", n)
	}
	// Raw documents: one per event (the replays are duplicate keys).
	e.checkMongo(map[string]int{"replays": 18})
	// The dead letters themselves are untouched; list still shows them.
	if out := e.run(nil, "deadletter", "list", "-c", e.cfg); !regexp.MustCompile(`type_mismatch\s+8`).MatchString(out) || !strings.Contains(out, "9 dead letters") {
		t.Errorf("deadletter list after replays:\n%s", out)
	}
	p.stop(t)
}

// A backfill dead letter, replayed through the queue after the schema fix,
// lands with the event id the backfill gives it (its document's _id, not the
// body's id) and writes no second raw document: a later backfill of the
// same collection then adds nothing.
func TestReplayBackfillDeadLetter(t *testing.T) {
	e := newE2E(t)
	schemaA := writeFile(t, e.dir, "tables-a.yaml", replaySchemaA)
	schemaB := writeFile(t, e.dir, "tables-b.yaml", replaySchemaB)
	ctx := context.Background()
	client, _ := e.st.Mongo(t)
	coll := client.Database(e.mongoDB).Collection("replays")
	var docs []any
	var goodIDs, badIDs []string
	for i := range 6 {
		oid := bson.NewObjectID()
		code := any(i)
		if i%2 == 1 {
			code = fmt.Sprintf("A-%d", i) // a string where schema A declares an integer
			badIDs = append(badIDs, oid.Hex())
		} else {
			goodIDs = append(goodIDs, oid.Hex())
		}
		docs = append(docs, bson.D{{Key: "_id", Value: oid}, {Key: "event", Value: "replay_test"}, {Key: "id", Value: fmt.Sprintf("body-%d", i)},
			{Key: "timestamp", Value: "2026-11-20T10:00:00Z"}, {Key: "code", Value: code}, {Key: "note", Value: "history"}})
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	backfill := func(schemaFile, job string) string {
		t.Helper()
		c := e.cmd("backfill", "-c", e.cfg, "--table", "replays", "--job", job, "--progress", "none")
		c.Env = append(slices.Clone(c.Env), "WHARF_SCHEMA="+schemaFile)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("backfill %s: %v\n%s", job, err, tail(string(out), 3000))
		}
		return string(out)
	}
	e.run(nil, "schema", "apply", "-c", e.cfg) // the test config's own schema file
	c := e.cmd("schema", "apply", "-c", e.cfg)
	c.Env = append(slices.Clone(c.Env), "WHARF_SCHEMA="+schemaA)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("schema apply: %v\n%s", err, out)
	}
	backfill(schemaA, "a")
	if got := e.eventIDs("replays"); !slices.Equal(got, slices.Sorted(slices.Values(goodIDs))) {
		t.Fatalf("after the backfill under schema A: %v, want the _ids %v", got, slices.Sorted(slices.Values(goodIDs)))
	}
	dls := e.deadLetters()
	if len(dls) != 3 {
		t.Fatalf("%d dead letters, want 3: %v", len(dls), dls)
	}
	for _, r := range dls {
		if r.Source != "backfill" || r.Reason != "type_mismatch" || !slices.Contains(badIDs, r.EventID) {
			t.Fatalf("dead letter %+v: want a backfill type_mismatch with the document's _id", r)
		}
	}

	p := e.serveHTTP("WHARF_SCHEMA=" + schemaB)
	if sent, _, _, out := e.replay("--reason", "type_mismatch"); sent != 3 {
		t.Fatalf("replay: %s", out)
	}
	all := slices.Sorted(slices.Values(append(slices.Clone(goodIDs), badIDs...)))
	stacktest.Eventually(t, "6 rows after the replay", 2*time.Minute, func() bool { return len(e.eventIDs("replays")) == 6 })
	e.settled("replays")
	if got := e.eventIDs("replays"); !slices.Equal(got, all) {
		t.Fatalf("after the replay: %v, want the _ids %v", got, all)
	}
	if n, err := coll.CountDocuments(ctx, bson.D{}); err != nil || n != 6 {
		t.Fatalf("mongo replays: %d documents (%v), want the 6 it had", n, err)
	}
	p.stop(t)

	// A backfill under the fixed schema finds every row already there.
	backfill(schemaB, "b")
	if got := e.eventIDs("replays"); !slices.Equal(got, all) {
		t.Fatalf("after a second backfill: %v, want %v", got, all)
	}
}
