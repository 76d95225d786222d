package schema

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/valyala/fastjson"
)

// Flatten turns a decoded event into rows, appended to dst: one row per
// table that takes the event's type, plus one row per element of each child
// table's array. It must be called before the Decoder's next Decode. A value
// that cannot be coerced to its column's type returns an *InvalidError and
// no rows.
func (d *Decoder) Flatten(ev *Event, dst []Row) ([]Row, error) {
	if ev.root == nil {
		return dst, invalid(ReasonBadJSON, "the event was not decoded")
	}
	start := len(dst)
	for _, t := range ev.Tables {
		var err error
		dst, err = d.flattenTable(ev, t, dst)
		if err != nil {
			return dst[:start], err
		}
	}
	return dst, nil
}

func (d *Decoder) flattenTable(ev *Event, t *Table, dst []Row) ([]Row, error) {
	evTime := ev.Time
	if t.timePath != nil {
		tt, ok, err := parseTime(ev.root.Get(t.timePath...))
		if err != nil {
			return dst, withColumn(err, t.Name, "time", t.Time)
		}
		if ok {
			evTime = tt
		}
	}
	micros := evTime.UnixMicro()

	// Count child rows first so one slab holds every value of the event.
	n := len(t.Columns)
	arrays := make([][]*fastjson.Value, len(t.Children))
	for i, c := range t.Children {
		av := ev.root.Get(c.arrayPath...)
		if av == nil || av.Type() == fastjson.TypeNull {
			continue
		}
		if av.Type() != fastjson.TypeArray {
			return dst, invalid(ReasonTypeMismatch, "table %s: path %s is a %s, not an array", c.Name, c.Path, av.Type())
		}
		arrays[i] = av.GetArray()
		n += len(arrays[i]) * len(c.Columns)
	}
	slab := make([]Value, n)

	vals := slab[:len(t.Columns):len(t.Columns)]
	slab = slab[len(t.Columns):]
	for i := range t.Columns {
		c := &t.Columns[i]
		var err error
		switch c.Source {
		case FromEventID:
			vals[i] = Value{S: ev.ID}
		case FromEventTime:
			vals[i] = Value{I: micros}
		case FromReceivedAt:
			vals[i] = Value{I: ev.ReceivedAt.UnixMicro()}
		case FromExtras:
			vals[i], err = d.extras(ev.root, t)
		case FromPath:
			vals[i], err = d.columnValue(ev.root, c)
		}
		if err == nil && c.Type.Kind == JSON {
			err = checkJSONSize(vals[i])
		}
		if err != nil {
			return dst, withColumn(err, t.Name, c.Name, c.Path)
		}
	}
	dst = append(dst, Row{Table: t, Values: vals})

	for ci, c := range t.Children {
		for idx, elem := range arrays[ci] {
			vals := slab[:len(c.Columns):len(c.Columns)]
			slab = slab[len(c.Columns):]
			for i := range c.Columns {
				col := &c.Columns[i]
				var err error
				switch col.Source {
				case FromEventID:
					vals[i] = Value{S: ev.ID}
				case FromEventTime:
					vals[i] = Value{I: micros}
				case FromIndex:
					vals[i] = Value{I: int64(idx)}
				case FromPath:
					vals[i], err = d.columnValue(elem, col)
				}
				if err == nil && col.Type.Kind == JSON {
					err = checkJSONSize(vals[i])
				}
				if err != nil {
					return dst, withColumn(err, c.Name, col.Name, fmt.Sprintf("%s[%d].%s", c.Path, idx, col.Path))
				}
			}
			dst = append(dst, Row{Table: c, Values: vals})
		}
	}
	return dst, nil
}

func withColumn(err error, table, column, path string) error {
	if ie, ok := err.(*InvalidError); ok {
		return &InvalidError{Reason: ie.Reason, Detail: fmt.Sprintf("table %s, column %s (path %s): %s", table, column, path, ie.Detail)}
	}
	return err
}

func (d *Decoder) columnValue(root *fastjson.Value, c *Column) (Value, error) {
	v := root
	if c.path != nil {
		v = root.Get(c.path...)
	}
	if c.Expand >= 0 {
		if v == nil || v.Type() == fastjson.TypeNull {
			return NullValue, nil
		}
		if v.Type() != fastjson.TypeArray {
			return NullValue, invalid(ReasonTypeMismatch, "expand wants an array, found a %s", v.Type())
		}
		a := v.GetArray()
		if c.Expand == 0 {
			// Checked once, on the first expanded column.
			if limit := expandCount(c); len(a) > limit {
				return NullValue, invalid(ReasonExpandOverflow, "the array has %d elements; expand: %d holds only %d", len(a), limit, limit)
			}
		}
		if c.Expand >= len(a) {
			return NullValue, nil
		}
		v = a[c.Expand]
	}
	return d.Coerce(v, c.Type)
}

func expandCount(c *Column) int { return c.expandN }

// appendJSONString appends s as a JSON string. s is valid UTF-8.
func appendJSONString(dst []byte, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// Coerce converts a JSON value to a column type by the rules of the README's
// coercion table. A missing value or null is NULL.
func (d *Decoder) Coerce(v *fastjson.Value, t Type) (Value, error) {
	if v == nil || v.Type() == fastjson.TypeNull {
		return NullValue, nil
	}
	switch t.Kind {
	case Boolean:
		switch v.Type() {
		case fastjson.TypeTrue:
			return Value{I: 1}, nil
		case fastjson.TypeFalse:
			return Value{I: 0}, nil
		case fastjson.TypeString:
			switch strings.ToLower(string(v.GetStringBytes())) {
			case "true":
				return Value{I: 1}, nil
			case "false":
				return Value{I: 0}, nil
			}
		case fastjson.TypeNumber:
			switch string(v.MarshalTo(d.buf[:0])) {
			case "0":
				return Value{I: 0}, nil
			case "1":
				return Value{I: 1}, nil
			}
		}
		return NullValue, mismatch(v, t)
	case Smallint, Integer, Bigint:
		if v.Type() != fastjson.TypeNumber {
			return NullValue, mismatch(v, t)
		}
		d.buf = v.MarshalTo(d.buf[:0])
		return coerceInt(d.buf, t)
	case Real, Double:
		if v.Type() != fastjson.TypeNumber {
			return NullValue, mismatch(v, t)
		}
		f, err := v.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return NullValue, invalid(ReasonOutOfRange, "%s does not fit a %s", shorten(string(v.MarshalTo(nil)), 40), t)
		}
		if t.Kind == Real {
			if math.Abs(f) > math.MaxFloat32 {
				return NullValue, invalid(ReasonOutOfRange, "%v does not fit a real", f)
			}
			f = float64(float32(f))
		}
		return Value{F: f}, nil
	case Decimal:
		var s string
		switch v.Type() {
		case fastjson.TypeNumber:
			s = string(v.MarshalTo(d.buf[:0]))
		case fastjson.TypeString:
			s = strings.TrimSpace(string(v.GetStringBytes()))
		default:
			return NullValue, mismatch(v, t)
		}
		return coerceDecimal(s, t)
	case Varchar:
		var s string
		switch v.Type() {
		case fastjson.TypeString:
			s = string(v.GetStringBytes())
		default:
			d.buf, _ = appendJSON(d.buf[:0], v, false)
			s = string(d.buf)
		}
		if len(s) > t.Length {
			s = truncateUTF8(s, t.Length)
			d.Truncated++
		}
		return Value{S: s}, nil
	case JSON:
		var err error
		if d.buf, err = appendJSON(d.buf[:0], v, true); err != nil {
			return NullValue, err
		}
		return Value{S: string(d.buf)}, nil
	case Timestamp:
		tm, ok, err := parseTime(v)
		if err != nil || !ok {
			return NullValue, err
		}
		return Value{I: tm.UnixMicro()}, nil
	case Date:
		tm, ok, err := parseTime(v)
		if err != nil || !ok {
			return NullValue, err
		}
		return Value{I: int64(math.Floor(float64(tm.Unix()) / 86400))}, nil
	}
	return NullValue, fmt.Errorf("schema: no coercion for %s", t)
}

func mismatch(v *fastjson.Value, t Type) error {
	what := v.Type().String()
	if v.Type() == fastjson.TypeString {
		what = fmt.Sprintf("string %q", shorten(string(v.GetStringBytes()), 40))
	}
	return invalid(ReasonTypeMismatch, "a %s is declared but the event has a %s", t, what)
}

var intBounds = map[Kind][2]int64{
	Smallint: {math.MinInt16, math.MaxInt16},
	Integer:  {math.MinInt32, math.MaxInt32},
	Bigint:   {math.MinInt64, math.MaxInt64},
}

func coerceInt(b []byte, t Type) (Value, error) {
	n, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(b), len(b)), 10, 64)
	raw := ""
	if err != nil {
		raw = string(b)
	}
	if err != nil {
		// 3.0 and 1e3 are integers too; 3.5 is not.
		f, ferr := strconv.ParseFloat(raw, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) >= 1<<63 {
			if ferr == nil && f == math.Trunc(f) {
				return NullValue, invalid(ReasonOutOfRange, "%s does not fit a %s", shorten(raw, 40), t)
			}
			return NullValue, invalid(ReasonTypeMismatch, "%s is not an integer (%s)", shorten(raw, 40), t)
		}
		n = int64(f)
	}
	bounds := intBounds[t.Kind]
	if n < bounds[0] || n > bounds[1] {
		return NullValue, invalid(ReasonOutOfRange, "%d does not fit a %s", n, t)
	}
	return Value{I: n}, nil
}

var pow10 = func() []*big.Int {
	out := make([]*big.Int, MaxDecimalPrecision+1)
	for i := range out {
		out[i] = new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(i)), nil)
	}
	return out
}()

// coerceDecimal parses s exactly. A value needing more decimal places than
// the scale, or more digits than the precision, is rejected rather than
// rounded.
func coerceDecimal(s string, t Type) (Value, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok || strings.ContainsAny(s, "/") {
		return NullValue, invalid(ReasonTypeMismatch, "%q is not a decimal number", shorten(s, 40))
	}
	r.Mul(r, new(big.Rat).SetInt(pow10[t.Scale]))
	if !r.IsInt() {
		return NullValue, invalid(ReasonOutOfRange, "%s has more than %d decimal places (%s)", shorten(s, 40), t.Scale, t)
	}
	u := r.Num()
	if new(big.Int).Abs(u).Cmp(pow10[t.Precision]) >= 0 {
		return NullValue, invalid(ReasonOutOfRange, "%s does not fit a %s", shorten(s, 40), t)
	}
	if t.Precision <= 18 {
		return Value{I: u.Int64()}, nil
	}
	return Value{S: u.String()}, nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// extras returns the event's fields that no column, child table or time path
// consumes (the envelope's id, type and time excluded), as a JSON object, or
// NULL when there are none. A number there that a JSON column cannot hold is
// an out_of_range error, as it is in a json column.
func (d *Decoder) extras(root *fastjson.Value, t *Table) (Value, error) {
	d.buf = d.buf[:0]
	var ok bool
	var err error
	d.buf, ok = d.appendUnmapped(d.buf, root, t.mapped, 0, &err)
	if err != nil {
		return NullValue, err
	}
	if !ok {
		return NullValue, nil
	}
	return Value{S: string(d.buf)}, nil
}

func (d *Decoder) appendUnmapped(dst []byte, v *fastjson.Value, tree *pathTree, depth int, errp *error) ([]byte, bool) {
	o := v.GetObject()
	start := len(dst)
	dst = append(dst, '{')
	any := false
	o.Visit(func(k []byte, child *fastjson.Value) {
		if *errp != nil || depth == 0 && d.isEnvelopeKey(k) {
			return
		}
		sub := tree.kids[string(k)]
		if sub != nil && sub.leaf {
			return
		}
		mark := len(dst)
		if any {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		if sub != nil && child.Type() == fastjson.TypeObject {
			var ok bool
			dst, ok = d.appendUnmapped(dst, child, sub, depth+1, errp)
			if !ok {
				dst = dst[:mark]
				return
			}
		} else {
			dst, *errp = appendJSON(dst, child, true)
		}
		any = true
	})
	if !any {
		return dst[:start], false
	}
	return append(dst, '}'), true
}

func (d *Decoder) isEnvelopeKey(k []byte) bool {
	for _, p := range d.env {
		if len(p) == 1 && p[0] == string(k) {
			return true
		}
	}
	return false
}

// TimeOf returns the time of a timestamp value.
func TimeOf(v Value) time.Time { return time.UnixMicro(v.I).UTC() }
