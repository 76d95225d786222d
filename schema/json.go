package schema

import (
	"math"
	"strconv"
)

// appendJSON appends the value at i on the tape as compact JSON text:
// strings escaped by JSON's rules (a quote, a backslash and control
// characters; a string that had no escapes is copied as it is, having none
// of those), numbers copied as written. With checkNumbers, a number that a
// warehouse's JSON type cannot hold (see jsonNumberOK) returns an
// out_of_range error. The tape has passed parse, so its strings are valid
// UTF-8 without NUL and it nests at most MaxDepth deep.
func (t *tape) appendJSON(dst []byte, i uint32, checkNumbers bool) ([]byte, error) {
	k := &t.toks[i]
	switch k.kind {
	case tObject:
		dst = append(dst, '{')
		for m := i + 1; m < k.end; m = t.next(m + 1) {
			if m > i+1 {
				dst = append(dst, ',')
			}
			dst = t.appendString(dst, m)
			dst = append(dst, ':')
			var err error
			if dst, err = t.appendJSON(dst, m+1, checkNumbers); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	case tArray:
		dst = append(dst, '[')
		for e := i + 1; e < k.end; e = t.next(e) {
			if e > i+1 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = t.appendJSON(dst, e, checkNumbers); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case tString:
		return t.appendString(dst, i), nil
	case tNumber:
		n := t.src[k.off : k.off+k.n]
		if checkNumbers && !jsonNumberOK(n) {
			return dst, invalid(ReasonOutOfRange, "the number %s in a JSON value does not fit a double", shorten(string(n), 40))
		}
		return append(dst, n...), nil
	case tTrue:
		return append(dst, "true"...), nil
	case tFalse:
		return append(dst, "false"...), nil
	}
	return append(dst, "null"...), nil
}

// appendString appends the string at i as a JSON string.
func (t *tape) appendString(dst []byte, i uint32) []byte {
	k := &t.toks[i]
	if !k.esc {
		// Its text as written has no quote, backslash or control character.
		dst = append(dst, '"')
		dst = append(dst, t.src[k.off:k.off+k.n]...)
		return append(dst, '"')
	}
	return appendJSONString(dst, t.esc[k.off:k.off+k.n])
}

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
