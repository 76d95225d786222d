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
)

// FlattenInto flattens a decoded event into dst, column by column: one row
// per table that takes the event's type, plus one row per element of each
// child table's array. It must be called before the Decoder's next Decode.
// A value that cannot be coerced to its column's type returns an
// *InvalidError, and dst is left as it was (it may have gained tables
// without rows).
func (d *Decoder) FlattenInto(ev *Event, dst *Rows) error {
	if ev.tape != &d.tp {
		return invalid(ReasonBadJSON, "the event was not decoded by this decoder")
	}
	// The rows of each table the event goes to, and where they end now (to
	// take the event's rows back).
	trs, marks := d.trs[:0], d.marks[:0]
	for _, t := range ev.Tables {
		tr := dst.For(t)
		trs, marks = append(trs, tr), append(marks, tr.mark())
		for _, c := range t.Children {
			tr := dst.For(c)
			trs, marks = append(trs, tr), append(marks, tr.mark())
		}
	}
	d.trs, d.marks = trs, marks
	k := 0
	for _, t := range ev.Tables {
		if err := d.flattenTable(ev, t, trs[k:k+1+len(t.Children)]); err != nil {
			for i, tr := range trs {
				tr.undo(marks[i])
			}
			clear(d.trs)
			return err
		}
		k += 1 + len(t.Children)
	}
	clear(d.trs)
	return nil
}

// Flatten is FlattenInto for callers that want rows one by one: it appends
// the event's rows to dst, each with its own Values (its strings sharing
// one allocation). An error returns dst as it was.
func (d *Decoder) Flatten(ev *Event, dst []Row) ([]Row, error) {
	d.rows.Reset()
	if err := d.FlattenInto(ev, &d.rows); err != nil {
		return dst, err
	}
	return d.rows.Slice(dst), nil
}

// flattenTable adds the rows of parent table t: trs holds the rows of t and
// then of each of its children.
func (d *Decoder) flattenTable(ev *Event, t *Table, trs []*TableRows) error {
	tp := &d.tp
	// One walk of the event finds every mapped path and builds _extras.
	if cap(d.slots) < t.slots {
		d.slots = make([]uint32, t.slots)
	}
	slots := d.slots[:t.slots]
	clear(slots)
	d.ext = d.ext[:0]
	var extErr error
	var hasExt bool
	if t.Extras {
		d.ext, hasExt = d.walk(d.ext, 0, t.mapped, 0, true, &extErr)
	} else {
		d.walk(nil, 0, t.mapped, 0, false, &extErr)
	}
	at := func(slot int, rest []string) uint32 {
		v := slots[slot]
		if rest != nil && v != 0 {
			v = tp.get(v, rest)
		}
		return v
	}

	evTime := ev.Time
	if t.timePath != nil {
		tt, ok, err := tp.parseTime(at(t.timeSlot, t.timeRest))
		if err != nil {
			return withColumn(err, t.Name, "time", t.Time)
		}
		if ok {
			evTime = tt
		}
	}
	micros := evTime.UnixMicro()
	received := ev.ReceivedAt.UnixMicro()
	id := unsafe.Slice(unsafe.StringData(ev.ID), len(ev.ID))

	// The child tables' arrays, checked before any row is made.
	var arrays [8]uint32
	arr := arrays[:0]
	for _, c := range t.Children {
		av := at(c.arraySlot, c.arrayRest)
		if av != 0 && tp.toks[av].kind == tNull {
			av = 0
		}
		if av != 0 && tp.toks[av].kind != tArray {
			return invalid(ReasonTypeMismatch, "table %s: path %s is a %s, not an array", c.Name, c.Path, tp.toks[av].kind)
		}
		arr = append(arr, av)
	}

	tr := trs[0]
	row := tr.Len
	var cut int64
	for i := range t.Columns {
		c := &t.Columns[i]
		col := &tr.Cols[i]
		var err error
		switch c.Source {
		case FromEventID:
			col.appendString(id)
		case FromEventTime:
			col.appendInt(micros)
		case FromReceivedAt:
			col.appendInt(received)
		case FromExtras:
			switch {
			case extErr != nil:
				err = extErr
			case !hasExt:
				col.appendNull(row)
			default:
				if err = checkJSONSize(len(d.ext)); err == nil {
					col.appendString(d.ext)
				}
			}
		case FromPath:
			err = d.columnValue(at(c.slot, c.rest), c, col, row, &cut)
		}
		if err != nil {
			return withColumn(err, t.Name, c.Name, c.Path)
		}
	}
	tr.Len++
	tr.Truncated += cut

	for ci, c := range t.Children {
		av := arr[ci]
		if av == 0 || tp.toks[av].n == 0 {
			continue
		}
		tr := trs[1+ci]
		idx := 0
		for elem := av + 1; elem < tp.toks[av].end; elem = tp.next(elem) {
			cut = 0
			row := tr.Len
			for i := range c.Columns {
				col := &c.Columns[i]
				cv := &tr.Cols[i]
				var err error
				switch col.Source {
				case FromEventID:
					cv.appendString(id)
				case FromEventTime:
					cv.appendInt(micros)
				case FromIndex:
					cv.appendInt(int64(idx))
				case FromReceivedAt:
					cv.appendInt(received)
				case FromPath:
					v := elem
					if col.path != nil {
						v = tp.get(elem, col.path)
					}
					err = d.columnValue(v, col, cv, row, &cut)
				}
				if err != nil {
					return withColumn(err, c.Name, col.Name, fmt.Sprintf("%s[%d].%s", c.Path, idx, col.Path))
				}
			}
			tr.Len++
			tr.Truncated += cut
			idx++
		}
	}
	return nil
}

// walk visits the members of the object at v, which the mapped tree n
// describes, depth levels below the event: it records the value of each
// mapped path in its slot (d.slots), and with ext it appends the members that
// no path maps (the envelope's keys at the top excepted) to dst as a JSON
// object, reporting whether there were any. A number there that a JSON
// column cannot hold sets *errp; the walk then goes on for the slots only.
func (d *Decoder) walk(dst []byte, v uint32, n *pathTree, depth int, ext bool, errp *error) ([]byte, bool) {
	tp := &d.tp
	start := len(dst)
	if ext {
		dst = append(dst, '{')
	}
	any := false
	for m := v + 1; m < tp.toks[v].end; m = tp.next(m + 1) {
		k := tp.text(m)
		sub := n.kid(k)
		if sub != nil && sub.leaf {
			d.slots[sub.slot] = m + 1
			continue
		}
		child := m + 1
		deeper := sub != nil && tp.toks[child].kind == tObject
		if !ext || depth == 0 && d.isEnvelopeKey(m, k) {
			if deeper {
				d.walk(nil, child, sub, depth+1, false, errp)
			}
			continue
		}
		mark := len(dst)
		if any {
			dst = append(dst, ',')
		}
		dst = tp.appendString(dst, m)
		dst = append(dst, ':')
		if deeper {
			var ok bool
			if dst, ok = d.walk(dst, child, sub, depth+1, ext, errp); !ok {
				dst = dst[:mark]
				if *errp != nil {
					ext = false
				}
				continue
			}
		} else {
			var err error
			if dst, err = tp.appendJSON(dst, child, true); err != nil {
				*errp = err
				dst, ext = dst[:mark], false
				continue
			}
		}
		any = true
	}
	if !ext {
		return dst[:start], false
	}
	if !any {
		return dst[:start], false
	}
	return append(dst, '}'), true
}

func withColumn(err error, table, column, path string) error {
	if ie, ok := err.(*InvalidError); ok {
		return &InvalidError{Reason: ie.Reason, Detail: fmt.Sprintf("table %s, column %s (path %s): %s", table, column, path, ie.Detail)}
	}
	return err
}

// columnValue appends column c's value, v being the value at its path (0
// when there is none), to col as row row.
func (d *Decoder) columnValue(v uint32, c *Column, col *ColumnValues, row int, cut *int64) error {
	tp := &d.tp
	if c.ExpandIndex >= 0 {
		if v == 0 || tp.toks[v].kind == tNull {
			col.appendNull(row)
			return nil
		}
		if k := tp.toks[v].kind; k != tArray {
			return invalid(ReasonTypeMismatch, "expand wants an array, found a %s", k)
		}
		n := int(tp.toks[v].n)
		if c.ExpandIndex == 0 {
			// Checked once, on the first expanded column.
			if n > c.ExpandCount {
				return invalid(ReasonExpandOverflow, "the array has %d elements; expand: %d holds only %d", n, c.ExpandCount, c.ExpandCount)
			}
		}
		if c.ExpandIndex >= n {
			col.appendNull(row)
			return nil
		}
		e := v + 1
		for range c.ExpandIndex {
			e = tp.next(e)
		}
		v = e
	}
	return d.coerce(v, c.Type, col, row, cut)
}

// coerce appends the value at v, converted to a column type by the rules of
// the README's coercion table, to col; a missing value (v is 0) or null is
// NULL.
func (d *Decoder) coerce(v uint32, t Type, col *ColumnValues, row int, cut *int64) error {
	tp := &d.tp
	if v == 0 || tp.toks[v].kind == tNull {
		col.appendNull(row)
		return nil
	}
	k := tp.toks[v].kind
	switch t.Kind {
	case Varchar:
		var b []byte
		if k == tString {
			b = tp.text(v)
		} else {
			d.buf, _ = tp.appendJSON(d.buf[:0], v, false)
			b = d.buf
		}
		if len(b) > t.Length {
			b = b[:cutUTF8(b, t.Length)]
			*cut++
		}
		col.appendString(b)
		return nil
	case JSON:
		var err error
		if d.buf, err = tp.appendJSON(d.buf[:0], v, true); err != nil {
			return err
		}
		if err := checkJSONSize(len(d.buf)); err != nil {
			return err
		}
		col.appendString(d.buf)
		return nil
	case Decimal:
		var s string
		switch k {
		case tNumber:
			s = string(tp.text(v))
		case tString:
			s = strings.TrimSpace(string(tp.text(v)))
		default:
			return d.mismatch(v, t)
		}
		u, err := coerceDecimal(s, t)
		if err != nil {
			return err
		}
		if t.Precision <= 18 {
			col.appendInt(u.Int64())
		} else {
			col.def()
			col.Bytes = appendBigBytes(col.Bytes, u, DecimalBytes(t.Precision))
		}
		return nil
	}
	n, err := d.coerceScalar(v, t)
	if err != nil {
		return err
	}
	col.appendInt(n)
	return nil
}

// coerceScalar coerces to every type but varchar, json and decimal.
func (d *Decoder) coerceScalar(v uint32, t Type) (int64, error) {
	tp := &d.tp
	k := tp.toks[v].kind
	switch t.Kind {
	case Boolean:
		switch k {
		case tTrue:
			return 1, nil
		case tFalse:
			return 0, nil
		case tString:
			switch strings.ToLower(string(tp.text(v))) {
			case "true":
				return 1, nil
			case "false":
				return 0, nil
			}
		case tNumber:
			switch string(tp.text(v)) {
			case "0":
				return 0, nil
			case "1":
				return 1, nil
			}
		}
		return 0, d.mismatch(v, t)
	case Smallint, Integer, Bigint:
		if k != tNumber {
			return 0, d.mismatch(v, t)
		}
		text := tp.text(v)
		if n, ok := parseInt(text); ok { // plain digits: the common case
			if lo, hi := intBounds(t.Kind); n >= lo && n <= hi {
				return n, nil
			}
		}
		return coerceInt(text, t)
	case Real, Double:
		if k != tNumber {
			return 0, d.mismatch(v, t)
		}
		f := parseFloat(tp.text(v))
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, invalid(ReasonOutOfRange, "%s does not fit a %s", shorten(string(tp.text(v)), 40), t)
		}
		if t.Kind == Real {
			if math.Abs(f) > math.MaxFloat32 {
				return 0, invalid(ReasonOutOfRange, "%v does not fit a real", f)
			}
			f = float64(float32(f))
		}
		return int64(math.Float64bits(f)), nil
	case Timestamp:
		tm, ok, err := tp.parseTime(v)
		if err != nil || !ok {
			return 0, err
		}
		return tm.UnixMicro(), nil
	case Date:
		tm, ok, err := tp.parseTime(v)
		if err != nil || !ok {
			return 0, err
		}
		return int64(math.Floor(float64(tm.Unix()) / 86400)), nil
	}
	return 0, fmt.Errorf("schema: no coercion for %s", t)
}

func (d *Decoder) mismatch(v uint32, t Type) error {
	k := d.tp.toks[v].kind
	what := k.String()
	if k == tString {
		what = fmt.Sprintf("string %q", shorten(string(d.tp.text(v)), 40))
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

func coerceInt(b []byte, t Type) (int64, error) {
	n, ok := parseInt(b)
	if !ok {
		// 3.0 and 1e3 are integers too; 3.5 is not.
		raw := string(b)
		f, ferr := strconv.ParseFloat(raw, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) >= 1<<63 {
			if ferr == nil && f == math.Trunc(f) {
				return 0, invalid(ReasonOutOfRange, "%s does not fit a %s", shorten(raw, 40), t)
			}
			return 0, invalid(ReasonTypeMismatch, "%s is not an integer (%s)", shorten(raw, 40), t)
		}
		n = int64(f)
	}
	if lo, hi := intBounds(t.Kind); n < lo || n > hi {
		return 0, invalid(ReasonOutOfRange, "%d does not fit a %s", n, t)
	}
	return n, nil
}

var pow10 = func() []*big.Int {
	out := make([]*big.Int, MaxDecimalPrecision+1)
	for i := range out {
		out[i] = new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(i)), nil)
	}
	return out
}()

// coerceDecimal parses s exactly and returns its unscaled value. A value
// needing more decimal places than the scale, or more digits than the
// precision, is rejected rather than rounded.
func coerceDecimal(s string, t Type) (*big.Int, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok || strings.ContainsAny(s, "/") {
		return nil, invalid(ReasonTypeMismatch, "%q is not a decimal number", shorten(s, 40))
	}
	r.Mul(r, new(big.Rat).SetInt(pow10[t.Scale]))
	if !r.IsInt() {
		return nil, invalid(ReasonOutOfRange, "%s has more than %d decimal places (%s)", shorten(s, 40), t.Scale, t)
	}
	u := r.Num()
	if new(big.Int).Abs(u).Cmp(pow10[t.Precision]) >= 0 {
		return nil, invalid(ReasonOutOfRange, "%s does not fit a %s", shorten(s, 40), t)
	}
	return u, nil
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

// isEnvelopeKey reports whether key token m (k its text) of the event's
// top object is an envelope path's one key: one that parse noted (keys do
// not repeat in an event, so the one noted is the only one).
func (d *Decoder) isEnvelopeKey(m uint32, k []byte) bool {
	if len(k) >= 64 || d.envLens&(1<<len(k)) == 0 {
		return false
	}
	at := &d.tp.topAt
	return m == at[topEnv] || m == at[topEnv+1] || m == at[topEnv+2]
}

// TimeOf returns the time of a timestamp value.
func TimeOf(v Value) time.Time { return time.UnixMicro(v.I).UTC() }
