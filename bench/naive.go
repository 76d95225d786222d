// Package bench holds wharf's CPU benchmarks (run by `make bench`) and the
// naive flattener they compare wharf against: the same rows, built the way
// a first attempt would build them, with encoding/json into map[string]any.
package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wharfdata/wharf/schema"
)

// errUnsupported is a column type the naive flattener does not coerce.
var errUnsupported = errors.New("naive: unsupported column type")

// Naive flattens events with encoding/json into map[string]any and walks
// the schema's paths through the maps. It builds the same rows as
// schema.Decoder.Flatten for well-formed events (the benchmark's test checks
// this on the reference event), but validates nothing that the walk does not
// trip over: it is the baseline the fast path is measured against, not a
// second implementation to ship. Not safe for concurrent use.
type Naive struct {
	sch                *schema.Schema
	typ, id, timestamp []string
	mapped             map[*schema.Table]map[string]any // per parent table, the paths its columns consume
}

// NewNaive returns a naive flattener for the schema and envelope.
func NewNaive(sch *schema.Schema, env schema.Envelope) *Naive {
	n := &Naive{sch: sch, typ: split(env.TypePath), id: split(env.IDPath), timestamp: split(env.TimePath),
		mapped: map[*schema.Table]map[string]any{}}
	for _, t := range sch.Tables {
		tree := map[string]any{}
		add := func(path []string) {
			node := tree
			for i, seg := range path {
				if i == len(path)-1 {
					node[seg] = true // a leaf: the whole subtree is consumed
					return
				}
				next, ok := node[seg].(map[string]any)
				if !ok {
					if node[seg] == true {
						return
					}
					next = map[string]any{}
					node[seg] = next
				}
				node = next
			}
		}
		for _, c := range t.Columns {
			if c.Source == schema.FromPath {
				add(split(c.Path))
			}
		}
		for _, c := range t.Children {
			add(split(c.Path))
		}
		if t.Time != "" {
			add(split(t.Time))
		}
		n.mapped[t] = tree
	}
	return n
}

// split turns a dotted path into its segments; "." is the element itself.
func split(p string) []string {
	if p == "." || p == "" {
		return nil
	}
	return strings.Split(p, ".")
}

// Flatten appends the rows of one message body to dst, as
// schema.Decoder.Decode followed by Flatten would.
func (n *Naive) Flatten(body []byte, fallbackID string, receivedAt time.Time, dst []schema.Row) ([]schema.Row, error) {
	var root map[string]any
	if err := json.Unmarshal(body, &root); err != nil {
		return dst, fmt.Errorf("naive: decode: %w", err)
	}
	typ, _ := walk(root, n.typ).(string)
	id := fallbackID
	switch v := walk(root, n.id).(type) {
	case string:
		id = v
	case float64:
		id = fmt.Sprint(v)
	}
	receivedAt = receivedAt.UTC().Truncate(time.Microsecond)
	evTime := receivedAt
	if t, ok, err := naiveTime(walk(root, n.timestamp)); err != nil {
		return dst, err
	} else if ok {
		evTime = t
	}
	for _, t := range n.sch.Route(typ) {
		tt := evTime
		if t.Time != "" {
			if v, ok, err := naiveTime(walk(root, split(t.Time))); err != nil {
				return dst, err
			} else if ok {
				tt = v
			}
		}
		micros := tt.UnixMicro()
		vals := make([]schema.Value, len(t.Columns))
		for i, c := range t.Columns {
			var err error
			switch c.Source {
			case schema.FromEventID:
				vals[i] = schema.Value{S: id}
			case schema.FromEventTime:
				vals[i] = schema.Value{I: micros}
			case schema.FromReceivedAt:
				vals[i] = schema.Value{I: receivedAt.UnixMicro()}
			case schema.FromExtras:
				vals[i], err = n.extras(root, t)
			case schema.FromPath:
				vals[i], err = column(walk(root, split(c.Path)), c)
			}
			if err != nil {
				return dst, fmt.Errorf("naive: %s.%s: %w", t.Name, c.Name, err)
			}
		}
		dst = append(dst, schema.Row{Table: t, Values: vals})
		for _, ct := range t.Children {
			arr, _ := walk(root, split(ct.Path)).([]any)
			for idx, elem := range arr {
				vals := make([]schema.Value, len(ct.Columns))
				for i, c := range ct.Columns {
					var err error
					switch c.Source {
					case schema.FromEventID:
						vals[i] = schema.Value{S: id}
					case schema.FromEventTime:
						vals[i] = schema.Value{I: micros}
					case schema.FromIndex:
						vals[i] = schema.Value{I: int64(idx)}
					case schema.FromReceivedAt:
						vals[i] = schema.Value{I: receivedAt.UnixMicro()}
					case schema.FromPath:
						vals[i], err = column(walk(elem, split(c.Path)), c)
					}
					if err != nil {
						return dst, fmt.Errorf("naive: %s.%s: %w", ct.Name, c.Name, err)
					}
				}
				dst = append(dst, schema.Row{Table: ct, Values: vals})
			}
		}
	}
	return dst, nil
}

// walk follows path through nested maps; nil when any step is missing.
func walk(v any, path []string) any {
	for _, seg := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[seg]
	}
	return v
}

// column picks the expanded element, if any, and coerces it.
func column(v any, c schema.Column) (schema.Value, error) {
	if c.ExpandIndex >= 0 {
		arr, _ := v.([]any)
		if c.ExpandIndex >= len(arr) {
			return schema.NullValue, nil
		}
		v = arr[c.ExpandIndex]
	}
	return coerce(v, c.Type)
}

// coerce converts a decoded JSON value to a column type, for the kinds the
// benchmark's schema uses and a few more.
func coerce(v any, t schema.Type) (schema.Value, error) {
	if v == nil {
		return schema.NullValue, nil
	}
	switch t.Kind {
	case schema.Boolean:
		b, ok := v.(bool)
		if !ok {
			return schema.NullValue, fmt.Errorf("%T is not a boolean", v)
		}
		if b {
			return schema.Value{I: 1}, nil
		}
		return schema.Value{I: 0}, nil
	case schema.Smallint, schema.Integer, schema.Bigint:
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) {
			return schema.NullValue, fmt.Errorf("%v is not an integer", v)
		}
		return schema.Value{I: int64(f)}, nil
	case schema.Real, schema.Double:
		f, ok := v.(float64)
		if !ok {
			return schema.NullValue, fmt.Errorf("%v is not a number", v)
		}
		return schema.FloatValue(f), nil
	case schema.Varchar:
		s, ok := v.(string)
		if !ok {
			b, err := json.Marshal(v)
			if err != nil {
				return schema.NullValue, err
			}
			s = string(b)
		}
		if len(s) > t.Length {
			n := t.Length
			for n > 0 && !utf8.RuneStart(s[n]) {
				n--
			}
			s = s[:n]
		}
		return schema.Value{S: s}, nil
	case schema.JSON:
		b, err := json.Marshal(v)
		if err != nil {
			return schema.NullValue, err
		}
		return schema.Value{S: string(b)}, nil
	case schema.Timestamp:
		tm, ok, err := naiveTime(v)
		if err != nil || !ok {
			return schema.NullValue, err
		}
		return schema.Value{I: tm.UnixMicro()}, nil
	}
	return schema.NullValue, fmt.Errorf("%w: %s", errUnsupported, t)
}

// naiveTime reads an RFC 3339 string or epoch seconds/milliseconds.
func naiveTime(v any) (time.Time, bool, error) {
	switch x := v.(type) {
	case nil:
		return time.Time{}, false, nil
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("naive: bad time: %w", err)
		}
		return t.UTC().Truncate(time.Microsecond), true, nil
	case float64:
		if math.Abs(x) >= 1e11 {
			return time.UnixMilli(int64(x)).UTC(), true, nil
		}
		return time.Unix(int64(x), 0).UTC(), true, nil
	}
	return time.Time{}, false, fmt.Errorf("naive: a time cannot be a %T", v)
}

// extras marshals the fields of root that no column of t consumes, the
// envelope's top-level keys excluded; NULL when there are none.
func (n *Naive) extras(root map[string]any, t *schema.Table) (schema.Value, error) {
	rest := unmapped(root, n.mapped[t])
	for _, p := range [][]string{n.typ, n.id, n.timestamp} {
		if len(p) == 1 {
			delete(rest, p[0])
		}
	}
	if len(rest) == 0 {
		return schema.NullValue, nil
	}
	b, err := json.Marshal(rest)
	if err != nil {
		return schema.NullValue, fmt.Errorf("naive: extras: %w", err)
	}
	return schema.Value{S: string(b)}, nil
}

// unmapped copies m without the paths of tree, dropping objects left empty.
func unmapped(m map[string]any, tree map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		sub := tree[k]
		if sub == true {
			continue
		}
		if st, ok := sub.(map[string]any); ok {
			if vm, ok := v.(map[string]any); ok {
				if r := unmapped(vm, st); len(r) > 0 {
					out[k] = r
				}
				continue
			}
		}
		out[k] = v
	}
	return out
}
