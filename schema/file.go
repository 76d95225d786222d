package schema

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Source says where a column's value comes from.
type Source uint8

// Column sources.
const (
	FromPath       Source = iota // a path in the event (or the array element)
	FromEventID                  // the envelope's event id
	FromEventTime                // the table's event time
	FromReceivedAt               // when wharf received the message
	FromIndex                    // a child row's position in its array
	FromExtras                   // unmapped fields as JSON
)

// Names of the implicit columns.
const (
	ColEventID    = "event_id"
	ColEventTime  = "event_time"
	ColReceivedAt = "received_at"
	ColIndex      = "idx"
	ColExtras     = "_extras"
)

// EventIDLength is the byte length of the event_id column.
const EventIDLength = 64

// Column is one warehouse column.
type Column struct {
	Name   string
	Type   Type
	Source Source
	Path   string // the path as written in the schema file ("" for implicit columns)
	Line   int    // line in the schema file (0 for implicit columns)
	// A column made by `expand: n` holds element ExpandIndex (0 to n-1) of
	// the array at Path, and ExpandCount is n; another column has
	// ExpandIndex -1 and ExpandCount 0.
	ExpandIndex int
	ExpandCount int

	path []string // Path split on dots; nil for "." (the element itself)
	// A parent table's column finds its value where Flatten's walk of the
	// event (Decoder.walk) recorded the mapped path that covers it, slot,
	// then down the rest of its path, if any (see Table.plan).
	slot int
	rest []string
}

// Table is a warehouse table: a parent table, which takes events, or a child
// table, which takes the elements of an array inside them.
type Table struct {
	Name       string
	Events     []string // event types routed here (parents; children inherit)
	Collection string   // Mongo collection of raw events ("" = the event type's name)
	// CollectionEvent is the event type of a document in the table's
	// collection that has none (history written before wharf, where the
	// collection is the type); "" when not set. See FallbackEvent.
	CollectionEvent string
	Time            string // event-time path ("" = the envelope's time)
	SortKey         []string
	DistKey         string
	Extras          bool
	Path            string // child tables: the array's path in the event
	Columns         []Column
	Children        []*Table
	Parent          *Table
	Line            int

	timePath  []string
	arrayPath []string
	mapped    *pathTree // paths consumed by columns, for extras

	// The walk's plan (parent tables; see plan): how many mapped paths it
	// records, and where the time path and each child's array are.
	slots     int
	timeSlot  int
	timeRest  []string
	arraySlot int // a child table: in its parent's walk
	arrayRest []string
}

// IsChild reports whether t is a child table.
func (t *Table) IsChild() bool { return t.Parent != nil }

// Key returns the columns that identify a row: event_id for a parent table,
// event_id and idx for a child table.
func (t *Table) Key() []string {
	if t.IsChild() {
		return []string{ColEventID, ColIndex}
	}
	return []string{ColEventID}
}

// Column returns the index of the named column, or -1.
func (t *Table) Column(name string) int {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return i
		}
	}
	return -1
}

// Schema is a loaded, validated schema file.
type Schema struct {
	Tables []*Table // parent tables in file order

	all     []*Table
	byName  map[string]*Table
	byEvent map[string][]*Table
	// eventNames maps each routed event type to itself, for routeBytes;
	// routes and routeIdx index them by keySig.
	eventNames map[string]string
	routes     []route
	routeIdx   *[64]uint8
}

// All returns every table, each parent followed by its children.
func (s *Schema) All() []*Table { return s.all }

// Table returns the named table (parent or child), or nil.
func (s *Schema) Table(name string) *Table { return s.byName[name] }

// Route returns the parent tables that take events of the given type.
func (s *Schema) Route(eventType string) []*Table { return s.byEvent[eventType] }

// routeBytes is Route for an event type still in the message's bytes; it
// also returns the type as a string, shared with the schema (no copy).
func (s *Schema) routeBytes(eventType []byte) (string, []*Table) {
	if s.routeIdx != nil {
		switch e := s.routeIdx[keySig(eventType)]; e {
		case 0:
			return string(eventType), nil
		case sigShared:
		default:
			if r := &s.routes[e-1]; r.name == string(eventType) {
				return r.name, r.tables
			}
			return string(eventType), nil
		}
	}
	if name, ok := s.eventNames[string(eventType)]; ok {
		return name, s.byEvent[name]
	}
	return string(eventType), nil
}

// route is an event type and the tables that take it.
type route struct {
	name   string
	tables []*Table
}

// indexRoutes indexes the event types by keySig (see pathTree.indexKids),
// for a schema of fewer than 255 of them.
func (s *Schema) indexRoutes() {
	if len(s.byEvent) >= sigShared {
		return
	}
	s.routeIdx = new([64]uint8)
	for _, name := range s.EventTypes() {
		s.routes = append(s.routes, route{name, s.byEvent[name]})
		h := keySig([]byte(name))
		if s.routeIdx[h] == 0 {
			s.routeIdx[h] = uint8(len(s.routes))
		} else {
			s.routeIdx[h] = sigShared
		}
	}
}

// EventTypes returns every routed event type, sorted.
func (s *Schema) EventTypes() []string {
	out := make([]string, 0, len(s.byEvent))
	for k := range s.byEvent {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CollectionFor returns the Mongo collection that raw events of the given
// type are written to, and false when no table takes the type.
func (s *Schema) CollectionFor(eventType string) (string, bool) {
	tables := s.byEvent[eventType]
	if len(tables) == 0 {
		return "", false
	}
	if c := tables[0].Collection; c != "" {
		return c, true
	}
	return eventType, true
}

// FallbackEvent is the event type that backfill and audit give a document of
// the table's collection that has no event type: the table's one event type,
// else its collection_event; "" when neither applies (such a document is then
// a missing_event_type dead letter).
func (t *Table) FallbackEvent() string {
	if t.Parent != nil {
		return t.Parent.FallbackEvent()
	}
	if t.CollectionEvent != "" {
		return t.CollectionEvent
	}
	if len(t.Events) == 1 {
		return t.Events[0]
	}
	return ""
}

// Collections returns the collections a table's raw events live in.
func (t *Table) Collections() []string {
	if t.Collection != "" {
		return []string{t.Collection}
	}
	return slices.Clone(t.Events)
}

// An Error is a problem in the schema file, with the line it is on.
type Error struct {
	Line   int
	Reason string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
	}
	return e.Reason
}

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// ReservedNames are the folders wharf writes under the S3 prefix next to the
// tables' own (PREFIX/TABLE/): dead letters (deadletter.Dir), COPY manifests
// (warehouse) and backfill plans and checkpoints (backfill.Dir), each with
// its lifecycle rule (deploy/terraform/s3.tf). A table of one of these names
// would mix its Parquet files with them, so none may take one.
var ReservedNames = []string{"_backfill", "_deadletter", "_manifests"}

// MaxIdentifier is the longest table or column name, in bytes.
const MaxIdentifier = 127

// ValidIdentifier reports why name is not a valid table or column name, or "".
func ValidIdentifier(name string) string {
	switch {
	case name == "":
		return "name is empty"
	case len(name) > MaxIdentifier:
		return fmt.Sprintf("name %q is longer than %d bytes", name, MaxIdentifier)
	case !identRE.MatchString(name):
		return fmt.Sprintf("name %q is not a lower-case identifier ([a-z_][a-z0-9_]*)", name)
	}
	return ""
}

// QuoteIdent quotes a validated identifier for SQL. Identifiers are checked
// against [a-z_][a-z0-9_]* when the schema is loaded; quoting still doubles
// any quote so that a name can never break out of its quotes.
func QuoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// --- the file as YAML ---

type fileSchema struct {
	Tables []fileTable
}

type fileTable struct {
	Name       string
	Events     []string
	Collection string
	Time       string
	SortKey    []string
	DistKey    string
	Extras     bool
	Path       string
	Columns    []fileColumn
	Children   []fileTable
	line       int

	CollectionEvent     string
	collectionEventLine int
}

type fileColumn struct {
	Name   string
	Path   string
	Type   string
	Expand int
	line   int
}

var tableKeys = []string{"name", "events", "collection", "collection_event", "time", "sort_key", "dist_key", "extras", "path", "columns", "children"}
var columnKeys = []string{"name", "path", "type", "expand"}

func checkKeys(n *yaml.Node, allowed []string, what string) error {
	if n.Kind != yaml.MappingNode {
		return &Error{Line: n.Line, Reason: what + " must be a mapping"}
	}
	for i := 0; i < len(n.Content); i += 2 {
		k := n.Content[i]
		if !slices.Contains(allowed, k.Value) {
			if strings.HasSuffix(k.Value, ")") {
				return &Error{Line: k.Line, Reason: fmt.Sprintf("unknown %s field %q: a type with a comma inside {…} must be quoted, as type: \"decimal(12,2)\"", what, k.Value)}
			}
			return &Error{Line: k.Line, Reason: fmt.Sprintf("unknown %s field %q (want one of %s)", what, k.Value, strings.Join(allowed, ", "))}
		}
	}
	return nil
}

func (t *fileTable) UnmarshalYAML(n *yaml.Node) error {
	if err := checkKeys(n, tableKeys, "table"); err != nil {
		return err
	}
	var raw struct {
		Name       string       `yaml:"name"`
		Events     []string     `yaml:"events"`
		Collection string       `yaml:"collection"`
		CollEvent  string       `yaml:"collection_event"`
		Time       string       `yaml:"time"`
		SortKey    []string     `yaml:"sort_key"`
		DistKey    string       `yaml:"dist_key"`
		Extras     bool         `yaml:"extras"`
		Path       string       `yaml:"path"`
		Columns    []fileColumn `yaml:"columns"`
		Children   []fileTable  `yaml:"children"`
	}
	if err := n.Decode(&raw); err != nil {
		return err
	}
	*t = fileTable{raw.Name, raw.Events, raw.Collection, raw.Time, raw.SortKey, raw.DistKey, raw.Extras, raw.Path, raw.Columns, raw.Children, n.Line, raw.CollEvent, n.Line}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "collection_event" {
			t.collectionEventLine = n.Content[i].Line
		}
	}
	return nil
}

func (c *fileColumn) UnmarshalYAML(n *yaml.Node) error {
	if err := checkKeys(n, columnKeys, "column"); err != nil {
		return err
	}
	var raw struct {
		Name   string `yaml:"name"`
		Path   string `yaml:"path"`
		Type   string `yaml:"type"`
		Expand int    `yaml:"expand"`
	}
	if err := n.Decode(&raw); err != nil {
		return err
	}
	*c = fileColumn{raw.Name, raw.Path, raw.Type, raw.Expand, n.Line}
	return nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: (?:unmarshal errors:\n\s*)?line (\d+): (.*)$`)

// Parse reads and validates a schema file. Errors carry the line and reason.
func Parse(data []byte) (*Schema, error) {
	f, err := decodeFile(data)
	if err != nil {
		return nil, err
	}
	return build(f)
}

// ParseTable reads and validates a schema file as Parse does, and returns a
// schema of only the parent table name and its children, each with suffix
// added to its name and every rule the file gives it: the tables a rebuild
// fills (backfill.RebuildSchema).
func ParseTable(data []byte, name, suffix string) (*Schema, error) {
	f, err := decodeFile(data)
	if err != nil {
		return nil, err
	}
	if _, err := build(f); err != nil {
		return nil, err
	}
	for _, ft := range f.Tables {
		if ft.Name != name {
			continue
		}
		ft.Name += suffix
		ft.Children = slices.Clone(ft.Children)
		for i := range ft.Children {
			ft.Children[i].Name += suffix
		}
		return build(fileSchema{Tables: []fileTable{ft}})
	}
	return nil, &Error{Reason: fmt.Sprintf("no parent table %q", name)}
}

// decodeFile reads a schema file's YAML, refusing unknown keys.
func decodeFile(data []byte) (fileSchema, error) {
	var f fileSchema
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return f, &Error{Reason: "schema file is empty"}
		}
		return f, yamlError(err)
	}
	if len(root.Content) == 0 {
		return f, &Error{Reason: "schema file is empty"}
	}
	doc := root.Content[0]
	if err := checkKeys(doc, []string{"tables"}, "top-level"); err != nil {
		return f, err
	}
	if err := doc.Decode(&f); err != nil {
		return f, yamlError(err)
	}
	return f, nil
}

func yamlError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		var line int
		fmt.Sscan(m[1], &line)
		return &Error{Line: line, Reason: m[2]}
	}
	return &Error{Reason: msg}
}

func build(f fileSchema) (*Schema, error) {
	if len(f.Tables) == 0 {
		return nil, &Error{Reason: "no tables declared (want a list under `tables:`)"}
	}
	s := &Schema{byName: map[string]*Table{}, byEvent: map[string][]*Table{}, eventNames: map[string]string{}}
	for _, ft := range f.Tables {
		t, err := buildTable(ft, nil)
		if err != nil {
			return nil, err
		}
		s.Tables = append(s.Tables, t)
		for _, x := range append([]*Table{t}, t.Children...) {
			if other, dup := s.byName[x.Name]; dup {
				return nil, &Error{Line: x.Line, Reason: fmt.Sprintf("table %q is declared twice (first on line %d)", x.Name, other.Line)}
			}
			s.byName[x.Name] = x
			s.all = append(s.all, x)
		}
		for _, ev := range t.Events {
			for _, other := range s.byEvent[ev] {
				if other.Collection != t.Collection {
					return nil, &Error{Line: t.Line, Reason: fmt.Sprintf("tables %q and %q both take event %q but name different collections (%q, %q); raw events of one type go to one collection", other.Name, t.Name, ev, other.Collection, t.Collection)}
				}
			}
			s.byEvent[ev] = append(s.byEvent[ev], t)
			s.eventNames[ev] = ev
		}
	}
	s.indexRoutes()
	return s, nil
}

func splitPath(p string) ([]string, error) {
	if p == "" {
		return nil, errors.New("path is empty")
	}
	if p == "." {
		return nil, nil
	}
	parts := strings.Split(p, ".")
	for _, part := range parts {
		if part == "" {
			return nil, fmt.Errorf("path %q has an empty segment", p)
		}
	}
	return parts, nil
}

func buildTable(ft fileTable, parent *Table) (*Table, error) {
	if err := checkTableName(ft); err != nil {
		return nil, err
	}
	t := &Table{
		Name: ft.Name, Events: ft.Events, Collection: ft.Collection, CollectionEvent: ft.CollectionEvent, Time: ft.Time,
		SortKey: ft.SortKey, DistKey: ft.DistKey, Extras: ft.Extras, Path: ft.Path,
		Parent: parent, Line: ft.line, mapped: &pathTree{},
	}
	var err error
	if parent == nil {
		err = t.parentRules(ft)
	} else {
		err = t.childRules(ft, parent)
	}
	if err != nil {
		return nil, err
	}
	if err := t.addColumns(ft.Columns); err != nil {
		return nil, err
	}
	if t.timePath != nil {
		t.mapped.add(t.timePath)
	}
	if ft.Extras {
		t.Columns = append(t.Columns, Column{Name: ColExtras, Type: Type{Kind: JSON}, Source: FromExtras, ExpandIndex: -1})
	}
	if err := t.checkColumns(ft.line); err != nil {
		return nil, err
	}
	for _, fc := range ft.Children {
		c, err := buildTable(fc, t)
		if err != nil {
			return nil, err
		}
		t.Children = append(t.Children, c)
		t.mapped.add(c.arrayPath)
	}
	if parent == nil {
		t.plan()
	}
	return t, nil
}

// failAt is an Error at line.
func failAt(line int, format string, args ...any) error {
	return &Error{Line: line, Reason: fmt.Sprintf(format, args...)}
}

// checkTableName refuses a table name that is not an identifier or that
// wharf keeps for itself.
func checkTableName(ft fileTable) error {
	if why := ValidIdentifier(ft.Name); why != "" {
		return failAt(ft.line, "table: %s", why)
	}
	if strings.HasPrefix(ft.Name, "wharf_") {
		return failAt(ft.line, "table %q: names starting with wharf_ are reserved for wharf's own tables", ft.Name)
	}
	if slices.Contains(ReservedNames, ft.Name) {
		return failAt(ft.line, "table %q: the name is reserved: wharf keeps its own objects under PREFIX/%s/ (reserved: %s)", ft.Name, ft.Name, strings.Join(ReservedNames, ", "))
	}
	return nil
}

// parentRules checks what a parent table declares and gives it its
// implicit columns.
func (t *Table) parentRules(ft fileTable) error {
	if len(ft.Events) == 0 {
		return failAt(ft.line, "table %q: `events` must list at least one event type", ft.Name)
	}
	for _, ev := range ft.Events {
		if ev == "" {
			return failAt(ft.line, "table %q: an event type is empty", ft.Name)
		}
	}
	if ft.Path != "" {
		return failAt(ft.line, "table %q: `path` is only for child tables", ft.Name)
	}
	if ft.CollectionEvent != "" && !slices.Contains(ft.Events, ft.CollectionEvent) {
		return failAt(ft.collectionEventLine, "table %q: collection_event %q is not one of its events (%s)", ft.Name, ft.CollectionEvent, strings.Join(ft.Events, ", "))
	}
	if ft.Time != "" {
		p, err := splitPath(ft.Time)
		if err != nil || p == nil {
			return failAt(ft.line, "table %q: time: bad path %q", ft.Name, ft.Time)
		}
		t.timePath = p
	}
	t.Columns = append(t.Columns,
		Column{Name: ColEventID, Type: Type{Kind: Varchar, Length: EventIDLength}, Source: FromEventID, ExpandIndex: -1},
		Column{Name: ColEventTime, Type: Type{Kind: Timestamp}, Source: FromEventTime, ExpandIndex: -1},
		Column{Name: ColReceivedAt, Type: Type{Kind: Timestamp}, Source: FromReceivedAt, ExpandIndex: -1},
	)
	return nil
}

// childRules checks what a child table of parent declares and gives it its
// implicit columns.
func (t *Table) childRules(ft fileTable, parent *Table) error {
	if len(ft.Events) > 0 || ft.Collection != "" || ft.CollectionEvent != "" || ft.Time != "" {
		return failAt(ft.line, "child table %q: events, collection, collection_event and time come from its parent %q", ft.Name, parent.Name)
	}
	if ft.Extras {
		return failAt(ft.line, "child table %q: extras is only for parent tables", ft.Name)
	}
	if len(ft.Children) > 0 {
		return failAt(ft.line, "child table %q: a child table cannot have children of its own", ft.Name)
	}
	p, err := splitPath(ft.Path)
	if err != nil || p == nil {
		return failAt(ft.line, "child table %q: `path` must be the dotted path of an array in the event", ft.Name)
	}
	if len(ft.Columns) == 0 {
		return failAt(ft.line, "child table %q: declare at least one column", ft.Name)
	}
	t.arrayPath = p
	t.Events = parent.Events
	t.Collection = parent.Collection
	t.Columns = append(t.Columns,
		Column{Name: ColEventID, Type: Type{Kind: Varchar, Length: EventIDLength}, Source: FromEventID, ExpandIndex: -1},
		Column{Name: ColEventTime, Type: Type{Kind: Timestamp}, Source: FromEventTime, ExpandIndex: -1},
		Column{Name: ColIndex, Type: Type{Kind: Integer}, Source: FromIndex, ExpandIndex: -1},
		// The delivery a child row came from, as its parent's
		// received_at: the loader keeps a parent and all of its
		// children from the same delivery (docs/design.md §2).
		Column{Name: ColReceivedAt, Type: Type{Kind: Timestamp}, Source: FromReceivedAt, ExpandIndex: -1},
	)
	return nil
}

// addColumns adds the declared columns, an `expand: n` one as n columns.
func (t *Table) addColumns(cols []fileColumn) error {
	for _, fc := range cols {
		if why := ValidIdentifier(fc.Name); why != "" {
			return failAt(fc.line, "column: %s", why)
		}
		typ, err := ParseType(fc.Type)
		if fc.Type == "" {
			err = errors.New("type is missing")
		}
		if err != nil {
			return failAt(fc.line, "column %q: %v", fc.Name, err)
		}
		if fc.Path == "" {
			return failAt(fc.line, "column %q: path is missing", fc.Name)
		}
		path, err := splitPath(fc.Path)
		if err != nil {
			return failAt(fc.line, "column %q: %v", fc.Name, err)
		}
		if path == nil && t.Parent == nil {
			return failAt(fc.line, "column %q: path \".\" (the element itself) is only for child tables", fc.Name)
		}
		if fc.Expand < 0 || fc.Expand > 1000 {
			return failAt(fc.line, "column %q: expand must be 1..1000", fc.Name)
		}
		if fc.Expand > 0 {
			for i := 0; i < fc.Expand; i++ {
				name := fmt.Sprintf("%s_%d", fc.Name, i)
				if why := ValidIdentifier(name); why != "" {
					return failAt(fc.line, "column %q: expanded %s", fc.Name, why)
				}
				t.Columns = append(t.Columns, Column{Name: name, Type: typ, Source: FromPath, Path: fc.Path, ExpandIndex: i, ExpandCount: fc.Expand, Line: fc.line, path: path})
			}
		} else {
			t.Columns = append(t.Columns, Column{Name: fc.Name, Type: typ, Source: FromPath, Path: fc.Path, ExpandIndex: -1, Line: fc.line, path: path})
		}
		t.mapped.add(path)
	}
	return nil
}

// checkColumns refuses a column declared twice (or named as an implicit
// one), and a sort or distribution key that is no column or a json one.
func (t *Table) checkColumns(line int) error {
	seen := map[string]int{}
	for _, c := range t.Columns {
		if prev, dup := seen[c.Name]; dup {
			if prev == 0 || c.Line == 0 {
				return failAt(c.Line, "table %q: column %q clashes with the implicit column of that name", t.Name, c.Name)
			}
			return failAt(c.Line, "table %q: column %q is declared twice (first on line %d)", t.Name, c.Name, prev)
		}
		seen[c.Name] = c.Line
	}
	if len(t.SortKey) == 0 {
		t.SortKey = []string{ColEventTime}
	}
	// A json column is SUPER on Redshift, which can be neither a sort key
	// nor a distribution key; the file is refused on every dialect so that
	// it works on either.
	for _, k := range t.SortKey {
		i := t.Column(k)
		if i < 0 {
			return failAt(line, "table %q: sort_key names %q, which is not a column", t.Name, k)
		}
		if t.Columns[i].Type.Kind == JSON {
			return failAt(line, "table %q: sort_key names %q, a json column (SUPER on Redshift cannot be a sort key)", t.Name, k)
		}
	}
	if t.DistKey != "" {
		i := t.Column(t.DistKey)
		if i < 0 {
			return failAt(line, "table %q: dist_key names %q, which is not a column", t.Name, t.DistKey)
		}
		if t.Columns[i].Type.Kind == JSON {
			return failAt(line, "table %q: dist_key names %q, a json column (SUPER on Redshift cannot be a distribution key)", t.Name, t.DistKey)
		}
	}
	return nil
}

// plan numbers the leaves of a parent table's mapped tree (the slots that
// Decoder.walk fills with the values at those paths) and points each column,
// the time path and each child's array at the slot of the mapped path that
// covers it: its own, or a shorter one that another column maps whole.
func (t *Table) plan() {
	var number func(n *pathTree)
	number = func(n *pathTree) {
		if n.leaf {
			n.slot = t.slots
			t.slots++
			return
		}
		for _, k := range n.nodes {
			number(k)
		}
	}
	number(t.mapped)
	t.mapped.indexKids()
	resolve := func(path []string) (int, []string) {
		n := t.mapped
		for i, seg := range path {
			n = n.kids[seg]
			if n.leaf {
				if i+1 == len(path) {
					return n.slot, nil
				}
				return n.slot, path[i+1:]
			}
		}
		panic("schema: a mapped path without a leaf")
	}
	for i := range t.Columns {
		if c := &t.Columns[i]; c.Source == FromPath {
			c.slot, c.rest = resolve(c.path)
		}
	}
	t.timeSlot = -1
	if t.timePath != nil {
		t.timeSlot, t.timeRest = resolve(t.timePath)
	}
	for _, c := range t.Children {
		c.arraySlot, c.arrayRest = resolve(c.arrayPath)
	}
}

// pathTree records which paths of an event the columns consume; what is left
// over goes to _extras.
type pathTree struct {
	leaf  bool
	slot  int        // a leaf's slot (Table.plan)
	index *[64]uint8 // names by keySig, 1-based (indexKids); nil: none
	kids  map[string]*pathTree
	// names and nodes hold kids again, in order, for kid's linear search.
	names []string
	nodes []*pathTree
}

// kid returns the child named k, or nil. With an index (see indexKids),
// one name at most is compared; otherwise a few names are compared one by
// one, which is faster than hashing k.
func (p *pathTree) kid(k []byte) *pathTree {
	if p.index != nil {
		switch e := p.index[keySig(k)]; e {
		case 0:
			return nil
		case sigShared:
		default:
			if p.names[e-1] == string(k) {
				return p.nodes[e-1]
			}
			return nil
		}
	}
	if len(p.names) > 8 {
		return p.kids[string(k)]
	}
	for i, n := range p.names {
		if n == string(k) {
			return p.nodes[i]
		}
	}
	return nil
}

// keySig is a key's slot in a pathTree's index: of its length and first and
// last bytes, which tell most keys apart without comparing them.
func keySig(k []byte) uint8 {
	if len(k) == 0 {
		return 0
	}
	return uint8(len(k)+7*int(k[0])+3*int(k[len(k)-1])) & 63
}

// sigShared marks an index slot that two names share: kid compares them all.
const sigShared = 255

// indexKids gives n and its descendants an index of their names by keySig,
// for a tree of fewer than 255 names a node.
func (p *pathTree) indexKids() {
	if len(p.names) == 0 || len(p.names) >= sigShared {
		return
	}
	p.index = new([64]uint8)
	for i, n := range p.names {
		h := keySig([]byte(n))
		if p.index[h] == 0 {
			p.index[h] = uint8(i + 1)
		} else {
			p.index[h] = sigShared
		}
	}
	for _, k := range p.nodes {
		k.indexKids()
	}
}

func (p *pathTree) add(path []string) {
	n := p
	for _, seg := range path {
		if n.leaf {
			return
		}
		if n.kids == nil {
			n.kids = map[string]*pathTree{}
		}
		k := n.kids[seg]
		if k == nil {
			k = &pathTree{}
			n.kids[seg] = k
			n.names = append(n.names, seg)
			n.nodes = append(n.nodes, k)
		}
		n = k
	}
	n.leaf = true
	n.kids, n.names, n.nodes = nil, nil, nil
}
