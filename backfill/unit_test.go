package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wharfdata/wharf/internal/stacktest"
	"github.com/wharfdata/wharf/schema"
)

func TestMain(m *testing.M) { stacktest.VerifyNoLeaks(m) }

func rv(t testing.TB, v any) Key {
	t.Helper()
	typ, data, err := bson.MarshalValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return Key{bson.RawValue{Type: typ, Value: data}}
}

func TestKeyJSONRoundTrip(t *testing.T) {
	oid := bson.NewObjectIDFromTimestamp(time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC))
	for _, v := range []any{oid, "evt-0001", int32(7), int64(1) << 40, 2.5, time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC), true} {
		k := rv(t, v)
		b, err := json.Marshal(&k)
		if err != nil {
			t.Fatal(err)
		}
		var back Key
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if back.Type != k.Type || compareKeys(back.RawValue, k.RawValue) != 0 {
			t.Errorf("%v: round trip through %s gave %v", v, b, back)
		}
	}
}

func TestCompareKeysOrdersLikeMongo(t *testing.T) {
	early := bson.NewObjectIDFromTimestamp(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	late := bson.NewObjectIDFromTimestamp(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	// MongoDB's order: numbers < strings < ObjectIds < booleans < dates.
	want := []any{int32(-5), 1.5, int64(2), int32(10), "", "a", "b", "ba", early, late, false, true, time.Unix(0, 0).UTC()}
	for i := range want {
		for j := range want {
			a, b := rv(t, want[i]), rv(t, want[j])
			got := compareKeys(a.RawValue, b.RawValue)
			switch {
			case i < j && got >= 0, i > j && got <= 0, i == j && got != 0:
				t.Errorf("compare(%v, %v) = %d", want[i], want[j], got)
			}
		}
	}
}

func TestIDString(t *testing.T) {
	oid := bson.NewObjectID()
	for _, c := range []struct {
		v    any
		want string
		ok   bool
	}{{oid, oid.Hex(), true}, {"x-1", "x-1", true}, {int32(42), "42", true}, {int64(-3), "-3", true}, {3.0, "3", true}, {3.5, "", false}, {bson.D{}, "", false}} {
		got, err := idString(rv(t, c.v).RawValue)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("idString(%v) = %q, %v", c.v, got, err)
		}
	}
}

func filterJSON(t *testing.T, d bson.D) string {
	t.Helper()
	b, err := bson.MarshalExtJSON(d, false, false)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRangeFilter(t *testing.T) {
	a, b := rv(t, "a"), rv(t, "m")
	n := rv(t, int64(5))
	for _, c := range []struct {
		name          string
		lo, hi, after *Key
		types         []string
		want          string
	}{
		{"whole", nil, nil, nil, nil, `{}`},
		{"same class", &a, &b, nil, nil, `{"_id":{"$gte":"a","$lt":"m"}}`},
		{"resumed", &a, &b, &Key{rv(t, "c").RawValue}, nil, `{"_id":{"$gt":"c","$lt":"m"}}`},
		{"first, types unknown", nil, &a, nil, nil, `{"$or":[{"_id":{"$type":["minKey","null","undefined","number"]}},{"_id":{"$lt":"a"}}]}`},
		{"first, only strings", nil, &a, nil, []string{"string"}, `{"_id":{"$lt":"a"}}`},
		{"last, strings and ObjectIds", &b, nil, nil, []string{"objectId", "string"}, `{"$or":[{"_id":{"$gte":"m"}},{"_id":{"$type":"objectId"}}]}`},
		{"across classes", &n, &a, nil, []string{"int", "long", "string"}, `{"$or":[{"_id":{"$gte":5}},{"_id":{"$lt":"a"}}]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := filterJSON(t, rangeFilter(c.lo, c.hi, c.after, c.types)); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

// Ranges split from any sample are adjacent and cover every key: each key
// falls in exactly one range.
func TestSplitRangesCoverEveryKey(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var all []Key
	for i := range 3000 {
		switch i % 3 {
		case 0:
			all = append(all, rv(t, bson.NewObjectIDFromTimestamp(time.Unix(int64(r.IntN(1e9)), 0))))
		case 1:
			all = append(all, rv(t, "k"+string(rune('a'+r.IntN(26)))+string(rune('a'+r.IntN(26)))))
		default:
			all = append(all, rv(t, int64(r.IntN(1e6))))
		}
	}
	for _, n := range []int{1, 2, 3, 7, 16} {
		for _, sampleSize := range []int{0, 1, 5, 200} {
			sample := keySample{total: int64(len(all))}
			for range sampleSize {
				sample.keys = append(sample.keys, all[r.IntN(len(all))])
			}
			rs := splitRanges("c", sample, n)
			if len(rs) > n || len(rs) == 0 {
				t.Fatalf("n=%d sample=%d: %d ranges", n, sampleSize, len(rs))
			}
			if rs[0].Lo != nil || rs[len(rs)-1].Hi != nil {
				t.Fatalf("n=%d: the outer ranges must be open", n)
			}
			for i := 1; i < len(rs); i++ {
				if compareKeys(rs[i-1].Hi.RawValue, rs[i].Lo.RawValue) != 0 {
					t.Fatalf("n=%d: ranges %d and %d are not adjacent", n, i-1, i)
				}
			}
			for _, k := range all {
				in := 0
				for _, rg := range rs {
					if (rg.Lo == nil || compareKeys(k.RawValue, rg.Lo.RawValue) >= 0) && (rg.Hi == nil || compareKeys(k.RawValue, rg.Hi.RawValue) < 0) {
						in++
					}
				}
				if in != 1 {
					t.Fatalf("n=%d sample=%d: key %v is in %d ranges", n, sampleSize, k, in)
				}
			}
		}
	}
}

// The durable position moves only over an unbroken run of acked documents,
// whatever order the acks come in.
func TestTrackerOutOfOrderAcks(t *testing.T) {
	tr := newTracker(nil, 10)
	keys := make([]Key, 6)
	seqs := make([]uint64, 6)
	for i := range keys {
		keys[i] = rv(t, int64(i))
		seqs[i] = tr.push(keys[i])
	}
	pos := func() (int64, int64) {
		after, durable, _, _, _ := tr.state(false)
		if after == nil {
			return -1, durable
		}
		return after.Int64(), durable
	}
	steps := []struct {
		ack        int
		wantAfter  int64
		wantDurble int64
	}{{2, -1, 10}, {1, -1, 10}, {0, 2, 13}, {4, 2, 13}, {3, 4, 15}, {5, 5, 16}}
	for _, s := range steps {
		tr.ack(seqs[s.ack], nil)
		if a, d := pos(); a != s.wantAfter || d != s.wantDurble {
			t.Fatalf("after ack %d: position %d, durable %d; want %d, %d", s.ack, a, d, s.wantAfter, s.wantDurble)
		}
	}
	if _, _, changed, unacked, _ := tr.state(true); !changed || unacked != 0 {
		t.Fatalf("changed %v, unacked %d", changed, unacked)
	}
	if _, _, changed, _, _ := tr.state(true); changed {
		t.Fatal("state(true) must clear changed")
	}
}

func TestTrackerStopsAtFailedAck(t *testing.T) {
	tr := newTracker(nil, 0)
	a, b, c := tr.push(rv(t, "a")), tr.push(rv(t, "b")), tr.push(rv(t, "c"))
	tr.ack(a, nil)
	tr.ack(b, errors.New("put failed"))
	tr.ack(c, nil)
	after, durable, _, _, err := tr.state(false)
	if err == nil || after == nil || after.StringValue() != "a" || durable != 1 {
		t.Fatalf("after %v, durable %d, err %v: want a, 1 and the error", after, durable, err)
	}
}

func TestTrackerConcurrentAcks(t *testing.T) {
	tr := newTracker(nil, 0)
	const n = 10000
	seqs := make([]uint64, n)
	for i := range seqs {
		seqs[i] = tr.push(rv(t, int64(i)))
	}
	order := rand.Perm(n)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				tr.ack(seqs[order[i]], nil)
			}
		}()
	}
	wg.Wait()
	after, durable, _, unacked, _ := tr.state(false)
	if after.Int64() != n-1 || durable != n || unacked != 0 {
		t.Fatalf("after %v durable %d unacked %d", after, durable, unacked)
	}
}

// TestWindow runs in a synctest bubble: synctest.Wait returns once every
// goroutine of the test is blocked, so "the third acquire waits" is checked
// as a state, not guessed from a sleep.
func TestWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWindow(2)
		ctx := context.Background()
		if err := w.acquire(ctx); err != nil {
			t.Fatal(err)
		}
		if err := w.acquire(ctx); err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if err := w.acquire(short); err == nil {
			t.Fatal("a full window let a third document in")
		}
		got := make(chan error, 1)
		go func() { got <- w.acquire(ctx) }()
		synctest.Wait()
		select {
		case err := <-got:
			t.Fatalf("an acquire on a full window returned (%v) before a release", err)
		default:
		}
		w.release()
		if err := <-got; err != nil {
			t.Fatal(err)
		}
		go func() { w.release(); w.release() }()
		if err := w.drained(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTimeFilterNeedsNoOr(t *testing.T) {
	since := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	got := filterJSON(t, timeFilter("date", since, time.Time{}))
	want := `{"date":{"$not":{"$lt":{"$date":"2024-01-01T00:00:00Z"}}}}`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if f := timeFilter("date", time.Time{}, time.Time{}); len(f) != 0 {
		t.Errorf("no bounds: %v", f)
	}
}

func TestParseFilter(t *testing.T) {
	if _, canon, err := parseFilter(`{"user_id": {"$gt": 5}}`); err != nil || canon != `{"user_id":{"$gt":{"$numberInt":"5"}}}` {
		t.Fatalf("%s %v", canon, err)
	}
	if _, _, err := parseFilter(`[1]`); err == nil {
		t.Fatal("an array is not a filter")
	}
	if _, _, err := parseFilter(`{"a":`); err == nil {
		t.Fatal("bad JSON accepted")
	}
}

func TestConverterDropsID(t *testing.T) {
	doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "event", Value: "x"},
		{Key: "at", Value: time.Date(2024, 2, 3, 4, 5, 6, 0, time.UTC)}, {Key: "n", Value: int64(3)}, {Key: "f", Value: 1.5}})
	var c converter
	got, _, err := c.eventJSON(doc, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"event":"x","at":{"$date":"2024-02-03T04:05:06Z"},"n":3,"f":1.5}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// The aggregation that counts documents per hour on MongoDB: the table's
// time path first, then the envelope's, then the _id's creation time, and a
// group by $dateTrunc (which FerretDB refuses, so the client-side count runs
// there).
func TestHourPipeline(t *testing.T) {
	sch, err := schema.Parse([]byte("tables:\n- name: a\n  events: [x, y]\n  time: at\n  columns:\n  - {name: n, path: n, type: integer}\n"))
	if err != nil {
		t.Fatal(err)
	}
	since, until := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)
	p := hourPipeline(sch.Table("a"), schema.DefaultEnvelope(), since, until)
	b, err := bson.MarshalExtJSON(bson.D{{Key: "p", Value: p}}, false, false)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		`{"$match":{"$and":[{"event":{"$in":["x","y"]}},{"$and":[{"at":{"$not":{"$lt":{"$date":"2024-01-01T00:00:00Z"}}}},{"at":{"$not":{"$gte":{"$date":"2024-02-01T00:00:00Z"}}}}]}]}}`,
		`"$ifNull":[{"$switch":{"branches":[{"case":{"$eq":[{"$type":"$at"},"date"]},"then":"$at"}`,
		`{"$switch":{"branches":[{"case":{"$eq":[{"$type":"$timestamp"},"date"]}`,
		`{"$convert":{"input":"$_id","to":"date","onError":null,"onNull":null}}`,
		`{"$group":{"_id":{"$dateTrunc":{"date":"$t","unit":"hour"}},"n":{"$sum":1}}}`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the pipeline lacks %s\n%s", want, got)
		}
	}
}

// A document without an event type gets the fallback type at the type path,
// nested paths included; a document with a type, or with a non-document on
// the way, keeps what it has.
func TestConverterFallbackType(t *testing.T) {
	var c converter
	for _, tc := range []struct {
		doc  bson.D
		path string
		want string
		add  bool
	}{
		{bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 1}}, "event", `{"n":1,"event":"x"}`, true},
		{bson.D{{Key: "event", Value: nil}, {Key: "n", Value: 1}}, "event", `{"event":"x","n":1}`, true},
		{bson.D{{Key: "event", Value: "y"}}, "event", `{"event":"y"}`, false},
		{bson.D{{Key: "meta", Value: bson.D{{Key: "a", Value: 1}}}}, "meta.type", `{"meta":{"a":1,"type":"x"}}`, true},
		{bson.D{{Key: "n", Value: 1}}, "meta.type", `{"n":1,"meta":{"type":"x"}}`, true},
		{bson.D{{Key: "meta", Value: "s"}}, "meta.type", `{"meta":"s"}`, false},
	} {
		doc, _ := bson.Marshal(tc.doc)
		got, added, err := c.eventJSON(doc, strings.Split(tc.path, "."), "x")
		if err != nil || string(got) != tc.want || added != tc.add {
			t.Errorf("%v at %s: got %s %v %v, want %s %v", tc.doc, tc.path, got, added, err, tc.want, tc.add)
		}
	}
}
