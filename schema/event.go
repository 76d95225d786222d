package schema

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/valyala/fastjson"
)

// ErrInvalidEvent marks a poison message: it can never be flattened as it
// is, so it goes to the dead-letter store instead of being retried.
var ErrInvalidEvent = errors.New("invalid event")

// Dead-letter reasons. Each names one way an event is bad.
const (
	ReasonBadJSON          = "bad_json"
	ReasonNotObject        = "not_object"
	ReasonTooDeep          = "too_deep"
	ReasonArrayTooLong     = "array_too_long"
	ReasonInvalidUTF8      = "invalid_utf8"
	ReasonNulByte          = "nul_byte"
	ReasonKeyCollision     = "key_collision"
	ReasonMissingEventType = "missing_event_type"
	ReasonUnknownEventType = "unknown_event_type"
	ReasonBadEventID       = "bad_event_id"
	ReasonBadTime          = "bad_time"
	ReasonTimeOutOfRange   = "time_out_of_range"
	ReasonTypeMismatch     = "type_mismatch"
	ReasonOutOfRange       = "out_of_range"
	ReasonExpandOverflow   = "expand_overflow"
	ReasonTooLarge         = "too_large"
)

// Limits on the shape of an event.
const (
	MaxDepth        = 100    // levels of objects and arrays, the event itself the first (MongoDB's limit for a document)
	MaxArrayLength  = 10_000 // elements in any one array
	MaxMessageBytes = 1 << 20
)

// InvalidError says why an event is invalid. errors.Is(err, ErrInvalidEvent)
// holds for it.
type InvalidError struct {
	Reason string // one of the Reason constants
	Detail string
}

func (e *InvalidError) Error() string {
	if e.Detail == "" {
		return e.Reason
	}
	return e.Reason + ": " + e.Detail
}

// Is makes errors.Is(err, ErrInvalidEvent) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalidEvent }

func invalid(reason, format string, args ...any) error {
	return &InvalidError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Reason returns the dead-letter reason of err, or "" when err is not an
// invalid-event error.
func Reason(err error) string {
	var ie *InvalidError
	if errors.As(err, &ie) {
		return ie.Reason
	}
	return ""
}

// Envelope names where the envelope fields are in an event (docs/design.md §3).
type Envelope struct {
	TypePath string `yaml:"type_path"`
	IDPath   string `yaml:"id_path"`
	TimePath string `yaml:"time_path"`
}

// DefaultEnvelope is the envelope of docs/design.md §3.
func DefaultEnvelope() Envelope {
	return Envelope{TypePath: "event", IDPath: "id", TimePath: "timestamp"}
}

// Validate checks that every path is a dotted path.
func (e Envelope) Validate() error {
	for _, f := range []struct{ name, v string }{{"type_path", e.TypePath}, {"id_path", e.IDPath}, {"time_path", e.TimePath}} {
		p, err := splitPath(f.v)
		if err != nil || p == nil {
			return fmt.Errorf("events.%s: %q is not a dotted path", f.name, f.v)
		}
	}
	return nil
}

// Event is a decoded message. Its JSON (Root) is valid until the Decoder's
// next Decode.
type Event struct {
	Type       string
	ID         string
	Time       time.Time // envelope time, or ReceivedAt when the event has none
	ReceivedAt time.Time
	Body       []byte // the event's JSON object (an SNS wrapper removed)
	Tables     []*Table

	tape *tape // the Decoder's tape, holding Body parsed; nil when not decoded
}

// Root returns the event's JSON object, valid until the Decoder's next
// Decode (for writing the raw document without parsing it again); the zero
// Node when the event was not decoded.
func (ev *Event) Root() Node {
	if ev.tape == nil {
		return Node{}
	}
	return Node{t: ev.tape, i: 0}
}

// Decoder decodes message bodies into events and flattens them into rows.
// A Decoder is not safe for concurrent use: give each goroutine its own.
type Decoder struct {
	schema  *Schema
	env     [3][]string // type, id, time
	envLens uint64      // bit n: a one-segment envelope path is n bytes
	tp      tape
	evs     []Event // newEvent's slab
	ids     []byte  // intern's chunk
	buf     []byte
	keys    [][][]byte // check's object keys per depth, reused

	// Flatten's scratch.
	rows  Rows // for Flatten, which returns []Row
	trs   []*TableRows
	marks []mark
	slots []uint32 // the walk's values of mapped paths
	ext   []byte   // _extras
}

// NewDecoder returns a Decoder for the schema and envelope. The envelope must
// have passed Validate.
func NewDecoder(s *Schema, env Envelope) *Decoder {
	d := &Decoder{schema: s}
	d.tp.top[topType] = "Type"
	for i, p := range []string{env.TypePath, env.IDPath, env.TimePath} {
		d.env[i], _ = splitPath(p)
		if len(d.env[i]) == 1 && len(p) < 64 {
			d.envLens |= 1 << len(p)
			d.tp.top[1+i] = p
		}
	}
	for _, name := range d.tp.top {
		if name != "" {
			d.tp.topLens |= 1 << min(len(name), 63)
		}
	}
	return d
}

// The keys of the top object that parse notes (tape.top): an SNS
// notification's type, then the envelope's type, id and time paths when
// they are one key.
const (
	topType = iota
	topEnv
)

// envValue returns the value at envelope path i (0 type, 1 id, 2 time), or
// 0: noted by parse for a one-key path.
func (d *Decoder) envValue(i int) uint32 {
	if d.tp.top[topEnv+i] != "" {
		return d.tp.topValue(topEnv + i)
	}
	return d.tp.get(0, d.env[i])
}

// Schema returns the decoder's schema.
func (d *Decoder) Schema() *Schema { return d.schema }

// Decode parses body, unwraps an SNS notification, checks the event's shape
// and reads its envelope. fallbackID is the event id when the event has
// none (the SQS message id, so a redelivery keeps its id), unless it comes
// in an SNS notification, whose MessageId it then takes (stable across SNS
// redeliveries, which get new SQS message ids); receivedAt is its
// time when it has none. An invalid event returns an *InvalidError; the
// Event is still returned, with what could be read of it (Body at least).
//
// The message is parsed once, into the Decoder's tape, which validates it
// and checks its shape in the same pass; only a message the tape refuses is
// looked at again (slowDecode), to name the reason.
func (d *Decoder) Decode(body []byte, fallbackID string, receivedAt time.Time) (*Event, error) {
	ev := d.newEvent()
	return ev, d.DecodeInto(ev, body, fallbackID, receivedAt)
}

// DecodeInto is Decode into an Event the caller provides (and may reuse):
// what Decode returns is then in *ev.
func (d *Decoder) DecodeInto(ev *Event, body []byte, fallbackID string, receivedAt time.Time) error {
	_, err := d.decode(ev, body, fallbackID, receivedAt)
	return err
}

func (d *Decoder) decode(ev *Event, body []byte, fallbackID string, receivedAt time.Time) (*Event, error) {
	*ev = Event{ID: fallbackID, ReceivedAt: receivedAt.UTC().Truncate(time.Microsecond), Body: body}
	ev.Time = ev.ReceivedAt
	t := &d.tp
	if !t.parse(body) {
		return d.slowDecode(ev, body)
	}
	if t.toks[0].kind == tObject {
		if ty := t.topValue(topType); ty != 0 && t.toks[ty].kind == tString && string(t.text(ty)) == "Notification" {
			// The notification's MessageId is the event's id when it has
			// none: SNS keeps it when it delivers again, while the SQS
			// message id changes with each delivery.
			if id := t.member(0, "MessageId"); id != 0 && t.toks[id].kind == tString && t.toks[id].n > 0 {
				ev.ID = string(t.text(id))
			}
			if m := t.member(0, "Message"); m != 0 && t.toks[m].kind == tString {
				ev.Body = append([]byte(nil), t.text(m)...)
				return d.decodeMessage(ev)
			}
		}
	}
	return d.envelope(ev)
}

// newEvent returns a new Event, from a slab of them that the decoder
// allocates at once (one allocation per eventSlab events; a slab stays
// while any of its events is referenced).
func (d *Decoder) newEvent() *Event {
	if len(d.evs) == 0 {
		d.evs = make([]Event, eventSlab)
	}
	ev := &d.evs[0]
	d.evs = d.evs[1:]
	return ev
}

const eventSlab = 16

// intern returns b as a string kept in a chunk of memory shared with the
// strings of other events (one allocation per idChunk bytes; a chunk stays
// while any of its strings is referenced). Its bytes are never written
// again.
func (d *Decoder) intern(b []byte) string {
	if len(b) > idChunk/4 {
		return string(b)
	}
	if cap(d.ids)-len(d.ids) < len(b) {
		d.ids = make([]byte, 0, idChunk)
	}
	start := len(d.ids)
	d.ids = append(d.ids, b...)
	return unsafe.String(&d.ids[start], len(b))
}

const idChunk = 4096

// decodeMessage parses an SNS notification's message (ev.Body) as the event.
func (d *Decoder) decodeMessage(ev *Event) (*Event, error) {
	if !d.tp.parse(ev.Body) {
		root, err := parseSlow(&fastjson.Parser{}, ev.Body)
		if err != nil {
			var ie *InvalidError
			if errors.As(err, &ie) {
				ie.Detail = "in the SNS notification's Message: " + ie.Detail
			}
			return ev, err
		}
		return ev, d.checkRoot(root)
	}
	return d.envelope(ev)
}

// slowDecode is Decode for a message the tape refused. Most are invalid,
// and the slow path (fastjson's validation and parser, then check) names
// why; but an SNS notification is taken whatever the shape of its wrapper
// (only its message is checked), so a valid notification that the tape
// refused for its wrapper's shape goes on with its message.
func (d *Decoder) slowDecode(ev *Event, body []byte) (*Event, error) {
	root, err := parseSlow(&fastjson.Parser{}, body)
	if err != nil {
		return ev, err
	}
	if root.Type() == fastjson.TypeObject {
		o := root.GetObject()
		if t := o.Get("Type"); t != nil && string(t.GetStringBytes()) == "Notification" {
			if id := o.Get("MessageId"); id != nil && id.Type() == fastjson.TypeString && len(id.GetStringBytes()) > 0 {
				ev.ID = string(id.GetStringBytes())
			}
			if m := o.Get("Message"); m != nil && m.Type() == fastjson.TypeString {
				ev.Body = append([]byte(nil), m.GetStringBytes()...)
				return d.decodeMessage(ev)
			}
		}
	}
	return ev, d.checkRoot(root)
}

func (d *Decoder) checkRoot(root *fastjson.Value) error {
	if root.Type() != fastjson.TypeObject {
		return invalid(ReasonNotObject, "the message is a JSON %s, not an object", root.Type())
	}
	if err := d.check(root, 0); err != nil {
		return err
	}
	// The slow path takes what the tape refused: they disagree, which
	// FuzzTape exists to rule out.
	return invalid(ReasonBadJSON, "the message was refused by the parser")
}

// envelope reads the envelope of the event on the tape.
func (d *Decoder) envelope(ev *Event) (*Event, error) {
	t := &d.tp
	if k := t.toks[0].kind; k != tObject {
		return ev, invalid(ReasonNotObject, "the message is a JSON %s, not an object", k)
	}
	ev.tape = t

	tv := d.envValue(0)
	if tv == 0 || t.toks[tv].kind == tNull {
		return ev, invalid(ReasonMissingEventType, "no event type at %q", strings.Join(d.env[0], "."))
	}
	if k := t.toks[tv].kind; k != tString {
		return ev, invalid(ReasonMissingEventType, "the event type at %q is a %s, not a string", strings.Join(d.env[0], "."), k)
	}
	ev.Type, ev.Tables = d.schema.routeBytes(t.text(tv))
	if iv := d.envValue(1); iv != 0 && t.toks[iv].kind != tNull {
		switch k := t.toks[iv].kind; k {
		case tString:
			if s := t.text(iv); len(s) > 0 {
				ev.ID = d.intern(s)
			}
		case tNumber:
			ev.ID = d.intern(t.text(iv))
		default:
			return ev, invalid(ReasonBadEventID, "the event id at %q is a %s", strings.Join(d.env[1], "."), k)
		}
	}
	if ev.ID == "" {
		return ev, invalid(ReasonBadEventID, "the event has no id and the message none either")
	}
	if len(ev.ID) > EventIDLength {
		return ev, invalid(ReasonBadEventID, "the event id is %d bytes, more than %d", len(ev.ID), EventIDLength)
	}
	if tm, ok, err := t.parseTime(d.envValue(2)); err != nil {
		return ev, err
	} else if ok {
		ev.Time = tm
	}
	if len(ev.Tables) == 0 {
		return ev, invalid(ReasonUnknownEventType, "no table takes events of type %q", ev.Type)
	}
	return ev, nil
}

// parseSlow validates body step by step, each step with its own reason, and
// parses it.
func parseSlow(p *fastjson.Parser, body []byte) (*fastjson.Value, error) {
	if !utf8.Valid(body) {
		return nil, invalid(ReasonInvalidUTF8, "the message is not valid UTF-8")
	}
	if err := fastjson.ValidateBytes(body); err != nil {
		return nil, invalid(ReasonBadJSON, "%s", shorten(err.Error(), 200))
	}
	if loneSurrogate(body) {
		// fastjson would keep such an escape as its six characters (or turn a
		// broken pair into U+FFFD): the value would be silently altered.
		return nil, invalid(ReasonInvalidUTF8, "a \\u escape names a lone UTF-16 surrogate, which is not a Unicode character")
	}
	v, err := p.ParseBytes(body)
	if err != nil {
		return nil, invalid(ReasonBadJSON, "%s", shorten(err.Error(), 200))
	}
	return v, nil
}

// check walks the event once: depth, array lengths, NUL bytes, and object
// keys that collide once lower-cased.
func (d *Decoder) check(v *fastjson.Value, depth int) error {
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

// loneSurrogate reports whether JSON text (already validated) holds a \u
// escape of a UTF-16 surrogate that is not the high half of a high-low pair
// followed by its low half. Outside strings valid JSON has no backslash, and
// inside them every backslash starts an escape, so a scan for backslashes
// sees every escape.
func loneSurrogate(b []byte) bool {
	for {
		i := bytes.IndexByte(b, '\\')
		if i < 0 || i+1 >= len(b) {
			return false
		}
		if b[i+1] != 'u' {
			b = b[i+2:]
			continue
		}
		r, ok := hex4(b[i+2:])
		if !ok {
			return false
		}
		b = b[i+6:]
		switch {
		case r >= 0xdc00 && r <= 0xdfff:
			return true
		case r >= 0xd800 && r < 0xdc00:
			if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
				return true
			}
			if r2, ok := hex4(b[2:]); !ok || r2 < 0xdc00 || r2 > 0xdfff {
				return true
			}
			b = b[6:]
		}
	}
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

func checkKeysMap(o *fastjson.Object) error {
	seen := make(map[string]struct{}, o.Len())
	var err error
	o.Visit(func(k []byte, _ *fastjson.Value) {
		lk := strings.ToLower(string(k))
		if _, dup := seen[lk]; dup && err == nil {
			err = invalid(ReasonKeyCollision, "keys %q collide once lower-cased", shorten(lk, 64))
		}
		seen[lk] = struct{}{}
	})
	return err
}

func hasNul(b []byte) bool {
	for _, c := range b {
		if c == 0 {
			return true
		}
	}
	return false
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return truncateUTF8(s, n) + "…"
}

// Time bounds: both Redshift and PostgreSQL hold years 1 to 9999 without loss.
var (
	minTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", "2006-01-02"}

func parseTimeString(s string) (time.Time, error) {
	var err error
	for _, layout := range timeLayouts {
		var t time.Time
		if t, err = time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, err
}

func epochTime(f float64) (time.Time, error) {
	if f != f || f > 1e15 || f < -1e15 {
		return time.Time{}, invalid(ReasonTimeOutOfRange, "epoch %v is out of range", f)
	}
	if f >= 1e11 || f <= -1e11 {
		ms := int64(f)
		frac := f - float64(ms)
		return time.UnixMilli(ms).Add(time.Duration(frac * 1e6)).UTC(), nil
	}
	sec := int64(f)
	frac := f - float64(sec)
	return time.Unix(sec, int64(frac*1e9)).UTC(), nil
}
