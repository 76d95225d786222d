package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func testSchema(t testing.TB) *Schema {
	t.Helper()
	b, err := os.ReadFile("testdata/tables.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var received = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// TestFlattenGolden runs each event of testdata/flatten/events.jsonl
// ("name<TAB>json" per line) through Decode and Flatten and compares the rows,
// or the dead-letter reason, with testdata/flatten/golden.txt.
func TestFlattenGolden(t *testing.T) {
	s := testSchema(t)
	d := NewDecoder(s, DefaultEnvelope())
	in, err := os.ReadFile("testdata/flatten/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	truncated := 0
	for _, line := range strings.Split(strings.TrimSpace(string(in)), "\n") {
		name, body, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("bad line %q", line)
		}
		body = strings.ReplaceAll(body, `\u0000RAW`, "\x00")
		body = strings.ReplaceAll(body, `\xffRAW`, "\xff")
		fmt.Fprintf(&out, "== %s\n", name)
		ev, err := d.Decode([]byte(body), "sqs-msg-1", received)
		var rows []Row
		if err == nil {
			var rs Rows
			if err = d.FlattenInto(ev, &rs); err == nil {
				rows = rs.Slice(nil)
				truncated += int(rs.Truncated())
			}
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("%s: error %v is not ErrInvalidEvent", name, err)
			}
			fmt.Fprintf(&out, "dead-letter: %v\n", err)
			continue
		}
		for _, r := range rows {
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			out.Write(b)
			out.WriteByte('\n')
		}
	}
	fmt.Fprintf(&out, "== truncated: %d\n", truncated)
	golden := "testdata/flatten/golden.txt"
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
		t.Errorf("flatten output differs from %s (run go test ./schema -update and review the diff):\n%s", golden, out.String())
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"upper-case table", "tables:\n- name: Bad\n  events: [x]\n  columns: []\n", "line 2: table: name \"Bad\" is not a lower-case identifier"},
		{"bad column name", "tables:\n- name: t\n  events: [x]\n  columns:\n  - {name: a-b, path: a, type: integer}\n", "line 5: column: name \"a-b\""},
		{"unknown type", "tables:\n- name: t\n  events: [x]\n  columns:\n  - {name: a, path: a, type: int128}\n", "line 5: column \"a\": unknown type"},
		{"varchar too long", "tables:\n- name: t\n  events: [x]\n  columns:\n  - {name: a, path: a, type: varchar(70000)}\n", "varchar length must be 1..65535"},
		{"duplicate column", "tables:\n- name: t\n  events: [x]\n  columns:\n  - {name: a, path: a, type: integer}\n  - {name: a, path: b, type: integer}\n", "line 6: table \"t\": column \"a\" is declared twice (first on line 5)"},
		{"implicit clash", "tables:\n- name: t\n  events: [x]\n  columns:\n  - {name: event_id, path: a, type: integer}\n", "clashes with the implicit column"},
		{"no events", "tables:\n- name: t\n  columns:\n  - {name: a, path: a, type: integer}\n", "`events` must list"},
		{"unknown field", "tables:\n- name: t\n  events: [x]\n  colums: []\n", "line 4: unknown table field \"colums\""},
		{"unquoted decimal", "tables:\n- name: t\n  events: [x]\n  columns:\n  - {name: a, path: a, type: decimal(10,2)}\n", "must be quoted"},
		{"dot path in parent", "tables:\n- name: t\n  events: [x]\n  columns:\n  - {name: a, path: ., type: integer}\n", "only for child tables"},
		{"empty segment", "tables:\n- name: t\n  events: [x]\n  columns:\n  - {name: a, path: a..b, type: integer}\n", "empty segment"},
		{"collection conflict", "tables:\n- name: t\n  events: [x]\n  collection: a\n  columns: []\n- name: u\n  events: [x]\n  collection: b\n  columns: []\n", "line 6: tables \"t\" and \"u\" both take event \"x\""},
		{"grandchild", "tables:\n- name: t\n  events: [x]\n  children:\n  - name: c\n    path: a\n    columns: [{name: v, path: ., type: integer}]\n    children:\n    - name: g\n      path: b\n", "cannot have children"},
		{"reserved", "tables:\n- name: wharf_loads\n  events: [x]\n", "reserved"},
		{"reserved _deadletter", "tables:\n- name: t\n  events: [x]\n- name: _deadletter\n  events: [y]\n", "line 4: table \"_deadletter\": the name is reserved"},
		{"reserved _manifests", "tables:\n- name: _manifests\n  events: [x]\n", "line 2: table \"_manifests\": the name is reserved"},
		{"reserved _backfill", "tables:\n- name: _backfill\n  events: [x]\n", "line 2: table \"_backfill\": the name is reserved"},
		{"reserved child", "tables:\n- name: t\n  events: [x]\n  children:\n  - name: _deadletter\n    path: a\n    columns: [{name: v, path: ., type: integer}]\n", "line 5: table \"_deadletter\": the name is reserved"},
		{"bad sort key", "tables:\n- name: t\n  events: [x]\n  sort_key: [nope]\n", "sort_key names \"nope\""},
		{"json sort key", "tables:\n- name: t\n  events: [x]\n  sort_key: [j]\n  columns: [{name: j, path: j, type: json}]\n", "a json column (SUPER on Redshift cannot be a sort key)"},
		{"json dist key", "tables:\n- name: t\n  events: [x]\n  dist_key: j\n  columns: [{name: j, path: j, type: json}]\n", "a json column (SUPER on Redshift cannot be a distribution key)"},
		{"too long", "tables:\n- name: " + strings.Repeat("a", 128) + "\n  events: [x]\n", "longer than 127 bytes"},
		{"yaml syntax", "tables:\n- name: t\n  events: [x\n", "line"},
		{"empty", "", "empty"},
		{"collection_event not an event", "tables:\n- name: t\n  events: [x, y]\n  collection: c\n  collection_event: z\n", "line 5: table \"t\": collection_event \"z\" is not one of its events (x, y)"},
		{"collection_event in child", "tables:\n- name: t\n  events: [x]\n  children:\n  - name: c\n    path: a\n    collection_event: x\n    columns: [{name: v, path: ., type: integer}]\n", "collection_event"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// A document without an event type takes its table's type: the table's one
// event type, else its collection_event; neither: none.
func TestFallbackEvent(t *testing.T) {
	s, err := Parse([]byte("tables:\n- name: one\n  events: [a]\n  children:\n  - {name: kids, path: k, columns: [{name: v, path: ., type: integer}]}\n" +
		"- name: two\n  events: [b, c]\n  collection: bc\n  collection_event: c\n- name: open\n  events: [d, e]\n  collection: de\n"))
	if err != nil {
		t.Fatal(err)
	}
	for table, want := range map[string]string{"one": "a", "kids": "a", "two": "c", "open": ""} {
		if got := s.Table(table).FallbackEvent(); got != want {
			t.Errorf("%s: fallback event %q, want %q", table, got, want)
		}
	}
}

func TestParseTypes(t *testing.T) {
	for _, s := range []string{"boolean", "smallint", "integer", "bigint", "real", "double", "decimal(38,10)", "decimal(5,0)", "varchar(1)", "varchar(65535)", "timestamp", "date", "json"} {
		typ, err := ParseType(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if typ.String() != s {
			t.Errorf("ParseType(%q).String() = %q", s, typ.String())
		}
	}
}

func TestTruncateUTF8(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{{"héllo", 2, "h"}, {"héllo", 3, "hé"}, {"日本", 4, "日"}, {"abc", 5, "abc"}, {"😀x", 3, ""}} {
		if got := truncateUTF8(c.in, c.n); got != c.want {
			t.Errorf("truncateUTF8(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

// An SNS-wrapped event without an id of its own takes the notification's
// MessageId, which stays the same when SNS delivers it again (to a new SQS
// message, with a new message id); its own id still wins, and a message
// that is not SNS keeps the fallback (the SQS message id).
func TestSNSEventID(t *testing.T) {
	d := NewDecoder(testSchema(t), DefaultEnvelope())
	for _, tc := range []struct{ name, body, want string }{
		{"sns, no id", `{"Type":"Notification","MessageId":"sns-1","Message":"{\"event\":\"page_view\"}"}`, "sns-1"},
		{"sns, own id", `{"Type":"Notification","MessageId":"sns-1","Message":"{\"event\":\"page_view\",\"id\":\"own\"}"}`, "own"},
		{"sns, empty MessageId", `{"Type":"Notification","MessageId":"","Message":"{\"event\":\"page_view\"}"}`, "sqs-msg-1"},
		{"sns, no MessageId", `{"Type":"Notification","Message":"{\"event\":\"page_view\"}"}`, "sqs-msg-1"},
		{"not sns", `{"event":"page_view","MessageId":"not-sns"}`, "sqs-msg-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, sqsID := range []string{"sqs-msg-1", "sqs-msg-2"} {
				ev, err := d.Decode([]byte(tc.body), sqsID, received)
				if err != nil {
					t.Fatal(err)
				}
				want := tc.want
				if want == "sqs-msg-1" {
					want = sqsID
				}
				if ev.ID != want {
					t.Errorf("delivered as %s: id %q, want %q", sqsID, ev.ID, want)
				}
			}
		})
	}
}
