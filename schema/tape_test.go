package schema

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fastjson"
)

// slowAccepts is the slow path's verdict on body: valid UTF-8 and JSON, no
// lone surrogate, and check's shape rules.
func slowAccepts(d *Decoder, body []byte) bool {
	var p fastjson.Parser
	v, err := parseSlow(&p, body)
	return err == nil && d.check(v, 0) == nil
}

// The tape accepts exactly what the slow path accepts (the slow path then
// only names the reason of a message the tape refused), and what it holds
// is what fastjson parses: the same values, in the same order.
func FuzzTape(f *testing.F) {
	addGoldenSeeds(f)
	for _, c := range tapeCases {
		f.Add([]byte(c.body))
	}
	d := NewDecoder(testSchema(f), DefaultEnvelope())
	var tp tape
	f.Fuzz(func(t *testing.T, body []byte) {
		ok, slow := tp.parse(body), slowAccepts(d, body)
		if ok != slow {
			t.Fatalf("the tape says %v, the slow path %v, for %q", ok, slow, body)
		}
		if ok {
			var p fastjson.Parser
			v, err := p.ParseBytes(body)
			if err != nil {
				t.Fatal(err)
			}
			sameTree(t, &tp, 0, v)
		}
	})
}

// sameTree checks that the value at i on the tape is fastjson's v.
func sameTree(t *testing.T, tp *tape, i uint32, v *fastjson.Value) {
	t.Helper()
	k := tp.toks[i].kind
	if k.String() != v.Type().String() {
		t.Fatalf("token %d is a %s, fastjson has a %s", i, k, v.Type())
	}
	switch v.Type() {
	case fastjson.TypeObject:
		o := v.GetObject()
		if int(tp.toks[i].n) != o.Len() {
			t.Fatalf("object of %d members, fastjson has %d", tp.toks[i].n, o.Len())
		}
		m := i + 1
		o.Visit(func(key []byte, c *fastjson.Value) {
			if got := tp.text(m); string(got) != string(key) {
				t.Fatalf("key %q, fastjson has %q", got, key)
			}
			sameTree(t, tp, m+1, c)
			m = tp.next(m + 1)
		})
		if m != tp.toks[i].end {
			t.Fatalf("object ends at %d, its members at %d", tp.toks[i].end, m)
		}
	case fastjson.TypeArray:
		a := v.GetArray()
		if int(tp.toks[i].n) != len(a) {
			t.Fatalf("array of %d elements, fastjson has %d", tp.toks[i].n, len(a))
		}
		e := i + 1
		for _, c := range a {
			sameTree(t, tp, e, c)
			e = tp.next(e)
		}
		if e != tp.toks[i].end {
			t.Fatalf("array ends at %d, its elements at %d", tp.toks[i].end, e)
		}
	case fastjson.TypeString:
		if got := tp.text(i); string(got) != string(v.GetStringBytes()) {
			t.Fatalf("string %q, fastjson has %q", got, v.GetStringBytes())
		}
	case fastjson.TypeNumber:
		if got := tp.text(i); string(got) != string(v.MarshalTo(nil)) {
			t.Fatalf("number %s, fastjson has %s", got, v.MarshalTo(nil))
		}
	}
}

var tapeCases = []struct {
	body string
	ok   bool // the tape takes it
}{
	{`{"event":"page_view","id":"a","n":-0.5e+10,"ok":true,"no":false,"x":null,"a":[1,[2,{}],[]],"s":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00 é"}`, true},
	{" \t\r\n{ \"a\" : [ 1 , 2 ] } \n", true},
	{`{"a":1,"A":2}`, false},                // keys collide once lower-cased
	{`{"a":{"b":1},"c":{"b":2}}`, true},     // the same key in sibling objects
	{`{"\u0061":1}`, true},                  // a key with an escape
	{`{"\u0061":1,"A":2}`, false},           // which collides
	{`{"\u212a":1,"k":2}`, true},            // the Kelvin sign: EqualFold, but another length
	{manyKeys(100, ""), true},               // more keys than the quick check takes
	{manyKeys(100, `,"K0":1`), false},       // and a collision among them
	{manyKeys(100, `,"\u212a99":1`), false}, // lower-cased, "\u212a" is "k"
	{`{"a":"\u0000"}`, false},               // NUL
	{`{"a":"\ud800"}`, false},               // lone high surrogate
	{`{"a":"\udc00"}`, false},               // lone low surrogate
	{`{"a":"\ud800\u0041"}`, false},         // high surrogate without its low half
	{"{\"a\":\"\x01\"}", false},             // a raw control character
	{"{\"a\":\"\xff\"}", false},             // invalid UTF-8
	{"{\"a\":\"\xed\xa0\x80\"}", false},
	{`{"a":01}`, false},
	{`{"a":1.}`, false},
	{`{"a":.5}`, false},
	{`{"a":1e}`, false},
	{`{"a":-}`, false},
	{`{"a":+1}`, false},
	{`{"a":tru}`, false},
	{`{"a":1,}`, false},
	{`[1,]`, false},
	{`{"a":1}x`, false},
	{`{"a" 1}`, false},
	{`{"a":"\x"}`, false},
	{`{"a":"\u12"}`, false},
	{`{"a":"abc`, false},
	{``, false},
	{`   `, false},
	{strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth), true}, // MaxDepth levels are allowed
	{strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), false},
	{`{"a":[` + strings.Repeat("1,", MaxArrayLength) + `1]}`, false},
}

func manyKeys(n int, more string) string {
	var b strings.Builder
	b.WriteString(`{"event":"page_view"`)
	for i := range n {
		fmt.Fprintf(&b, `,"k%d":%d`, i, i)
	}
	return b.String() + more + "}"
}

func TestTape(t *testing.T) {
	d := NewDecoder(testSchema(t), DefaultEnvelope())
	var tp tape
	for _, c := range tapeCases {
		if got := tp.parse([]byte(c.body)); got != c.ok {
			t.Errorf("parse(%.60q) = %v, want %v", c.body, got, c.ok)
		}
		if slow := slowAccepts(d, []byte(c.body)); slow != c.ok {
			t.Errorf("the slow path says %v for %.60q", slow, c.body)
		}
	}
}

// Every event of the golden test and the benchmark's reference event gets
// the same verdict from the tape and the slow path.
func TestTapeTakesValidEvents(t *testing.T) {
	d := NewDecoder(testSchema(t), DefaultEnvelope())
	in, err := os.ReadFile("testdata/flatten/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := os.ReadFile("../bench/testdata/event.json")
	if err != nil {
		t.Fatal(err)
	}
	bodies := []string{strings.TrimSpace(string(ref))}
	for _, line := range strings.Split(strings.TrimSpace(string(in)), "\n") {
		_, body, _ := strings.Cut(line, "\t")
		bodies = append(bodies, body)
	}
	var tp tape
	valid := 0
	for _, body := range bodies {
		ok := tp.parse([]byte(body))
		if ok != slowAccepts(d, []byte(body)) {
			t.Errorf("the tape says %v, the slow path does not: %.80s", ok, body)
		}
		if ok {
			valid++
		}
	}
	if valid < 10 {
		t.Fatalf("only %d of %d events are valid", valid, len(bodies))
	}
}

// BenchmarkTape parses the benchmark's reference event into the tape.
func BenchmarkTape(b *testing.B) {
	body, err := os.ReadFile("../bench/testdata/event.json")
	if err != nil {
		b.Fatal(err)
	}
	body = []byte(strings.TrimSpace(string(body)))
	var tp tape
	b.SetBytes(int64(len(body)))
	cpu0 := cpuTime()
	for b.Loop() {
		if !tp.parse(body) {
			b.Fatal("refused")
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// parseRFC3339UTC takes only what time.Parse(time.RFC3339Nano, …) takes,
// as the same instant.
func FuzzRFC3339(f *testing.F) {
	for _, s := range []string{"2026-03-14T09:26:53.589Z", "2024-02-29T23:59:59.999999999+14:00", "0001-01-01T00:00:00-23:59",
		"2023-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-03-14T09:26:53.1234567891Z", "2026-03-14T09:26:53.Z", "2026-03-14 09:26:53Z",
		"2026-03-14T24:00:00Z", "2026-03-14T09:26:60Z", "+026-03-14T09:26:53Z", "2026-03-14T09:26:53+0100", "2026-03-14t09:26:53z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseRFC3339UTC([]byte(s))
		if !ok {
			return
		}
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Fatalf("parseRFC3339UTC(%q) = %v; time.Parse: %v, %v", s, got, want, err)
		}
	})
}

// parseRFC3339UTC agrees with time.Parse across years, month ends, leap days
// and zone offsets.
func TestRFC3339Dates(t *testing.T) {
	for _, y := range []int{0, 1, 4, 99, 100, 399, 400, 1600, 1899, 1900, 1969, 1970, 1999, 2000, 2024, 2100, 2400, 9999} {
		for m := 1; m <= 12; m++ {
			for _, d := range []int{1, 28, 29, 30, 31} {
				for _, tail := range []string{"Z", ".5Z", ".123456789Z", "+23:59", "-00:30", ".000001-12:00"} {
					s := fmt.Sprintf("%04d-%02d-%02dT23:59:59%s", y, m, d, tail)
					want, err := time.Parse(time.RFC3339Nano, s)
					got, ok := parseRFC3339UTC([]byte(s))
					if ok != (err == nil) || ok && !got.Equal(want) {
						t.Fatalf("%s: %v %v; time.Parse %v %v", s, got, ok, want, err)
					}
				}
			}
		}
	}
}

// parseInt agrees with strconv.ParseInt on integers, and refuses others.
func TestParseInt(t *testing.T) {
	for _, s := range []string{"0", "-0", "7", "-7", "42", "-42", "123", "99999999", "-100000000", "123456789012345678", "-123456789012345678",
		"9223372036854775807", "-9223372036854775808", "9223372036854775808", "1.5", "1e3", "-", "", "12a", "1234567890123456789012"} {
		n, ok := parseInt([]byte(s))
		want, err := strconv.ParseInt(s, 10, 64)
		if ok != (err == nil) || ok && n != want {
			t.Errorf("parseInt(%q) = %d, %v; strconv %d, %v", s, n, ok, want, err)
		}
	}
}
