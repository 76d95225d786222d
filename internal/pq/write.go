package pq

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"math/bits"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/wharfdata/wharf/schema"
)

// Writer encodes rows of one table into Parquet files. Reuse it across
// files of that table to keep its buffers. A Writer is not safe for
// concurrent use.
//
// It writes the column buffers of schema.TableRows straight into pages: each
// column's definition levels, then its values PLAIN or as indexes into the
// column's dictionary, in one loop per column over typed slices, with no
// value boxed per cell. The schema, the footer and the page indexes are
// parquet-go's own structures (package format), so that the footers are
// those parquet-go wrote before save sizes and offsets
// (TestSameMetadataAsParquetGo).
type Writer struct {
	table  *schema.Table
	schema *parquet.Schema
	// From a file of the table that parquet-go wrote: the footer's schema,
	// column orders, version and created_by, which the Writer's files share.
	elems     []format.SchemaElement
	orders    []format.ColumnOrder
	version   int32
	createdBy string

	cols []column
	file []byte // the file being written
	page []byte // a page's body before compression
	z    []byte // a page's body compressed
	rows schema.TableRows
}

// column is one column's writer state, reused from file to file.
type column struct {
	c     schema.Column
	phys  format.Type
	size  int  // FIXED_LEN_BYTE_ARRAY: bytes per value
	dict  bool // RLE_DICTIONARY while the dictionary stays within its bound
	noMax bool // no bounds (json columns)

	ints  intDict
	strs  bytesDict
	idx   []int32  // a page's dictionary indexes
	uniq  []int32  // the distinct ones
	stamp []uint32 // per dictionary value, the last page (gen) that has it
	gen   uint32
	chunk []byte // the chunk's data pages, headers included
	pages []pageStat
}

// pageStat is what the page indexes and the footer keep of a page.
type pageStat struct {
	off      int // in column.chunk
	size     int // header and compressed body
	rawSize  int // header and uncompressed body
	firstRow int
	nulls    int
	values   int
	min, max []byte // nil when the page has no value
	dict     bool
}

// Page and dictionary bounds (see dictionaryPays).
const (
	// pageBytes is where a data page is cut: at this many bytes of values
	// as PLAIN would hold them (parquet-go's default page buffer).
	pageBytes = 256 << 10
	// columnIndexBytes is the longest bound a page index keeps of a string
	// column (parquet-go's default): a longer minimum is cut, a longer
	// maximum cut and rounded up.
	columnIndexBytes = 16
)

// NewWriter returns a Writer for table t.
func NewWriter(t *schema.Table) *Writer {
	w := &Writer{table: t, schema: Schema(t), cols: make([]column, len(t.Columns))}
	w.rows = *schema.NewTableRows(t)
	for i, c := range t.Columns {
		col := &w.cols[i]
		col.c = c
		col.noMax = c.Type.Kind == schema.JSON
		switch c.Type.Kind {
		case schema.Boolean:
			col.phys = format.Boolean
		case schema.Smallint, schema.Integer, schema.Date:
			col.phys = format.Int32
		case schema.Bigint, schema.Timestamp:
			col.phys = format.Int64
		case schema.Real:
			col.phys = format.Float
		case schema.Double:
			col.phys = format.Double
		case schema.Decimal:
			switch {
			case c.Type.Precision <= 9:
				col.phys = format.Int32
			case c.Type.Precision <= 18:
				col.phys = format.Int64
			default:
				col.phys, col.size = format.FixedLenByteArray, DecimalBytes(c.Type.Precision)
			}
		case schema.Varchar, schema.JSON:
			col.phys = format.ByteArray
		default:
			panic(fmt.Sprintf("pq: no parquet type for %s", c.Type))
		}
	}
	w.footerTemplate()
	return w
}

// footerTemplate takes the schema of the footer from an empty file that
// parquet-go writes of the table, with the options the files used to be
// written with.
func (w *Writer) footerTemplate() {
	var buf bytes.Buffer
	pw := parquet.NewWriter(&buf, append([]parquet.WriterOption{w.schema}, w.options()...)...)
	if err := pw.Close(); err != nil {
		panic(fmt.Sprintf("pq: an empty file of %s: %v", w.table.Name, err))
	}
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		panic(fmt.Sprintf("pq: an empty file of %s: %v", w.table.Name, err))
	}
	md := f.Metadata()
	w.elems, w.orders, w.version, w.createdBy = md.Schema, md.ColumnOrders, md.Version, md.CreatedBy
	if len(w.orders) == 0 {
		for range w.table.Columns {
			w.orders = append(w.orders, format.ColumnOrder{Value: &format.TypeDefinedOrder{}})
		}
	}
}

// options are the parquet-go writer settings that footerTemplate writes its
// empty file with: the schema's types and the created_by of the files.
func (w *Writer) options() []parquet.WriterOption {
	return []parquet.WriterOption{
		parquet.Compression(fastSnappy{}),
		parquet.CreatedBy("wharf", "1", ""),
		parquet.DataPageVersion(1),
		parquet.DefaultEncoding(&parquet.Plain),
	}
}

// Encode writes rows (all of table t) to w as one Parquet file.
func Encode(w io.Writer, t *schema.Table, rows []schema.Row) error {
	return NewWriter(t).Encode(w, rows)
}

// Encode writes rows to out as one Parquet file of one row group.
func (w *Writer) Encode(out io.Writer, rows []schema.Row) error {
	for i := range rows {
		if rows[i].Table != w.table || len(rows[i].Values) != len(w.table.Columns) {
			return fmt.Errorf("encode %s: row %d belongs to table %s", w.table.Name, i, rows[i].Table.Name)
		}
	}
	w.rows.Reset()
	for i := range rows {
		w.rows.AppendRow(rows[i].Values)
	}
	err := w.EncodeRows(out, &w.rows)
	w.rows.Reset()
	return err
}

// EncodeRows writes rows, a TableRows of the writer's table, to out as one
// Parquet file of one row group.
func (w *Writer) EncodeRows(out io.Writer, rows *schema.TableRows) error {
	if rows.Table != w.table || len(rows.Cols) != len(w.cols) {
		return fmt.Errorf("encode %s: rows of table %s", w.table.Name, rows.Table.Name)
	}
	for i := range rows.Cols {
		if c := &rows.Cols[i]; c.Def != nil && len(c.Def) != rows.Len || c.Def == nil && w.cols[i].values(c) != rows.Len {
			return fmt.Errorf("encode %s: column %s does not have %d rows", w.table.Name, w.table.Columns[i].Name, rows.Len)
		}
	}
	w.file = append(w.file[:0], "PAR1"...)
	md := format.FileMetaData{
		Version:      w.version,
		Schema:       w.elems,
		NumRows:      int64(rows.Len),
		CreatedBy:    w.createdBy,
		ColumnOrders: w.orders,
	}
	if rows.Len > 0 {
		rg := format.RowGroup{NumRows: int64(rows.Len), FileOffset: int64(len(w.file)), Columns: make([]format.ColumnChunk, len(w.cols))}
		cis := make([]format.ColumnIndex, len(w.cols))
		for i := range w.cols {
			cc, ci, err := w.writeChunk(&w.cols[i], &rows.Cols[i], rows.Len)
			if err != nil {
				return fmt.Errorf("encode %s: column %s: %w", w.table.Name, w.table.Columns[i].Name, err)
			}
			rg.Columns[i], cis[i] = cc, ci
			rg.TotalByteSize += cc.MetaData.TotalUncompressedSize
			rg.TotalCompressedSize += cc.MetaData.TotalCompressedSize
		}
		// The page indexes, after the row group: every column index, then
		// every offset index.
		for i := range w.cols {
			off := len(w.file)
			var err error
			if w.file, err = appendThrift(w.file, &cis[i]); err != nil {
				return err
			}
			rg.Columns[i].ColumnIndexOffset, rg.Columns[i].ColumnIndexLength = int64(off), int32(len(w.file)-off)
		}
		for i := range w.cols {
			oi := w.offsetIndex(&w.cols[i], rg.Columns[i].MetaData)
			off := len(w.file)
			var err error
			if w.file, err = appendThrift(w.file, &oi); err != nil {
				return err
			}
			rg.Columns[i].OffsetIndexOffset, rg.Columns[i].OffsetIndexLength = int64(off), int32(len(w.file)-off)
		}
		md.RowGroups = []format.RowGroup{rg}
	}
	start := len(w.file)
	var err error
	if w.file, err = appendThrift(w.file, &md); err != nil {
		return fmt.Errorf("encode %s: footer: %w", w.table.Name, err)
	}
	w.file = binary.LittleEndian.AppendUint32(w.file, uint32(len(w.file)-start))
	w.file = append(w.file, "PAR1"...)
	if _, err := out.Write(w.file); err != nil {
		return fmt.Errorf("encode %s: %w", w.table.Name, err)
	}
	if cap(w.file) > 64<<20 {
		w.file = nil // do not keep an unusually large file's buffer
	}
	return nil
}

func appendThrift(dst []byte, v any) ([]byte, error) {
	b, err := thrift.Marshal(new(thrift.CompactProtocol), v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// writeChunk writes the column chunk of col's values to the file: its
// dictionary page, if any, then its data pages.
func (w *Writer) writeChunk(col *column, v *schema.ColumnValues, n int) (format.ColumnChunk, format.ColumnIndex, error) {
	col.dict = dictionaryPays(col.c)
	col.ints.reset()
	col.strs.reset()
	col.chunk, col.pages = col.chunk[:0], col.pages[:0]
	next := 0 // the next value (among the non-NULL ones)
	for r := 0; r < n; {
		end, nv, err := w.writePage(col, v, r, n, next)
		if err != nil {
			return format.ColumnChunk{}, format.ColumnIndex{}, err
		}
		r, next = end, next+nv
	}

	md := format.ColumnMetaData{
		Type:         col.phys,
		PathInSchema: []string{col.c.Name},
		Codec:        format.Snappy,
		NumValues:    int64(n),
	}
	// The dictionary page comes first.
	dictPages, err := w.writeDictPage(col, &md)
	if err != nil {
		return format.ColumnChunk{}, format.ColumnIndex{}, err
	}
	md.DataPageOffset = int64(len(w.file))
	dataStart := len(w.file)
	w.file = append(w.file, col.chunk...)
	var plain, dict int32
	var nulls int64
	var mn, mx []byte
	for i := range col.pages {
		p := &col.pages[i]
		p.off += dataStart
		md.TotalUncompressedSize += int64(p.rawSize)
		md.TotalCompressedSize += int64(p.size)
		nulls += int64(p.nulls)
		if p.dict {
			dict++
		} else {
			plain++
		}
		if p.min != nil {
			if mn == nil || col.less(p.min, mn) {
				mn = p.min
			}
			if mx == nil || col.less(mx, p.max) {
				mx = p.max
			}
		}
	}
	md.Encoding, md.EncodingStats = encodings(plain, dict, dictPages)
	md.Statistics.NullCount = nulls
	if !col.noMax && mn != nil {
		md.Statistics.MinValue, md.Statistics.MaxValue = mn, mx
	}
	return format.ColumnChunk{MetaData: md}, col.columnIndex(), nil
}

// writeDictPage writes col's dictionary page, when its pages used one, to
// the file, counting it in md, and returns the dictionary pages written.
func (w *Writer) writeDictPage(col *column, md *format.ColumnMetaData) (int, error) {
	if !col.dictUsed() {
		return 0, nil
	}
	chunkStart := len(w.file)
	body, count := col.dictPage(w.page[:0])
	w.page = body
	hdrLen, zLen, err := w.appendPage(body, format.PageHeader{
		Type:                 format.DictionaryPage,
		DictionaryPageHeader: thrift.New(format.DictionaryPageHeader{NumValues: int32(count), Encoding: format.Plain}),
	})
	if err != nil {
		return 0, err
	}
	md.DictionaryPageOffset = int64(chunkStart)
	md.TotalUncompressedSize += int64(hdrLen + len(body))
	md.TotalCompressedSize += int64(hdrLen + zLen)
	return 1, nil
}

// encodings are a chunk's encodings and their stats, of plain and dict
// data pages and dictPages dictionary pages.
func encodings(plain, dict int32, dictPages int) ([]format.Encoding, []format.PageEncodingStats) {
	enc := []format.Encoding{format.Plain, format.RLE}
	if dict > 0 {
		enc = append(enc, format.RLEDictionary)
	}
	var stats []format.PageEncodingStats
	if plain > 0 {
		stats = append(stats, format.PageEncodingStats{PageType: format.DataPage, Encoding: format.Plain, Count: plain})
	}
	if dict > 0 {
		stats = append(stats, format.PageEncodingStats{PageType: format.DataPage, Encoding: format.RLEDictionary, Count: dict})
	}
	if dictPages > 0 {
		stats = append(stats, format.PageEncodingStats{PageType: format.DictionaryPage, Encoding: format.Plain, Count: 1})
	}
	return enc, stats
}

// columnIndex is the column index of col's pages.
func (col *column) columnIndex() format.ColumnIndex {
	ci := format.ColumnIndex{BoundaryOrder: format.Unordered}
	for i := range col.pages {
		p := &col.pages[i]
		ci.NullPages = append(ci.NullPages, p.values == 0)
		ci.NullCounts = append(ci.NullCounts, int64(p.nulls))
		lo, hi := []byte{}, []byte{}
		if p.values > 0 && !col.noMax {
			lo, hi = p.min, p.max
			if col.phys == format.ByteArray {
				lo, hi = truncateMin(lo), truncateMax(hi)
			}
		}
		ci.MinValues = append(ci.MinValues, lo)
		ci.MaxValues = append(ci.MaxValues, hi)
	}
	return ci
}

func (w *Writer) offsetIndex(col *column, md format.ColumnMetaData) format.OffsetIndex {
	var oi format.OffsetIndex
	for i := range col.pages {
		p := &col.pages[i]
		oi.PageLocations = append(oi.PageLocations, format.PageLocation{Offset: int64(p.off), CompressedPageSize: int32(p.size), FirstRowIndex: int64(p.firstRow)})
	}
	return oi
}

// appendPage compresses body and appends its header and it to the file.
func (w *Writer) appendPage(body []byte, h format.PageHeader) (hdrLen, zLen int, err error) {
	w.z, _ = fastSnappy{}.Encode(w.z[:cap(w.z)], body)
	h.UncompressedPageSize, h.CompressedPageSize = int32(len(body)), int32(len(w.z))
	start := len(w.file)
	if w.file, err = appendThrift(w.file, &h); err != nil {
		return 0, 0, err
	}
	hdrLen = len(w.file) - start
	w.file = append(w.file, w.z...)
	return hdrLen, len(w.z), nil
}

// writePage encodes one data page of col from row r (value next) into
// col.chunk, ending at n or where the page is full or the dictionary
// reaches its bound, and returns the row it ended at and its values.
func (w *Writer) writePage(col *column, v *schema.ColumnValues, r, n, next int) (end, values int, err error) {
	var def []byte // nil: every row has a value
	if v.Def != nil {
		def = v.Def[r:n]
	}
	rows, vals := col.pageExtent(v, def, n-r, next)
	dict := col.dict && vals > 0
	if dict {
		if rows, vals = col.indexPage(v, def, next, rows, vals); rows == 0 {
			// The first value already outgrows the dictionary: a PLAIN page.
			return w.writePage(col, v, r, n, next)
		}
		dict = vals > 0
	}
	if def != nil {
		def = def[:rows]
	}

	// The body: definition levels (RLE, with their length), then values.
	body := w.page[:0]
	body = append(body, 0, 0, 0, 0)
	if def == nil {
		body = binary.AppendUvarint(body, uint64(rows)<<1)
		body = append(body, 1)
	} else {
		body = appendLevels(body, def)
	}
	binary.LittleEndian.PutUint32(body, uint32(len(body)-4))
	var lo, hi []byte
	if dict {
		width := max(1, bits.Len32(uint32(col.dictLen()-1)))
		body = append(body, byte(width))
		body = appendHybrid(body, col.idx, width)
	} else {
		body = col.appendPlain(body, v, next, vals)
	}
	switch {
	case dict:
		lo, hi = col.dictBounds()
	case vals > 0:
		lo, hi = col.bounds(v, next, vals)
	}
	w.page = body
	if err := w.appendDataPage(col, body, pageStat{firstRow: r, nulls: rows - vals, values: vals, min: lo, max: hi, dict: dict}); err != nil {
		return 0, 0, err
	}
	return r + rows, vals, nil
}

// pageExtent is where a page from value next ends: pageBytes of values as
// PLAIN holds them, of at most left rows (def their levels, nil when every
// row has a value). It returns the page's rows and values.
func (col *column) pageExtent(v *schema.ColumnValues, def []byte, left, next int) (rows, vals int) {
	switch {
	case def == nil && col.phys != format.ByteArray:
		rows = min(left, (pageBytes+col.fixedSize()-1)/col.fixedSize())
		vals = rows
	case def == nil:
		lo, limit := uint32(0), uint32(0)
		if next > 0 {
			lo = v.Ends[next-1]
		}
		for _, e := range v.Ends[next : next+left] {
			if limit >= pageBytes {
				break
			}
			limit += 4 + e - lo
			lo = e
			rows++
		}
		vals = rows
	default:
		for size := 0; rows < len(def) && size < pageBytes; rows++ {
			if def[rows] != 0 {
				size += col.plainSize(v, next+vals)
				vals++
			}
		}
	}
	return rows, vals
}

// indexPage indexes a page's values in the dictionary, noting the distinct
// ones (for the page's bounds); past the dictionary's bound the page ends
// at the value that would outgrow it, and the column goes on PLAIN. It
// returns the page's rows and values, cut so.
func (col *column) indexPage(v *schema.ColumnValues, def []byte, next, rows, vals int) (int, int) {
	col.idx, col.uniq = col.idx[:0], col.uniq[:0]
	col.gen++
	for k := 0; k < vals; k++ {
		i, ok := col.insert(v, next+k)
		if !ok {
			col.dict = false
			return rowOfValue(def, k), k // cut the page before value k's row
		}
		col.idx = append(col.idx, i)
		if int(i) >= len(col.stamp) {
			col.stamp = append(col.stamp, make([]uint32, int(i)+1-len(col.stamp))...)
		}
		if col.stamp[i] != col.gen {
			col.stamp[i] = col.gen
			col.uniq = append(col.uniq, i)
		}
	}
	return rows, vals
}

// rowOfValue is the row of a page's value k (def its levels, nil when every
// row has a value).
func rowOfValue(def []byte, k int) int {
	if def == nil {
		return k
	}
	seen := 0
	for rr := 0; rr < len(def); rr++ {
		if def[rr] != 0 {
			if seen == k {
				return rr
			}
			seen++
		}
	}
	return k
}

// appendDataPage compresses a data page's body and appends its header and
// it to col.chunk, recording the page (st, with its place and sizes).
func (w *Writer) appendDataPage(col *column, body []byte, st pageStat) (err error) {
	w.z, _ = fastSnappy{}.Encode(w.z[:cap(w.z)], body)
	enc := format.Plain
	if st.dict {
		enc = format.RLEDictionary
	}
	h := format.PageHeader{
		Type:                 format.DataPage,
		UncompressedPageSize: int32(len(body)),
		CompressedPageSize:   int32(len(w.z)),
		DataPageHeader: thrift.New(format.DataPageHeader{
			NumValues: int32(st.nulls + st.values), Encoding: enc,
			DefinitionLevelEncoding: format.RLE, RepetitionLevelEncoding: format.RLE,
		}),
	}
	start := len(col.chunk)
	if col.chunk, err = appendThrift(col.chunk, &h); err != nil {
		return err
	}
	hdr := len(col.chunk) - start
	col.chunk = append(col.chunk, w.z...)
	st.off, st.size, st.rawSize = start, len(col.chunk)-start, hdr+len(body)
	col.pages = append(col.pages, st)
	return nil
}

// fixedSize is the bytes a value of a fixed-size type takes PLAIN (a
// boolean counted as a byte).
func (col *column) fixedSize() int {
	switch col.phys {
	case format.FixedLenByteArray:
		return col.size
	case format.Int32, format.Float:
		return 4
	case format.Boolean:
		return 1
	}
	return 8
}

// values returns the number of values v holds.
func (col *column) values(v *schema.ColumnValues) int {
	switch col.phys {
	case format.ByteArray:
		return len(v.Ends)
	case format.FixedLenByteArray:
		return len(v.Bytes) / col.size
	}
	return len(v.Ints)
}

// dictBounds returns the least and greatest of the page's distinct
// dictionary values (col.uniq).
func (col *column) dictBounds() (lo, hi []byte) {
	if col.phys == format.ByteArray {
		mn, mx := col.strs.value(int(col.uniq[0])), col.strs.value(int(col.uniq[0]))
		for _, i := range col.uniq[1:] {
			s := col.strs.value(int(i))
			if bytes.Compare(s, mn) < 0 {
				mn = s
			} else if bytes.Compare(s, mx) > 0 {
				mx = s
			}
		}
		return bytes.Clone(mn), bytes.Clone(mx)
	}
	mn, mx := int64(math.MaxInt64), int64(math.MinInt64)
	for _, i := range col.uniq {
		x := col.ints.vals[i]
		mn, mx = min(mn, x), max(mx, x)
	}
	if col.phys == format.Int32 {
		return binary.LittleEndian.AppendUint32(nil, uint32(int32(mn))), binary.LittleEndian.AppendUint32(nil, uint32(int32(mx)))
	}
	return binary.LittleEndian.AppendUint64(nil, uint64(mn)), binary.LittleEndian.AppendUint64(nil, uint64(mx))
}

// plainSize is the bytes value i takes PLAIN.
func (col *column) plainSize(v *schema.ColumnValues, i int) int {
	switch col.phys {
	case format.ByteArray:
		lo := uint32(0)
		if i > 0 {
			lo = v.Ends[i-1]
		}
		return 4 + int(v.Ends[i]-lo)
	case format.FixedLenByteArray:
		return col.size
	case format.Int32, format.Float:
		return 4
	case format.Boolean:
		return 1
	}
	return 8
}

// appendPlain appends values [i, i+n) PLAIN.
func (col *column) appendPlain(dst []byte, v *schema.ColumnValues, i, n int) []byte {
	switch col.phys {
	case format.Boolean:
		var b byte
		for k, x := range v.Ints[i : i+n] {
			if x != 0 {
				b |= 1 << (k & 7)
			}
			if k&7 == 7 {
				dst = append(dst, b)
				b = 0
			}
		}
		if n&7 != 0 {
			dst = append(dst, b)
		}
	case format.Int32:
		for _, x := range v.Ints[i : i+n] {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(int32(x)))
		}
	case format.Int64:
		for _, x := range v.Ints[i : i+n] {
			dst = binary.LittleEndian.AppendUint64(dst, uint64(x))
		}
	case format.Float:
		for _, x := range v.Ints[i : i+n] {
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(math.Float64frombits(uint64(x)))))
		}
	case format.Double:
		for _, x := range v.Ints[i : i+n] {
			dst = binary.LittleEndian.AppendUint64(dst, uint64(x))
		}
	case format.FixedLenByteArray:
		dst = append(dst, v.Bytes[i*col.size:(i+n)*col.size]...)
	case format.ByteArray:
		lo := uint32(0)
		if i > 0 {
			lo = v.Ends[i-1]
		}
		for _, e := range v.Ends[i : i+n] {
			dst = binary.LittleEndian.AppendUint32(dst, e-lo)
			dst = append(dst, v.Bytes[lo:e]...)
			lo = e
		}
	}
	return dst
}

// bounds returns the least and greatest of values [i, i+n), PLAIN-encoded
// as the footer's and the page index's statistics hold them.
func (col *column) bounds(v *schema.ColumnValues, i, n int) (lo, hi []byte) {
	switch col.phys {
	case format.ByteArray:
		lo := uint32(0)
		if i > 0 {
			lo = v.Ends[i-1]
		}
		var mn, mx []byte
		for k, e := range v.Ends[i : i+n] {
			s := v.Bytes[lo:e]
			lo = e
			if k == 0 {
				mn, mx = s, s
				continue
			}
			if bytes.Compare(s, mn) < 0 {
				mn = s
			} else if bytes.Compare(s, mx) > 0 {
				mx = s
			}
		}
		return bytes.Clone(mn), bytes.Clone(mx)
	case format.FixedLenByteArray:
		var mn, mx []byte
		for k := range n {
			s := v.Bytes[(i+k)*col.size : (i+k+1)*col.size]
			if k == 0 || signedLess(s, mn) {
				mn = s
			}
			if k == 0 || signedLess(mx, s) {
				mx = s
			}
		}
		return bytes.Clone(mn), bytes.Clone(mx)
	case format.Float, format.Double:
		mn, mx := math.Inf(1), math.Inf(-1)
		for _, x := range v.Ints[i : i+n] {
			f := math.Float64frombits(uint64(x))
			mn, mx = math.Min(mn, f), math.Max(mx, f)
		}
		// A zero bound is written as -0 (minimum) and +0 (maximum).
		if mn == 0 {
			mn = math.Copysign(0, -1)
		}
		if mx == 0 {
			mx = 0
		}
		if col.phys == format.Float {
			return binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(mn))), binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(mx)))
		}
		return binary.LittleEndian.AppendUint64(nil, math.Float64bits(mn)), binary.LittleEndian.AppendUint64(nil, math.Float64bits(mx))
	}
	mn, mx := int64(math.MaxInt64), int64(math.MinInt64)
	for _, x := range v.Ints[i : i+n] {
		mn, mx = min(mn, x), max(mx, x)
	}
	switch col.phys {
	case format.Boolean:
		return []byte{byte(mn)}, []byte{byte(mx)}
	case format.Int32:
		return binary.LittleEndian.AppendUint32(nil, uint32(int32(mn))), binary.LittleEndian.AppendUint32(nil, uint32(int32(mx)))
	}
	return binary.LittleEndian.AppendUint64(nil, uint64(mn)), binary.LittleEndian.AppendUint64(nil, uint64(mx))
}

// less orders two bounds of the column, as bounds encodes them.
func (col *column) less(a, b []byte) bool {
	switch col.phys {
	case format.ByteArray:
		return bytes.Compare(a, b) < 0
	case format.FixedLenByteArray:
		return signedLess(a, b)
	case format.Boolean:
		return a[0] < b[0]
	case format.Int32:
		return int32(binary.LittleEndian.Uint32(a)) < int32(binary.LittleEndian.Uint32(b))
	case format.Int64:
		return int64(binary.LittleEndian.Uint64(a)) < int64(binary.LittleEndian.Uint64(b))
	case format.Float:
		return math.Float32frombits(binary.LittleEndian.Uint32(a)) < math.Float32frombits(binary.LittleEndian.Uint32(b))
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(a)) < math.Float64frombits(binary.LittleEndian.Uint64(b))
}

// signedLess compares two big-endian two's complement integers of one size
// (a decimal's sort order).
func signedLess(a, b []byte) bool {
	if a[0]^0x80 != b[0]^0x80 {
		return a[0]^0x80 < b[0]^0x80
	}
	return bytes.Compare(a[1:], b[1:]) < 0
}

// truncateMin cuts a string column's minimum for the page index.
func truncateMin(b []byte) []byte {
	if len(b) <= columnIndexBytes {
		return b
	}
	return b[:columnIndexBytes:columnIndexBytes]
}

// truncateMax cuts a string column's maximum for the page index, rounding
// it up; a maximum that cannot be rounded up is kept whole.
func truncateMax(b []byte) []byte {
	if len(b) <= columnIndexBytes {
		return b
	}
	p := bytes.Clone(b[:columnIndexBytes])
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] < 0xff {
			p[i]++
			return p[:i+1]
		}
	}
	return b
}

// appendLevels appends definition levels (0 or 1) in the RLE/bit-packed
// hybrid encoding of bit width 1.
func appendLevels(dst []byte, def []byte) []byte {
	for i := 0; i < len(def); {
		// A run of one level: RLE.
		j := i + 1
		for j < len(def) && def[j] == def[i] {
			j++
		}
		if j-i >= 8 || j == len(def) {
			dst = binary.AppendUvarint(dst, uint64(j-i)<<1)
			dst = append(dst, def[i])
			i = j
			continue
		}
		// Mixed levels: bit-packed groups of 8 up to the next long run.
		k := i
		for k < len(def) {
			r := k + 1
			for r < len(def) && def[r] == def[k] {
				r++
			}
			if r-k >= 16 {
				break
			}
			k = r
		}
		groups := (k - i + 7) / 8
		if groups > 63 {
			groups = 63
		}
		dst = binary.AppendUvarint(dst, uint64(groups)<<1|1)
		for g := range groups {
			var b byte
			for bit := range 8 {
				if p := i + g*8 + bit; p < len(def) && def[p] != 0 {
					b |= 1 << bit
				}
			}
			dst = append(dst, b)
		}
		i += groups * 8
	}
	return dst
}

// appendHybrid appends dictionary indexes in the RLE/bit-packed hybrid
// encoding of the given bit width: bit-packed groups of 8, runs of 8 or
// more as RLE.
func appendHybrid(dst []byte, idx []int32, width int) []byte {
	byteWidth := (width + 7) / 8
	for i := 0; i < len(idx); {
		j := i + 1
		for j < len(idx) && idx[j] == idx[i] {
			j++
		}
		if j-i >= 8 {
			dst = binary.AppendUvarint(dst, uint64(j-i)<<1)
			for b := range byteWidth {
				dst = append(dst, byte(idx[i]>>(8*b)))
			}
			i = j
			continue
		}
		// Bit-packed: up to the next run of 8 or more, in groups of 8 (the
		// last padded with zeros), at most 63 groups.
		k := i
		for k < len(idx) && k-i < 63*8 {
			r := k + 1
			for r < len(idx) && idx[r] == idx[k] {
				r++
			}
			if r-k >= 8 && k > i {
				break
			}
			k = r
		}
		groups := min((k-i+7)/8, 63)
		dst = binary.AppendUvarint(dst, uint64(groups)<<1|1)
		var acc uint64
		nb := 0
		for p := i; p < i+groups*8; p++ {
			var x uint64
			if p < len(idx) {
				x = uint64(idx[p])
			}
			acc |= x << nb
			nb += width
			for nb >= 8 {
				dst = append(dst, byte(acc))
				acc >>= 8
				nb -= 8
			}
		}
		i += groups * 8
	}
	return dst
}

// The column's dictionary.

func (col *column) dictUsed() bool { return col.dictLen() > 0 }

func (col *column) dictLen() int {
	if col.phys == format.ByteArray {
		return len(col.strs.ends)
	}
	return len(col.ints.vals)
}

// insert returns the dictionary index of value i, adding it; ok is false
// when adding it would take the dictionary past dictionaryMaxBytes.
func (col *column) insert(v *schema.ColumnValues, i int) (int32, bool) {
	if col.phys == format.ByteArray {
		lo := uint32(0)
		if i > 0 {
			lo = v.Ends[i-1]
		}
		return col.strs.insert(v.Bytes[lo:v.Ends[i]])
	}
	size := 8
	if col.phys == format.Int32 {
		size = 4
	}
	return col.ints.insert(v.Ints[i], size)
}

// dictPage appends the dictionary PLAIN and returns its value count.
func (col *column) dictPage(dst []byte) ([]byte, int) {
	if col.phys == format.ByteArray {
		lo := uint32(0)
		for _, e := range col.strs.ends {
			dst = binary.LittleEndian.AppendUint32(dst, e-lo)
			dst = append(dst, col.strs.data[lo:e]...)
			lo = e
		}
		return dst, len(col.strs.ends)
	}
	for _, x := range col.ints.vals {
		if col.phys == format.Int32 {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(int32(x)))
		} else {
			dst = binary.LittleEndian.AppendUint64(dst, uint64(x))
		}
	}
	return dst, len(col.ints.vals)
}

// intDict is a dictionary of integers: an open-addressing hash table of
// indexes into vals.
type intDict struct {
	vals  []int64
	slots []int32 // index+1 into vals; 0 is empty
	bytes int
}

func (d *intDict) reset() {
	d.vals = d.vals[:0]
	clear(d.slots)
	d.bytes = 0
}

func (d *intDict) insert(x int64, size int) (int32, bool) {
	if len(d.slots) == 0 {
		d.slots = make([]int32, 1024)
	}
	mask := uint64(len(d.slots) - 1)
	h := (uint64(x) * 0x9e3779b97f4a7c15) >> 20
	for p := h & mask; ; p = (p + 1) & mask {
		s := d.slots[p]
		if s == 0 {
			if d.bytes+size > dictionaryMaxBytes {
				return 0, false
			}
			d.vals = append(d.vals, x)
			d.slots[p] = int32(len(d.vals))
			d.bytes += size
			if 2*len(d.vals) > len(d.slots) {
				d.grow()
			}
			return int32(len(d.vals) - 1), true
		}
		if d.vals[s-1] == x {
			return s - 1, true
		}
	}
}

func (d *intDict) grow() {
	d.slots = make([]int32, 2*len(d.slots))
	mask := uint64(len(d.slots) - 1)
	for i, x := range d.vals {
		h := (uint64(x) * 0x9e3779b97f4a7c15) >> 20
		p := h & mask
		for d.slots[p] != 0 {
			p = (p + 1) & mask
		}
		d.slots[p] = int32(i + 1)
	}
}

// bytesDict is a dictionary of strings: their bytes one after the other in
// data, value i ending at ends[i], and an open-addressing hash table of
// indexes into ends.
type bytesDict struct {
	data   []byte
	ends   []uint32
	hashes []uint32 // of each value, to grow without hashing again
	slots  []int32  // index+1 into ends; 0 is empty
	seed   maphash.Seed
	k0, k1 uint64 // hash's keys, from seed
	bytes  int
}

func (d *bytesDict) reset() {
	d.data, d.ends, d.hashes = d.data[:0], d.ends[:0], d.hashes[:0]
	clear(d.slots)
	d.bytes = 0
}

func (d *bytesDict) value(i int) []byte {
	lo := uint32(0)
	if i > 0 {
		lo = d.ends[i-1]
	}
	return d.data[lo:d.ends[i]]
}

func (d *bytesDict) insert(b []byte) (int32, bool) {
	if len(d.slots) == 0 {
		d.slots = make([]int32, 1024)
		d.seed = maphash.MakeSeed()
		d.k0, d.k1 = maphash.Comparable(d.seed, 0)|1, maphash.Comparable(d.seed, 1)|1
	}
	h := d.hash(b)
	mask := uint32(len(d.slots) - 1)
	for p := h & mask; ; p = (p + 1) & mask {
		s := d.slots[p]
		if s == 0 {
			if d.bytes+4+len(b) > dictionaryMaxBytes {
				return 0, false
			}
			d.data = append(d.data, b...)
			d.ends = append(d.ends, uint32(len(d.data)))
			d.hashes = append(d.hashes, h)
			d.slots[p] = int32(len(d.ends))
			d.bytes += 4 + len(b)
			if 2*len(d.ends) > len(d.slots) {
				d.grow()
			}
			return int32(len(d.ends) - 1), true
		}
		if d.hashes[s-1] == h && bytes.Equal(d.value(int(s-1)), b) {
			return s - 1, true
		}
	}
}

// hash hashes a value: a string of at most 16 bytes by mixing two words of
// it with the dictionary's random keys (wyhash's way), a longer one with
// maphash.
func (d *bytesDict) hash(b []byte) uint32 {
	n := len(b)
	var a, c uint64
	switch {
	case n > 16:
		return uint32(maphash.Bytes(d.seed, b))
	case n >= 8:
		a, c = binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[n-8:])
	case n >= 4:
		a, c = uint64(binary.LittleEndian.Uint32(b)), uint64(binary.LittleEndian.Uint32(b[n-4:]))
	case n > 0:
		a = uint64(b[0])<<16 | uint64(b[n>>1])<<8 | uint64(b[n-1])
	}
	hi, lo := bits.Mul64(a^d.k0, c^d.k1^uint64(n))
	return uint32(hi ^ lo)
}

func (d *bytesDict) grow() {
	d.slots = make([]int32, 2*len(d.slots))
	mask := uint32(len(d.slots) - 1)
	for i, h := range d.hashes {
		p := h & mask
		for d.slots[p] != 0 {
			p = (p + 1) & mask
		}
		d.slots[p] = int32(i + 1)
	}
}
