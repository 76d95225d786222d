package schema

import (
	"math"
	"strconv"

	"github.com/valyala/fastjson"
)

// appendJSON appends v as JSON text. fastjson's own MarshalTo quotes a string
// that holds a control character or a quote with strconv.Quote, which writes
// Go escapes such as \x01 or \U000f0000 that no JSON parser takes (and
// PostgreSQL's jsonb, or Redshift's SUPER, would reject the whole file);
// appendJSON escapes strings by JSON's rules. Numbers are copied as written.
// With checkNumbers, a number that a warehouse's JSON type cannot hold (see
// jsonNumberOK) returns an out_of_range error. v has passed Decoder.check, so
// its strings are valid UTF-8 without NUL and it nests at most MaxDepth deep.
func appendJSON(dst []byte, v *fastjson.Value, checkNumbers bool) ([]byte, error) {
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
			dst, err = appendJSON(dst, c, checkNumbers)
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
			if dst, err = appendJSON(dst, c, checkNumbers); err != nil {
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

// jsonNumberOK reports whether a JSON number (valid syntax) is one that every
// warehouse JSON type holds as written or as the nearest double: finite as a
// double, not a non-zero value that a double rounds to zero, its exponent
// within ±400 and its text at most 400 bytes. PostgreSQL's jsonb, for one,
// fails a whole COPY on 1e-20000 or 0e-99999, and Redshift's SUPER keeps
// numbers as doubles.
func jsonNumberOK(n []byte) bool {
	if len(n) > 400 {
		return false
	}
	exp := -1
	for i, c := range n {
		if c == 'e' || c == 'E' {
			exp = i
			break
		}
	}
	if exp < 0 && len(n) <= 300 {
		return true // at most 300 digits and no exponent: within 1e±300
	}
	if exp >= 0 {
		e, err := strconv.Atoi(string(n[exp+1:]))
		if err != nil || e > 400 || e < -400 {
			return false
		}
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) {
		return false
	}
	if f == 0 {
		// Zero only when every digit of the mantissa is zero.
		m := n
		if exp >= 0 {
			m = n[:exp]
		}
		for _, c := range m {
			if c >= '1' && c <= '9' {
				return false
			}
		}
	}
	return true
}
