// Package whtest holds what the warehouse packages' tests share: a schema
// file with a column of every type, and its parser.
package whtest

import (
	"testing"

	"github.com/wharfdata/wharf/schema"
)

// Tables has a parent table with a column of every type, and a child table.
const Tables = `
tables:
  - name: ev
    events: [ev]
    columns:
      - {name: b,       path: b,       type: boolean}
      - {name: i16,     path: i16,     type: smallint}
      - {name: i32,     path: i32,     type: integer}
      - {name: i64,     path: i64,     type: bigint}
      - {name: f32,     path: f32,     type: real}
      - {name: f64,     path: f64,     type: double}
      - {name: d_small, path: d_small, type: "decimal(12,2)"}
      - {name: d_big,   path: d_big,   type: "decimal(38,4)"}
      - {name: s,       path: s,       type: varchar(16)}
      - {name: ts,      path: ts,      type: timestamp}
      - {name: day,     path: day,     type: date}
      - {name: j,       path: j,       type: json}
    children:
      - name: ev_tags
        path: tags
        columns:
          - {name: tag, path: ., type: varchar(8)}
`

// Schema parses a schema file, failing t on an error.
func Schema(t testing.TB, yaml string) *schema.Schema {
	t.Helper()
	s, err := schema.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
