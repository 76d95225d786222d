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
//	decimal(p,s)    DECIMAL(p,s) on INT32 when p ≤ 9, INT64 when p ≤ 18, else
//	                FIXED_LEN_BYTE_ARRAY(n), n the fewest bytes that hold p digits
//	varchar(n)      BYTE_ARRAY (STRING)
//	json            BYTE_ARRAY (STRING), the JSON text
//	timestamp       INT64 TIMESTAMP(MICROS, isAdjustedToUTC=true)
//	date            INT32 DATE
//
// The file keeps to the conservative profile that every engine reads
// (Redshift COPY and Spectrum, Spark, Arrow, DuckDB, older Hive/Impala
// readers): DATA_PAGE (v1) and DICTIONARY_PAGE pages only, values PLAIN or
// RLE_DICTIONARY (levels RLE), never DELTA_* or BYTE_STREAM_SPLIT, and snappy.
// Which columns get a dictionary is dictionaryPays.
package pq

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"

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

// Node returns the Parquet node of a column type, with its encoding: that of
// a column of the type other than event_id (see dictionaryPays).
func Node(t schema.Type) parquet.Node {
	return node(schema.Column{Type: t})
}

// node returns the Parquet node of column c: its physical and logical type
// and its encoding.
func node(c schema.Column) parquet.Node {
	t := c.Type
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
		switch {
		case t.Precision <= 9:
			n = parquet.Decimal(t.Scale, t.Precision, parquet.Int32Type)
		case t.Precision <= 18:
			n = parquet.Decimal(t.Scale, t.Precision, parquet.Int64Type)
		default:
			n = parquet.Decimal(t.Scale, t.Precision, parquet.FixedLenByteArrayType(DecimalBytes(t.Precision)))
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
	if dictionaryPays(c) {
		n = parquet.Encoded(n, &parquet.RLEDictionary)
	} else {
		n = parquet.Encoded(n, &parquet.Plain)
	}
	return parquet.Optional(n)
}

// dictionaryPays reports whether column c is written RLE_DICTIONARY rather
// than PLAIN. The Writer decides per column, not by measuring each file, so
// the choice is by what the column usually holds
// (measured with BenchmarkEncodeSize, whose varied batch is 24% smaller
// than with parquet-go's defaults):
//
//   - varchar and json: yes. Mapped strings are mostly categories (actions,
//     names, user agents, ids repeated across events) and JSON values often
//     repeat too (_extras of a few shapes), where a dictionary shrinks the
//     column several-fold before snappy. A column of mostly distinct values
//     costs little more than PLAIN (the indexes) and is bounded: once its
//     dictionary passes dictionaryMaxBytes, the rest of the file's pages of
//     it are PLAIN (pages already written keep the dictionary; readers take
//     the mix), and a reused Writer starts the next file with an empty
//     dictionary.
//   - event_id: no. It is distinct per event (child rows repeat it only per
//     array element), so the dictionary would be as large as the column:
//     files measured 5% larger and slower to encode with one.
//   - smallint, integer, bigint, date and decimals on INT32/INT64: yes, ids,
//     counts, amounts and days repeat.
//   - timestamp: no. Microsecond times are nearly all distinct (files
//     measured 7% larger with a dictionary).
//   - boolean, real, double and FIXED_LEN_BYTE_ARRAY decimals: no (PLAIN
//     booleans are bits already; floats rarely repeat).
func dictionaryPays(c schema.Column) bool {
	switch c.Type.Kind {
	case schema.Varchar:
		return c.Name != schema.ColEventID
	case schema.JSON, schema.Smallint, schema.Integer, schema.Bigint, schema.Date:
		return true
	case schema.Decimal:
		return c.Type.Precision <= 18
	}
	return false
}

// dictionaryMaxBytes bounds each column's dictionary (as Arrow's and
// parquet-mr's 1 MiB dictionary page limit do), as the bytes of its
// dictionary page: the value that would take it past the bound ends the
// page (the Writer checks every value), and the column's later pages in the
// file are PLAIN. A reused Writer starts each file with empty dictionaries.
const dictionaryMaxBytes = 1 << 20

// DecimalBytes returns the size of the FIXED_LEN_BYTE_ARRAY of a decimal of
// precision p (used for 19 to 38): the fewest bytes whose two's complement
// holds every p-digit integer, as Spark and Arrow size them (9 bytes for 19
// and 20 digits, 16 for 38).
func DecimalBytes(p int) int {
	if p < 1 || p > schema.MaxDecimalPrecision {
		panic(fmt.Sprintf("pq: no decimal of precision %d", p))
	}
	return schema.DecimalBytes(p)
}

// Schema returns the Parquet schema of a table.
func Schema(t *schema.Table) *parquet.Schema {
	g := orderedGroup{Group: parquet.Group{}, order: make([]string, len(t.Columns))}
	for i, c := range t.Columns {
		g.Group[c.Name] = node(c)
		g.order[i] = c.Name
	}
	return parquet.NewSchema(t.Name, g)
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
		// A decimal widened from precision ≤ 18 to > 18 reads its INT32 or
		// INT64 as digits.
		if c := r.table.Columns[i].Type; c.Kind == schema.Decimal && c.Precision > 18 && (v.Kind() == parquet.Int64 || v.Kind() == parquet.Int32) {
			dst[i] = schema.Value{S: fmt.Sprint(dst[i].I)}
		}
	}
	return nil
}

// Close releases the reader.
func (r *Reader) Close() error { return r.rows.Close() }
