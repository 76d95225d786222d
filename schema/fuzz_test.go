package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Fuzz targets (make fuzz runs each for a minute):
//
//	go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime 60s ./schema
//
// The seed corpus is every event of the golden flatten test; crashers that
// the fuzzer finds are kept under testdata/fuzz/<target>/ and run by plain
// go test from then on.

// addGoldenSeeds adds the bodies of testdata/flatten/events.jsonl, and each
// wrapped in an SNS notification, to the fuzz corpus.
func addGoldenSeeds(f *testing.F) {
	in, err := os.ReadFile("testdata/flatten/events.jsonl")
	if err != nil {
		f.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(in)), "\n") {
		_, body, _ := strings.Cut(line, "\t")
		body = strings.ReplaceAll(body, `\u0000RAW`, "\x00")
		body = strings.ReplaceAll(body, `\xffRAW`, "\xff")
		f.Add([]byte(body))
		msg, _ := json.Marshal(body)
		f.Add([]byte(`{"Type":"Notification","MessageId":"m","Message":` + string(msg) + `}`))
	}
}

var fuzzReceived = time.Date(2026, 11, 25, 12, 0, 0, 123456789, time.UTC)

// Decode never panics; it returns an event (with Body) for any input, and
// either an *InvalidError with a reason, or an event whose envelope obeys
// docs/design.md §3: a routed type, an id of at most 64 bytes of UTF-8, and a UTC
// time within years 1..9999 at microsecond precision. A reused Decoder
// agrees with a fresh one.
func FuzzDecode(f *testing.F) {
	addGoldenSeeds(f)
	s := testSchema(f)
	reused := NewDecoder(s, DefaultEnvelope())
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := reused.Decode(body, "sqs-msg-1", fuzzReceived)
		if ev == nil {
			t.Fatal("Decode returned no event")
		}
		fresh, ferr := NewDecoder(s, DefaultEnvelope()).Decode(body, "sqs-msg-1", fuzzReceived)
		if Reason(err) != Reason(ferr) || (err == nil) != (ferr == nil) {
			t.Fatalf("reused decoder: %v; fresh decoder: %v", err, ferr)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidEvent) || Reason(err) == "" {
				t.Fatalf("error %v (%T) is not an invalid-event error with a reason", err, err)
			}
			return
		}
		if fresh.Type != ev.Type || fresh.ID != ev.ID || !fresh.Time.Equal(ev.Time) {
			t.Fatalf("reused decoder %q %q %s; fresh %q %q %s", ev.Type, ev.ID, ev.Time, fresh.Type, fresh.ID, fresh.Time)
		}
		if ev.Type == "" || len(ev.Tables) == 0 || ev.Root().Kind() != NodeObject {
			t.Fatalf("decoded event without type %q, tables or root", ev.Type)
		}
		if ev.ID == "" || len(ev.ID) > EventIDLength || !utf8.ValidString(ev.ID) || strings.IndexByte(ev.ID, 0) >= 0 {
			t.Fatalf("bad event id %q", ev.ID)
		}
		checkTime(t, "event time", ev.Time)
		if !utf8.Valid(ev.Body) || !bytes.HasPrefix(bytes.TrimLeft(ev.Body, " \t\r\n"), []byte("{")) {
			t.Fatalf("the event body %q is not a UTF-8 JSON object", ev.Body)
		}
	})
}

func checkTime(t *testing.T, what string, tm time.Time) {
	t.Helper()
	if tm.Location() != time.UTC || tm.Before(minTime) || tm.After(maxTime) || !tm.Equal(tm.Truncate(time.Microsecond)) {
		t.Fatalf("%s %s is not a UTC time in years 1..9999 at microsecond precision", what, tm.Format(time.RFC3339Nano))
	}
}

// Flatten never panics, and every value it returns is one the warehouse
// takes for its column (docs/design.md §6: Parquet COPY has no MAXERROR): strings
// valid UTF-8 without NUL within their byte length, JSON that parses with
// every number fitting a double, integers within their type, finite floats,
// decimals within their precision, times within years 1..9999. A failure is
// an *InvalidError with a reason.
func FuzzFlatten(f *testing.F) {
	addGoldenSeeds(f)
	s := testSchema(f)
	d := NewDecoder(s, DefaultEnvelope())
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := d.Decode(body, "sqs-msg-1", fuzzReceived)
		if err != nil {
			return
		}
		rows, err := d.Flatten(ev, nil)
		if err != nil {
			if !errors.Is(err, ErrInvalidEvent) || Reason(err) == "" {
				t.Fatalf("error %v (%T) is not an invalid-event error with a reason", err, err)
			}
			if len(rows) != 0 {
				t.Fatalf("%d rows returned with an error", len(rows))
			}
			return
		}
		parents := 0
		for _, r := range rows {
			if len(r.Values) != len(r.Table.Columns) {
				t.Fatalf("table %s: %d values for %d columns", r.Table.Name, len(r.Values), len(r.Table.Columns))
			}
			if !r.Table.IsChild() {
				parents++
			}
			for i, c := range r.Table.Columns {
				checkValue(t, r.Table.Name+"."+c.Name, c, r.Values[i])
			}
			if id := r.Values[r.Table.Column(ColEventID)]; id.S != ev.ID {
				t.Fatalf("table %s: event_id %q, want %q", r.Table.Name, id.S, ev.ID)
			}
		}
		if parents != len(ev.Tables) {
			t.Fatalf("%d parent rows for %d tables", parents, len(ev.Tables))
		}
	})
}

func checkValue(t *testing.T, name string, c Column, v Value) {
	t.Helper()
	if v.Null {
		if c.Source != FromPath && c.Source != FromExtras {
			t.Fatalf("%s: implicit column is NULL", name)
		}
		return
	}
	checkText := func(s string) {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			t.Fatalf("%s: %q is not UTF-8 without NUL", name, s)
		}
	}
	switch c.Type.Kind {
	case Varchar:
		checkText(v.S)
		if len(v.S) > c.Type.Length {
			t.Fatalf("%s: %d bytes in a %s", name, len(v.S), c.Type)
		}
	case JSON:
		checkText(v.S)
		checkJSON(t, name, v.S)
	case Boolean:
		if v.I != 0 && v.I != 1 {
			t.Fatalf("%s: boolean %d", name, v.I)
		}
	case Smallint, Integer, Bigint:
		if lo, hi := intBounds(c.Type.Kind); v.I < lo || v.I > hi {
			t.Fatalf("%s: %d does not fit a %s", name, v.I, c.Type)
		}
	case Real, Double:
		if math.IsInf(v.Float(), 0) || math.IsNaN(v.Float()) || c.Type.Kind == Real && math.Abs(v.Float()) > math.MaxFloat32 {
			t.Fatalf("%s: %v in a %s", name, v.Float(), c.Type)
		}
	case Decimal:
		u := big.NewInt(v.I)
		if c.Type.Precision > 18 {
			var ok bool
			if u, ok = new(big.Int).SetString(v.S, 10); !ok {
				t.Fatalf("%s: decimal digits %q", name, v.S)
			}
		}
		if new(big.Int).Abs(u).Cmp(pow10[c.Type.Precision]) >= 0 {
			t.Fatalf("%s: unscaled %s does not fit a %s", name, u, c.Type)
		}
	case Timestamp:
		checkTime(t, name, TimeOf(v))
	case Date:
		checkTime(t, name, time.Unix(v.I*86400, 0).UTC())
	}
}

// checkJSON asserts s is JSON that PostgreSQL's jsonb and Redshift's SUPER
// take: valid, no \u0000, no lone surrogate, every number fitting a double.
func checkJSON(t *testing.T, name, s string) {
	t.Helper()
	if !json.Valid([]byte(s)) {
		t.Fatalf("%s: invalid JSON %q", name, s)
	}
	if strings.Contains(s, `\u0000`) || loneSurrogate([]byte(s)) {
		t.Fatalf("%s: JSON %q holds \\u0000 or a lone surrogate", name, s)
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case json.Number:
			if !jsonNumberOK([]byte(x)) {
				t.Fatalf("%s: number %s in JSON does not fit a double", name, x)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
}

// QuoteIdent output, read back by PostgreSQL's rules for delimited
// identifiers, is exactly the input and ends where the quoted identifier
// ends: no name can break out of its quotes. A name that ValidIdentifier
// accepts is quoted as is. The round trip through a real PostgreSQL is
// TestQuoteIdentPostgres in package warehouse.
func FuzzQuoteIdent(f *testing.F) {
	for _, s := range []string{"user_id", "_extras", `a"b`, `"`, `""`, `x"; DROP TABLE t; --`, "Wharf_Rank", "é", "a b", `\`, "U&\"x\"", "$1", strings.Repeat("a", 128), "a\x00b", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		q := QuoteIdent(name)
		got, rest, ok := readQuotedIdent(q + ` AS x; DROP TABLE y`)
		if !ok || got != name || rest != ` AS x; DROP TABLE y` {
			t.Fatalf("QuoteIdent(%.200q) = %s reads back as %q, rest %q, ok %v", name, q, got, rest, ok)
		}
		if strings.IndexByte(name, 0) < 0 && strings.IndexByte(q, 0) >= 0 {
			t.Fatalf("QuoteIdent(%.200q) = %q holds a NUL", name, q)
		}
		if why := ValidIdentifier(name); why == "" {
			if q != `"`+name+`"` || len(name) > MaxIdentifier || strings.ToLower(name) != name || strings.ContainsAny(name, "\"\x00 ") {
				t.Fatalf("valid identifier %q quoted as %s", name, q)
			}
		} else if name != "" && len(name) <= MaxIdentifier && identRE.MatchString(name) {
			t.Fatalf("ValidIdentifier(%.200q) = %q for a name of the allowed form", name, why)
		}
		sq := QualifiedName(name, name)
		a, rest, ok := readQuotedIdent(sq)
		if !ok || a != name || !strings.HasPrefix(rest, ".") {
			t.Fatalf("QualifiedName(%q, %q) = %s", name, name, sq)
		}
		if b, rest, ok := readQuotedIdent(rest[1:]); !ok || b != name || rest != "" {
			t.Fatalf("QualifiedName(%q, %q) = %s", name, name, sq)
		}
	})
}

// readQuotedIdent reads a PostgreSQL delimited identifier at the start of s:
// a double quote, then any characters, a doubled quote standing for one,
// up to the next single double quote. It returns the name and what follows.
func readQuotedIdent(s string) (name, rest string, ok bool) {
	if !strings.HasPrefix(s, `"`) {
		return "", s, false
	}
	var b bytes.Buffer
	for i := 1; i < len(s); i++ {
		if s[i] != '"' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '"' {
			b.WriteByte('"')
			i++
			continue
		}
		return b.String(), s[i+1:], true
	}
	return "", "", false
}

// FuzzDifferential holds the tape's path (one pass into the tape, Flatten
// into column buffers) to the reference decoder (reference_test.go:
// fastjson's validation and tree, then check, then rows one by one): the
// same verdict with the same error, the same envelope and the same rows,
// values and truncations alike.
//
//	go test -run '^$' -fuzz '^FuzzDifferential$' -fuzztime 60s ./schema
func FuzzDifferential(f *testing.F) {
	addGoldenSeeds(f)
	for _, c := range tapeCases {
		f.Add([]byte(c.body))
	}
	ref, err := os.ReadFile("../bench/testdata/event.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bytes.TrimSpace(ref))
	s := testSchema(f)
	fast, slow := NewDecoder(s, DefaultEnvelope()), newRefDecoder(s, DefaultEnvelope())
	var rows Rows
	f.Fuzz(func(t *testing.T, body []byte) {
		differential(t, fast, slow, &rows, body)
	})
}

func differential(t *testing.T, fast *Decoder, slow *refDecoder, rows *Rows, body []byte) {
	t.Helper()
	ev, err := fast.Decode(body, "sqs-msg-1", fuzzReceived)
	want, werr := slow.Decode(body, "sqs-msg-1", fuzzReceived)
	if fmt.Sprint(err) != fmt.Sprint(werr) {
		t.Fatalf("Decode(%.200q):\n  tape      %v\n  reference %v", body, err, werr)
	}
	if ev.ID != want.ID || ev.Type != want.Type || !ev.Time.Equal(want.Time) || !bytes.Equal(ev.Body, want.Body) || len(ev.Tables) != len(want.Tables) {
		t.Fatalf("Decode(%.200q): tape %q %q %s %q; reference %q %q %s %q", body, ev.Type, ev.ID, ev.Time, ev.Body, want.Type, want.ID, want.Time, want.Body)
	}
	if err != nil {
		return
	}
	rows.Reset()
	err = fast.FlattenInto(ev, rows)
	wrows, werr := slow.Flatten(want, nil)
	if fmt.Sprint(err) != fmt.Sprint(werr) {
		t.Fatalf("Flatten(%.200q):\n  tape      %v\n  reference %v", body, err, werr)
	}
	got := rows.Slice(nil)
	if err != nil {
		if len(got) != 0 {
			t.Fatalf("Flatten(%.200q): %d rows left with the error", body, len(got))
		}
		return
	}
	if len(got) != len(wrows) {
		t.Fatalf("Flatten(%.200q): %d rows, reference %d", body, len(got), len(wrows))
	}
	for i := range got {
		if got[i].Table != wrows[i].Table || !slices.Equal(got[i].Values, wrows[i].Values) {
			t.Fatalf("Flatten(%.200q) row %d:\n  tape      %s %v\n  reference %s %v", body, i, got[i].Table.Name, got[i].Values, wrows[i].Table.Name, wrows[i].Values)
		}
	}
	if rows.Truncated() != slow.total {
		t.Fatalf("Flatten(%.200q): %d truncations, reference %d", body, rows.Truncated(), slow.total)
	}
	// The rows come back the same through AppendRow.
	again := RowsOf(got...).Slice(nil)
	for i := range got {
		if !slices.Equal(got[i].Values, again[i].Values) {
			t.Fatalf("row %d through AppendRow: %v, was %v", i, again[i].Values, got[i].Values)
		}
	}
}

// TestDifferential runs the differential check on the fuzz seeds.
func TestDifferential(t *testing.T) {
	in, err := os.ReadFile("testdata/flatten/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	s := testSchema(t)
	fast, slow := NewDecoder(s, DefaultEnvelope()), newRefDecoder(s, DefaultEnvelope())
	var rows Rows
	for _, line := range strings.Split(strings.TrimSpace(string(in)), "\n") {
		_, body, _ := strings.Cut(line, "\t")
		body = strings.ReplaceAll(body, `\u0000RAW`, "\x00")
		body = strings.ReplaceAll(body, `\xffRAW`, "\xff")
		differential(t, fast, slow, &rows, []byte(body))
		msg, _ := json.Marshal(body)
		differential(t, fast, slow, &rows, []byte(`{"Type":"Notification","MessageId":"m","Message":`+string(msg)+`}`))
	}
	for _, c := range tapeCases {
		differential(t, fast, slow, &rows, []byte(c.body))
	}
}
