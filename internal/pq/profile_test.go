package pq

import (
	"bytes"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/wharfdata/wharf/schema"
)

// TestConservativeProfile reads the footer and every page header of a file
// of every column type with Apache Arrow's Go Parquet reader (no code shared
// with the writer) and checks that the file keeps to the profile every
// engine reads: DATA_PAGE (v1) and DICTIONARY_PAGE pages only; PLAIN,
// PLAIN_DICTIONARY or RLE_DICTIONARY values and RLE levels (no DELTA_*, no
// BYTE_STREAM_SPLIT); snappy; decimals on INT32, INT64 or the smallest
// FIXED_LEN_BYTE_ARRAY for their precision. It also pins which columns get a
// dictionary (see dictionaryPays) and that a dictionary outgrowing its bound
// falls back to PLAIN pages.
func TestConservativeProfile(t *testing.T) {
	tb, base := everyType(t)
	for _, n := range []int{len(base), 30_000} {
		rows := manyRows(tb, base, n)
		var buf bytes.Buffer
		if err := Encode(&buf, tb, rows); err != nil {
			t.Fatal(err)
		}
		checkProfile(t, tb, buf.Bytes(), int64(n))
	}
	// A reused writer starts each file with its dictionaries again: the
	// second, small file is dictionary-encoded even though the first file's
	// s_long fell back to PLAIN.
	w := NewWriter(tb)
	var buf bytes.Buffer
	for _, n := range []int{30_000, 100} {
		buf.Reset()
		if err := w.Encode(&buf, manyRows(tb, base, n)); err != nil {
			t.Fatal(err)
		}
		checkProfile(t, tb, buf.Bytes(), int64(n))
	}
}

// checkProfile checks the file data of n rows of table tb against the profile.
func checkProfile(t *testing.T, tb *schema.Table, data []byte, n int64) {
	t.Helper()
	rdr, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Close()
	md := rdr.MetaData()
	if md.NumRowGroups() != 1 || md.NumRows != n {
		t.Fatalf("%d rows in %d row groups, want %d in 1", md.NumRows, md.NumRowGroups(), n)
	}
	valueEnc := []parquet.Encoding{parquet.Encodings.Plain, parquet.Encodings.PlainDict, parquet.Encodings.RLEDict}
	dictEnc := []parquet.Encoding{parquet.Encodings.RLEDict, parquet.Encodings.PlainDict}
	sc := md.Schema
	rg := rdr.RowGroup(0)
	for i, c := range tb.Columns {
		col := sc.Column(i)
		// Physical layout.
		switch {
		case c.Type.Kind == schema.Decimal && c.Type.Precision <= 9:
			if col.PhysicalType() != parquet.Types.Int32 {
				t.Errorf("%s (%s): physical %s, want INT32", c.Name, c.Type, col.PhysicalType())
			}
		case c.Type.Kind == schema.Decimal && c.Type.Precision <= 18:
			if col.PhysicalType() != parquet.Types.Int64 {
				t.Errorf("%s (%s): physical %s, want INT64", c.Name, c.Type, col.PhysicalType())
			}
		case c.Type.Kind == schema.Decimal:
			if want := wantDecimalBytes(c.Type.Precision); col.PhysicalType() != parquet.Types.FixedLenByteArray || col.TypeLength() != want {
				t.Errorf("%s (%s): physical %s(%d), want FIXED_LEN_BYTE_ARRAY(%d)", c.Name, c.Type, col.PhysicalType(), col.TypeLength(), want)
			}
		}

		// Footer.
		cc, err := rg.MetaData().ColumnChunk(i)
		if err != nil {
			t.Fatal(err)
		}
		if cc.Compression() != compress.Codecs.Snappy {
			t.Errorf("%s: codec %v, want SNAPPY", c.Name, cc.Compression())
		}
		for _, e := range cc.Encodings() {
			if e != parquet.Encodings.RLE && !slices.Contains(valueEnc, e) {
				t.Errorf("%s: footer lists encoding %s", c.Name, e)
			}
		}
		for _, st := range cc.EncodingStats() {
			if st.PageType != file.PageTypeDataPage && st.PageType != file.PageTypeDictionaryPage {
				t.Errorf("%s: footer's encoding stats list a %s page", c.Name, st.PageType)
			}
			if !slices.Contains(valueEnc, st.Encoding) {
				t.Errorf("%s: footer's encoding stats list %s", c.Name, st.Encoding)
			}
		}

		// Every page header.
		pr, err := rg.GetColumnPageReader(i)
		if err != nil {
			t.Fatal(err)
		}
		var values int64
		var dictPages, dictData, plainData, dataPages int
		for pr.Next() {
			p := pr.Page()
			switch p.Type() {
			case file.PageTypeDictionaryPage:
				if dataPages > 0 {
					t.Errorf("%s: a dictionary page after %d data pages", c.Name, dataPages)
				}
				dictPages++
				if e := parquet.Encoding(p.Encoding()); e != parquet.Encodings.Plain && e != parquet.Encodings.PlainDict {
					t.Errorf("%s: dictionary page encoded %s", c.Name, e)
				}
			case file.PageTypeDataPage:
				dataPages++
				dp := p.(*file.DataPageV1)
				values += int64(dp.NumValues())
				e := parquet.Encoding(dp.Encoding())
				switch {
				case slices.Contains(dictEnc, e):
					dictData++
				case e == parquet.Encodings.Plain:
					plainData++
				default:
					t.Errorf("%s: data page %d encoded %s", c.Name, dataPages, e)
				}
				if dp.DefinitionLevelEncoding() != parquet.Encodings.RLE {
					t.Errorf("%s: data page %d has definition levels encoded %s, want RLE", c.Name, dataPages, dp.DefinitionLevelEncoding())
				}
			default:
				t.Errorf("%s: a %s page", c.Name, p.Type())
			}
		}
		if err := pr.Err(); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		pr.Close()
		if values != n {
			t.Errorf("%s: data pages hold %d values, want %d", c.Name, values, n)
		}
		if dictPages > 1 || (dictData > 0) != (dictPages == 1) {
			t.Errorf("%s: %d dictionary pages for %d dictionary-encoded data pages", c.Name, dictPages, dictData)
		}

		// The choice of encoding (dictionaryPays), for a non-empty file.
		if n == 0 {
			continue
		}
		wantDict := dictionaryPays(c)
		switch {
		case !wantDict && dictPages > 0:
			t.Errorf("%s (%s): dictionary-encoded, want PLAIN", c.Name, c.Type)
		case wantDict && dictData == 0:
			t.Errorf("%s (%s): no dictionary-encoded data page, want a dictionary", c.Name, c.Type)
		}
		// s_long's 30,000 distinct 200-byte values outgrow the dictionary
		// bound: the first page is dictionary-encoded, the rest PLAIN.
		if c.Name == "s_long" && n >= 30_000 && (dictData == 0 || plainData == 0) {
			t.Errorf("s_long of %d distinct values: %d dictionary and %d PLAIN data pages, want both (the dictionary's bound)", n, dictData, plainData)
		}
		if c.Name == "s_long" && n < 1000 && plainData > 0 {
			t.Errorf("s_long of %d rows: %d PLAIN data pages, want the dictionary only", n, plainData)
		}
	}
}
