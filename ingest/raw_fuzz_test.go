package ingest

import (
	"encoding/json"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/wharfdata/wharf/backfill"
	"github.com/wharfdata/wharf/schema"
)

// FuzzRawDocument: for any message body that decodes into an event,
// rawDocument builds a valid BSON document with _id = the event id first,
// the receive time second (a BSON date), then every other field of the
// event, in order, with the same value:
// strings byte for byte, integers as int32 or int64, other numbers as the
// nearest double, nested objects and arrays alike.
//
//	go test -run '^$' -fuzz '^FuzzRawDocument$' -fuzztime 60s ./ingest
func FuzzRawDocument(f *testing.F) {
	in, err := os.ReadFile("../schema/testdata/flatten/events.jsonl")
	if err != nil {
		f.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(in)), "\n") {
		_, body, _ := strings.Cut(line, "\t")
		f.Add([]byte(body))
		msg, _ := json.Marshal(body)
		f.Add([]byte(`{"Type":"Notification","Message":` + string(msg) + `}`))
	}
	f.Add([]byte(`{"event":"page_view","id":"x","_wharf_received_at":"mine","_id":"other","n":[2147483647,2147483648,-2147483649,9223372036854775808,1.0,1e400,-0],"o":{"":{"a.b":"$c"}}}`))
	tables, err := os.ReadFile("../schema/testdata/tables.yaml")
	if err != nil {
		f.Fatal(err)
	}
	sch, err := schema.Parse(tables)
	if err != nil {
		f.Fatal(err)
	}
	dec := schema.NewDecoder(sch, schema.DefaultEnvelope())
	received := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var buf []byte
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := dec.Decode(body, "sqs-msg-1", received)
		if err != nil {
			return
		}
		buf = rawDocument(buf[:0], ev.ID, ev.ReceivedAt, ev.Root())
		doc := bsoncore.Document(buf)
		if err := doc.Validate(); err != nil {
			t.Fatalf("invalid BSON for %q: %v", body, err)
		}
		elems, err := doc.Elements()
		if err != nil {
			t.Fatal(err)
		}
		if len(elems) == 0 || elems[0].Key() != "_id" {
			t.Fatalf("first field is not _id: %v", doc)
		}
		if id, ok := elems[0].Value().StringValueOK(); !ok || id != ev.ID {
			t.Fatalf("_id %v, want the event id %q", elems[0].Value(), ev.ID)
		}
		if len(elems) < 2 || elems[1].Key() != ReceivedAtField {
			t.Fatalf("second field is not %s: %v", ReceivedAtField, doc)
		}
		if ms, ok := elems[1].Value().DateTimeOK(); !ok || ms != received.UnixMilli() {
			t.Fatalf("%s %v, want the date %s", ReceivedAtField, elems[1].Value(), received)
		}
		elems = elems[1:]
		var want []string
		var vals []*fastjson.Value
		// The event as fastjson parses it, independently of the decoder's
		// tape that rawDocument read.
		var p fastjson.Parser
		root, err := p.ParseBytes(ev.Body)
		if err != nil {
			t.Fatalf("fastjson cannot parse the event %q: %v", ev.Body, err)
		}
		root.GetObject().Visit(func(k []byte, v *fastjson.Value) {
			if string(k) != "_id" && string(k) != ReceivedAtField {
				want = append(want, string(k))
				vals = append(vals, v)
			}
		})
		if len(elems)-1 != len(want) {
			t.Fatalf("%d fields besides _id, want %d", len(elems)-1, len(want))
		}
		for i, e := range elems[1:] {
			if e.Key() != want[i] {
				t.Fatalf("field %d is %q, want %q", i+1, e.Key(), want[i])
			}
			sameValue(t, want[i], e.Value(), vals[i])
		}
	})
}

func sameValue(t *testing.T, path string, b bsoncore.Value, j *fastjson.Value) {
	t.Helper()
	switch j.Type() {
	case fastjson.TypeObject:
		d, ok := b.DocumentOK()
		if !ok {
			t.Fatalf("%s: %s, want a document", path, b.Type)
		}
		elems, _ := d.Elements()
		i := 0
		j.GetObject().Visit(func(k []byte, v *fastjson.Value) {
			if i >= len(elems) || elems[i].Key() != string(k) {
				t.Fatalf("%s: field %d is not %q", path, i, k)
			}
			sameValue(t, path+"."+string(k), elems[i].Value(), v)
			i++
		})
		if i != len(elems) {
			t.Fatalf("%s: %d fields, want %d", path, len(elems), i)
		}
	case fastjson.TypeArray:
		a, ok := b.ArrayOK()
		if !ok {
			t.Fatalf("%s: %s, want an array", path, b.Type)
		}
		vals, _ := a.Values()
		ja := j.GetArray()
		if len(vals) != len(ja) {
			t.Fatalf("%s: %d elements, want %d", path, len(vals), len(ja))
		}
		for i := range ja {
			sameValue(t, path+"."+strconv.Itoa(i), vals[i], ja[i])
		}
	case fastjson.TypeString:
		if s, ok := b.StringValueOK(); !ok || s != string(j.GetStringBytes()) {
			t.Fatalf("%s: %v, want the string %q", path, b, j.GetStringBytes())
		}
	case fastjson.TypeNumber:
		raw := string(j.MarshalTo(nil))
		if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
			if got, ok := b.AsInt64OK(); !ok || got != n || (n >= math.MinInt32 && n <= math.MaxInt32) != (b.Type == bsoncore.TypeInt32) {
				t.Fatalf("%s: %v (%s), want the integer %d", path, b, b.Type, n)
			}
			return
		}
		f, _ := strconv.ParseFloat(raw, 64)
		got, ok := b.DoubleOK()
		if !ok || got != f && !(math.IsNaN(got) && math.IsNaN(f)) {
			t.Fatalf("%s: %v, want the double %v", path, b, f)
		}
	case fastjson.TypeTrue, fastjson.TypeFalse:
		if v, ok := b.BooleanOK(); !ok || v != (j.Type() == fastjson.TypeTrue) {
			t.Fatalf("%s: %v, want %s", path, b, j.Type())
		}
	case fastjson.TypeNull:
		if b.Type != bsoncore.TypeNull {
			t.Fatalf("%s: %s, want null", path, b.Type)
		}
	}
}

// serve stores the receive time in every raw document under the name
// backfill reads.
func TestReceivedAtFieldMatchesBackfill(t *testing.T) {
	if ReceivedAtField != backfill.ReceivedAtField {
		t.Fatalf("ingest writes %q, backfill reads %q", ReceivedAtField, backfill.ReceivedAtField)
	}
}
