package backfill

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wharfdata/wharf/deadletter"
	"github.com/wharfdata/wharf/internal/s3store/s3storetest"
	"github.com/wharfdata/wharf/internal/stacktest"
	"github.com/wharfdata/wharf/schema"
)

// Tests against FerretDB (the local stack), with the sink, the dead-letter
// store and the object store in memory.

type memSink struct {
	mu   sync.Mutex
	rows map[string][]schema.Row // per table
	fail func(rows []schema.Row) error
}

func (s *memSink) Add(_ context.Context, rs *schema.Rows, ack func(error)) error {
	rows := rs.Slice(nil) // rs is the worker's, reused once Add returns
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		if err := s.fail(rows); err != nil {
			return err
		}
	}
	if s.rows == nil {
		s.rows = map[string][]schema.Row{}
	}
	for _, r := range rows {
		r.Values = append([]schema.Value(nil), r.Values...)
		s.rows[r.Table.Name] = append(s.rows[r.Table.Name], r)
	}
	ack(nil)
	return nil
}

func (s *memSink) Flush(context.Context) error { return nil }

// value returns column col of every row of table, by event_id.
func (s *memSink) values(table, col string) map[string]schema.Value {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]schema.Value{}
	for _, r := range s.rows[table] {
		out[r.Values[r.Table.Column(schema.ColEventID)].S] = r.Values[r.Table.Column(col)]
	}
	return out
}

type memDL struct {
	mu   sync.Mutex
	recs []deadletter.Record
}

func (d *memDL) Add(_ context.Context, rec deadletter.Record, ack func(error)) error {
	d.mu.Lock()
	d.recs = append(d.recs, rec)
	d.mu.Unlock()
	ack(nil)
	return nil
}
func (d *memDL) Flush(context.Context) error { return nil }

type stackEnv struct {
	t     *testing.T
	db    *mongo.Database
	store *s3storetest.Mem
}

func newStackEnv(t *testing.T) *stackEnv {
	st := stacktest.Get(t)
	c, name := st.Mongo(t)
	return &stackEnv{t: t, db: c.Database(name), store: &s3storetest.Mem{}}
}

func (e *stackEnv) insert(coll string, docs ...bson.D) {
	e.t.Helper()
	var in []any
	for _, d := range docs {
		in = append(in, d)
	}
	if _, err := e.db.Collection(coll).InsertMany(context.Background(), in); err != nil {
		e.t.Fatal(err)
	}
}

// run runs a backfill of cfg.Table to its end and returns its sink, dead
// letters and summary.
func (e *stackEnv) run(sch *schema.Schema, cfg Config, sink *memSink) (*memSink, *memDL, Summary, error) {
	e.t.Helper()
	if sink == nil {
		sink = &memSink{}
	}
	dl := &memDL{}
	if cfg.Job == "" {
		cfg.Job = "job"
	}
	cfg.Workers, cfg.Prefix, cfg.CheckpointInterval = 1, "p/", 50*time.Millisecond
	b, err := New(cfg, sch, schema.DefaultEnvelope(), e.db, sink, dl, e.store, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sum, err := b.Run(ctx)
	return sink, dl, sum, err
}

func mustParse(t *testing.T, y string) *schema.Schema {
	t.Helper()
	s, err := schema.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func deadReasons(dl *memDL) map[string]int {
	out := map[string]int{}
	for _, r := range dl.recs {
		out[r.Reason]++
	}
	return out
}

// History written before wharf has no type field: the collection is its
// type. Such a document takes its table's one event type, or the table's
// collection_event; where neither applies it stays a missing_event_type
// dead letter. Audit counts them as backfill loads them.
func TestBackfillDocumentsWithoutType(t *testing.T) {
	e := newStackEnv(t)
	sch := mustParse(t, `tables:
- name: clicks
  events: [click]
  collection: clicks
  columns: [{name: n, path: n, type: integer}]
- name: orders
  events: [order_placed, order_paid]
  collection: orders
  collection_event: order_placed
  columns: [{name: n, path: n, type: integer}]
- name: mixed
  events: [a, b]
  collection: mixed
  columns: [{name: n, path: n, type: integer}]
`)
	now := time.Now().UTC().Truncate(time.Hour)
	at := func(h int) time.Time { return now.Add(-time.Duration(h) * time.Hour) }
	oid := func(h int) bson.ObjectID { return bson.NewObjectIDFromTimestamp(at(h)) }
	e.insert("clicks",
		bson.D{{Key: "_id", Value: oid(5)}, {Key: "timestamp", Value: at(5)}, {Key: "n", Value: 1}},
		bson.D{{Key: "_id", Value: oid(4)}, {Key: "event", Value: nil}, {Key: "timestamp", Value: at(4)}, {Key: "n", Value: 2}},
		bson.D{{Key: "_id", Value: oid(3)}, {Key: "event", Value: "click"}, {Key: "timestamp", Value: at(3)}, {Key: "n", Value: 3}},
		bson.D{{Key: "_id", Value: oid(3)}, {Key: "event", Value: 7}, {Key: "timestamp", Value: at(3)}, {Key: "n", Value: 4}},
	)
	e.insert("orders",
		bson.D{{Key: "_id", Value: oid(5)}, {Key: "timestamp", Value: at(5)}, {Key: "n", Value: 1}},
		bson.D{{Key: "_id", Value: oid(4)}, {Key: "event", Value: "order_paid"}, {Key: "timestamp", Value: at(4)}, {Key: "n", Value: 2}},
		bson.D{{Key: "_id", Value: oid(6)}, {Key: "timestamp", Value: at(6)}, {Key: "n", Value: "not a number"}},
	)
	e.insert("mixed",
		bson.D{{Key: "_id", Value: oid(5)}, {Key: "timestamp", Value: at(5)}, {Key: "n", Value: 1}},
		bson.D{{Key: "_id", Value: oid(4)}, {Key: "event", Value: "b"}, {Key: "timestamp", Value: at(4)}, {Key: "n", Value: 2}},
	)
	for _, c := range []struct {
		table string
		rows  int
		dead  map[string]int
		hours map[time.Time]int64
	}{
		{"clicks", 3, map[string]int{schema.ReasonMissingEventType: 1}, map[time.Time]int64{at(5): 1, at(4): 1, at(3): 1}},
		{"orders", 2, map[string]int{schema.ReasonTypeMismatch: 1}, map[time.Time]int64{at(6): 1, at(5): 1, at(4): 1}}, // audit counts dead letters of flatten too
		{"mixed", 1, map[string]int{schema.ReasonMissingEventType: 1}, map[time.Time]int64{at(4): 1}},
	} {
		sink, dl, _, err := e.run(sch, Config{Table: c.table, Job: c.table, Shards: 1, BatchSize: 100, MaxPending: 100, MaxRetries: 1, DrainTimeout: 10 * time.Second, ReadPreference: "primary"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(sink.rows[c.table]); got != c.rows {
			t.Errorf("%s: %d rows, want %d", c.table, got, c.rows)
		}
		if got := deadReasons(dl); !mapsEqual(got, c.dead) {
			t.Errorf("%s: dead letters %v, want %v", c.table, got, c.dead)
		}
		for _, r := range dl.recs {
			if r.Reason == schema.ReasonTypeMismatch && (r.EventType != "order_placed" || !strings.Contains(r.Body, `"event":"order_placed"`)) {
				t.Errorf("%s: a dead letter of a document without a type should carry the type it was given: %+v", c.table, r)
			}
		}
		hours, _, err := CountHours(context.Background(), e.db, sch, schema.DefaultEnvelope(), c.table, at(10), now, "primary")
		if err != nil {
			t.Fatal(err)
		}
		if !mapsEqual(hours, c.hours) {
			t.Errorf("%s: audit counts %v, want %v", c.table, hours, c.hours)
		}
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// A --since warehouse job keeps the bound it was planned with: resumed after
// the warehouse moved on, it still reads every document from that bound.
func TestBackfillResumeKeepsPlannedSince(t *testing.T) {
	e := newStackEnv(t)
	sch := mustParse(t, "tables:\n- name: clicks\n  events: [click]\n  collection: clicks\n  columns: [{name: n, path: n, type: integer}]\n")
	now := time.Now().UTC().Truncate(time.Second)
	at := func(h float64) time.Time { return now.Add(-time.Duration(h * float64(time.Hour))) }
	for h := 1; h <= 6; h++ {
		e.insert("clicks", bson.D{{Key: "_id", Value: bson.NewObjectIDFromTimestamp(at(float64(h)))}, {Key: "event", Value: "click"}, {Key: "timestamp", Value: at(float64(h))}, {Key: "n", Value: h}})
	}
	cfg := DefaultConfig()
	cfg.Table, cfg.Job, cfg.SinceFrom, cfg.Since, cfg.ReadPreference = "clicks", "incremental", "warehouse", at(5.5), "primary"
	// The first run is stopped before any row is durable.
	stop := &memSink{fail: func([]schema.Row) error { return context.Canceled }}
	if _, _, _, err := e.run(sch, cfg, stop); err == nil {
		t.Fatal("the first run should fail")
	}
	// Meanwhile the warehouse moved on: this run reads a later bound.
	cfg.Since = at(2.5)
	sink, _, sum, err := e.run(sch, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(sink.rows["clicks"]); got != 5 {
		t.Errorf("the resumed job loaded %d rows, want the 5 from its planned bound (%v)", got, sum)
	}
}

// ReceivedSince follows insertion, not event time: a late arrival (received
// now, with an old event time) is read, a future-dated event received long
// ago is not, and a document with no received time (a string _id) is
// bounded by its event time.
func TestBackfillReceivedSince(t *testing.T) {
	e := newStackEnv(t)
	sch := mustParse(t, "tables:\n- name: clicks\n  events: [click]\n  collection: clicks\n  columns: [{name: n, path: n, type: integer}]\n")
	now := time.Now().UTC().Truncate(time.Second)
	at := func(h float64) time.Time { return now.Add(-time.Duration(h * float64(time.Hour))) }
	doc := func(id any, event time.Time, n string) bson.D {
		return bson.D{{Key: "_id", Value: id}, {Key: "event", Value: "click"}, {Key: "timestamp", Value: event}, {Key: "n", Value: len(n)}}
	}
	e.insert("clicks",
		doc(bson.NewObjectIDFromTimestamp(at(10)), at(10), "old"),
		doc(bson.NewObjectIDFromTimestamp(at(1)), at(24*30), "late"),
		doc(bson.NewObjectIDFromTimestamp(at(10)), now.AddDate(1, 0, 0), "future"),
		doc(bson.NewObjectIDFromTimestamp(at(1)), at(1), "new"),
		doc("s-old", at(10), "s-old"),
		doc("s-new", at(1), "s-new"),
	)
	cfg := DefaultConfig()
	cfg.Table, cfg.Job, cfg.SinceFrom, cfg.ReceivedSince, cfg.ReadPreference = "clicks", "incremental", "warehouse", at(5), "primary"
	sink, _, sum, err := e.run(sch, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]int{}
	for _, v := range sink.values("clicks", "n") {
		got[v.I]++
	}
	if want := map[int64]int{4: 1, 3: 1, 5: 1}; !mapsEqual(got, want) { // late, new, s-new
		t.Errorf("rows by n %v, want %v (%+v)", got, want, sum)
	}
}

// A raw document written by serve (a string _id, the receive time in
// ReceivedAtField) gets that time as received_at, and as event_time when
// the event has none: exactly what serve gave it, not the job's start. The
// field is not part of the event (no _extras), --since warehouse bounds it,
// and audit counts the document at that hour.
func TestBackfillStoredReceiveTime(t *testing.T) {
	e := newStackEnv(t)
	sch := mustParse(t, "tables:\n- name: clicks\n  events: [click]\n  collection: clicks\n  columns: [{name: n, path: n, type: integer}]\n  extras: true\n")
	now := time.Now().UTC()
	recv := now.Add(-3 * time.Hour).Truncate(time.Millisecond)
	old := now.Add(-30 * time.Hour).Truncate(time.Millisecond)
	e.insert("clicks",
		bson.D{{Key: "_id", Value: "evt-1"}, {Key: ReceivedAtField, Value: recv}, {Key: "event", Value: "click"}, {Key: "n", Value: 1}},
		bson.D{{Key: "_id", Value: "evt-2"}, {Key: ReceivedAtField, Value: old}, {Key: "event", Value: "click"}, {Key: "n", Value: 2}},
	)
	micros := func(t time.Time) int64 { return t.UnixMicro() }
	sink, _, _, err := e.run(sch, Config{Table: "clicks", Job: "all", Shards: 1, BatchSize: 100, MaxPending: 100, MaxRetries: 1, DrainTimeout: 10 * time.Second, ReadPreference: "primary"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for col, want := range map[string]int64{schema.ColReceivedAt: micros(recv), schema.ColEventTime: micros(recv)} {
		if got := sink.values("clicks", col)["evt-1"]; got.I != want {
			t.Errorf("%s: %s, want %s (the stored receive time)", col, time.UnixMicro(got.I).UTC(), recv)
		}
	}
	if x := sink.values("clicks", schema.ColExtras)["evt-1"]; !x.Null {
		t.Errorf("_extras %q: the receive time is not a field of the event", x.S)
	}
	hours, _, err := CountHours(context.Background(), e.db, sch, schema.DefaultEnvelope(), "clicks", now.Add(-48*time.Hour), now, "primary")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[time.Time]int64{recv.Truncate(time.Hour): 1, old.Truncate(time.Hour): 1}; !mapsEqual(hours, want) {
		t.Errorf("audit counts %v, want %v", hours, want)
	}
	cfg := DefaultConfig()
	cfg.Table, cfg.Job, cfg.SinceFrom, cfg.ReceivedSince, cfg.ReadPreference = "clicks", "incremental", "warehouse", now.Add(-10*time.Hour), "primary"
	sink, _, _, err = e.run(sch, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := sink.values("clicks", "n"); len(got) != 1 || got["evt-1"].I != 1 {
		t.Errorf("--since warehouse read %v, want only evt-1 (received after the bound)", got)
	}
}

// A backfill dead letter does not carry a document of up to 16 MiB: a body
// larger than deadletter.MaxBody (what SQS could carry for a replay) is not
// kept; the record gives its size, and its _id and collection find it in
// Mongo. A smaller one is kept whole.
func TestBackfillDeadLetterBodyCut(t *testing.T) {
	e := newStackEnv(t)
	sch := mustParse(t, `tables:
- name: clicks
  events: [click]
  collection: clicks
  columns: [{name: n, path: n, type: integer}]
`)
	big := strings.Repeat("x", 3<<20)
	e.insert("clicks",
		bson.D{{Key: "_id", Value: "big"}, {Key: "event", Value: "click"}, {Key: "n", Value: "seven"}, {Key: "pad", Value: big}},
		bson.D{{Key: "_id", Value: "small"}, {Key: "event", Value: "click"}, {Key: "n", Value: "eight"}})
	_, dl, _, err := e.run(sch, Config{Table: "clicks", Job: "cut", Shards: 1, BatchSize: 100, MaxPending: 100, MaxRetries: 1, DrainTimeout: 10 * time.Second, ReadPreference: "primary"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(dl.recs) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dl.recs))
	}
	for _, r := range dl.recs {
		switch r.EventID {
		case "big":
			if r.Body != "" || r.BodyBytes <= deadletter.MaxBody || !strings.Contains(r.Detail, "stays in Mongo under its _id") || r.Attributes["collection"] != "clicks" {
				t.Errorf("big: body %d bytes, body_bytes %d, detail %q, attributes %v", len(r.Body), r.BodyBytes, r.Detail, r.Attributes)
			}
		case "small":
			if r.Body == "" || r.BodyBytes != 0 {
				t.Errorf("small: body %q, body_bytes %d", r.Body, r.BodyBytes)
			}
		}
	}
}
