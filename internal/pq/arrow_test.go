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
      - {name: d_9,     path: d_9,     type: "decimal(9,2)"}
      - {name: d_small, path: d_small, type: "decimal(12,2)"}
      - {name: d_18,    path: d_18,    type: "decimal(18,0)"}
      - {name: d_19,    path: d_19,    type: "decimal(19,0)"}
      - {name: d_28,    path: d_28,    type: "decimal(28,6)"}
      - {name: d_big,   path: d_big,   type: "decimal(38,4)"}
      - {name: s,       path: s,       type: varchar(16)}
      - {name: s_long,  path: s_long,  type: varchar(256)}
      - {name: ts,      path: ts,      type: timestamp}
      - {name: day,     path: day,     type: date}
      - {name: j,       path: j,       type: json}
`

// everyType returns the table of arrowTables and four rows of it: the
// largest values of every type, the smallest, small ones around zero, and
// all NULLs.
func everyType(t testing.TB) (*schema.Table, []schema.Row) {
	t.Helper()
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
	return tb, []schema.Row{
		mk("max", map[string]schema.Value{
			"b": {I: 1}, "i16": {I: math.MaxInt16}, "i32": {I: math.MaxInt32}, "i64": {I: math.MaxInt64},
			"f32": schema.FloatValue(math.MaxFloat32), "f64": schema.FloatValue(math.MaxFloat64),
			"d_9": {I: 999999999}, "d_small": {I: 9999999999}, "d_18": {I: 999999999999999999},
			"d_19": {S: maxDigits[:19]}, "d_28": {S: maxDigits[:28]}, "d_big": {S: maxDigits},
			"s": {S: "héllo ☃ 😀"}, "s_long": {S: strings.Repeat("é", 128)},
			"ts":  micros(time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)),
			"day": {I: 2932896}, "j": {S: `{"a":[1,2,{"c":null}],"u":"é"}`},
		}),
		mk("min", map[string]schema.Value{
			"b": {I: 0}, "i16": {I: math.MinInt16}, "i32": {I: math.MinInt32}, "i64": {I: math.MinInt64},
			"f32": schema.FloatValue(-float64(math.SmallestNonzeroFloat32)), "f64": schema.FloatValue(-0.5),
			"d_9": {I: -999999999}, "d_small": {I: -9999999999}, "d_18": {I: -999999999999999999},
			"d_19": {S: "-" + maxDigits[:19]}, "d_28": {S: "-" + maxDigits[:28]}, "d_big": {S: "-" + maxDigits},
			"s": {S: ""}, "s_long": {S: ""}, "ts": micros(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)),
			"day": {I: -719162}, "j": {S: `"just a string"`},
		}),
		mk("small", map[string]schema.Value{
			"b": {I: 1}, "i16": {I: -1}, "i32": {I: 0}, "i64": {I: -1},
			"f32": schema.FloatValue(1.5), "f64": schema.FloatValue(3.141592653589793),
			"d_9": {I: 1}, "d_small": {I: -1}, "d_18": {I: 0}, "d_19": {S: "-1"}, "d_28": {S: "1"}, "d_big": {S: "-1"},
			"s": {S: "x"}, "s_long": {S: "y"}, "ts": micros(time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC)),
			"day": {I: -1}, "j": {S: `[]`},
		}),
		mk("nulls", nil),
	}
}

// manyRows repeats rows to n rows, each with its own event_id, and every
// non-NULL s_long distinct and 200 bytes long (so that its dictionary
// outgrows the writer's bound and the column falls back to PLAIN).
func manyRows(tb *schema.Table, rows []schema.Row, n int) []schema.Row {
	var many []schema.Row
	long := tb.Column("s_long")
	for i := range n {
		r := rows[i%len(rows)]
		r.Values = slices.Clone(r.Values)
		r.Values[tb.Column(schema.ColEventID)] = schema.Value{S: fmt.Sprintf("row-%06d-%s", i, strings.Repeat("x", i%40))}
		if long >= 0 && !r.Values[long].Null {
			r.Values[long] = schema.Value{S: fmt.Sprintf("%06d-%s", i, strings.Repeat("ab", 97))}
		}
		many = append(many, r)
	}
	return many
}

// TestArrowReadsEveryType reads files written by Encode with an independent
// Parquet implementation, Apache Arrow's: the columns are in table order,
// every one OPTIONAL and snappy-compressed, with the logical type Redshift's
// COPY expects, and every value (nulls and extremes included) reads back
// exactly as written.
func TestArrowReadsEveryType(t *testing.T) {
	tb, rows := everyType(t)
	arrowCompare(t, tb, rows)

	// Many rows: every column spans several pages, and values still read
	// back exactly, in order, across page and chunk boundaries.
	data := arrowCompare(t, tb, manyRows(tb, rows, 30_000))
	f, err := pqgo.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	oi, err := f.RowGroups()[0].ColumnChunks()[tb.Column(schema.ColEventID)].OffsetIndex()
	if err != nil || oi.NumPages() < 2 {
		t.Fatalf("event_id of 30,000 rows: offset index %v (%v), want several pages", oi, err)
	}

	// A reused Writer, whose s_long dictionary fell back to PLAIN in the
	// first file, writes the next files as well.
	w := NewWriter(tb)
	for _, n := range []int{30_000, 10, 30_000} {
		arrowCompareWith(t, w, tb, manyRows(tb, rows, n))
	}
}

// arrowCompare encodes rows, reads the file back with Arrow, checks its
// layout and that every value reads back as written, and returns the file.
func arrowCompare(t *testing.T, tb *schema.Table, rows []schema.Row) []byte {
	t.Helper()
	return arrowCompareWith(t, NewWriter(tb), tb, rows)
}

// arrowCompareWith is arrowCompare with Writer w.
func arrowCompareWith(t *testing.T, w *Writer, tb *schema.Table, rows []schema.Row) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := w.Encode(&buf, rows); err != nil {
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
		if c.Type.Kind == schema.Decimal && c.Type.Precision > 18 && col.TypeLength() != wantDecimalBytes(c.Type.Precision) {
			t.Errorf("%s: FIXED_LEN_BYTE_ARRAY(%d), want %d, the fewest bytes that hold %d digits", c.Name, col.TypeLength(), wantDecimalBytes(c.Type.Precision), c.Type.Precision)
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
		wantPhys := parquet.Types.Int32
		switch {
		case c.Type.Precision > 18:
			wantPhys = parquet.Types.FixedLenByteArray
		case c.Type.Precision > 9:
			wantPhys = parquet.Types.Int64
		}
		if !ok || int(dt.Precision()) != c.Type.Precision || int(dt.Scale()) != c.Type.Scale || phys != wantPhys {
			bad("DECIMAL(p,s) on INT32 (p ≤ 9), INT64 (p ≤ 18) or FIXED_LEN_BYTE_ARRAY")
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

// wantDecimalBytes is the size of the smallest two's complement integer that
// holds every value of precision p (10^p - 1 < 2^(8n-1)), worked out here
// independently of the writer's table.
func wantDecimalBytes(p int) int {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(p)), nil)
	for n := 1; ; n++ {
		if new(big.Int).Lsh(big.NewInt(1), uint(8*n-1)).Cmp(limit) >= 0 {
			return n
		}
	}
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
