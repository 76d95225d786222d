package schema

// The reference decoder: wharf's decode and flatten as they were before the
// tape, on fastjson's tree (a validity pass, then the parser, then check),
// kept for FuzzDifferential, which holds the tape's path to the same
// verdicts and rows. Its one change: numbers are read as the nearest double
// (strconv), where fastjson's Float64 could be a unit in the last place off.

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/valyala/fastjson"
)

func refFloat(v *fastjson.Value) (float64, error) {
	return strconv.ParseFloat(string(v.MarshalTo(nil)), 64)
}

// Event is a decoded message. Root is valid until the Decoder's next Decode.
type oldEvent struct {
	Type       string
	ID         string
	Time       time.Time // envelope time, or ReceivedAt when the event has none
	ReceivedAt time.Time
	Body       []byte // the event's JSON object (an SNS wrapper removed)
	Tables     []*Table

	root *fastjson.Value
}

// Decoder decodes message bodies into events and flattens them into rows.
// A Decoder is not safe for concurrent use: give each goroutine its own.
type refDecoder struct {
	schema *Schema
	env    [3][]string // type, id, time
	p, sns fastjson.Parser
	keys   [][][]byte // object keys per depth, reused (they point into the parser's buffer)
	buf    []byte

	// Flatten's scratch: the event's strings and where they go, and the
	// arrays of child tables.
	sb     []byte
	fix    []strFix
	arrays [][]*fastjson.Value

	// cut counts the strings of the row being built that were cut to their
	// column's byte length (Row.Truncated).
	cut   int32
	total int64 // every cut of Flatten, for the comparison
}

// NewDecoder returns a Decoder for the schema and envelope. The envelope must
// have passed Validate.
func newRefDecoder(s *Schema, env Envelope) *refDecoder {
	d := &refDecoder{schema: s}
	for i, p := range []string{env.TypePath, env.IDPath, env.TimePath} {
		d.env[i], _ = splitPath(p)
	}
	return d
}

// Schema returns the decoder's schema.
func (d *refDecoder) Schema() *Schema { return d.schema }

// Decode parses body, unwraps an SNS notification, checks the event's shape
// and reads its envelope. fallbackID is the event id when the event has
// none (the SQS message id, so a redelivery keeps its id), unless it comes
// in an SNS notification, whose MessageId it then takes (stable across SNS
// redeliveries, which get new SQS message ids); receivedAt is its
// time when it has none. An invalid event returns an *InvalidError; the
// Event is still returned, with what could be read of it (Body at least).
func (d *refDecoder) Decode(body []byte, fallbackID string, receivedAt time.Time) (*oldEvent, error) {
	ev := &oldEvent{ID: fallbackID, ReceivedAt: receivedAt.UTC().Truncate(time.Microsecond), Body: body}
	ev.Time = ev.ReceivedAt
	root, checked, err := d.parse(&d.p, body)
	if err != nil {
		return ev, err
	}
	if root.Type() == fastjson.TypeObject {
		o := root.GetObject()
		if t := o.Get("Type"); t != nil && string(t.GetStringBytes()) == "Notification" {
			// The notification's MessageId is the event's id when it has
			// none: SNS keeps it when it delivers again, while the SQS
			// message id changes with each delivery.
			if id := o.Get("MessageId"); id != nil && id.Type() == fastjson.TypeString && len(id.GetStringBytes()) > 0 {
				ev.ID = string(id.GetStringBytes())
			}
			if m := o.Get("Message"); m != nil && m.Type() == fastjson.TypeString {
				ev.Body = append([]byte(nil), m.GetStringBytes()...)
				root, checked, err = d.parse(&d.sns, ev.Body)
				if err != nil {
					var ie *InvalidError
					if errors.As(err, &ie) {
						ie.Detail = "in the SNS notification's Message: " + ie.Detail
					}
					return ev, err
				}
			}
		}
	}
	if root.Type() != fastjson.TypeObject {
		return ev, invalid(ReasonNotObject, "the message is a JSON %s, not an object", root.Type())
	}
	if !checked {
		if err := d.check(root, 0); err != nil {
			return ev, err
		}
	}
	ev.root = root

	tv := root.Get(d.env[0]...)
	if tv == nil || tv.Type() == fastjson.TypeNull {
		return ev, invalid(ReasonMissingEventType, "no event type at %q", strings.Join(d.env[0], "."))
	}
	if tv.Type() != fastjson.TypeString {
		return ev, invalid(ReasonMissingEventType, "the event type at %q is a %s, not a string", strings.Join(d.env[0], "."), tv.Type())
	}
	ev.Type, ev.Tables = d.schema.routeBytes(tv.GetStringBytes())
	if iv := root.Get(d.env[1]...); iv != nil && iv.Type() != fastjson.TypeNull {
		switch iv.Type() {
		case fastjson.TypeString:
			if s := iv.GetStringBytes(); len(s) > 0 {
				ev.ID = string(s)
			}
		case fastjson.TypeNumber:
			ev.ID = string(iv.MarshalTo(nil))
		default:
			return ev, invalid(ReasonBadEventID, "the event id at %q is a %s", strings.Join(d.env[1], "."), iv.Type())
		}
	}
	if ev.ID == "" {
		return ev, invalid(ReasonBadEventID, "the event has no id and the message none either")
	}
	if len(ev.ID) > EventIDLength {
		return ev, invalid(ReasonBadEventID, "the event id is %d bytes, more than %d", len(ev.ID), EventIDLength)
	}
	if t, ok, err := refParseTime(root.Get(d.env[2]...)); err != nil {
		return ev, err
	} else if ok {
		ev.Time = t
	}
	if len(ev.Tables) == 0 {
		return ev, invalid(ReasonUnknownEventType, "no table takes events of type %q", ev.Type)
	}
	return ev, nil
}

func (d *refDecoder) parse(p *fastjson.Parser, body []byte) (v *fastjson.Value, checked bool, err error) {
	v, err = parseSlow(p, body)
	return v, false, err
}

// check walks the event once: depth, array lengths, NUL bytes, and object
// keys that collide once lower-cased.
func (d *refDecoder) check(v *fastjson.Value, depth int) error {
	if t := v.Type(); depth >= MaxDepth && (t == fastjson.TypeObject || t == fastjson.TypeArray) {
		return invalid(ReasonTooDeep, "objects and arrays nest deeper than %d levels", MaxDepth)
	}
	switch v.Type() {
	case fastjson.TypeObject:
		o := v.GetObject()
		var err error
		for len(d.keys) <= depth {
			d.keys = append(d.keys, nil)
		}
		keys := d.keys[depth][:0]
		o.Visit(func(k []byte, child *fastjson.Value) {
			if err != nil {
				return
			}
			if hasNul(k) {
				err = invalid(ReasonNulByte, "an object key holds a NUL character")
				return
			}
			for _, prev := range keys {
				if len(prev) == len(k) && bytes.EqualFold(prev, k) {
					err = invalid(ReasonKeyCollision, "keys %q collide once lower-cased", shorten(string(prev), 64))
					return
				}
			}
			if len(keys) < 64 {
				keys = append(keys, k)
			}
			err = d.check(child, depth+1)
		})
		if err == nil && o.Len() > 64 {
			err = checkKeysMap(o)
		}
		d.keys[depth] = keys[:0]
		return err
	case fastjson.TypeArray:
		a := v.GetArray()
		if len(a) > MaxArrayLength {
			return invalid(ReasonArrayTooLong, "an array has %d elements, more than %d", len(a), MaxArrayLength)
		}
		for _, e := range a {
			if err := d.check(e, depth+1); err != nil {
				return err
			}
		}
	case fastjson.TypeString:
		if hasNul(v.GetStringBytes()) {
			return invalid(ReasonNulByte, "a string holds a NUL character")
		}
	}
	return nil
}

// parseTime reads a time value: an RFC 3339 string (a zone-less
// "2006-01-02T15:04:05" or "2006-01-02 15:04:05" or a bare date is taken as
// UTC), epoch seconds or milliseconds as a number (an absolute value of at
// least 1e11 is milliseconds), or Mongo extended JSON {"$date": …}. ok is
// false when v is missing or null.
func refParseTime(v *fastjson.Value) (t time.Time, ok bool, err error) {
	if v == nil || v.Type() == fastjson.TypeNull {
		return time.Time{}, false, nil
	}
	switch v.Type() {
	case fastjson.TypeString:
		b := v.GetStringBytes()
		s := unsafe.String(unsafe.SliceData(b), len(b)) // only parsed, never kept
		t, err = parseTimeString(s)
		if err != nil {
			return t, false, invalid(ReasonBadTime, "%q is not an RFC 3339 time", shorten(s, 64))
		}
	case fastjson.TypeNumber:
		f, ferr := refFloat(v)
		if ferr != nil {
			return t, false, invalid(ReasonBadTime, "%s is not a number of seconds or milliseconds", v.MarshalTo(nil))
		}
		t, err = epochTime(f)
		if err != nil {
			return t, false, err
		}
	case fastjson.TypeObject:
		dv := v.Get("$date")
		if dv == nil || v.GetObject().Len() != 1 {
			return t, false, invalid(ReasonBadTime, "an object time must be {\"$date\": …}")
		}
		if nl := dv.Get("$numberLong"); nl != nil {
			ms, perr := strconv.ParseInt(string(nl.GetStringBytes()), 10, 64)
			if perr != nil {
				return t, false, invalid(ReasonBadTime, "bad $numberLong in $date")
			}
			t = time.UnixMilli(ms).UTC()
		} else if dv.Type() == fastjson.TypeNumber {
			f, _ := refFloat(dv)
			if f > 1e15 || f < -1e15 {
				return t, false, invalid(ReasonTimeOutOfRange, "$date %v ms is out of range", f)
			}
			t = time.UnixMilli(int64(f)).UTC()
		} else if dv.Type() == fastjson.TypeString {
			s := string(dv.GetStringBytes())
			if t, err = parseTimeString(s); err != nil {
				return t, false, invalid(ReasonBadTime, "$date %q is not an RFC 3339 time", shorten(s, 64))
			}
		} else {
			return t, false, invalid(ReasonBadTime, "$date is a %s", dv.Type())
		}
	default:
		return t, false, invalid(ReasonBadTime, "a time cannot be a %s", v.Type())
	}
	if t.Before(minTime) || t.After(maxTime) {
		return t, false, invalid(ReasonTimeOutOfRange, "%s is outside years 1 to 9999", t.Format(time.RFC3339))
	}
	return t.UTC().Truncate(time.Microsecond), true, nil
}

// Flatten turns a decoded event into rows, appended to dst: one row per
// table that takes the event's type, plus one row per element of each child
// table's array. It must be called before the Decoder's next Decode. A value
// that cannot be coerced to its column's type returns an *InvalidError and
// no rows.
func (d *refDecoder) Flatten(ev *oldEvent, dst []Row) ([]Row, error) {
	d.total = 0
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
func (d *refDecoder) keep(v *Value, b []byte, k Kind) error {
	if k == JSON {
		if err := checkJSONSize(len(b)); err != nil {
			return err
		}
	}
	d.fix = append(d.fix, strFix{v: v, off: len(d.sb), n: len(b)})
	d.sb = append(d.sb, b...)
	return nil
}

func (d *refDecoder) flattenTable(ev *oldEvent, t *Table, dst []Row) ([]Row, error) {
	evTime := ev.Time
	if t.timePath != nil {
		tt, ok, err := refParseTime(ev.root.Get(t.timePath...))
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
	d.total += int64(d.cut)
	dst = append(dst, Row{Table: t, Values: vals})

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
			d.total += int64(d.cut)
			dst = append(dst, Row{Table: c, Values: vals})
		}
	}
	return dst, nil
}

// columnValue reads column c's value under root. For a varchar or json
// value it returns the text as b with str true (b valid until the next
// value), and the Value's S empty.
func (d *refDecoder) columnValue(root *fastjson.Value, c *Column) (val Value, b []byte, str bool, err error) {
	v := root
	if c.path != nil {
		v = root.Get(c.path...)
	}
	if c.ExpandIndex >= 0 {
		if v == nil || v.Type() == fastjson.TypeNull {
			return NullValue, nil, false, nil
		}
		if v.Type() != fastjson.TypeArray {
			return NullValue, nil, false, invalid(ReasonTypeMismatch, "expand wants an array, found a %s", v.Type())
		}
		a := v.GetArray()
		if c.ExpandIndex == 0 {
			// Checked once, on the first expanded column.
			if limit := c.ExpandCount; len(a) > limit {
				return NullValue, nil, false, invalid(ReasonExpandOverflow, "the array has %d elements; expand: %d holds only %d", len(a), limit, limit)
			}
		}
		if c.ExpandIndex >= len(a) {
			return NullValue, nil, false, nil
		}
		v = a[c.ExpandIndex]
	}
	return d.coerce(v, c.Type)
}

// coerce converts a JSON value to a column type by the rules of the README's
// coercion table; a missing value or null is NULL. A varchar or json value's
// text is returned as b, with str true, for Flatten to keep (b is valid until
// the next value).
func (d *refDecoder) coerce(v *fastjson.Value, t Type) (val Value, b []byte, str bool, err error) {
	if v == nil || v.Type() == fastjson.TypeNull {
		return NullValue, nil, false, nil
	}
	if t.Kind == Varchar {
		if v.Type() == fastjson.TypeString {
			b = v.GetStringBytes()
		} else {
			d.buf, _ = refAppendJSON(d.buf[:0], v, false)
			b = d.buf
		}
		if len(b) > t.Length {
			b = b[:cutUTF8(b, t.Length)]
			d.cut++
		}
		return Value{}, b, true, nil
	}
	if t.Kind == JSON {
		if d.buf, err = refAppendJSON(d.buf[:0], v, true); err != nil {
			return NullValue, nil, false, err
		}
		return Value{}, d.buf, true, nil
	}
	val, err = d.coerceScalar(v, t)
	return val, nil, false, err
}

// coerceScalar coerces to every type but varchar and json.
func (d *refDecoder) coerceScalar(v *fastjson.Value, t Type) (Value, error) {
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
		return NullValue, refMismatch(v, t)
	case Smallint, Integer, Bigint:
		if v.Type() != fastjson.TypeNumber {
			return NullValue, refMismatch(v, t)
		}
		if n, err := v.Int64(); err == nil { // plain digits: the common case
			if lo, hi := intBounds(t.Kind); n >= lo && n <= hi {
				return Value{I: n}, nil
			}
		}
		d.buf = v.MarshalTo(d.buf[:0])
		return refCoerceInt(d.buf, t)
	case Real, Double:
		if v.Type() != fastjson.TypeNumber {
			return NullValue, refMismatch(v, t)
		}
		f, err := refFloat(v)
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
			return NullValue, refMismatch(v, t)
		}
		return refCoerceDecimal(s, t)
	case Timestamp:
		tm, ok, err := refParseTime(v)
		if err != nil || !ok {
			return NullValue, err
		}
		return Value{I: tm.UnixMicro()}, nil
	case Date:
		tm, ok, err := refParseTime(v)
		if err != nil || !ok {
			return NullValue, err
		}
		return Value{I: int64(math.Floor(float64(tm.Unix()) / 86400))}, nil
	}
	return NullValue, fmt.Errorf("schema: no coercion for %s", t)
}

func refMismatch(v *fastjson.Value, t Type) error {
	what := v.Type().String()
	if v.Type() == fastjson.TypeString {
		what = fmt.Sprintf("string %q", shorten(string(v.GetStringBytes()), 40))
	}
	return invalid(ReasonTypeMismatch, "a %s is declared but the event has a %s", t, what)
}

func refCoerceInt(b []byte, t Type) (Value, error) {
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

// coerceDecimal parses s exactly. A value needing more decimal places than
// the scale, or more digits than the precision, is rejected rather than
// rounded.
func refCoerceDecimal(s string, t Type) (Value, error) {
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

// extras returns the event's fields that no column, child table or time path
// consumes (the envelope's id, type and time excluded), as a JSON object, or
// nil when there are none. A number there that a JSON column cannot hold is
// an out_of_range error, as it is in a json column.
func (d *refDecoder) extras(root *fastjson.Value, t *Table) ([]byte, error) {
	d.buf = d.buf[:0]
	var ok bool
	var err error
	d.buf, ok = d.appendUnmapped(d.buf, root, t.mapped, 0, &err)
	if err != nil || !ok {
		return nil, err
	}
	return d.buf, nil
}

func (d *refDecoder) appendUnmapped(dst []byte, v *fastjson.Value, tree *pathTree, depth int, errp *error) ([]byte, bool) {
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
			dst, *errp = refAppendJSON(dst, child, true)
		}
		any = true
	})
	if !any {
		return dst[:start], false
	}
	return append(dst, '}'), true
}

// appendJSON appends v as JSON text. fastjson's own MarshalTo quotes a string
// that holds a control character or a quote with strconv.Quote, which writes
// Go escapes such as \x01 or \U000f0000 that no JSON parser takes (and
// PostgreSQL's jsonb, or Redshift's SUPER, would reject the whole file);
// appendJSON escapes strings by JSON's rules. Numbers are copied as written.
// With checkNumbers, a number that a warehouse's JSON type cannot hold (see
// jsonNumberOK) returns an out_of_range error. v has passed Decoder.check, so
// its strings are valid UTF-8 without NUL and it nests at most MaxDepth deep.
func refAppendJSON(dst []byte, v *fastjson.Value, checkNumbers bool) ([]byte, error) {
	switch v.Type() {
	case fastjson.TypeObject:
		dst = append(dst, '{')
		first := true
		var err error
		v.GetObject().Visit(func(k []byte, c *fastjson.Value) {
			if err != nil {
				return
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst, err = refAppendJSON(dst, c, checkNumbers)
		})
		if err != nil {
			return dst, err
		}
		return append(dst, '}'), nil
	case fastjson.TypeArray:
		dst = append(dst, '[')
		for i, c := range v.GetArray() {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = refAppendJSON(dst, c, checkNumbers); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case fastjson.TypeString:
		return appendJSONString(dst, v.GetStringBytes()), nil
	case fastjson.TypeNumber:
		start := len(dst)
		dst = v.MarshalTo(dst)
		if checkNumbers && !jsonNumberOK(dst[start:]) {
			return dst, invalid(ReasonOutOfRange, "the number %s in a JSON value does not fit a double", shorten(string(dst[start:]), 40))
		}
		return dst, nil
	default: // true, false, null
		return v.MarshalTo(dst), nil
	}
}

func (d *refDecoder) isEnvelopeKey(k []byte) bool {
	for _, p := range d.env {
		if len(p) == 1 && p[0] == string(k) {
			return true
		}
	}
	return false
}
