package schema

import (
	"fmt"
	"math"
	"math/big"
	"slices"
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
	d.sb, d.fix = d.sb[:0], d.fix[:0]
	for _, t := range ev.Tables {
		var err error
		dst, err = d.flattenTable(ev, t, dst)
		if err != nil {
			clear(d.fix)
			return dst[:start], err
		}
	}
	// Every string of the event's rows shares one allocation.
	if len(d.fix) > 0 {
		all := string(d.sb)
		for _, f := range d.fix {
			f.v.S = all[f.off : f.off+f.n]
		}
		clear(d.fix)
	}
	return dst, nil
}

// strFix is a string value of the event being flattened, kept in Decoder.sb
// until Flatten makes the event's one string.
type strFix struct {
	v      *Value
	off, n int
}

// keep records b as the string of *v, copied now (b may point into a buffer
// that the next value reuses) and set when the event is done.
func (d *Decoder) keep(v *Value, b []byte, k Kind) error {
	if k == JSON {
		if err := checkJSONSize(len(b)); err != nil {
			return err
		}
	}
	d.fix = append(d.fix, strFix{v: v, off: len(d.sb), n: len(b)})
	d.sb = append(d.sb, b...)
	return nil
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
	arrays := slices.Grow(d.arrays[:0], len(t.Children))[:len(t.Children)]
	defer func() { clear(arrays); d.arrays = arrays }()
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
	d.cut = 0
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
			var b []byte
			if b, err = d.extras(ev.root, t); err == nil {
				if b == nil {
					vals[i] = NullValue
				} else {
					err = d.keep(&vals[i], b, JSON)
				}
			}
		case FromPath:
			var b []byte
			var str bool
			if vals[i], b, str, err = d.columnValue(ev.root, c); err == nil && str {
				err = d.keep(&vals[i], b, c.Type.Kind)
			}
		}
		if err != nil {
			return dst, withColumn(err, t.Name, c.Name, c.Path)
		}
	}
	dst = append(dst, Row{Table: t, Values: vals, Truncated: d.cut})

	for ci, c := range t.Children {
		for idx, elem := range arrays[ci] {
			vals := slab[:len(c.Columns):len(c.Columns)]
			slab = slab[len(c.Columns):]
			d.cut = 0
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
				case FromReceivedAt:
					vals[i] = Value{I: ev.ReceivedAt.UnixMicro()}
				case FromPath:
					var b []byte
					var str bool
					if vals[i], b, str, err = d.columnValue(elem, col); err == nil && str {
						err = d.keep(&vals[i], b, col.Type.Kind)
					}
				}
				if err != nil {
					return dst, withColumn(err, c.Name, col.Name, fmt.Sprintf("%s[%d].%s", c.Path, idx, col.Path))
				}
			}
			dst = append(dst, Row{Table: c, Values: vals, Truncated: d.cut})
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

// columnValue reads column c's value under root. For a varchar or json
// value it returns the text as b with str true (b valid until the next
// value), and the Value's S empty.
func (d *Decoder) columnValue(root *fastjson.Value, c *Column) (val Value, b []byte, str bool, err error) {
	v := root
	if c.path != nil {
		v = root.Get(c.path...)
	}
	if c.Expand >= 0 {
		if v == nil || v.Type() == fastjson.TypeNull {
			return NullValue, nil, false, nil
		}
		if v.Type() != fastjson.TypeArray {
			return NullValue, nil, false, invalid(ReasonTypeMismatch, "expand wants an array, found a %s", v.Type())
		}
		a := v.GetArray()
		if c.Expand == 0 {
			// Checked once, on the first expanded column.
			if limit := expandCount(c); len(a) > limit {
				return NullValue, nil, false, invalid(ReasonExpandOverflow, "the array has %d elements; expand: %d holds only %d", len(a), limit, limit)
			}
		}
		if c.Expand >= len(a) {
			return NullValue, nil, false, nil
		}
		v = a[c.Expand]
	}
	return d.coerce(v, c.Type)
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

// coerce converts a JSON value to a column type by the rules of the README's
// coercion table; a missing value or null is NULL. A varchar or json value's
// text is returned as b, with str true, for Flatten to keep (b is valid until
// the next value).
func (d *Decoder) coerce(v *fastjson.Value, t Type) (val Value, b []byte, str bool, err error) {
	if v == nil || v.Type() == fastjson.TypeNull {
		return NullValue, nil, false, nil
	}
	if t.Kind == Varchar {
		if v.Type() == fastjson.TypeString {
			b = v.GetStringBytes()
		} else {
			d.buf, _ = appendJSON(d.buf[:0], v, false)
			b = d.buf
		}
		if len(b) > t.Length {
			b = b[:cutUTF8(b, t.Length)]
			d.cut++
		}
		return Value{}, b, true, nil
	}
	if t.Kind == JSON {
		if d.buf, err = appendJSON(d.buf[:0], v, true); err != nil {
			return NullValue, nil, false, err
		}
		return Value{}, d.buf, true, nil
	}
	val, err = d.coerceScalar(v, t)
	return val, nil, false, err
}

// coerceScalar coerces to every type but varchar and json.
func (d *Decoder) coerceScalar(v *fastjson.Value, t Type) (Value, error) {
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
		if n, err := v.Int64(); err == nil { // plain digits: the common case
			if lo, hi := intBounds(t.Kind); n >= lo && n <= hi {
				return Value{I: n}, nil
			}
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
		return FloatValue(f), nil
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

func intBounds(k Kind) (lo, hi int64) {
	switch k {
	case Smallint:
		return math.MinInt16, math.MaxInt16
	case Integer:
		return math.MinInt32, math.MaxInt32
	}
	return math.MinInt64, math.MaxInt64
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
	if lo, hi := intBounds(t.Kind); n < lo || n > hi {
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
func truncateUTF8(s string, n int) string { return s[:cutUTF8(s, n)] }

// cutUTF8 is the length of s cut to at most n bytes without splitting a
// character.
func cutUTF8[T string | []byte](s T, n int) int {
	if len(s) <= n {
		return len(s)
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return n
}

// extras returns the event's fields that no column, child table or time path
// consumes (the envelope's id, type and time excluded), as a JSON object, or
// nil when there are none. A number there that a JSON column cannot hold is
// an out_of_range error, as it is in a json column.
func (d *Decoder) extras(root *fastjson.Value, t *Table) ([]byte, error) {
	d.buf = d.buf[:0]
	var ok bool
	var err error
	d.buf, ok = d.appendUnmapped(d.buf, root, t.mapped, 0, &err)
	if err != nil || !ok {
		return nil, err
	}
	return d.buf, nil
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
		sub := tree.kid(k)
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
