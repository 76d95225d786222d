package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.uber.org/zap"

	"github.com/wharfdata/wharf/deadletter"
	"github.com/wharfdata/wharf/internal/stacktest"
)

// refusingRaw stands in for refusals FerretDB cannot produce: it rejects
// the documents whose _id it names with the code given, as MongoStore
// reports a write error of that code, and passes the others on.
type refusingRaw struct {
	next   RawStore
	refuse map[string]string // _id -> "code N: message"
}

func (f *refusingRaw) Store(ctx context.Context, coll string, docs []bson.Raw) ([]error, error) {
	perDoc := make([]error, len(docs))
	var pass []bson.Raw
	var at []int
	for i, d := range docs {
		id, _ := d.Lookup("_id").StringValueOK()
		if why, ok := f.refuse[id]; ok {
			perDoc[i] = fmt.Errorf("insert into %s: %w: %s", coll, ErrRejected, why)
			continue
		}
		pass, at = append(pass, d), append(at, i)
	}
	got, err := f.next.Store(ctx, coll, pass)
	if err != nil {
		return nil, err
	}
	for j, e := range got {
		perDoc[at[j]] = e
	}
	return perDoc, nil
}

// A raw document Mongo refuses for good is dead-lettered with
// raw_write_rejected and Mongo's code and message, its message deleted and
// its rows not loaded, while the rest of its batch goes on: FerretDB's
// refusal of nested arrays and a duplicate on another unique index (real),
// a validator's and a too-large refusal (the fake). A duplicate of the _id
// (a redelivery) still counts as stored.
func TestRawWriteRejected(t *testing.T) {
	r := newRigRaw(t, "30", 1000, true, func(r *rig) RawStore {
		return &refusingRaw{next: r.raw, refuse: map[string]string{
			"v1": "code 121: Document failed validation",
			"t1": "code 10334: BSONObjectTooLarge",
		}}
	})
	ctx := context.Background()
	coll := r.raw.db.Collection("clicks")
	if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "user_id", Value: 1}}, Options: options.Index().SetUnique(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: "other"}, {Key: "user_id", Value: 42}}, bson.D{{Key: "_id", Value: "r1"}, {Key: "user_id", Value: 99}}}); err != nil {
		t.Fatal(err)
	}
	good := clicks(3, 1)
	rejected := map[string]string{
		`{"event":"click","id":"n1","user_id":7,"m":[[1,2],[3]]}`:       "code 2",     // FerretDB: nested arrays
		`{"event":"click","id":"d1","user_id":42}`:                      "code 11000", // duplicate user_id, another document's
		`{"event":"click","id":"v1","user_id":8}`:                       "code 121",
		`{"event":"click","id":"t1","user_id":9}`:                       "code 10334",
		`{"event":"click","id":"b1","user_id":10,"tags":"x","k":[[0]]}`: "also invalid",
	}
	bodies := append([]string{}, good[:2]...)
	for b := range rejected {
		bodies = append(bodies, b)
	}
	bodies = append(bodies, good[2], `{"event":"click","id":"r1","user_id":99}`) // r1: a redelivery of a stored event
	r.send(t, bodies...)
	stacktest.Eventually(t, "every message deleted", 20*time.Second, func() bool { return testutil.ToFloat64(r.c.m.deleted) == float64(len(bodies)) })

	r.sink.mu.Lock()
	got := map[string]int{}
	for id, n := range r.sink.rows {
		got[id] = n
	}
	r.sink.mu.Unlock()
	for _, id := range []string{"c1", "c2", "c3", "r1"} {
		if got[id] == 0 {
			t.Errorf("event %s: no rows, want them loaded", id)
		}
		delete(got, id)
	}
	if len(got) > 0 {
		t.Errorf("rows of rejected events reached the sink: %v", got)
	}
	recs, err := deadletter.Read(ctx, r.store, r.prefix, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(rejected) {
		t.Fatalf("%d dead letters, want %d: %+v", len(recs), len(rejected), recs)
	}
	for _, rec := range recs {
		want, ok := rejected[rec.Body]
		if !ok || rec.Reason != ReasonRawWriteRejected || !strings.Contains(rec.Detail, want) {
			t.Errorf("dead letter %q: reason %q, detail %q; want %s with %q", rec.Body, rec.Reason, rec.Detail, ReasonRawWriteRejected, want)
		}
	}
	// In Mongo: the three good clicks and the two written before.
	if n, err := coll.CountDocuments(ctx, bson.D{}); err != nil || n != 5 {
		t.Fatalf("raw documents: %d, %v; want 5", n, err)
	}

	// A document larger than Mongo stores is rejected without being sent;
	// the others of its call are stored.
	big := bson.Raw(bsonDoc(t, bson.D{{Key: "_id", Value: "huge"}, {Key: "pad", Value: strings.Repeat("x", maxDocument)}}))
	small := bson.Raw(bsonDoc(t, bson.D{{Key: "_id", Value: "small"}, {Key: "user_id", Value: 1234}}))
	perDoc, err := r.raw.Store(ctx, "clicks", []bson.Raw{big, small})
	if err != nil || !errors.Is(perDoc[0], ErrRejected) || perDoc[1] != nil {
		t.Fatalf("store of a too-large document: %v, %v", perDoc, err)
	}
}

func bsonDoc(t *testing.T, d bson.D) []byte {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// switchRaw writes through denied (a store whose credentials Mongo refuses)
// until allowed is set, then through ok.
type switchRaw struct {
	denied, ok RawStore
	allowed    atomic.Bool
	refusals   atomic.Int64
}

func (s *switchRaw) Store(ctx context.Context, coll string, docs []bson.Raw) ([]error, error) {
	if s.allowed.Load() {
		return s.ok.Store(ctx, coll, docs)
	}
	perDoc, err := s.denied.Store(ctx, coll, docs)
	if err != nil {
		s.refusals.Add(1)
	}
	return perDoc, err
}

// When Mongo refuses wharf's credentials (FerretDB's real AuthenticationFailed,
// code 18), the process holds: it stops polling, sets wharf_raw_store_denied
// and logs one error, and keeps extending the messages it holds, so that
// none is received again (no receive spent) however long it lasts; once
// writes go through, everything is stored and deleted.
func TestRawStoreDeniedHolds(t *testing.T) {
	var sw *switchRaw
	r := newRigRaw(t, "2", 1000, true, func(r *rig) RawStore {
		u, err := url.Parse(r.st.MongoURI)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword("wharf-test", "wrong")
		q := u.Query()
		q.Set("authMechanism", "SCRAM-SHA-256")
		u.RawQuery = q.Encode()
		bad, err := mongo.Connect(options.Client().ApplyURI(u.String()).SetServerSelectionTimeout(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { bad.Disconnect(context.Background()) })
		sw = &switchRaw{denied: NewMongoStore(bad.Database(r.db)), ok: r.raw}
		return sw
	})
	first := clicks(5, 1)
	r.send(t, first...)
	stacktest.Eventually(t, "the denial raised", 20*time.Second, func() bool { return testutil.ToFloat64(r.c.m.rawDenied) == 1 })
	// A poller that met the denial retries with backoff from 200 ms,
	// doubling: after five refusals (3 s, or both pollers hold messages)
	// every long poll under way then (1 s) has returned, and no new one
	// starts.
	stacktest.Eventually(t, "five refused writes", 20*time.Second, func() bool { return sw.refusals.Load() >= 5 })
	// Outlast the visibility timeout (2 s) several times over: the retries
	// back off from 200 ms, doubling, so seven refusals take over 12 s.
	r.send(t, clicks(5, 100)...)
	stacktest.Eventually(t, "seven refused writes", 60*time.Second, func() bool { return sw.refusals.Load() >= 7 })
	if n := testutil.ToFloat64(r.c.m.received); n != 5 {
		t.Errorf("%v messages received during the denial, want the first 5 only (none again, none new)", n)
	}
	if visible, _ := r.queueCounts(t); visible != 5 {
		t.Errorf("%d messages visible, want the 5 sent during the denial", visible)
	}
	if n := r.logs.FilterLevelExact(zap.ErrorLevel).Len(); n != 1 {
		t.Errorf("%d error logs during the denial, want 1", n)
	}

	sw.allowed.Store(true)
	stacktest.Eventually(t, "every message deleted", 30*time.Second, func() bool { return testutil.ToFloat64(r.c.m.deleted) == 10 })
	if n := testutil.ToFloat64(r.c.m.received); n != 10 {
		t.Errorf("%v receives for 10 messages, want 10", n)
	}
	if d := testutil.ToFloat64(r.c.m.rawDenied); d != 0 {
		t.Errorf("wharf_raw_store_denied %v after writes resumed", d)
	}
	if n, _ := r.sink.count(); n != 10 {
		t.Errorf("sink has %d events, want 10", n)
	}
}
