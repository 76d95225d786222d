package pq

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	pqschema "github.com/apache/arrow-go/v18/parquet/schema"
	pqgo "github.com/parquet-go/parquet-go"

	"github.com/wharfdata/wharf/schema"
)

const arrowTables = `
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
      - {name: d_18,    path: d_18,    type: "decimal(18,0)"}
      - {name: d_big,   path: d_big,   type: "decimal(38,4)"}
      - {name: s,       path: s,       type: varchar(16)}
      - {name: ts,      path: ts,      type: timestamp}
      - {name: day,     path: day,     type: date}
      - {name: j,       path: j,       type: json}
`

// TestArrowReadsEveryType reads files written by Encode with an independent
// Parquet implementation, Apache Arrow's: the columns are in table order,
// every one OPTIONAL and snappy-compressed, with the logical type Redshift's
// COPY expects, and every value (nulls and extremes included) reads back
// exactly as written.
func TestArrowReadsEveryType(t *testing.T) {
	s, err := schema.Parse([]byte(arrowTables))
	if err != nil {
		t.Fatal(err)
	}
	tb := s.Table("ev")
	micros := func(tm time.Time) schema.Value { return schema.Value{I: tm.UnixMicro()} }
	maxDigits := "99999999999999999999999999999999999999"
	mk := func(id string, vals map[string]schema.Value) schema.Row {
		r := schema.Row{Table: tb, Values: make([]schema.Value, len(tb.Columns))}
		for i, c := range tb.Columns {
			switch c.Name {
			case schema.ColEventID:
				r.Values[i] = schema.Value{S: id}
			case schema.ColEventTime, schema.ColReceivedAt:
				r.Values[i] = micros(time.Date(2026, 11, 25, 12, 0, 0, 123456000, time.UTC))
			default:
				v, ok := vals[c.Name]
				if !ok {
					v = schema.NullValue
				}
				r.Values[i] = v
			}
		}
		return r
	}
	rows := []schema.Row{
		mk("max", map[string]schema.Value{
			"b": {I: 1}, "i16": {I: math.MaxInt16}, "i32": {I: math.MaxInt32}, "i64": {I: math.MaxInt64},
			"f32": schema.FloatValue(math.MaxFloat32), "f64": schema.FloatValue(math.MaxFloat64),
			"d_small": {I: 9999999999}, "d_18": {I: 999999999999999999}, "d_big": {S: maxDigits},
			"s": {S: "héllo ☃ 😀"}, "ts": micros(time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)),
			"day": {I: 2932896}, "j": {S: `{"a":[1,2,{"c":null}],"u":"é"}`},
		}),
		mk("min", map[string]schema.Value{
			"b": {I: 0}, "i16": {I: math.MinInt16}, "i32": {I: math.MinInt32}, "i64": {I: math.MinInt64},
			"f32": schema.FloatValue(-float64(math.SmallestNonzeroFloat32)), "f64": schema.FloatValue(-0.5),
			"d_small": {I: -9999999999}, "d_18": {I: -999999999999999999}, "d_big": {S: "-" + maxDigits},
			"s": {S: ""}, "ts": micros(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)),
			"day": {I: -719162}, "j": {S: `"just a string"`},
		}),
		mk("small", map[string]schema.Value{
			"b": {I: 1}, "i16": {I: -1}, "i32": {I: 0}, "i64": {I: -1},
			"f32": schema.FloatValue(1.5), "f64": schema.FloatValue(3.141592653589793),
			"d_small": {I: -1}, "d_18": {I: 0}, "d_big": {S: "-1"},
			"s": {S: "x"}, "ts": micros(time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC)),
			"day": {I: -1}, "j": {S: `[]`},
		}),
		mk("nulls", nil),
	}
	arrowCompare(t, tb, rows)

	// Many rows: every column spans several pages, and values still read
	// back exactly, in order, across page and chunk boundaries.
	var many []schema.Row
	for i := range 30_000 {
		r := rows[i%len(rows)]
		r.Values = slices.Clone(r.Values)
		r.Values[tb.Column(schema.ColEventID)] = schema.Value{S: fmt.Sprintf("row-%06d-%s", i, strings.Repeat("x", i%40))}
		many = append(many, r)
	}
	data := arrowCompare(t, tb, many)
	f, err := pqgo.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	oi, err := f.RowGroups()[0].ColumnChunks()[tb.Column(schema.ColEventID)].OffsetIndex()
	if err != nil || oi.NumPages() < 2 {
		t.Fatalf("event_id of 30,000 rows: offset index %v (%v), want several pages", oi, err)
	}
}

// arrowCompare encodes rows, reads the file back with Arrow, checks its
// layout and that every value reads back as written, and returns the file.
func arrowCompare(t *testing.T, tb *schema.Table, rows []schema.Row) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Encode(&buf, tb, rows); err != nil {
		t.Fatal(err)
	}

	rdr, err := file.NewParquetReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Close()
	sc := rdr.MetaData().Schema
	if sc.NumColumns() != len(tb.Columns) {
		t.Fatalf("file has %d columns, table %d", sc.NumColumns(), len(tb.Columns))
	}
	rg := rdr.MetaData().RowGroup(0)
	for i, c := range tb.Columns {
		col := sc.Column(i)
		if col.Name() != c.Name {
			t.Errorf("column %d is %s, want %s (table order)", i, col.Name(), c.Name)
		}
		if rep := col.SchemaNode().RepetitionType(); rep != parquet.Repetitions.Optional {
			t.Errorf("%s: repetition %v, want OPTIONAL", c.Name, rep)
		}
		if cc, err := rg.ColumnChunk(i); err != nil || cc.Compression() != compress.Codecs.Snappy {
			t.Errorf("%s: compression %v (%v), want snappy", c.Name, cc.Compression(), err)
		}
		checkLogical(t, c, col.PhysicalType(), col.LogicalType())
		if c.Type.Kind == schema.Decimal && c.Type.Precision > 18 && col.TypeLength() != 16 {
			t.Errorf("%s: FIXED_LEN_BYTE_ARRAY(%d), want 16", c.Name, col.TypeLength())
		}
	}

	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	if tbl.NumRows() != int64(len(rows)) {
		t.Fatalf("arrow read %d rows, want %d", tbl.NumRows(), len(rows))
	}
	for ci, c := range tb.Columns {
		chunks := tbl.Column(ci).Data().Chunks()
		r := 0
		for _, arr := range chunks {
			for i := 0; i < arr.Len(); i, r = i+1, r+1 {
				got := arrowValue(t, c, arr, i)
				want := rows[r].Values[ci]
				if !sameValue(c.Type, got, want) {
					t.Fatalf("row %d column %s: arrow read %+v, wrote %+v", r, c.Name, got, want)
				}
			}
		}
		if r != len(rows) {
			t.Fatalf("column %s: arrow read %d values, want %d", c.Name, r, len(rows))
		}
	}
	return buf.Bytes()
}

func checkLogical(t *testing.T, c schema.Column, phys parquet.Type, lt pqschema.LogicalType) {
	t.Helper()
	bad := func(want string) {
		t.Errorf("%s (%s): physical %s, logical %s; want %s", c.Name, c.Type, phys, lt, want)
	}
	switch c.Type.Kind {
	case schema.Boolean:
		if phys != parquet.Types.Boolean {
			bad("BOOLEAN")
		}
	case schema.Smallint, schema.Integer, schema.Bigint:
		want := map[schema.Kind]int8{schema.Smallint: 16, schema.Integer: 32, schema.Bigint: 64}[c.Type.Kind]
		it, ok := lt.(pqschema.IntLogicalType)
		wantPhys := parquet.Types.Int32
		if want == 64 {
			wantPhys = parquet.Types.Int64
		}
		if !ok || it.BitWidth() != want || !it.IsSigned() || phys != wantPhys {
			bad("INT(" + string(rune('0'+want/10)) + string(rune('0'+want%10)) + ", signed)")
		}
	case schema.Real:
		if phys != parquet.Types.Float {
			bad("FLOAT")
		}
	case schema.Double:
		if phys != parquet.Types.Double {
			bad("DOUBLE")
		}
	case schema.Decimal:
		dt, ok := lt.(pqschema.DecimalLogicalType)
		wantPhys := parquet.Types.Int64
		if c.Type.Precision > 18 {
			wantPhys = parquet.Types.FixedLenByteArray
		}
		if !ok || int(dt.Precision()) != c.Type.Precision || int(dt.Scale()) != c.Type.Scale || phys != wantPhys {
			bad("DECIMAL(p,s) on INT64 (p ≤ 18) or FIXED_LEN_BYTE_ARRAY(16)")
		}
	case schema.Varchar, schema.JSON:
		if _, ok := lt.(pqschema.StringLogicalType); !ok || phys != parquet.Types.ByteArray {
			bad("BYTE_ARRAY STRING")
		}
	case schema.Timestamp:
		ts, ok := lt.(pqschema.TimestampLogicalType)
		if !ok || !ts.IsAdjustedToUTC() || ts.TimeUnit() != pqschema.TimeUnitMicros || phys != parquet.Types.Int64 {
			bad("INT64 TIMESTAMP(MICROS, UTC)")
		}
	case schema.Date:
		if _, ok := lt.(pqschema.DateLogicalType); !ok || phys != parquet.Types.Int32 {
			bad("INT32 DATE")
		}
	}
}

// arrowValue converts one Arrow cell back to a schema.Value.
func arrowValue(t *testing.T, c schema.Column, arr arrow.Array, i int) schema.Value {
	t.Helper()
	if arr.IsNull(i) {
		return schema.NullValue
	}
	switch a := arr.(type) {
	case *array.Boolean:
		if a.Value(i) {
			return schema.Value{I: 1}
		}
		return schema.Value{I: 0}
	case *array.Int16:
		return schema.Value{I: int64(a.Value(i))}
	case *array.Int32:
		return schema.Value{I: int64(a.Value(i))}
	case *array.Int64:
		return schema.Value{I: a.Value(i)}
	case *array.Float32:
		return schema.FloatValue(float64(a.Value(i)))
	case *array.Float64:
		return schema.FloatValue(a.Value(i))
	case *array.Decimal128:
		dt := a.DataType().(*arrow.Decimal128Type)
		if int(dt.Precision) != c.Type.Precision || int(dt.Scale) != c.Type.Scale {
			t.Errorf("%s: arrow type %s", c.Name, dt)
		}
		n := a.Value(i).BigInt()
		if c.Type.Precision <= 18 {
			return schema.Value{I: n.Int64()}
		}
		return schema.Value{S: n.String()}
	case *array.String:
		return schema.Value{S: a.Value(i)}
	case *array.Timestamp:
		tt := a.DataType().(*arrow.TimestampType)
		if tt.Unit != arrow.Microsecond || tt.TimeZone != "UTC" {
			t.Errorf("%s: arrow type %s, want timestamp[us, tz=UTC]", c.Name, tt)
		}
		return schema.Value{I: int64(a.Value(i))}
	case *array.Date32:
		return schema.Value{I: int64(a.Value(i))}
	}
	t.Fatalf("%s: unexpected arrow array %T", c.Name, arr)
	return schema.Value{}
}

func sameValue(typ schema.Type, a, b schema.Value) bool {
	if a.Null || b.Null {
		return a.Null == b.Null
	}
	switch typ.Kind {
	case schema.Real, schema.Double:
		return a.Float() == b.Float() && math.Signbit(a.Float()) == math.Signbit(b.Float())
	case schema.Decimal:
		if typ.Precision <= 18 {
			return a.I == b.I
		}
		x, _ := new(big.Int).SetString(a.S, 10)
		y, _ := new(big.Int).SetString(b.S, 10)
		return x != nil && y != nil && x.Cmp(y) == 0
	case schema.Varchar, schema.JSON:
		return a.S == b.S
	}
	return a.I == b.I
}
