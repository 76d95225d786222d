package schema

import (
	"bytes"
	"encoding/binary"
	"iter"
	"math"
	"math/bits"
	"strings"
	"unicode/utf8"
)

// The tape is Decode's one pass over a message: it validates the JSON text
// and every shape check of the event (see parse) and records each value as a
// token in a flat slice that the Decoder reuses from one message to the next.
// Flatten, the envelope and the raw BSON writer (through Node) read values
// from it; nothing is parsed twice and nothing is allocated per value.
//
// An object is its token followed by its members, each a key token (a
// string) and the value's tokens; an array is its token followed by its
// elements. An object or array token holds the index of the token after its
// last member (end), so that a reader skips a value in one step.

type tokKind uint8

const (
	tObject tokKind = iota + 1
	tArray
	tString
	tNumber
	tTrue
	tFalse
	tNull
)

func (k tokKind) String() string {
	switch k {
	case tObject:
		return "object"
	case tArray:
		return "array"
	case tString:
		return "string"
	case tNumber:
		return "number"
	case tTrue:
		return "true"
	case tFalse:
		return "false"
	case tNull:
		return "null"
	}
	return "invalid"
}

type tok struct {
	kind tokKind
	esc  bool   // a string that had escapes: its text is in tape.esc, unescaped
	off  uint32 // string, number: where its text starts (in src, or esc)
	n    uint32 // string, number: the text's length; object: members; array: elements
	end  uint32 // object, array: the index of the token after its last value
}

// tape is a parsed message. The zero value is ready to use.
type tape struct {
	src  []byte
	toks []tok
	esc  []byte   // the unescaped text of strings that had escapes
	keys []uint32 // key tokens of the open objects (the collision check), innermost last
	// exact is set when some object's keys are left to the exact check
	// (checkKeys): one with an escaped key, or more than quickKeyLimit.
	exact bool
	// top names keys of the top object that the decoder looks up (an SNS
	// notification's "Type", and the envelope's one-segment paths); parse
	// notes the token of each (topAt, 0: none). topLens has bit n set for
	// a name of n bytes.
	top     [4]string
	topLens uint64
	topAt   [4]uint32
}

// quickKeyLimit is the most keys of an object that parse checks for
// collisions as it goes; a larger object is checked afterwards as check
// does, with a map.
const quickKeyLimit = 64

// parse parses b into the tape, reporting whether b is one JSON value (with
// optional white space around it) that holds everything an event may hold:
// strict JSON text whose strings are valid UTF-8 with no NUL and no lone
// surrogate escape, nesting under MaxDepth, arrays of at most MaxArrayLength
// elements, and no object whose keys collide once lower-cased (as check
// defines it). It accepts exactly what the slow path (utf8.Valid,
// fastjson.Validate, loneSurrogate, fastjson's parser and check) accepts,
// which FuzzTape holds it to; when it refuses, the slow path finds the
// reason.
func (t *tape) parse(b []byte) bool {
	if len(b) > math.MaxUint32/2 {
		return false
	}
	t.src, t.toks, t.esc, t.keys, t.exact, t.topAt = b, t.toks[:0], t.esc[:0], t.keys[:0], false, [4]uint32{}
	i, ok := t.value(t.ws(0), 0)
	if !ok || t.ws(i) != len(b) {
		return false
	}
	if t.exact {
		return t.checkKeys()
	}
	return true
}

// push appends a token. Its fields are written in place: a token built
// whole and copied in would be stored field by field and loaded at once,
// which stalls the load (store forwarding fails), as measured in str.
func (t *tape) push(kind tokKind, esc bool, off, n uint32) {
	t.toks = append(t.toks, tok{})
	k := &t.toks[len(t.toks)-1]
	k.kind, k.esc, k.off, k.n = kind, esc, off, n
}

func (t *tape) ws(i int) int {
	if i < len(t.src) && t.src[i] > ' ' {
		return i
	}
	for i < len(t.src) {
		switch t.src[i] {
		case ' ', '\n', '\t', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// value parses the value at src[i] (no leading space), depth levels below
// the top (the top is 0, as in check), and returns the index after it.
func (t *tape) value(i, depth int) (int, bool) {
	b := t.src
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		return t.str(i + 1)
	case c == '{':
		if depth >= MaxDepth {
			return i, false
		}
		return t.object(i+1, depth)
	case c == '[':
		if depth >= MaxDepth {
			return i, false
		}
		return t.array(i+1, depth)
	case c == 't':
		if len(b)-i >= 4 && string(b[i:i+4]) == "true" {
			t.push(tTrue, false, 0, 0)
			return i + 4, true
		}
	case c == 'f':
		if len(b)-i >= 5 && string(b[i:i+5]) == "false" {
			t.push(tFalse, false, 0, 0)
			return i + 5, true
		}
	case c == 'n':
		if len(b)-i >= 4 && string(b[i:i+4]) == "null" {
			t.push(tNull, false, 0, 0)
			return i + 4, true
		}
	case c == '-' || c >= '0' && c <= '9':
		return t.number(i)
	}
	return i, false
}

// number parses -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (t *tape) number(start int) (int, bool) {
	b := t.src
	i := start
	if b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if i = digits(b, i); i < 0 {
		return start, false
	}
	if i < len(b) && b[i] == '.' {
		if i = digits(b, i+1); i < 0 {
			return start, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i = digits(b, i); i < 0 {
			return start, false
		}
	}
	t.push(tNumber, false, uint32(start), uint32(i-start))
	return i, true
}

// digits scans one or more digits from b[i] and returns the index after
// them, or -1 when there is none.
func digits(b []byte, i int) int {
	start := i
	for i < len(b) && b[i]-'0' < 10 {
		i++
	}
	if i == start {
		return -1
	}
	return i
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// str parses a string whose opening quote is before src[i], appends its
// token and returns the index after its closing quote.
func (t *tape) str(i int) (int, bool) {
	b := t.src
	start := i
	// Eight bytes at a time up to the first that is not plain text: a quote,
	// a backslash, a control character or a byte of a multi-byte character.
	// (The lowest flagged byte is exact; a borrow only flags higher ones.)
	for len(b)-i >= 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q, bs := x^(lsb*'"'), x^(lsb*'\\')
		m := ((q - lsb) &^ q) | ((bs - lsb) &^ bs) | ((x - lsb*0x20) &^ x) | x
		if m &= msb; m != 0 {
			z := bits.TrailingZeros64(m)
			i += z >> 3
			// The byte is in x: the common end, a quote, is found without
			// loading it again.
			if byte(x>>(z&^7)) == '"' {
				t.push(tString, false, uint32(start), uint32(i-start))
				return i + 1, true
			}
			break
		}
		i += 8
	}
	for i < len(b) {
		c := b[i]
		switch {
		case plain[c]:
			i++
		case c == '"':
			t.push(tString, false, uint32(start), uint32(i-start))
			return i + 1, true
		case c == '\\' || c != 0 && c < 0x20:
			// An escape, or a control character, which fastjson takes
			// when an escape follows it (escaped).
			return t.escaped(start, i)
		case c == 0:
			return i, false
		default:
			n := utf8Len(b[i:])
			if n == 0 {
				return i, false
			}
			i += n
		}
	}
	return i, false
}

// utf8Len returns the length of the valid UTF-8 character (not ASCII) that
// b starts with, or 0.
func utf8Len(b []byte) int {
	c := b[0]
	switch {
	case c >= 0xc2 && c < 0xe0:
		if len(b) >= 2 && b[1]&0xc0 == 0x80 {
			return 2
		}
		return 0
	}
	r, n := utf8.DecodeRune(b)
	if r == utf8.RuneError && n == 1 {
		return 0
	}
	return n
}

// plain marks the bytes a string holds as they are: not a quote, a
// backslash, a control character or a byte of a multi-byte character.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// escaped parses the rest of a string that has an escape or a control
// character at src[i], its text starting at src[start], unescaping it into
// t.esc as fastjson does. fastjson's validation checks a string that has
// escapes for control characters only after its last escape, and its parser
// keeps them as they are; so does escaped (NUL aside, which check refuses
// anywhere).
func (t *tape) escaped(start, i int) (int, bool) {
	b := t.src
	off := len(t.esc)
	t.esc = append(t.esc, b[start:i]...)
	ctrl := false // a control character since the last escape
	for i < len(b) {
		c := b[i]
		switch {
		case plain[c]:
			j := i + 1
			for j < len(b) && plain[b[j]] {
				j++
			}
			t.esc = append(t.esc, b[i:j]...)
			i = j
		case c == '"':
			if ctrl || len(t.esc) > math.MaxUint32 {
				return i, false
			}
			t.push(tString, true, uint32(off), uint32(len(t.esc)-off))
			return i + 1, true
		case c == '\\':
			if i+1 >= len(b) {
				return i, false
			}
			ctrl = false
			switch e := b[i+1]; e {
			case '"', '\\', '/':
				t.esc = append(t.esc, e)
				i += 2
			case 'b':
				t.esc = append(t.esc, '\b')
				i += 2
			case 'f':
				t.esc = append(t.esc, '\f')
				i += 2
			case 'n':
				t.esc = append(t.esc, '\n')
				i += 2
			case 'r':
				t.esc = append(t.esc, '\r')
				i += 2
			case 't':
				t.esc = append(t.esc, '\t')
				i += 2
			case 'u':
				r, ok := hex4(b[i+2:])
				if !ok || r == 0 {
					return i, false // a bad escape, or NUL
				}
				i += 6
				if r >= 0xdc00 && r <= 0xdfff {
					return i, false // a lone low surrogate
				}
				if r >= 0xd800 && r < 0xdc00 {
					if len(b)-i < 6 || b[i] != '\\' || b[i+1] != 'u' {
						return i, false
					}
					r2, ok := hex4(b[i+2:])
					if !ok || r2 < 0xdc00 || r2 > 0xdfff {
						return i, false
					}
					r = (r-0xd800)<<10 | (r2 - 0xdc00) + 0x10000
					i += 6
				}
				t.esc = utf8.AppendRune(t.esc, r)
			default:
				return i, false
			}
		case c == 0:
			return i, false
		case c < utf8.RuneSelf: // a control character
			ctrl = true
			t.esc = append(t.esc, c)
			i++
		default:
			n := utf8Len(b[i:])
			if n == 0 {
				return i, false
			}
			t.esc = append(t.esc, b[i:i+n]...)
			i += n
		}
	}
	return i, false
}

func (t *tape) array(i, depth int) (int, bool) {
	at := len(t.toks)
	t.push(tArray, false, 0, 0)
	i = t.ws(i)
	n := 0
	if i < len(t.src) && t.src[i] == ']' {
		i++
	} else {
		for {
			if n++; n > MaxArrayLength {
				return i, false
			}
			var ok bool
			if i < len(t.src) && t.src[i] == '"' {
				i, ok = t.str(i + 1)
			} else {
				i, ok = t.value(i, depth+1)
			}
			if !ok {
				return i, false
			}
			if i = t.ws(i); i >= len(t.src) {
				return i, false
			}
			if c := t.src[i]; c == ',' {
				i = t.ws(i + 1)
				continue
			} else if c != ']' {
				return i, false
			}
			i++
			break
		}
	}
	t.toks[at].n, t.toks[at].end = uint32(n), uint32(len(t.toks))
	return i, true
}

func (t *tape) object(i, depth int) (int, bool) {
	at := len(t.toks)
	t.push(tObject, false, 0, 0)
	base := len(t.keys)
	var lens uint64 // bit n: a key of n bytes (keys of 64 or more: bit 63)
	i = t.ws(i)
	n := 0
	if i < len(t.src) && t.src[i] == '}' {
		i++
	} else {
		for {
			if i >= len(t.src) || t.src[i] != '"' {
				return i, false
			}
			k := len(t.toks)
			var ok bool
			if i, ok = t.str(i + 1); !ok {
				return i, false
			}
			key := &t.toks[k]
			n++
			if depth == 0 && t.topLens&(1<<min(key.n, 63)) != 0 {
				t.noteTop(uint32(k))
			}
			if key.esc || n > quickKeyLimit {
				t.exact = true
			} else if !t.exact {
				// Only keys of one length can collide (check compares only
				// those).
				bit := uint64(1) << min(key.n, 63)
				if lens&bit != 0 {
					kb := t.src[key.off : key.off+key.n]
					for _, p := range t.keys[base:] {
						pk := &t.toks[p]
						if pk.n == key.n && bytes.EqualFold(t.src[pk.off:pk.off+pk.n], kb) {
							return i, false
						}
					}
				}
				lens |= bit
				t.keys = append(t.keys, uint32(k))
			}
			if i = t.ws(i); i >= len(t.src) || t.src[i] != ':' {
				return i, false
			}
			// A string value without the call through value.
			if i = t.ws(i + 1); i < len(t.src) && t.src[i] == '"' {
				i, ok = t.str(i + 1)
			} else {
				i, ok = t.value(i, depth+1)
			}
			if !ok {
				return i, false
			}
			if i = t.ws(i); i >= len(t.src) {
				return i, false
			}
			if c := t.src[i]; c == ',' {
				i = t.ws(i + 1)
				continue
			} else if c != '}' {
				return i, false
			}
			i++
			break
		}
	}
	t.keys = t.keys[:base]
	t.toks[at].n, t.toks[at].end = uint32(n), uint32(len(t.toks))
	return i, true
}

// checkKeys checks every object's keys as check does (NUL, and collisions
// among the first 64 keys by bytes.EqualFold and among all of an object
// of more than 64 keys once lower-cased), for a tape with an object that
// parse left to it.
func (t *tape) checkKeys() bool {
	var keys [][]byte
	var seen map[string]struct{}
	for i := range t.toks {
		o := &t.toks[i]
		if o.kind != tObject {
			continue
		}
		keys = keys[:0]
		for k := uint32(i) + 1; k < o.end; k = t.next(k + 1) {
			kb := t.text(k)
			if bytes.IndexByte(kb, 0) >= 0 {
				return false
			}
			for _, p := range keys {
				if len(p) == len(kb) && bytes.EqualFold(p, kb) {
					return false
				}
			}
			if len(keys) < quickKeyLimit {
				keys = append(keys, kb)
			}
		}
		if o.n <= quickKeyLimit {
			continue
		}
		if seen == nil {
			seen = make(map[string]struct{}, o.n)
		}
		clear(seen)
		for k := uint32(i) + 1; k < o.end; k = t.next(k + 1) {
			lk := strings.ToLower(string(t.text(k)))
			if _, dup := seen[lk]; dup {
				return false
			}
			seen[lk] = struct{}{}
		}
	}
	return true
}

// noteTop notes key token k of the top object if it is one of t.top.
func (t *tape) noteTop(k uint32) {
	kb := t.text(k)
	for j, name := range t.top {
		if t.topAt[j] == 0 && name != "" && name == string(kb) {
			t.topAt[j] = k
		}
	}
}

// topValue returns the value of top key j (see tape.top), or 0.
func (t *tape) topValue(j int) uint32 {
	if t.topAt[j] == 0 {
		return 0
	}
	return t.topAt[j] + 1
}

// next returns the index of the token after the value at i.
func (t *tape) next(i uint32) uint32 {
	if k := t.toks[i].kind; k == tObject || k == tArray {
		return t.toks[i].end
	}
	return i + 1
}

// text returns the text of the string or number at i: a string's unescaped
// bytes, a number as written. It is valid until the next parse.
func (t *tape) text(i uint32) []byte {
	k := &t.toks[i]
	if k.esc {
		return t.esc[k.off : k.off+k.n : k.off+k.n]
	}
	return t.src[k.off : k.off+k.n : k.off+k.n]
}

// member returns the index of the value of the object at o's member key, or
// 0 (no value is at index 0) when o is not an object or has no such key.
func (t *tape) member(o uint32, key string) uint32 {
	ot := &t.toks[o]
	if ot.kind != tObject {
		return 0
	}
	for k := o + 1; k < ot.end; {
		kt := &t.toks[k]
		if int(kt.n) == len(key) {
			var kb []byte
			if kt.esc {
				kb = t.esc[kt.off : kt.off+kt.n]
			} else {
				kb = t.src[kt.off : kt.off+kt.n]
			}
			if string(kb) == key {
				return k + 1
			}
		}
		// Skip the value.
		if v := &t.toks[k+1]; v.kind == tObject || v.kind == tArray {
			k = v.end
		} else {
			k += 2
		}
	}
	return 0
}

// get returns the index of the value at path under v, or 0 when there is
// none (as fastjson's Get: a missing key, or a step into a non-object).
func (t *tape) get(v uint32, path []string) uint32 {
	for _, seg := range path {
		if v = t.member(v, seg); v == 0 {
			return 0
		}
	}
	return v
}

// Node is a JSON value of a decoded event, valid until its Decoder's next
// Decode: the event's object (Event.Root) and what it holds.
type Node struct {
	t *tape
	i uint32
}

// NodeKind is the kind of a JSON value.
type NodeKind uint8

// The kinds of JSON values.
const (
	NodeObject NodeKind = NodeKind(tObject)
	NodeArray  NodeKind = NodeKind(tArray)
	NodeString NodeKind = NodeKind(tString)
	NodeNumber NodeKind = NodeKind(tNumber)
	NodeTrue   NodeKind = NodeKind(tTrue)
	NodeFalse  NodeKind = NodeKind(tFalse)
	NodeNull   NodeKind = NodeKind(tNull)
)

// Kind returns the kind of the value; 0 for the zero Node.
func (n Node) Kind() NodeKind {
	if n.t == nil {
		return 0
	}
	return NodeKind(n.t.toks[n.i].kind)
}

// Text returns a string's text (unescaped, valid UTF-8 without NUL) or a
// number's text as written in the message; nil for other kinds. The bytes
// are valid until the Decoder's next Decode.
func (n Node) Text() []byte {
	if k := n.Kind(); k != NodeString && k != NodeNumber {
		return nil
	}
	return n.t.text(n.i)
}

// Len returns the members of an object or the elements of an array.
func (n Node) Len() int {
	if k := n.Kind(); k != NodeObject && k != NodeArray {
		return 0
	}
	return int(n.t.toks[n.i].n)
}

// Members yields the key and value of each member of an object, in the
// message's order.
func (n Node) Members() iter.Seq2[[]byte, Node] {
	return func(yield func([]byte, Node) bool) {
		if n.Kind() != NodeObject {
			return
		}
		t := n.t
		for k := n.i + 1; k < t.toks[n.i].end; k = t.next(k + 1) {
			if !yield(t.text(k), Node{t, k + 1}) {
				return
			}
		}
	}
}

// Elements yields each element of an array, in order.
func (n Node) Elements() iter.Seq[Node] {
	return func(yield func(Node) bool) {
		if n.Kind() != NodeArray {
			return
		}
		t := n.t
		for k := n.i + 1; k < t.toks[n.i].end; k = t.next(k) {
			if !yield(Node{t, k}) {
				return
			}
		}
	}
}
