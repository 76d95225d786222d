package pq

import (
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/wharfdata/wharf/schema"
)

// Layout is what a loader that reads a file by position (Redshift's COPY of
// Parquet matches columns by position, not by name) needs to know of it.
type Layout struct {
	Columns []string // the file's columns, in file order
	Rows    int64
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
		if c.Type.Kind != schema.Decimal {
			continue
		}
		col, _ := f.Schema().Lookup(name)
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
