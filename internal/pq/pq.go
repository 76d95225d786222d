// Package pq is wharf's Parquet file format: how the batcher writes a
// table's rows and how the PostgreSQL loader reads them back.
//
// A file holds the rows of one table. Its columns are the table's columns in
// table order (Redshift's COPY matches Parquet columns by position), every
// one OPTIONAL, snappy-compressed:
//
//	boolean         BOOLEAN
//	smallint        INT32 (INT(16, signed))
//	integer         INT32 (INT(32, signed))
//	bigint          INT64 (INT(64, signed))
//	real, double    FLOAT, DOUBLE
//	decimal(p,s)    INT64 DECIMAL(p,s) when p ≤ 18, else FIXED_LEN_BYTE_ARRAY(16) DECIMAL(p,s)
//	varchar(n)      BYTE_ARRAY (STRING)
//	json            BYTE_ARRAY (STRING), the JSON text
//	timestamp       INT64 TIMESTAMP(MICROS, isAdjustedToUTC=true)
//	date            INT32 DATE
package pq

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
	"github.com/wharfdata/wharf/schema"
)

// orderedGroup is a parquet Group whose fields keep the table's column order
// (parquet.Group sorts them by name).
type orderedGroup struct {
	parquet.Group
	order []string
}

func (g orderedGroup) Fields() []parquet.Field {
	fields := g.Group.Fields()
	rank := make(map[string]int, len(g.order))
	for i, n := range g.order {
		rank[n] = i
	}
	slices.SortStableFunc(fields, func(a, b parquet.Field) int { return rank[a.Name()] - rank[b.Name()] })
	return fields
}

// Node returns the Parquet node of a column type.
func Node(t schema.Type) parquet.Node {
	var n parquet.Node
	switch t.Kind {
	case schema.Boolean:
		n = parquet.Leaf(parquet.BooleanType)
	case schema.Smallint:
		n = parquet.Int(16)
	case schema.Integer:
		n = parquet.Int(32)
	case schema.Bigint:
		n = parquet.Int(64)
	case schema.Real:
		n = parquet.Leaf(parquet.FloatType)
	case schema.Double:
		n = parquet.Leaf(parquet.DoubleType)
	case schema.Decimal:
		if t.Precision <= 18 {
			n = parquet.Decimal(t.Scale, t.Precision, parquet.Int64Type)
		} else {
			n = parquet.Decimal(t.Scale, t.Precision, parquet.FixedLenByteArrayType(16))
		}
	case schema.Varchar, schema.JSON:
		n = parquet.String()
	case schema.Timestamp:
		n = parquet.Timestamp(parquet.Microsecond)
	case schema.Date:
		n = parquet.Date()
	default:
		panic(fmt.Sprintf("pq: no parquet type for %s", t))
	}
	return parquet.Optional(n)
}

// Schema returns the Parquet schema of a table.
func Schema(t *schema.Table) *parquet.Schema {
	g := orderedGroup{Group: parquet.Group{}, order: make([]string, len(t.Columns))}
	for i, c := range t.Columns {
		g.Group[c.Name] = Node(c.Type)
		g.order[i] = c.Name
	}
	return parquet.NewSchema(t.Name, g)
}

// Writer encodes rows of one table. Reuse it across files of that table to
// keep its buffers.
type Writer struct {
	table  *schema.Table
	schema *parquet.Schema
	w      *parquet.Writer
	vals   []parquet.Value // one column's values of a chunk, reused
}

// options are the writer's settings. Statistics stay in the footer (per
// column chunk) and in the column index (per page), where query engines read
// them; the deprecated copy in each page header is not written, and json
// columns get no bounds, which mean nothing for JSON text.
func (e *Writer) options() []parquet.WriterOption {
	opts := []parquet.WriterOption{
		parquet.Compression(fastSnappy{}),
		parquet.CreatedBy("wharf", "1", ""),
		parquet.DataPageStatistics(false),
	}
	for _, c := range e.table.Columns {
		if c.Type.Kind == schema.JSON {
			opts = append(opts, parquet.SkipPageBounds(c.Name))
		}
	}
	return opts
}

// NewWriter returns a Writer for table t.
func NewWriter(t *schema.Table) *Writer {
	return &Writer{table: t, schema: Schema(t)}
}

// Encode writes rows (all of table t) to w as one Parquet file.
func Encode(w io.Writer, t *schema.Table, rows []schema.Row) error {
	return NewWriter(t).Encode(w, rows)
}

// rowsPerChunk is how many rows Encode converts before handing each column
// its values: small enough to stay in cache, large enough to amortize the
// per-call cost of the column writers.
const rowsPerChunk = 512

// Encode writes rows to out as one Parquet file of one row group. It writes
// column by column (a chunk of rows at a time) straight into parquet-go's
// column writers, which skips the row-to-column shredding of WriteRows.
func (e *Writer) Encode(out io.Writer, rows []schema.Row) error {
	if e.w == nil {
		e.w = parquet.NewWriter(out, append([]parquet.WriterOption{e.schema}, e.options()...)...)
	} else {
		e.w.Reset(out)
	}
	cols := len(e.table.Columns)
	for i := range rows {
		if rows[i].Table != e.table || len(rows[i].Values) != cols {
			return fmt.Errorf("encode %s: row %d belongs to table %s", e.table.Name, i, rows[i].Table.Name)
		}
	}
	writers := e.w.ColumnWriters()
	if len(writers) != cols {
		return fmt.Errorf("encode %s: the parquet schema has %d columns, the table %d", e.table.Name, len(writers), cols)
	}
	for lo := 0; lo < len(rows); lo += rowsPerChunk {
		chunk := rows[lo:min(lo+rowsPerChunk, len(rows))]
		for ci := range cols {
			vals := e.column(e.vals[:0], chunk, ci)
			e.vals = vals
			if _, err := writers[ci].WriteRowValues(vals); err != nil {
				return fmt.Errorf("encode %s: column %s: %w", e.table.Name, e.table.Columns[ci].Name, err)
			}
		}
	}
	clear(e.vals) // drop the references to the rows' strings
	if err := e.w.Close(); err != nil {
		return fmt.Errorf("encode %s: %w", e.table.Name, err)
	}
	return nil
}

// column appends the parquet values of column ci of rows to dst, with one
// loop per common type so that the type switch runs once per chunk, not per
// value (a per-column conversion func, the shorter code, measured 20-25%
// slower in BenchmarkStages/encode).
func (e *Writer) column(dst []parquet.Value, rows []schema.Row, ci int) []parquet.Value {
	null := parquet.NullValue().Level(0, 0, ci)
	t := e.table.Columns[ci].Type
	switch t.Kind {
	case schema.Varchar, schema.JSON:
		for r := range rows {
			v := &rows[r].Values[ci]
			if v.Null {
				dst = append(dst, null)
				continue
			}
			dst = append(dst, parquet.ByteArrayValue(unsafe.Slice(unsafe.StringData(v.S), len(v.S))).Level(0, 1, ci))
		}
	case schema.Bigint, schema.Timestamp:
		for r := range rows {
			v := &rows[r].Values[ci]
			if v.Null {
				dst = append(dst, null)
				continue
			}
			dst = append(dst, parquet.Int64Value(v.I).Level(0, 1, ci))
		}
	case schema.Smallint, schema.Integer, schema.Date:
		for r := range rows {
			v := &rows[r].Values[ci]
			if v.Null {
				dst = append(dst, null)
				continue
			}
			dst = append(dst, parquet.Int32Value(int32(v.I)).Level(0, 1, ci))
		}
	default:
		for r := range rows {
			v := &rows[r].Values[ci]
			if v.Null {
				dst = append(dst, null)
				continue
			}
			var pv parquet.Value
			switch t.Kind {
			case schema.Boolean:
				pv = parquet.BooleanValue(v.I != 0)
			case schema.Real:
				pv = parquet.FloatValue(float32(v.Float()))
			case schema.Double:
				pv = parquet.DoubleValue(v.Float())
			case schema.Decimal:
				if t.Precision <= 18 {
					pv = parquet.Int64Value(v.I)
				} else {
					pv = parquet.FixedLenByteArrayValue(decimalBytes(v.S))
				}
			default:
				panic(fmt.Sprintf("pq: no parquet value for %s", t))
			}
			dst = append(dst, pv.Level(0, 1, ci))
		}
	}
	return dst
}

// decimalBytes returns the 16-byte big-endian two's complement of the
// unscaled decimal digits s.
func decimalBytes(s string) []byte {
	n, _ := new(big.Int).SetString(s, 10)
	out := make([]byte, 16)
	if n.Sign() >= 0 {
		n.FillBytes(out)
		return out
	}
	// two's complement: 2^128 + n
	m := new(big.Int).Lsh(big.NewInt(1), 128)
	m.Add(m, n)
	m.FillBytes(out)
	return out
}

func decimalString(b []byte) string {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return n.String()
}

// ErrNewerSchema marks a file written under a schema newer than the reader's.
var ErrNewerSchema = errors.New("file written by a newer schema")

// Reader reads back a file written by Encode, mapping its columns onto a
// table by name: a column of the table that the file lacks (a file written
// before the column was added) reads as NULL.
type Reader struct {
	file    *parquet.File
	rows    *parquet.Reader
	table   *schema.Table
	fromCol []int // per table column, the file's leaf column index, or -1
	buf     []parquet.Row
	pos, n  int
}

// Open reads the footer of data, a whole Parquet file, for table t.
func Open(data []byte, t *schema.Table) (*Reader, error) {
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("open parquet for %s: %w", t.Name, err)
	}
	r := &Reader{file: f, table: t, fromCol: make([]int, len(t.Columns))}
	leaf := map[string]int{}
	for i, path := range f.Schema().Columns() {
		if len(path) == 1 {
			leaf[path[0]] = i
		}
	}
	// A column the table does not know was written by a newer schema (a
	// rolling deploy): loading the file now would drop its values.
	for name := range leaf {
		if t.Column(name) < 0 {
			return nil, fmt.Errorf("open parquet for %s: %w: the file has column %q, which the table does not", t.Name, ErrNewerSchema, name)
		}
	}
	for _, c := range t.Columns {
		if c.Type.Kind != schema.Decimal {
			continue
		}
		if _, ok := leaf[c.Name]; !ok {
			continue
		}
		col, _ := f.Schema().Lookup(c.Name)
		if lt := col.Node.Type().LogicalType(); lt != nil {
			if d, ok := lt.Value.(*format.DecimalType); ok && int(d.Scale) != c.Type.Scale {
				return nil, fmt.Errorf("open parquet for %s: column %s was written with scale %d, the table has scale %d; a decimal's scale cannot change under old files", t.Name, c.Name, d.Scale, c.Type.Scale)
			}
		}
	}
	for i, c := range t.Columns {
		idx, ok := leaf[c.Name]
		if !ok {
			idx = -1
		}
		r.fromCol[i] = idx
	}
	if r.fromCol[t.Column(schema.ColEventID)] < 0 {
		return nil, fmt.Errorf("open parquet for %s: the file has no %s column", t.Name, schema.ColEventID)
	}
	r.rows = parquet.NewReader(f)
	r.buf = make([]parquet.Row, 128)
	return r, nil
}

// NumRows returns the number of rows in the file.
func (r *Reader) NumRows() int64 { return r.file.NumRows() }

// Columns returns, per table column, whether the file has it.
func (r *Reader) Columns() []bool {
	out := make([]bool, len(r.fromCol))
	for i, c := range r.fromCol {
		out[i] = c >= 0
	}
	return out
}

// Read fills dst (one value per table column) with the next row, and returns
// io.EOF after the last.
func (r *Reader) Read(dst []schema.Value) error {
	if len(dst) != len(r.table.Columns) {
		return fmt.Errorf("read %s: want %d values, have room for %d", r.table.Name, len(r.table.Columns), len(dst))
	}
	if r.pos == r.n {
		n, err := r.rows.ReadRows(r.buf)
		if n == 0 {
			if err == nil || errors.Is(err, io.EOF) {
				return io.EOF
			}
			return fmt.Errorf("read %s: %w", r.table.Name, err)
		}
		r.pos, r.n = 0, n
	}
	row := r.buf[r.pos]
	r.pos++
	for i, fc := range r.fromCol {
		if fc < 0 || fc >= len(row) {
			dst[i] = schema.NullValue
			continue
		}
		v := row[fc]
		if v.IsNull() {
			dst[i] = schema.NullValue
			continue
		}
		switch v.Kind() {
		case parquet.Boolean:
			dst[i] = schema.Value{}
			if v.Boolean() {
				dst[i].I = 1
			}
		case parquet.Int32:
			dst[i] = schema.Value{I: int64(v.Int32())}
		case parquet.Int64:
			dst[i] = schema.Value{I: v.Int64()}
		case parquet.Float:
			dst[i] = schema.FloatValue(float64(v.Float()))
		case parquet.Double:
			dst[i] = schema.FloatValue(v.Double())
		case parquet.ByteArray:
			dst[i] = schema.Value{S: string(v.ByteArray())}
		case parquet.FixedLenByteArray:
			dst[i] = schema.Value{S: decimalString(v.ByteArray())}
		default:
			return fmt.Errorf("read %s: column %s has unsupported parquet kind %s", r.table.Name, r.table.Columns[i].Name, v.Kind())
		}
		// A decimal widened from precision ≤ 18 to > 18 reads its INT64 as digits.
		if c := r.table.Columns[i].Type; c.Kind == schema.Decimal && c.Precision > 18 && v.Kind() == parquet.Int64 {
			dst[i] = schema.Value{S: fmt.Sprint(v.Int64())}
		}
	}
	return nil
}

// Close releases the reader.
func (r *Reader) Close() error { return r.rows.Close() }
