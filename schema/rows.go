package schema

import (
	"bytes"
	"math/big"
	"slices"
	"unsafe"
)

// Rows holds flattened rows column by column, one TableRows per table:
// what Decoder.FlattenInto appends to, what the batcher buffers, and what
// the Parquet writer encodes, with no value boxed per cell. The zero value
// is empty and ready to use. A Rows is not safe for concurrent use.
type Rows struct {
	tables []*TableRows // in the order their first rows came
}

// TableRows is the rows of one table, column by column: Cols[i] holds the
// values of Table.Columns[i].
type TableRows struct {
	Table *Table
	Len   int // rows
	// Truncated counts the strings of these rows that were cut to their
	// column's byte length, the one alteration wharf makes
	// (docs/design.md §2).
	Truncated int64
	Cols      []ColumnValues
}

// ColumnValues holds one column's values of some rows. Def is nil while
// every row has a value; once one is NULL, it has a byte per row, 1 for a
// value and 0 for NULL. The values of the rows that have one are, in row
// order, in Ints or in Bytes, by the column's kind:
//
//	Boolean                       Ints (0 or 1)
//	Smallint, Integer, Bigint     Ints
//	Real, Double                  Ints, the IEEE 754 bits of the float64
//	                              (a real's value rounded to float32 first)
//	Decimal                       Ints, the unscaled value (precision ≤ 18);
//	                              Bytes, the unscaled value as big-endian two's
//	                              complement of DecimalBytes(precision) bytes
//	Varchar, JSON                 Bytes, the value i ending at Ends[i]
//	Timestamp                     Ints, microseconds since the Unix epoch, UTC
//	Date                          Ints, days since the Unix epoch
type ColumnValues struct {
	Def   []byte
	Ints  []int64
	Bytes []byte
	Ends  []uint32 // varchar and json: where each value ends in Bytes
}

// Tables returns the tables that have rows, each once.
func (r *Rows) Tables() []*TableRows { return r.tables }

// Len returns the number of rows, across tables.
func (r *Rows) Len() int {
	n := 0
	for _, t := range r.tables {
		n += t.Len
	}
	return n
}

// Size estimates the bytes the rows hold in memory, for the batcher's caps.
func (r *Rows) Size() int {
	n := 0
	for _, t := range r.tables {
		n += t.Size()
	}
	return n
}

// Truncated returns the strings cut to their column's length, across tables.
func (r *Rows) Truncated() int64 {
	var n int64
	for _, t := range r.tables {
		n += t.Truncated
	}
	return n
}

// Reset empties r, keeping its buffers.
func (r *Rows) Reset() {
	for _, t := range r.tables {
		t.Reset()
	}
	r.tables = r.tables[:0]
}

// For returns the rows of table t, adding an empty TableRows for it when r
// has none.
func (r *Rows) For(t *Table) *TableRows {
	for _, tr := range r.tables {
		if tr.Table == t {
			return tr
		}
	}
	// Reuse a TableRows of the table that Reset left past the end.
	if n := len(r.tables); n < cap(r.tables) {
		spare := r.tables[:cap(r.tables)]
		for i := n; i < len(spare); i++ {
			if spare[i] != nil && spare[i].Table == t {
				spare[n], spare[i] = spare[i], spare[n]
				r.tables = spare[:n+1]
				return spare[n]
			}
		}
	}
	tr := NewTableRows(t)
	r.tables = append(r.tables, tr)
	return tr
}

// Append appends every row of o to r.
func (r *Rows) Append(o *Rows) {
	for _, t := range o.tables {
		if t.Len > 0 {
			r.For(t.Table).Append(t)
		}
	}
}

// AppendRow appends one row (its Values, one per column of its Table).
func (r *Rows) AppendRow(row Row) { r.For(row.Table).AppendRow(row.Values) }

// RowsOf returns rows as a Rows.
func RowsOf(rows ...Row) *Rows {
	r := &Rows{}
	for _, row := range rows {
		r.AppendRow(row)
	}
	return r
}

// Slice appends r's rows to dst as Rows, table by table, each row's
// values in its own slice and its strings sharing one allocation.
func (r *Rows) Slice(dst []Row) []Row {
	for _, t := range r.tables {
		dst = t.Slice(dst)
	}
	return dst
}

// NewTableRows returns an empty TableRows of table t.
func NewTableRows(t *Table) *TableRows {
	return &TableRows{Table: t, Cols: make([]ColumnValues, len(t.Columns))}
}

// Reset empties tr, keeping its buffers.
func (tr *TableRows) Reset() {
	tr.Len, tr.Truncated = 0, 0
	for i := range tr.Cols {
		c := &tr.Cols[i]
		c.Def, c.Ints, c.Bytes, c.Ends = nil, c.Ints[:0], c.Bytes[:0], c.Ends[:0]
	}
}

// Size estimates the bytes tr's rows hold in memory.
func (tr *TableRows) Size() int {
	n := 0
	for i := range tr.Cols {
		c := &tr.Cols[i]
		n += len(c.Def) + 8*len(c.Ints) + len(c.Bytes) + 4*len(c.Ends)
	}
	return n
}

// Append appends every row of o, a TableRows of the same table.
func (tr *TableRows) Append(o *TableRows) {
	if o.Table != tr.Table {
		panic("schema: TableRows.Append of another table's rows")
	}
	for i := range tr.Cols {
		c, oc := &tr.Cols[i], &o.Cols[i]
		switch {
		case oc.Def != nil:
			if c.Def == nil {
				c.Def = ones(c.Def, tr.Len)
			}
			c.Def = append(c.Def, oc.Def...)
		case c.Def != nil:
			c.Def = ones(c.Def, o.Len)
		}
		c.Ints = append(c.Ints, oc.Ints...)
		if len(oc.Ends) > 0 {
			base := uint32(len(c.Bytes))
			for _, e := range oc.Ends {
				c.Ends = append(c.Ends, base+e)
			}
		}
		c.Bytes = append(c.Bytes, oc.Bytes...)
	}
	tr.Len += o.Len
	tr.Truncated += o.Truncated
}

// Text returns value v (counted among the column's non-NULL values) of a
// varchar or json column. It points into the column's buffer: valid until
// the rows are reset.
func (c *ColumnValues) Text(v int) []byte {
	lo := uint32(0)
	if v > 0 {
		lo = c.Ends[v-1]
	}
	return c.Bytes[lo:c.Ends[v]:c.Ends[v]]
}

// Valid reports whether row r has a value.
func (c *ColumnValues) Valid(r int) bool { return c.Def == nil || c.Def[r] != 0 }

// ones appends n 1s.
func ones(dst []byte, n int) []byte {
	dst = slices.Grow(dst, n)
	for range n {
		dst = append(dst, 1)
	}
	return dst
}

// appendString appends a varchar or json value.
func (c *ColumnValues) appendString(b []byte) {
	if c.Def != nil {
		c.Def = append(c.Def, 1)
	}
	c.Bytes = append(c.Bytes, b...)
	c.Ends = append(c.Ends, uint32(len(c.Bytes)))
}

func (c *ColumnValues) appendInt(v int64) {
	if c.Def != nil {
		c.Def = append(c.Def, 1)
	}
	c.Ints = append(c.Ints, v)
}

// def marks that the row being added has a value, where it is not an
// integer or a string (a decimal of more than 18 digits).
func (c *ColumnValues) def() {
	if c.Def != nil {
		c.Def = append(c.Def, 1)
	}
}

// appendNull appends NULL as row r.
func (c *ColumnValues) appendNull(r int) {
	if c.Def == nil {
		c.Def = ones(make([]byte, 0, max(2*r, 64)), r)
	}
	c.Def = append(c.Def, 0)
}

// AppendRow appends one row: vals holds a Value per column (see Value).
func (tr *TableRows) AppendRow(vals []Value) {
	if len(vals) != len(tr.Cols) {
		panic("schema: AppendRow with a value count that is not the table's column count")
	}
	for i := range tr.Cols {
		c, v := &tr.Cols[i], &vals[i]
		typ := tr.Table.Columns[i].Type
		switch {
		case v.Null:
			c.appendNull(tr.Len)
		case typ.Kind == Varchar || typ.Kind == JSON:
			c.appendString(unsafe.Slice(unsafe.StringData(v.S), len(v.S)))
		case typ.Kind == Decimal && typ.Precision > 18:
			c.def()
			c.Bytes = appendDecimalBytes(c.Bytes, v.S, DecimalBytes(typ.Precision))
		default:
			c.appendInt(v.I)
		}
	}
	tr.Len++
}

// Slice appends tr's rows to dst as Rows.
func (tr *TableRows) Slice(dst []Row) []Row {
	cols := tr.Table.Columns
	var all []byte
	for i := range tr.Cols {
		if k := cols[i].Type.Kind; k == Varchar || k == JSON {
			all = append(all, tr.Cols[i].Bytes...)
		}
	}
	strs := string(all)
	vals := make([]Value, tr.Len*len(cols))
	next := make([]int, len(cols)) // per column, its next value
	base := make([]int, len(cols)) // per string column, where its bytes start in strs
	off := 0
	for i := range tr.Cols {
		if k := cols[i].Type.Kind; k == Varchar || k == JSON {
			base[i] = off
			off += len(tr.Cols[i].Bytes)
		}
	}
	for r := range tr.Len {
		row := vals[r*len(cols) : (r+1)*len(cols) : (r+1)*len(cols)]
		for i := range tr.Cols {
			c := &tr.Cols[i]
			if !c.Valid(r) {
				row[i] = NullValue
				continue
			}
			v := next[i]
			next[i]++
			switch typ := cols[i].Type; {
			case typ.Kind == Varchar || typ.Kind == JSON:
				lo := uint32(0)
				if v > 0 {
					lo = c.Ends[v-1]
				}
				row[i] = Value{S: strs[base[i]+int(lo) : base[i]+int(c.Ends[v])]}
			case typ.Kind == Decimal && typ.Precision > 18:
				n := DecimalBytes(typ.Precision)
				row[i] = Value{S: decimalDigits(c.Bytes[v*n : (v+1)*n])}
			default:
				row[i] = Value{I: c.Ints[v]}
			}
		}
		dst = append(dst, Row{Table: tr.Table, Values: row})
	}
	return dst
}

// mark is where a TableRows ended, to take back the rows of an event that
// failed to flatten.
type mark struct {
	len   int
	trunc int64
}

func (tr *TableRows) mark() mark { return mark{tr.Len, tr.Truncated} }

// undo takes back the rows (and a row partly added) after m.
func (tr *TableRows) undo(m mark) {
	tr.Len, tr.Truncated = m.len, m.trunc
	for i := range tr.Cols {
		c := &tr.Cols[i]
		values := m.len
		if c.Def != nil {
			c.Def = c.Def[:m.len]
			values = bytes.Count(c.Def, []byte{1})
		}
		switch typ := tr.Table.Columns[i].Type; {
		case typ.Kind == Varchar || typ.Kind == JSON:
			c.Ends = c.Ends[:values]
			end := uint32(0)
			if values > 0 {
				end = c.Ends[values-1]
			}
			c.Bytes = c.Bytes[:end]
		case typ.Kind == Decimal && typ.Precision > 18:
			c.Bytes = c.Bytes[:values*DecimalBytes(typ.Precision)]
		default:
			c.Ints = c.Ints[:values]
		}
	}
}

// DecimalBytes returns the size of the big-endian two's complement in which
// a decimal of precision p (19 to 38) is kept and written to Parquet
// (FIXED_LEN_BYTE_ARRAY): the fewest bytes whose two's complement holds
// every p-digit integer, as Spark and Arrow size them (9 bytes for 19 and 20
// digits, 16 for 38).
func DecimalBytes(p int) int {
	if p < 1 || p > MaxDecimalPrecision {
		panic("schema: no decimal of that precision")
	}
	return decimalBytesOf[p]
}

var decimalBytesOf = func() (out [MaxDecimalPrecision + 1]int) {
	limit := new(big.Int)
	for p := 1; p <= MaxDecimalPrecision; p++ {
		limit.Exp(big.NewInt(10), big.NewInt(int64(p)), nil) // 10^p
		n := 1
		for new(big.Int).Lsh(big.NewInt(1), uint(8*n-1)).Cmp(limit) < 0 {
			n++
		}
		out[p] = n
	}
	return out
}()

// appendDecimalBytes appends the size-byte big-endian two's complement of
// the unscaled decimal digits s, which fit.
func appendDecimalBytes(dst []byte, s string, size int) []byte {
	n, _ := new(big.Int).SetString(s, 10)
	return appendBigBytes(dst, n, size)
}

func appendBigBytes(dst []byte, n *big.Int, size int) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, size)...)
	out := dst[start:]
	if n.Sign() >= 0 {
		n.FillBytes(out)
		return dst
	}
	// two's complement: 2^(8*size) + n
	m := new(big.Int).Lsh(big.NewInt(1), uint(8*size))
	m.Add(m, n)
	m.FillBytes(out)
	return dst
}

// decimalDigits returns the unscaled decimal digits of a big-endian two's
// complement.
func decimalDigits(b []byte) string {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return n.String()
}
