package schema

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Kind is the warehouse type family of a column.
type Kind uint8

// The column kinds of docs/design.md §4.
const (
	Boolean Kind = iota + 1
	Smallint
	Integer
	Bigint
	Real
	Double
	Decimal
	Varchar
	Timestamp
	Date
	JSON
)

// MaxVarchar is the longest VARCHAR, in bytes, that Redshift accepts.
const MaxVarchar = 65535

// MaxDecimalPrecision is the largest DECIMAL precision wharf writes. Values up
// to precision 18 are stored as INT64 in Parquet, larger ones as 16-byte
// FIXED_LEN_BYTE_ARRAY.
const MaxDecimalPrecision = 38

// Type is a column's declared type.
type Type struct {
	Kind      Kind
	Length    int // varchar: maximum length in bytes
	Precision int // decimal
	Scale     int // decimal
}

var kindNames = map[string]Kind{
	"boolean": Boolean, "smallint": Smallint, "integer": Integer, "bigint": Bigint,
	"real": Real, "double": Double, "decimal": Decimal, "varchar": Varchar,
	"timestamp": Timestamp, "date": Date, "json": JSON,
}

// ParseType parses a type as written in the schema file, such as
// "varchar(64)" or "decimal(12,2)".
func ParseType(s string) (Type, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	name, args, hasArgs := strings.Cut(s, "(")
	name = strings.TrimSpace(name)
	kind, ok := kindNames[name]
	if !ok {
		return Type{}, fmt.Errorf("unknown type %q (want boolean, smallint, integer, bigint, real, double, decimal(p,s), varchar(n), timestamp, date or json)", s)
	}
	t := Type{Kind: kind}
	var nums []int
	if hasArgs {
		if !strings.HasSuffix(args, ")") {
			return Type{}, fmt.Errorf("type %q: missing ')'", s)
		}
		for _, a := range strings.Split(strings.TrimSuffix(args, ")"), ",") {
			n, err := strconv.Atoi(strings.TrimSpace(a))
			if err != nil {
				return Type{}, fmt.Errorf("type %q: %q is not a number", s, strings.TrimSpace(a))
			}
			nums = append(nums, n)
		}
	}
	switch kind {
	case Varchar:
		if len(nums) != 1 {
			return Type{}, fmt.Errorf("type %q: varchar needs a length in bytes, as varchar(n)", s)
		}
		if nums[0] < 1 || nums[0] > MaxVarchar {
			return Type{}, fmt.Errorf("type %q: varchar length must be 1..%d bytes", s, MaxVarchar)
		}
		t.Length = nums[0]
	case Decimal:
		if len(nums) < 1 || len(nums) > 2 {
			return Type{}, fmt.Errorf("type %q: decimal needs a precision and scale, as decimal(p,s)", s)
		}
		t.Precision = nums[0]
		if len(nums) == 2 {
			t.Scale = nums[1]
		}
		if t.Precision < 1 || t.Precision > MaxDecimalPrecision {
			return Type{}, fmt.Errorf("type %q: decimal precision must be 1..%d", s, MaxDecimalPrecision)
		}
		if t.Scale < 0 || t.Scale > t.Precision {
			return Type{}, fmt.Errorf("type %q: decimal scale must be 0..precision", s)
		}
	default:
		if hasArgs {
			return Type{}, fmt.Errorf("type %q: %s takes no arguments", s, name)
		}
	}
	return t, nil
}

// String returns the type as written in the schema file.
func (t Type) String() string {
	switch t.Kind {
	case Boolean:
		return "boolean"
	case Smallint:
		return "smallint"
	case Integer:
		return "integer"
	case Bigint:
		return "bigint"
	case Real:
		return "real"
	case Double:
		return "double"
	case Decimal:
		return fmt.Sprintf("decimal(%d,%d)", t.Precision, t.Scale)
	case Varchar:
		return fmt.Sprintf("varchar(%d)", t.Length)
	case Timestamp:
		return "timestamp"
	case Date:
		return "date"
	case JSON:
		return "json"
	}
	return fmt.Sprintf("kind(%d)", t.Kind)
}

// MarshalText makes a Type print as its schema spelling in JSON and YAML.
func (t Type) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Value is one cell of a Row. Which field holds the value depends on the
// column's Kind:
//
//	Boolean                       I (0 or 1)
//	Smallint, Integer, Bigint     I
//	Real, Double                  I, the IEEE 754 bits (FloatValue, Value.Float)
//	Decimal                       I, the unscaled value (precision ≤ 18);
//	                              S, the unscaled value in decimal digits (larger)
//	Varchar, JSON                 S (valid UTF-8, no NUL, within the byte length)
//	Timestamp                     I, microseconds since the Unix epoch, UTC
//	Date                          I, days since the Unix epoch
//
// Null is true for SQL NULL.
type Value struct {
	I    int64 // integers, booleans, dates, times; a float's IEEE 754 bits
	S    string
	Null bool
}

// FloatValue is the Value of a real or double.
func FloatValue(f float64) Value { return Value{I: int64(math.Float64bits(f))} }

// Float returns the value of a real or double column.
func (v Value) Float() float64 { return math.Float64frombits(uint64(v.I)) }

// NullValue is SQL NULL.
var NullValue = Value{Null: true}

// Row is one warehouse row: a value per column of Table, in column order.
type Row struct {
	Table  *Table
	Values []Value
}

// Size estimates the bytes a row holds in memory, for the batcher's caps.
func (r Row) Size() int {
	n := 24 + 40*len(r.Values)
	for i := range r.Values {
		n += len(r.Values[i].S)
	}
	return n
}
