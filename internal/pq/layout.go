package pq

import (
	"fmt"
	"io"
	"math/big"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/wharfdata/wharf/schema"
)

// Layout is what a loader that reads a file by position (Redshift's COPY of
// Parquet matches columns by position, not by name) needs to know of it.
type Layout struct {
	Columns []string // the file's columns, in file order
	// Types holds, per column, the type that holds the file's values as they
	// are written: the table's type, except for a column written before a
	// widening or under another physical type (an INT32 integer stays
	// integer after the column became bigint; a 16-byte decimal of precision
	// 20 is decimal(38,s)). Redshift's COPY does not coerce Parquet types, so
	// such a file is staged with these types and cast in the merge.
	Types []schema.Type
	Rows  int64
}

// ReadLayout reads the footer of a file of table t (size bytes, read through
// r, which may fetch ranges from S3) and returns its columns in file order.
// Like Open, it refuses a file written by a newer schema (a column t lacks)
// or with a decimal column of another scale, and a file without event_id.
func ReadLayout(r io.ReaderAt, size int64, t *schema.Table) (Layout, error) {
	f, err := parquet.OpenFile(r, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return Layout{}, fmt.Errorf("open parquet for %s: %w", t.Name, err)
	}
	var out Layout
	for _, path := range f.Schema().Columns() {
		if len(path) != 1 {
			return Layout{}, fmt.Errorf("open parquet for %s: nested column %v is not wharf's layout", t.Name, path)
		}
		out.Columns = append(out.Columns, path[0])
	}
	hasID := false
	for _, name := range out.Columns {
		i := t.Column(name)
		if i < 0 {
			return Layout{}, fmt.Errorf("open parquet for %s: %w: the file has column %q, which the table does not", t.Name, ErrNewerSchema, name)
		}
		hasID = hasID || name == schema.ColEventID
		c := t.Columns[i]
		col, _ := f.Schema().Lookup(name)
		out.Types = append(out.Types, writtenType(col.Node, c.Type))
		if c.Type.Kind != schema.Decimal {
			continue
		}
		if lt := col.Node.Type().LogicalType(); lt != nil {
			if d, ok := lt.Value.(*format.DecimalType); ok && int(d.Scale) != c.Type.Scale {
				return Layout{}, fmt.Errorf("open parquet for %s: column %s was written with scale %d, the table has scale %d; a decimal's scale cannot change under old files", t.Name, name, d.Scale, c.Type.Scale)
			}
		}
	}
	if !hasID {
		return Layout{}, fmt.Errorf("open parquet for %s: the file has no %s column", t.Name, schema.ColEventID)
	}
	out.Rows = f.NumRows()
	return out, nil
}

// writtenType returns the type that holds the values of a file column of
// node n, declared want in the table (see Layout.Types).
func writtenType(n parquet.Node, want schema.Type) schema.Type {
	typ := n.Type()
	var logical any
	if lt := typ.LogicalType(); lt != nil {
		logical = lt.Value
	}
	switch want.Kind {
	case schema.Smallint, schema.Integer, schema.Bigint:
		switch {
		case typ.Kind() == parquet.Int64:
			return schema.Type{Kind: schema.Bigint}
		case typ.Kind() == parquet.Int32 && isInt16(logical):
			return schema.Type{Kind: schema.Smallint}
		case typ.Kind() == parquet.Int32:
			return schema.Type{Kind: schema.Integer}
		}
	case schema.Decimal:
		d, ok := logical.(*format.DecimalType)
		if !ok {
			return want
		}
		p := int(d.Precision)
		switch typ.Kind() {
		case parquet.Int64:
			if p <= 9 { // written as INT64 by a writer before INT32 decimals
				p = 18
			}
		case parquet.FixedLenByteArray:
			if n := typ.Length(); n != DecimalBytes(p) {
				p = min(decimalDigits(n), schema.MaxDecimalPrecision)
			}
		}
		return schema.Type{Kind: schema.Decimal, Precision: p, Scale: int(d.Scale)}
	}
	return want
}

// decimalDigits is the most digits every integer of which n bytes of two's
// complement hold.
func decimalDigits(n int) int {
	limit := new(big.Int).Lsh(big.NewInt(1), uint(8*n-1)) // 2^(8n-1)
	return len(limit.String()) - 1
}

func isInt16(logical any) bool {
	i, ok := logical.(*format.IntType)
	return ok && i.BitWidth == 16
}
