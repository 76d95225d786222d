package pq

import (
	"bytes"
	"math"
	"reflect"
	"slices"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/wharfdata/wharf/schema"
)

// encodeParquetGo writes rows with parquet-go's own writer, as pq did before
// it wrote pages itself: the same schema and settings, one parquet.Value per
// cell.
func encodeParquetGo(t *testing.T, tb *schema.Table, rows []schema.Row) []byte {
	t.Helper()
	opts := []parquet.WriterOption{
		Schema(tb),
		parquet.Compression(fastSnappy{}),
		parquet.CreatedBy("wharf", "1", ""),
		parquet.DataPageVersion(1),
		parquet.DefaultEncoding(&parquet.Plain),
		parquet.DictionaryMaxBytes(dictionaryMaxBytes),
		parquet.DataPageStatistics(false),
	}
	for _, c := range tb.Columns {
		if c.Type.Kind == schema.JSON {
			opts = append(opts, parquet.SkipPageBounds(c.Name))
		}
	}
	var buf bytes.Buffer
	w := parquet.NewWriter(&buf, opts...)
	for _, r := range rows {
		var pr parquet.Row
		for ci, c := range tb.Columns {
			v := r.Values[ci]
			if v.Null {
				pr = append(pr, parquet.NullValue().Level(0, 0, ci))
				continue
			}
			var pv parquet.Value
			switch k := c.Type.Kind; {
			case k == schema.Varchar || k == schema.JSON:
				pv = parquet.ByteArrayValue([]byte(v.S))
			case k == schema.Bigint || k == schema.Timestamp || k == schema.Decimal && c.Type.Precision > 9 && c.Type.Precision <= 18:
				pv = parquet.Int64Value(v.I)
			case k == schema.Smallint || k == schema.Integer || k == schema.Date || k == schema.Decimal && c.Type.Precision <= 9:
				pv = parquet.Int32Value(int32(v.I))
			case k == schema.Boolean:
				pv = parquet.BooleanValue(v.I != 0)
			case k == schema.Real:
				pv = parquet.FloatValue(float32(v.Float()))
			case k == schema.Double:
				pv = parquet.DoubleValue(v.Float())
			default:
				pv = parquet.FixedLenByteArrayValue(decimalBytes(v.S, DecimalBytes(c.Type.Precision)))
			}
			pr = append(pr, pv.Level(0, 1, ci))
		}
		if _, err := w.WriteRows([]parquet.Row{pr}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func footer(t *testing.T, data []byte) *parquet.File {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestSameMetadataAsParquetGo: a file's footer is what parquet-go's own
// writer wrote for the same rows (before pq wrote its pages itself), save
// sizes, offsets and the optional size statistics: the schema, column
// orders, created_by, encodings, codec, value counts and statistics, and a
// page index for every column, json columns without bounds. One departure:
// a decimal on FIXED_LEN_BYTE_ARRAY has bounds in its sort order (signed),
// where parquet-go compared its bytes unsigned and so put negative values
// above positive ones.
func TestSameMetadataAsParquetGo(t *testing.T) {
	tb, rows := everyType(t)
	var buf bytes.Buffer
	if err := Encode(&buf, tb, rows); err != nil {
		t.Fatal(err)
	}
	got, want := footer(t, buf.Bytes()), footer(t, encodeParquetGo(t, tb, rows))
	gm, wm := got.Metadata(), want.Metadata()
	if !reflect.DeepEqual(gm.Schema, wm.Schema) {
		t.Errorf("schema:\n got %+v\nwant %+v", gm.Schema, wm.Schema)
	}
	if !reflect.DeepEqual(gm.ColumnOrders, wm.ColumnOrders) || gm.CreatedBy != wm.CreatedBy || gm.Version != wm.Version || gm.NumRows != wm.NumRows {
		t.Errorf("file: got %v %q %d %d, want %v %q %d %d", gm.ColumnOrders, gm.CreatedBy, gm.Version, gm.NumRows, wm.ColumnOrders, wm.CreatedBy, wm.Version, wm.NumRows)
	}
	if len(gm.RowGroups) != 1 || len(wm.RowGroups) != 1 {
		t.Fatalf("%d and %d row groups, want 1", len(gm.RowGroups), len(wm.RowGroups))
	}
	for i, c := range tb.Columns {
		g, w := gm.RowGroups[0].Columns[i].MetaData, wm.RowGroups[0].Columns[i].MetaData
		sorted := func(e []format.Encoding) []format.Encoding { e = slices.Clone(e); slices.Sort(e); return e }
		if g.Type != w.Type || !slices.Equal(sorted(g.Encoding), sorted(w.Encoding)) || !slices.Equal(g.PathInSchema, w.PathInSchema) ||
			g.Codec != w.Codec || g.NumValues != w.NumValues {
			t.Errorf("%s: got %v %v %v %v %d, want %v %v %v %v %d", c.Name, g.Type, g.Encoding, g.PathInSchema, g.Codec, g.NumValues, w.Type, w.Encoding, w.PathInSchema, w.Codec, w.NumValues)
		}
		kinds := func(st []format.PageEncodingStats) (out []string) {
			for _, s := range st {
				out = append(out, s.PageType.String()+"/"+s.Encoding.String())
			}
			slices.Sort(out)
			return out
		}
		if !slices.Equal(kinds(g.EncodingStats), kinds(w.EncodingStats)) {
			t.Errorf("%s: encoding stats %v, want %v", c.Name, kinds(g.EncodingStats), kinds(w.EncodingStats))
		}
		gs, ws := g.Statistics, w.Statistics
		if c.Type.Kind == schema.Decimal && c.Type.Precision > 18 {
			ws.MinValue, ws.MaxValue = signedBounds(t, want, i)
		}
		if gs.NullCount != ws.NullCount || !bytes.Equal(gs.MinValue, ws.MinValue) || !bytes.Equal(gs.MaxValue, ws.MaxValue) || len(gs.Min)+len(gs.Max) != 0 {
			t.Errorf("%s: statistics %+v, want %+v", c.Name, gs, ws)
		}
		if c.Type.Kind == schema.JSON && len(gs.MinValue)+len(gs.MaxValue) != 0 {
			t.Errorf("%s: json column with bounds", c.Name)
		}
	}
	// Page indexes: one entry per page, bounds as the pages', none for json.
	cis, ois := got.ColumnIndexes(), got.OffsetIndexes()
	if len(cis) != len(tb.Columns) || len(ois) != len(tb.Columns) {
		t.Fatalf("%d column and %d offset indexes for %d columns", len(cis), len(ois), len(tb.Columns))
	}
	for i, c := range tb.Columns {
		ci, oi := cis[i], ois[i]
		if len(oi.PageLocations) == 0 || len(ci.NullPages) != len(oi.PageLocations) || len(ci.MinValues) != len(oi.PageLocations) {
			t.Errorf("%s: %d pages in the offset index, %d in the column index", c.Name, len(oi.PageLocations), len(ci.NullPages))
			continue
		}
		var nulls int64
		for _, n := range ci.NullCounts {
			nulls += n
		}
		if st := gm.RowGroups[0].Columns[i].MetaData.Statistics; nulls != st.NullCount {
			t.Errorf("%s: the column index counts %d NULLs, the footer %d", c.Name, nulls, st.NullCount)
		}
		if c.Type.Kind == schema.JSON {
			for p := range ci.MinValues {
				if len(ci.MinValues[p])+len(ci.MaxValues[p]) != 0 {
					t.Errorf("%s: page %d has bounds", c.Name, p)
				}
			}
		}
	}
}

// signedBounds returns the least and greatest value of column ci of f, a
// file of FIXED_LEN_BYTE_ARRAY decimals, in their signed order.
func signedBounds(t *testing.T, f *parquet.File, ci int) (lo, hi []byte) {
	t.Helper()
	r := parquet.NewReader(f)
	defer r.Close()
	buf := make([]parquet.Row, 16)
	for {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			v := row[ci]
			if v.IsNull() {
				continue
			}
			b := bytes.Clone(v.ByteArray())
			if lo == nil || signedLess(b, lo) {
				lo = b
			}
			if hi == nil || signedLess(hi, b) {
				hi = b
			}
		}
		if err != nil || n == 0 {
			return lo, hi
		}
	}
}

// signedLess agrees with big-endian two's complement order.
func TestSignedLess(t *testing.T) {
	vals := []int64{math.MinInt64, -1 << 40, -256, -1, 0, 1, 255, 256, 1 << 40, math.MaxInt64}
	enc := func(v int64) []byte {
		b := make([]byte, 8)
		for i := range 8 {
			b[7-i] = byte(v >> (8 * i))
		}
		return b
	}
	for _, a := range vals {
		for _, b := range vals {
			if got := signedLess(enc(a), enc(b)); got != (a < b) {
				t.Errorf("signedLess(%d, %d) = %v", a, b, got)
			}
		}
	}
}
