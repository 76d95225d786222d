package schema

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var docs []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
	return docs
}

// TestInferGolden infers a schema file from documents as Mongo's relaxed
// extended JSON shows them: nested paths, types by vote, varchar with
// headroom, a short array as expand, a long one and an array of objects as
// child tables, rare and undecidable fields reported; the file parses.
func TestInferGolden(t *testing.T) {
	docs := readDocs(t, "testdata/infer/docs.jsonl")
	inf, err := Infer(docs, InferOptions{Collection: "actions_taken", Envelope: DefaultEnvelope(), Sampled: "test", MaxExpand: 4})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	out.Write(inf.YAML)
	out.WriteString("# rare:\n")
	for _, r := range inf.Rare {
		out.WriteString("#   " + r.Path + ": " + r.Reason + "\n")
	}
	out.WriteString("# conflicts:\n")
	for _, r := range inf.Conflicts {
		out.WriteString("#   " + r.Path + ": " + r.Reason + "\n")
	}
	golden := filepath.Join("testdata", "infer", "golden.yaml")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, out.Bytes()) {
		t.Errorf("inferred schema differs from %s (go test ./schema -update):\n%s", golden, out.String())
	}
	s, err := Parse(inf.YAML)
	if err != nil {
		t.Fatal(err)
	}
	// Every sampled document flattens under the inferred schema.
	d := NewDecoder(s, DefaultEnvelope())
	for i, doc := range docs {
		body, _ := json.Marshal(doc)
		ev, err := d.Decode(body, "m", time.Now())
		if err == nil {
			_, err = d.Flatten(ev, nil)
		}
		if err != nil {
			t.Errorf("document %d does not flatten under the inferred schema: %v", i, err)
		}
	}
	for _, want := range []string{"rare", "odd.key", "nothing"} {
		found := false
		for _, r := range inf.Rare {
			found = found || r.Path == want
		}
		if !found && !strings.Contains(out.String(), want) {
			t.Errorf("%s not reported as rare", want)
		}
	}
}

// TestInferVotes: Mongo's extended JSON types, and the vote when values
// disagree.
func TestInferVotes(t *testing.T) {
	var docs []map[string]any
	for i := range 10 {
		doc := `{"amount":{"$numberDecimal":"1234.5"},"n":` + []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", `"ten"`}[i] +
			`,"big":12345678901,"at":{"$date":{"$numberLong":"1732531200000"}},"f":` + []string{"1", "2.5"}[i%2] +
			`,"mixed":` + []string{`{"a":1}`, `"s"`}[i%2] + `,"long":"` + strings.Repeat("y", 100*i) + `"}`
		dec := json.NewDecoder(strings.NewReader(doc))
		dec.UseNumber()
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
	inf, err := Infer(docs, InferOptions{Collection: "votes", Envelope: DefaultEnvelope()})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{name: amount, path: "amount", type: "decimal(10,2)"}`,
		`{name: n, path: "n", type: "integer"}`,
		`{name: big, path: "big", type: "bigint"}`,
		`{name: at, path: "at", type: "timestamp"}`,
		`{name: f, path: "f", type: "double"}`,
		`{name: mixed, path: "mixed", type: "json"}`,
		`{name: long, path: "long", type: "varchar(2048)"}`,
	} {
		if !strings.Contains(string(inf.YAML), want) {
			t.Errorf("inferred file lacks %s:\n%s", want, inf.YAML)
		}
	}
	var conflicts []string
	for _, c := range inf.Conflicts {
		conflicts = append(conflicts, c.Path+": "+c.Reason)
	}
	if got := strings.Join(conflicts, "\n"); !strings.Contains(got, "n: 1 of 10 values are not numbers") || !strings.Contains(got, "mixed: objects or arrays mixed with scalars") {
		t.Errorf("conflicts:\n%s", got)
	}
}

// The table's events are the types the sampled documents carry at the
// envelope's type path, not the collection's name; the collection's name
// is added (as collection_event) only for documents that carry none. Every
// typed document then routes to the table.
func TestInferEventTypes(t *testing.T) {
	env := Envelope{TypePath: "_meta.type", IDPath: "id", TimePath: "timestamp"}
	doc := func(typ string) map[string]any {
		d := map[string]any{"id": "x", "user_id": json.Number("1")}
		if typ != "" {
			d["_meta"] = map[string]any{"type": typ}
		}
		return d
	}
	for _, tc := range []struct {
		name       string
		types      []string // of the documents, "" for none
		event      string   // --event
		wantEvents string
		wantCollEv bool
	}{
		{"one type", []string{"push", "push", "push"}, "", `events: ["push"]`, false},
		{"two types, most frequent first", []string{"push_opened", "push", "push"}, "", `events: ["push", "push_opened"]`, false},
		{"some untyped", []string{"push", "", "push"}, "", `events: ["push", "notifications"]`, true},
		{"none typed", []string{"", ""}, "", `events: ["notifications"]`, false},
		{"named event", []string{"push", "push"}, "alert", `events: ["alert"]`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var docs []map[string]any
			for _, typ := range tc.types {
				docs = append(docs, doc(typ))
			}
			inf, err := Infer(docs, InferOptions{Collection: "notifications", Event: tc.event, Envelope: env})
			if err != nil {
				t.Fatal(err)
			}
			y := string(inf.YAML)
			if !strings.Contains(y, tc.wantEvents+"\n") || strings.Contains(y, `collection_event: "notifications"`) != tc.wantCollEv {
				t.Fatalf("want %s (collection_event: %v):\n%s", tc.wantEvents, tc.wantCollEv, y)
			}
			s, err := Parse(inf.YAML)
			if err != nil {
				t.Fatal(err)
			}
			if tc.event != "" {
				return
			}
			d := NewDecoder(s, env)
			for i, dd := range docs {
				if tc.types[i] == "" {
					continue
				}
				body, _ := json.Marshal(dd)
				if _, err := d.Decode(body, "m", time.Now()); err != nil {
					t.Errorf("document %d (%s) does not route: %v", i, tc.types[i], err)
				}
			}
		})
	}
}
