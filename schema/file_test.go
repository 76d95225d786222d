package schema

import (
	"strings"
	"testing"
)

// ParseTable reads the file as Parse does and keeps one parent table and
// its children, renamed; a file Parse refuses is refused, and so is a name
// that is no parent table.
func TestParseTable(t *testing.T) {
	file := `tables:
  - name: orders
    events: [order]
    time: placed_at
    columns:
      - {name: total, path: total, type: "decimal(12,2)"}
    children:
      - name: order_items
        path: items
        columns: [{name: sku, path: sku, type: varchar(32)}]
  - name: clicks
    events: [click]
    columns: [{name: url, path: url, type: varchar(200)}]
`
	s, err := ParseTable([]byte(file), "orders", "__rebuild")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tb := range s.All() {
		names = append(names, tb.Name)
	}
	if strings.Join(names, ",") != "orders__rebuild,order_items__rebuild" {
		t.Fatalf("tables %v", names)
	}
	o := s.Table("orders__rebuild")
	if o.Time != "placed_at" || o.Column("total") < 0 || o.Children[0].Parent != o || len(s.Route("order")) != 1 {
		t.Errorf("the rules did not carry over: %+v", o)
	}
	if _, err := ParseTable([]byte(file), "order_items", "__rebuild"); err == nil || !strings.Contains(err.Error(), "no parent table") {
		t.Errorf("a child table: %v", err)
	}
	bad := strings.Replace(file, "type: varchar(200)", "type: nonsense", 1)
	if _, err := ParseTable([]byte(bad), "orders", "__rebuild"); err == nil {
		t.Error("a file with a bad table elsewhere parsed")
	}
	long := strings.Repeat("x", MaxIdentifier-3)
	if _, err := ParseTable([]byte(strings.Replace(file, "name: clicks", "name: "+long, 1)), long, "__rebuild"); err == nil {
		t.Error("a renamed table longer than an identifier parsed")
	}
}
