package pq

import (
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/wharfdata/wharf/schema"
)

// TestWrittenType: a file column written before a widening, or under an
// older physical type, reports the type that holds its values as written.
func TestWrittenType(t *testing.T) {
	dec := func(p, s int) schema.Type { return schema.Type{Kind: schema.Decimal, Precision: p, Scale: s} }
	for _, c := range []struct {
		name string
		node parquet.Node
		want schema.Type // the table's type
		got  schema.Type
	}{
		{"integer widened to bigint", parquet.Int(32), schema.Type{Kind: schema.Bigint}, schema.Type{Kind: schema.Integer}},
		{"smallint widened to integer", parquet.Int(16), schema.Type{Kind: schema.Integer}, schema.Type{Kind: schema.Smallint}},
		{"bigint as written", parquet.Int(64), schema.Type{Kind: schema.Bigint}, schema.Type{Kind: schema.Bigint}},
		{"small decimal as INT32", parquet.Decimal(2, 5, parquet.Int32Type), dec(5, 2), dec(5, 2)},
		{"small decimal as INT64 (older writer)", parquet.Decimal(2, 5, parquet.Int64Type), dec(5, 2), dec(18, 2)},
		{"decimal(12,2) as INT64", parquet.Decimal(2, 12, parquet.Int64Type), dec(12, 2), dec(12, 2)},
		{"decimal(20,2) in 16 bytes (older writer)", parquet.Decimal(2, 20, parquet.FixedLenByteArrayType(16)), dec(20, 2), dec(38, 2)},
		{"decimal(20,2) in 9 bytes", parquet.Decimal(2, 20, parquet.FixedLenByteArrayType(9)), dec(20, 2), dec(20, 2)},
		{"decimal(38,4) in 16 bytes", parquet.Decimal(4, 38, parquet.FixedLenByteArrayType(16)), dec(38, 4), dec(38, 4)},
		{"varchar", parquet.String(), schema.Type{Kind: schema.Varchar, Length: 8}, schema.Type{Kind: schema.Varchar, Length: 8}},
	} {
		if got := writtenType(c.node, c.want); got != c.got {
			t.Errorf("%s: %v, want %v", c.name, got, c.got)
		}
	}
	if decimalDigits(16) != 38 || decimalDigits(9) != 21 || DecimalBytes(20) != 9 || DecimalBytes(38) != 16 {
		t.Errorf("digits(16)=%d digits(9)=%d bytes(20)=%d bytes(38)=%d; want 38 21 9 16", decimalDigits(16), decimalDigits(9), DecimalBytes(20), DecimalBytes(38))
	}
}
