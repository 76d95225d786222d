package schema

import (
	"bytes"
	"math"
	"unicode/utf8"
)

// quickCheck is Decode's fast path: one pass over the message that holds
// for strict JSON text whose strings are valid UTF-8 with no NUL and no lone
// surrogate, nesting under MaxDepth, arrays of at most MaxArrayLength
// elements and objects of at most 64 keys, none of which collide once
// lower-cased (keys with escapes are left to the slow path).
//
// It only ever accepts what the slow path (utf8.Valid, fastjson.Validate,
// loneSurrogate and check) accepts; anything else, whether invalid or merely
// unusual, returns false, and the slow path then decides, with its precise
// reason. FuzzQuickCheck holds the two paths to that.
func (d *Decoder) quickCheck(b []byte) bool {
	s := scanner{b: b, keys: d.qkeys[:0]}
	i, ok := s.value(s.ws(0), 0)
	d.qkeys = s.keys[:0]
	return ok && s.ws(i) == len(b)
}

// quickKeyLimit is the most keys an object may have on the fast path; the
// slow path checks larger objects with a map.
const quickKeyLimit = 64

type scanner struct {
	b    []byte
	keys []span // keys of the open objects, innermost last
}

// span is b[off : off+n] (offsets, not a slice, so that keeping keys costs
// no pointer writes).
type span struct{ off, n int32 }

// plain marks the bytes a string holds as they are: not a quote, a
// backslash, a control character or a byte of a multi-byte character.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (s *scanner) ws(i int) int {
	if i < len(s.b) && s.b[i] > ' ' {
		return i
	}
	return s.wsSlow(i)
}

func (s *scanner) wsSlow(i int) int {
	for i < len(s.b) {
		switch s.b[i] {
		case ' ', '\n', '\t', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// value scans the value starting at b[i] (no leading space), depth levels
// below the top (the top is 0, as in check), and returns the index after it.
func (s *scanner) value(i, depth int) (int, bool) {
	if i >= len(s.b) {
		return i, false
	}
	switch c := s.b[i]; {
	case c == '"':
		i, _, ok := s.str(i + 1)
		return i, ok
	case c == '{':
		if depth >= MaxDepth {
			return i, false
		}
		return s.object(i+1, depth)
	case c == '[':
		if depth >= MaxDepth {
			return i, false
		}
		return s.array(i+1, depth)
	case c == 't':
		return s.lit(i, "true")
	case c == 'f':
		return s.lit(i, "false")
	case c == 'n':
		return s.lit(i, "null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number(i)
	}
	return i, false
}

func (s *scanner) lit(i int, word string) (int, bool) {
	if len(s.b)-i < len(word) || string(s.b[i:i+len(word)]) != word {
		return i, false
	}
	return i + len(word), true
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number(i int) (int, bool) {
	b := s.b
	if b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if i = s.digits(i); i < 0 {
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		if i = s.digits(i + 1); i < 0 {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i = s.digits(i); i < 0 {
			return 0, false
		}
	}
	return i, true
}

// digits scans one or more digits from b[i] and returns the index after
// them, or -1 when there is none.
func (s *scanner) digits(i int) int {
	start := i
	for i < len(s.b) && s.b[i] >= '0' && s.b[i] <= '9' {
		i++
	}
	if i == start {
		return -1
	}
	return i
}

// str scans a string whose opening quote is before b[i] and returns the
// index after its closing quote, and whether the string has an escape.
func (s *scanner) str(i int) (end int, escaped, ok bool) {
	b := s.b
	for i < len(b) {
		c := b[i]
		if plain[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			return i + 1, escaped, true
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return i, escaped, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				r, ok := hex4(b[i+2:])
				if !ok || r == 0 {
					return i, escaped, false // a bad escape, or NUL
				}
				i += 6
				if r >= 0xdc00 && r <= 0xdfff {
					return i, escaped, false // a lone low surrogate
				}
				if r >= 0xd800 && r < 0xdc00 {
					if len(b)-i < 6 || b[i] != '\\' || b[i+1] != 'u' {
						return i, escaped, false
					}
					if r2, ok := hex4(b[i+2:]); !ok || r2 < 0xdc00 || r2 > 0xdfff {
						return i, escaped, false
					}
					i += 6
				}
			default:
				return i, escaped, false
			}
		case c < utf8.RuneSelf: // a control character
			return i, escaped, false
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return i, escaped, false
			}
			i += size
		}
	}
	return i, escaped, false
}

func (s *scanner) array(i, depth int) (int, bool) {
	i = s.ws(i)
	if i < len(s.b) && s.b[i] == ']' {
		return i + 1, true
	}
	for n := 1; ; n++ {
		if n > MaxArrayLength {
			return i, false
		}
		var ok, more bool
		if i, ok = s.value(i, depth+1); !ok {
			return i, false
		}
		if i, more, ok = s.sep(i, ']'); !ok || !more {
			return i, ok
		}
	}
}

// sep reads what follows an element or member: a comma (more follow; i is
// then at the next one) or closer (i is after it).
func (s *scanner) sep(i int, closer byte) (next int, more, ok bool) {
	i = s.ws(i)
	if i >= len(s.b) {
		return i, false, false
	}
	switch s.b[i] {
	case ',':
		return s.ws(i + 1), true, true
	case closer:
		return i + 1, false, true
	}
	return i, false, false
}

func (s *scanner) object(i, depth int) (int, bool) {
	base := len(s.keys)
	i, ok := s.members(i, depth, base)
	s.keys = s.keys[:base]
	return i, ok
}

func (s *scanner) members(i, depth, base int) (int, bool) {
	i = s.ws(i)
	if i < len(s.b) && s.b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(s.b) || s.b[i] != '"' {
			return i, false
		}
		start := i + 1
		end, escaped, ok := s.str(start)
		if !ok {
			return i, false
		}
		key := s.b[start : end-1]
		if escaped || len(s.keys)-base >= quickKeyLimit || len(s.b) > math.MaxInt32 {
			return i, false
		}
		for _, prev := range s.keys[base:] {
			if int(prev.n) == len(key) && bytes.EqualFold(s.b[prev.off:prev.off+prev.n], key) {
				return i, false
			}
		}
		s.keys = append(s.keys, span{off: int32(start), n: int32(len(key))})
		i = s.ws(end)
		if i >= len(s.b) || s.b[i] != ':' {
			return i, false
		}
		if i, ok = s.value(s.ws(i+1), depth+1); !ok {
			return i, false
		}
		var more bool
		if i, more, ok = s.sep(i, '}'); !ok || !more {
			return i, ok
		}
	}
}
