package pq

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/wharfdata/wharf/schema"
)

func loadSchema(t testing.TB) *schema.Schema {
	t.Helper()
	b, err := os.ReadFile("../../schema/testdata/tables.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := schema.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	s := loadSchema(t)
	d := schema.NewDecoder(s, schema.DefaultEnvelope())
	events := []string{
		`{"event":"actions_taken","id":"e1","date":"2024-03-01T10:00:00.123456Z","user_id":9007199254740993,"action":"click","meta":{"ua":"Mozilla/5.0 ✓"},"value":[1,-2],"price":"19.99","big":"-12345678901234567890.1234","ok":true,"ratio":0.5,"score":1e300,"small":-32768,"born":"1990-05-17","seen":1700000000123,"payload":{"a":[1,2,{"b":null}]},"tags":["x","y"],"items":[{"sku":"A","qty":2}],"other":"kept"}`,
		`{"event":"actions_taken","id":"e2","date":0}`,
	}
	// Enough rows for several of Encode's chunks and pages, full and sparse
	// rows interleaved, so nulls and values mix within a chunk.
	var rows []schema.Row
	for i := range 1500 {
		e := strings.Replace(events[i%2], `"id":"e`, fmt.Sprintf(`"id":"r%d-e`, i), 1)
		ev, err := d.Decode([]byte(e), "m", time.Unix(1, 0))
		if err != nil {
			t.Fatal(err)
		}
		rows, err = d.Flatten(ev, rows)
		if err != nil {
			t.Fatal(err)
		}
	}
	byTable := map[*schema.Table][]schema.Row{}
	for _, r := range rows {
		byTable[r.Table] = append(byTable[r.Table], r)
	}
	if len(byTable) != 3 {
		t.Fatalf("want rows for 3 tables, got %d", len(byTable))
	}
	for tbl, want := range byTable {
		// A reused Writer: the second file holds only its own rows.
		w := NewWriter(tbl)
		var buf bytes.Buffer
		if err := w.Encode(&buf, want[:len(want)/3]); err != nil {
			t.Fatal(err)
		}
		buf.Reset()
		if err := w.Encode(&buf, want); err != nil {
			t.Fatal(err)
		}
		r, err := Open(buf.Bytes(), tbl)
		if err != nil {
			t.Fatal(err)
		}
		if r.NumRows() != int64(len(want)) {
			t.Fatalf("%s: NumRows %d, want %d", tbl.Name, r.NumRows(), len(want))
		}
		got := make([]schema.Value, len(tbl.Columns))
		for i := range want {
			if err := r.Read(got); err != nil {
				t.Fatalf("%s row %d: %v", tbl.Name, i, err)
			}
			for c := range got {
				if got[c] != want[i].Values[c] {
					t.Errorf("%s row %d column %s: got %+v, want %+v", tbl.Name, i, tbl.Columns[c].Name, got[c], want[i].Values[c])
				}
			}
		}
		if err := r.Read(got); !errors.Is(err, io.EOF) {
			t.Fatalf("%s: after last row got %v, want EOF", tbl.Name, err)
		}
	}
}

// A file of no rows is a valid, empty file.
func TestEncodeEmpty(t *testing.T) {
	tbl := loadSchema(t).Table("actions_taken")
	var buf bytes.Buffer
	if err := Encode(&buf, tbl, nil); err != nil {
		t.Fatal(err)
	}
	r, err := Open(buf.Bytes(), tbl)
	if err != nil {
		t.Fatal(err)
	}
	if r.NumRows() != 0 {
		t.Fatalf("NumRows %d, want 0", r.NumRows())
	}
	if err := r.Read(make([]schema.Value, len(tbl.Columns))); !errors.Is(err, io.EOF) {
		t.Fatalf("read: %v, want EOF", err)
	}
}

// A file written before a column was added reads as NULL in that column.
func TestReadOlderFile(t *testing.T) {
	old, err := schema.Parse([]byte("tables:\n- name: t\n  events: [t]\n  columns:\n  - {name: a, path: a, type: integer}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cur, err := schema.Parse([]byte("tables:\n- name: t\n  events: [t]\n  columns:\n  - {name: a, path: a, type: bigint}\n  - {name: b, path: b, type: varchar(10)}\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := schema.NewDecoder(old, schema.DefaultEnvelope())
	ev, err := d.Decode([]byte(`{"event":"t","id":"1","a":7,"b":"x"}`), "m", time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := d.Flatten(ev, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Encode(&buf, old.Table("t"), rows); err != nil {
		t.Fatal(err)
	}
	tc := cur.Table("t")
	r, err := Open(buf.Bytes(), tc)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]schema.Value, len(tc.Columns))
	if err := r.Read(got); err != nil {
		t.Fatal(err)
	}
	if got[tc.Column("a")].I != 7 || !got[tc.Column("b")].Null {
		t.Fatalf("got a=%+v b=%+v, want 7 and NULL", got[tc.Column("a")], got[tc.Column("b")])
	}
}

func TestColumnOrder(t *testing.T) {
	tbl := loadSchema(t).Table("actions_taken")
	cols := Schema(tbl).Columns()
	for i, c := range tbl.Columns {
		if cols[i][0] != c.Name {
			t.Fatalf("parquet column %d is %s, want %s (table order)", i, cols[i][0], c.Name)
		}
	}
}

// A file with a column the table lacks (written by a newer schema) and a
// decimal whose scale changed are refused rather than silently altered.
func TestRefuseNewerAndRescaled(t *testing.T) {
	mk := func(y string) *schema.Table {
		s, err := schema.Parse([]byte("tables:\n- name: t\n  events: [t]\n  columns:\n" + y))
		if err != nil {
			t.Fatal(err)
		}
		return s.Table("t")
	}
	newer := mk("  - {name: a, path: a, type: integer}\n  - {name: b, path: b, type: integer}\n")
	var buf bytes.Buffer
	if err := Encode(&buf, newer, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(buf.Bytes(), mk("  - {name: a, path: a, type: integer}\n")); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("got %v, want ErrNewerSchema", err)
	}
	buf.Reset()
	if err := Encode(&buf, mk("  - {name: p, path: p, type: \"decimal(10,2)\"}\n"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(buf.Bytes(), mk("  - {name: p, path: p, type: \"decimal(10,3)\"}\n")); err == nil || !strings.Contains(err.Error(), "scale") {
		t.Fatalf("got %v, want a scale error", err)
	}
}

// The footer keeps each column chunk's min and max (what query engines prune
// row groups by), except for json columns, whose bounds mean nothing.
func TestFooterStatistics(t *testing.T) {
	s := loadSchema(t)
	tbl := s.Table("actions_taken")
	d := schema.NewDecoder(s, schema.DefaultEnvelope())
	var rows []schema.Row
	for i, ts := range []string{"2024-03-01T10:00:00Z", "2024-03-02T10:00:00Z", "2024-02-28T10:00:00Z"} {
		ev, err := d.Decode([]byte(fmt.Sprintf(`{"event":"actions_taken","id":"e%d","date":%q,"other":"x%d"}`, i, ts, i)), "m", time.Unix(1, 0))
		if err != nil {
			t.Fatal(err)
		}
		if rows, err = d.Flatten(ev, rows); err != nil {
			t.Fatal(err)
		}
	}
	var parents []schema.Row
	for _, r := range rows {
		if r.Table == tbl {
			parents = append(parents, r)
		}
	}
	var buf bytes.Buffer
	if err := Encode(&buf, tbl, parents); err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	md := f.Metadata().RowGroups[0].Columns
	timeCol, extrasCol := tbl.Column(schema.ColEventTime), tbl.Column(schema.ColExtras)
	st := md[timeCol].MetaData.Statistics
	minT, maxT := int64(binary.LittleEndian.Uint64(st.MinValue)), int64(binary.LittleEndian.Uint64(st.MaxValue))
	if want := time.Date(2024, 2, 28, 10, 0, 0, 0, time.UTC).UnixMicro(); minT != want {
		t.Errorf("event_time min %d, want %d", minT, want)
	}
	if want := time.Date(2024, 3, 2, 10, 0, 0, 0, time.UTC).UnixMicro(); maxT != want {
		t.Errorf("event_time max %d, want %d", maxT, want)
	}
	if st := md[extrasCol].MetaData.Statistics; len(st.MinValue) != 0 || len(st.MaxValue) != 0 {
		t.Errorf("_extras has bounds %q..%q", st.MinValue, st.MaxValue)
	}
}

// Decimals read back from every layout wharf has written: INT32 (p ≤ 9),
// INT64, and FIXED_LEN_BYTE_ARRAY of the smallest size, and from files of
// the writer before them (INT64 for p ≤ 9, 16 bytes for every p > 18), also
// after the column was widened past 18 digits.
func TestReadDecimalLayouts(t *testing.T) {
	mk := func(y string) *schema.Table {
		s, err := schema.Parse([]byte("tables:\n- name: t\n  events: [t]\n  columns:\n" + y))
		if err != nil {
			t.Fatal(err)
		}
		return s.Table("t")
	}
	cur := mk("  - {name: a, path: a, type: \"decimal(9,2)\"}\n  - {name: b, path: b, type: \"decimal(30,4)\"}\n")
	wide := mk("  - {name: a, path: a, type: \"decimal(38,2)\"}\n  - {name: b, path: b, type: \"decimal(30,4)\"}\n")
	ia, ib, id := cur.Column("a"), cur.Column("b"), cur.Column(schema.ColEventID)
	row := func(a int64, b string) schema.Row {
		r := schema.Row{Table: cur, Values: make([]schema.Value, len(cur.Columns))}
		for i := range r.Values {
			r.Values[i] = schema.NullValue
		}
		r.Values[id] = schema.Value{S: "e"}
		r.Values[ia] = schema.Value{I: a}
		r.Values[ib] = schema.Value{S: b}
		return r
	}
	rows := []schema.Row{row(-999999999, "-999999999999999999999999999999"), row(999999999, "999999999999999999999999999999"), row(-1, "-1")}

	// The old layout, written as the writer before INT32 decimals did.
	old := parquet.NewSchema("t", parquet.Group{
		schema.ColEventID: parquet.Optional(parquet.String()),
		"a":               parquet.Optional(parquet.Decimal(2, 9, parquet.Int64Type)),
		"b":               parquet.Optional(parquet.Decimal(4, 30, parquet.FixedLenByteArrayType(16))),
	})
	var oldBuf bytes.Buffer
	ow := parquet.NewWriter(&oldBuf, old)
	for _, r := range rows {
		var pr parquet.Row
		for ci, name := range old.Columns() {
			var v parquet.Value
			switch name[0] {
			case schema.ColEventID:
				v = parquet.ByteArrayValue([]byte("e"))
			case "a":
				v = parquet.Int64Value(r.Values[ia].I)
			case "b":
				v = parquet.FixedLenByteArrayValue(decimalBytes(r.Values[ib].S, 16))
			}
			pr = append(pr, v.Level(0, 1, ci))
		}
		if _, err := ow.WriteRows([]parquet.Row{pr}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ow.Close(); err != nil {
		t.Fatal(err)
	}
	var newBuf bytes.Buffer
	if err := Encode(&newBuf, cur, rows); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"old layout": oldBuf.Bytes(), "new layout": newBuf.Bytes()} {
		for _, tbl := range []*schema.Table{cur, wide} {
			r, err := Open(data, tbl)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got := make([]schema.Value, len(tbl.Columns))
			for i, w := range rows {
				if err := r.Read(got); err != nil {
					t.Fatalf("%s row %d: %v", name, i, err)
				}
				wantA := w.Values[ia]
				if tbl == wide {
					wantA = schema.Value{S: fmt.Sprint(wantA.I)}
				}
				if got[tbl.Column("a")] != wantA || got[tbl.Column("b")] != w.Values[ib] {
					t.Errorf("%s as %s row %d: a=%+v b=%+v, want %+v %+v", name, tbl.Columns[tbl.Column("a")].Type, i, got[tbl.Column("a")], got[tbl.Column("b")], wantA, w.Values[ib])
				}
			}
		}
	}
}

// decimalBytes returns the size-byte big-endian two's complement of the
// unscaled decimal digits s.
func decimalBytes(s string, size int) []byte {
	n, _ := new(big.Int).SetString(s, 10)
	out := make([]byte, size)
	if n.Sign() >= 0 {
		n.FillBytes(out)
		return out
	}
	m := new(big.Int).Lsh(big.NewInt(1), uint(8*size))
	m.Add(m, n)
	m.FillBytes(out)
	return out
}
