package schema

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// InferOptions steers Infer.
type InferOptions struct {
	Collection string // the Mongo collection sampled
	Table      string // the table's name; default: the collection's, made an identifier
	// Event is the one event type the table takes. Default: the types the
	// documents carry at the envelope's type path, most frequent first,
	// plus the collection's name when some document carries none (it is
	// then the table's collection_event, the type backfill gives them).
	Event    string
	Envelope Envelope // the envelope's fields are not columns (nor is _id)
	Sampled  string   // how the sample was drawn, for the file's header ("$sample", "reservoir over a scan")
	// MinShare is the share of documents a field must appear in (not null)
	// to become a column; rarer fields are reported and left to _extras.
	// Default 0.01, and never fewer than 2 documents.
	MinShare float64
	// MaxExpand is the longest array of scalars that becomes `expand`
	// columns; a longer one becomes a child table. Default 8.
	MaxExpand int
}

// Finding is a field Infer could not decide, or decided against a minority.
type Finding struct {
	Path   string
	Seen   int // documents (or array elements) holding a non-null value
	Reason string
}

// Inferred is Infer's result: a schema file and what to review in it.
type Inferred struct {
	YAML      []byte
	Documents int
	Events    []string // the event types the table takes
	Untyped   int      // documents without an event type at the envelope's type path
	Columns   int
	Rare      []Finding // fields seen too rarely to decide: not columns, kept in _extras
	Conflicts []Finding // fields whose values disagree: the type the majority votes for, and what the minority would do
}

// Infer writes a schema file for one collection from a sample of its
// documents, each decoded from (relaxed or canonical) Mongo extended JSON
// with json.Decoder.UseNumber. Nested objects become dotted paths; a type is
// chosen by vote among the values seen; a varchar gets twice the longest
// value seen, rounded up to a power of two; an array of scalars no longer
// than MaxExpand becomes `expand` columns, a longer one or an array of
// objects a child table; the table keeps `extras: true` so nothing unmapped
// is lost. The file is a starting point to review, not a contract.
func Infer(docs []map[string]any, opt InferOptions) (*Inferred, error) {
	if opt.MinShare <= 0 {
		opt.MinShare = 0.01
	}
	if opt.MaxExpand <= 0 {
		opt.MaxExpand = 8
	}
	if opt.Table == "" {
		opt.Table = identifier(opt.Collection, "events")
	}
	if why := ValidIdentifier(opt.Table); why != "" {
		return nil, fmt.Errorf("table: %s", why)
	}
	events, untyped := []string{opt.Event}, 0
	if opt.Event == "" {
		events, untyped = eventTypes(docs, opt.Envelope.TypePath)
		if untyped > 0 && opt.Collection != "" && !slices.Contains(events, opt.Collection) {
			events = append(events, opt.Collection)
		}
	}
	if len(events) == 0 || events[0] == "" {
		return nil, fmt.Errorf("no event type (name the collection or the event)")
	}
	skip := map[string]bool{"_id": true}
	for _, p := range []string{opt.Envelope.TypePath, opt.Envelope.IDPath, opt.Envelope.TimePath} {
		if p != "" {
			skip[p] = true
		}
	}
	root := newStat()
	for _, d := range docs {
		root.observeObject(d, "", skip)
	}
	inf := &inferrer{opt: opt, n: len(docs), min: max(2, int(math.Ceil(opt.MinShare*float64(len(docs))))),
		out: &Inferred{Documents: len(docs), Events: events, Untyped: untyped}}
	parent := &inferTable{name: opt.Table}
	inf.columns(parent, root, nil, false)
	return inf.render(parent)
}

// eventTypes returns the event types the documents carry at the dotted
// typePath (non-empty strings, as the envelope reads them), most frequent
// first, then by name; and how many documents carry none.
func eventTypes(docs []map[string]any, typePath string) (types []string, untyped int) {
	counts := map[string]int{}
	path := strings.Split(typePath, ".")
	for _, d := range docs {
		var v any = d
		for _, p := range path {
			o, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = o[p]
		}
		if t, ok := v.(string); ok && t != "" && typePath != "" {
			counts[t]++
		} else {
			untyped++
		}
	}
	for t := range counts {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool {
		if counts[types[i]] != counts[types[j]] {
			return counts[types[i]] > counts[types[j]]
		}
		return types[i] < types[j]
	})
	return types, untyped
}

// stat is what the sample showed at one path.
type stat struct {
	seen, nulls                                int
	bools, ints, floats, strs, timeStrs, dates int
	decs, objs, arrs, other                    int
	minInt, maxInt                             *big.Int
	maxLen                                     int // bytes of the longest value as text
	decScale, decIntDigits                     int
	maxArr                                     int
	kids                                       map[string]*stat
	order                                      []string
	elem                                       *stat // array elements
}

func newStat() *stat { return &stat{kids: map[string]*stat{}} }

func (s *stat) kid(k string) *stat {
	c := s.kids[k]
	if c == nil {
		c = newStat()
		s.kids[k] = c
		s.order = append(s.order, k)
	}
	return c
}

func (s *stat) observeObject(o map[string]any, prefix string, skip map[string]bool) {
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if skip[prefix+k] {
			continue
		}
		s.kid(k).observe(o[k], prefix+k+".", skip)
	}
}

func (s *stat) observe(v any, prefix string, skip map[string]bool) {
	if v == nil {
		s.nulls++
		return
	}
	s.seen++
	text := ""
	switch x := v.(type) {
	case bool:
		s.bools++
		text = fmt.Sprint(x)
	case json.Number:
		text = x.String()
		if n, ok := new(big.Int).SetString(text, 10); ok {
			s.ints++
			s.noteInt(n)
		} else {
			s.floats++
		}
	case float64:
		s.floats++
		text = fmt.Sprint(x)
	case string:
		s.strs++
		text = x
		if _, err := parseTimeString(x); err == nil {
			s.timeStrs++
		}
	case []any:
		s.arrs++
		s.maxArr = max(s.maxArr, len(x))
		if s.elem == nil {
			s.elem = newStat()
		}
		for _, e := range x {
			s.elem.observe(e, "", nil)
		}
		b, _ := json.Marshal(x)
		text = string(b)
	case map[string]any:
		if ext, ok := extended(x); ok {
			switch ext.kind {
			case "date":
				s.dates++
			case "int":
				s.ints++
				s.noteInt(ext.n)
			case "float":
				s.floats++
			case "decimal":
				s.decs++
				s.noteDecimal(ext.text)
			case "string":
				s.strs++
			default:
				s.other++
			}
			text = ext.text
			break
		}
		s.objs++
		s.observeObject(x, prefix, skip)
		b, _ := json.Marshal(x)
		text = string(b)
	default:
		s.other++
	}
	s.maxLen = max(s.maxLen, len(text))
}

func (s *stat) noteInt(n *big.Int) {
	if s.minInt == nil || n.Cmp(s.minInt) < 0 {
		s.minInt = new(big.Int).Set(n)
	}
	if s.maxInt == nil || n.Cmp(s.maxInt) > 0 {
		s.maxInt = new(big.Int).Set(n)
	}
}

func (s *stat) noteDecimal(text string) {
	t := strings.TrimLeft(strings.TrimSpace(text), "+-")
	ip, fp, _ := strings.Cut(t, ".")
	s.decIntDigits = max(s.decIntDigits, len(strings.TrimLeft(ip, "0")))
	s.decScale = max(s.decScale, len(fp))
}

type extValue struct {
	kind string // date, int, float, decimal, string, other
	text string
	n    *big.Int
}

// extended recognizes Mongo extended JSON wrappers ({"$date": …},
// {"$oid": …}, {"$numberLong": …}, …).
func extended(o map[string]any) (extValue, bool) {
	if len(o) != 1 {
		if _, ok := o["$binary"]; ok {
			return extValue{kind: "other"}, true
		}
		return extValue{}, false
	}
	for k, v := range o {
		s, _ := v.(string)
		switch k {
		case "$date":
			return extValue{kind: "date", text: "2006-01-02T15:04:05.000Z"}, true
		case "$oid":
			return extValue{kind: "string", text: s}, true
		case "$numberLong", "$numberInt":
			n, ok := new(big.Int).SetString(s, 10)
			if !ok {
				return extValue{kind: "other"}, true
			}
			return extValue{kind: "int", text: s, n: n}, true
		case "$numberDouble":
			return extValue{kind: "float", text: s}, true
		case "$numberDecimal":
			return extValue{kind: "decimal", text: s}, true
		case "$binary", "$regularExpression", "$timestamp", "$symbol", "$code", "$minKey", "$maxKey", "$undefined", "$uuid":
			return extValue{kind: "other"}, true
		}
	}
	return extValue{}, false
}

type inferColumn struct {
	name, path, typ string
	expand          int
}

type inferTable struct {
	name     string
	path     string
	columns  []inferColumn
	children []*inferTable
}

type inferrer struct {
	opt  InferOptions
	n    int // documents
	min  int // fewest sightings to decide
	out  *Inferred
	used map[string]map[string]bool // per table, column names taken
}

func (inf *inferrer) rare(path string, s *stat, reason string) {
	inf.out.Rare = append(inf.out.Rare, Finding{Path: path, Seen: s.seen, Reason: reason})
}

func (inf *inferrer) conflict(path string, s *stat, reason string) {
	inf.out.Conflicts = append(inf.out.Conflicts, Finding{Path: path, Seen: s.seen, Reason: reason})
}

// columns adds to t a column per decidable path under s (a child table's
// element when inElem), and child tables for arrays.
func (inf *inferrer) columns(t *inferTable, s *stat, path []string, inElem bool) {
	for _, k := range s.order {
		c := s.kids[k]
		p := append(slices.Clone(path), k)
		dotted := strings.Join(p, ".")
		switch {
		case strings.Contains(k, ".") || k == "":
			inf.rare(dotted, c, "the key is empty or holds a dot, which a dotted path cannot name")
			continue
		case c.seen < inf.min && !inElem:
			reason := fmt.Sprintf("seen in %d of %d documents", c.seen, inf.n)
			if c.seen == 0 {
				reason = fmt.Sprintf("always null (%d documents)", c.nulls)
			}
			inf.rare(dotted, c, reason)
			continue
		case c.seen == 0:
			inf.rare(dotted, c, "always null")
			continue
		}
		if c.objs > 0 && c.objs == c.seen && len(c.kids) <= 64 {
			inf.columns(t, c, p, inElem)
			continue
		}
		if c.arrs > 0 && c.arrs == c.seen && !inElem {
			inf.array(t, c, p)
			continue
		}
		typ, note := decide(c)
		if note != "" {
			inf.conflict(dotted, c, note)
		}
		t.columns = append(t.columns, inferColumn{name: inf.name(t, p), path: dotted, typ: typ})
	}
}

func (inf *inferrer) array(t *inferTable, c *stat, p []string) {
	dotted := strings.Join(p, ".")
	e := c.elem
	switch {
	case e == nil || e.seen == 0:
		inf.rare(dotted, c, "an array that was always empty or held only nulls")
	case e.objs > 0 && e.objs == e.seen:
		child := &inferTable{name: inf.tableName(t.name + "_" + identifier(strings.Join(p, "_"), "items")), path: dotted}
		inf.columns(child, e, nil, true)
		if len(child.columns) == 0 {
			inf.rare(dotted, c, "an array of objects with no field to map")
			return
		}
		t.children = append(t.children, child)
	case e.arrs > 0 || e.objs > 0:
		t.columns = append(t.columns, inferColumn{name: inf.name(t, p), path: dotted, typ: "json"})
		inf.conflict(dotted, c, "an array of arrays or of mixed objects and scalars: kept whole as json")
	case c.maxArr <= inf.opt.MaxExpand:
		typ, note := decide(e)
		if note != "" {
			inf.conflict(dotted+"[]", e, note)
		}
		t.columns = append(t.columns, inferColumn{name: inf.name(t, p), path: dotted, typ: typ, expand: c.maxArr})
	default:
		typ, note := decide(e)
		if note != "" {
			inf.conflict(dotted+"[]", e, note)
		}
		child := &inferTable{name: inf.tableName(t.name + "_" + identifier(strings.Join(p, "_"), "items")), path: dotted}
		child.columns = append(child.columns, inferColumn{name: "value", path: ".", typ: typ})
		t.children = append(t.children, child)
	}
}

// decide votes for a scalar type. Numbers and strings vote apart; a
// string column takes numbers and booleans as text, so strings win ties,
// while a number column would dead-letter every string.
func decide(c *stat) (typ, note string) {
	numbers := c.ints + c.floats + c.decs
	times := c.dates + c.timeStrs
	switch {
	case c.objs > 0 || c.arrs > 0 || c.other > 0:
		if c.objs+c.arrs+c.other == c.seen {
			return "json", ""
		}
		return "json", fmt.Sprintf("objects or arrays mixed with scalars (%d of %d values): kept whole as json", c.objs+c.arrs+c.other, c.seen)
	case c.bools == c.seen:
		return "boolean", ""
	case times == c.seen:
		return "timestamp", ""
	case numbers == c.seen:
		return numberType(c), ""
	case numbers > c.strs+c.bools+c.dates:
		return numberType(c), fmt.Sprintf("%d of %d values are not numbers: events like them would be dead-lettered (type_mismatch)", c.seen-numbers, c.seen)
	}
	typ = varcharType(c.maxLen)
	if c.strs != c.seen {
		note = fmt.Sprintf("%d of %d values are not strings: they land as their JSON text", c.seen-c.strs, c.seen)
	}
	return typ, note
}

func numberType(c *stat) string {
	switch {
	case c.decs > 0:
		scale := max(c.decScale, 2)
		p := min(MaxDecimalPrecision, c.decIntDigits+scale+4)
		return fmt.Sprintf("decimal(%d,%d)", p, scale)
	case c.floats > 0:
		return "double"
	case c.minInt != nil && c.minInt.IsInt64() && c.maxInt.IsInt64() && c.minInt.Int64() > -(1<<30) && c.maxInt.Int64() < 1<<30:
		return "integer" // half of int32's range: room to grow
	case c.minInt != nil && c.minInt.IsInt64() && c.maxInt.IsInt64():
		return "bigint"
	}
	return "decimal(38,0)"
}

// varcharType gives the longest value seen twice its bytes, rounded up to
// a power of two, at least 16 and at most MaxVarchar.
func varcharType(maxLen int) string {
	n := 16
	for n < 2*maxLen && n < MaxVarchar {
		n *= 2
	}
	return fmt.Sprintf("varchar(%d)", min(n, MaxVarchar))
}

var implicitNames = map[string]bool{ColEventID: true, ColEventTime: true, ColReceivedAt: true, ColIndex: true, ColExtras: true}

// name makes a column name from a path, unique in its table.
func (inf *inferrer) name(t *inferTable, path []string) string {
	if inf.used == nil {
		inf.used = map[string]map[string]bool{}
	}
	if inf.used[t.name] == nil {
		inf.used[t.name] = map[string]bool{}
	}
	base := identifier(strings.Join(path, "_"), "field")
	if implicitNames[base] {
		base = "f_" + base
	}
	name := base
	for i := 2; inf.used[t.name][name] || !expandSafe(name); i++ {
		name = truncateUTF8(base, MaxIdentifier-6) + fmt.Sprintf("_%d", i)
	}
	inf.used[t.name][name] = true
	return name
}

func expandSafe(name string) bool { return len(name) <= MaxIdentifier-5 } // room for _NNNN of expand

func (inf *inferrer) tableName(base string) string {
	return truncateUTF8(base, MaxIdentifier)
}

// identifier lower-cases s and replaces what an identifier cannot hold.
func identifier(s, fallback string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := b.String()
	if out == "" || strings.Trim(out, "_") == "" {
		return fallback
	}
	if out[0] >= '0' && out[0] <= '9' {
		out = "_" + out
	}
	return truncateUTF8(out, MaxIdentifier-6)
}

func yamlString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (inf *inferrer) render(t *inferTable) (*Inferred, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "# Inferred by `wharf schema infer` from %d documents of collection %s", inf.n, inf.opt.Collection)
	if inf.opt.Sampled != "" {
		fmt.Fprintf(&b, " (%s)", inf.opt.Sampled)
	}
	b.WriteString(".\n# Review every type and length before `wharf schema apply`; fields seen too rarely are left to _extras.\n")
	b.WriteString("tables:\n")
	evs := make([]string, len(inf.out.Events))
	for i, ev := range inf.out.Events {
		evs[i] = yamlString(ev)
	}
	fmt.Fprintf(&b, "  - name: %s\n    events: [%s]\n", t.name, strings.Join(evs, ", "))
	if inf.opt.Collection != "" {
		fmt.Fprintf(&b, "    collection: %s\n", yamlString(inf.opt.Collection))
		if inf.out.Untyped > 0 && len(evs) > 1 {
			// Documents without a type take the collection's name, in
			// backfill as here.
			fmt.Fprintf(&b, "    collection_event: %s\n", yamlString(inf.opt.Collection))
		}
	}
	writeCols := func(indent string, cols []inferColumn) {
		if len(cols) == 0 {
			return
		}
		b.WriteString(indent + "columns:\n")
		for _, c := range cols {
			fmt.Fprintf(&b, "%s  - {name: %s, path: %s, type: %s", indent, c.name, yamlString(c.path), yamlString(c.typ))
			if c.expand > 0 {
				fmt.Fprintf(&b, ", expand: %d", c.expand)
			}
			b.WriteString("}\n")
		}
	}
	writeCols("    ", t.columns)
	b.WriteString("    extras: true\n")
	if len(t.children) > 0 {
		b.WriteString("    children:\n")
		for _, c := range t.children {
			fmt.Fprintf(&b, "      - name: %s\n        path: %s\n", c.name, yamlString(c.path))
			writeCols("        ", c.columns)
		}
	}
	out := inf.out
	out.YAML = []byte(b.String())
	s, err := Parse(out.YAML)
	if err != nil {
		return nil, fmt.Errorf("inferred schema does not parse (a bug): %w\n%s", err, out.YAML)
	}
	for _, tb := range s.All() {
		for _, c := range tb.Columns {
			if c.Source == FromPath {
				out.Columns++
			}
		}
	}
	if !utf8.Valid(out.YAML) {
		return nil, fmt.Errorf("inferred schema is not UTF-8")
	}
	return out, nil
}

// WriteReport writes what to review in the file Infer wrote from a sample
// of opt.Collection drawn as how: what was sampled, the event types, the
// fields too rare to decide and those whose values disagree (`wharf schema
// infer` writes it to stderr).
func (inf *Inferred) WriteReport(w io.Writer, opt InferOptions, how string) {
	fmt.Fprintf(w, "sampled %d documents of %s (%s): %d columns; event types %s", inf.Documents, opt.Collection, how, inf.Columns, strings.Join(inf.Events, ", "))
	if inf.Untyped > 0 && opt.Event == "" {
		fmt.Fprintf(w, " (%d documents without a type at %s take %s)", inf.Untyped, opt.Envelope.TypePath, opt.Collection)
	}
	fmt.Fprintln(w)
	for _, r := range inf.Rare {
		fmt.Fprintf(w, "too rare to decide (left to _extras): %s: %s\n", r.Path, r.Reason)
	}
	for _, r := range inf.Conflicts {
		fmt.Fprintf(w, "review: %s: %s\n", r.Path, r.Reason)
	}
}
