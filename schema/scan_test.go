package schema

import (
	"os"
	"strings"
	"testing"

	"github.com/valyala/fastjson"
)

// slowAccepts is the slow path's verdict on body: valid UTF-8 and JSON, no
// lone surrogate, and check's shape rules.
func slowAccepts(d *Decoder, body []byte) bool {
	var p fastjson.Parser
	v, err := parseSlow(&p, body)
	return err == nil && d.check(v, 0) == nil
}

// The fast path never accepts what the slow path rejects: quickCheck only
// skips work, it never changes a verdict. (It may turn down an unusual but
// valid event, which the slow path then accepts.)
func FuzzQuickCheck(f *testing.F) {
	addGoldenSeeds(f)
	for _, c := range quickCases {
		f.Add([]byte(c.body))
	}
	d := NewDecoder(testSchema(f), DefaultEnvelope())
	f.Fuzz(func(t *testing.T, body []byte) {
		if d.quickCheck(body) && !slowAccepts(d, body) {
			t.Fatalf("quickCheck accepts %q, which the slow path rejects", body)
		}
	})
}

var quickCases = []struct {
	body  string
	quick bool // quickCheck accepts it
}{
	{`{"event":"page_view","id":"a","n":-0.5e+10,"ok":true,"no":false,"x":null,"a":[1,[2,{}],[]],"s":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00 é"}`, true},
	{" \t\r\n{ \"a\" : [ 1 , 2 ] } \n", true},
	{`{"a":1,"A":2}`, false},            // keys collide once lower-cased
	{`{"a":{"b":1},"c":{"b":2}}`, true}, // the same key in sibling objects
	{`{"\u0061":1}`, false},             // a key with an escape: the slow path decides
	{`{"a":"\u0000"}`, false},           // NUL
	{`{"a":"\ud800"}`, false},           // lone high surrogate
	{`{"a":"\udc00"}`, false},           // lone low surrogate
	{`{"a":"\ud800\u0041"}`, false},     // high surrogate without its low half
	{"{\"a\":\"\x01\"}", false},         // a raw control character
	{"{\"a\":\"\xff\"}", false},         // invalid UTF-8
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

func TestQuickCheck(t *testing.T) {
	d := NewDecoder(testSchema(t), DefaultEnvelope())
	for _, c := range quickCases {
		if got := d.quickCheck([]byte(c.body)); got != c.quick {
			t.Errorf("quickCheck(%.60q) = %v, want %v", c.body, got, c.quick)
		}
		if c.quick && !slowAccepts(d, []byte(c.body)) {
			t.Errorf("the slow path rejects %.60q", c.body)
		}
	}
}

// Every valid event of the golden test and the benchmark's reference event
// take the fast path.
func TestQuickCheckTakesValidEvents(t *testing.T) {
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
	fast := 0
	for _, body := range bodies {
		if !slowAccepts(d, []byte(body)) {
			continue
		}
		if d.quickCheck([]byte(body)) {
			fast++
		} else if !strings.Contains(body, `\u`) {
			t.Errorf("a valid event without escapes takes the slow path: %.80s", body)
		}
	}
	if fast < 10 {
		t.Fatalf("only %d of %d events took the fast path", fast, len(bodies))
	}
}
