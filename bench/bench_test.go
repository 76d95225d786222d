package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/wharfdata/wharf/internal/pq"
	"github.com/wharfdata/wharf/schema"
)

// eventsPerFile is how many events the benchmarks put in one Parquet file
// (per table): about what `wharf serve` flushes at max_age 5s and 2,000
// events/s. The encode cost is spread over the events of a file.
const eventsPerFile = 10_000

var received = time.Date(2026, 3, 14, 9, 26, 54, 0, time.UTC)

// fixture is the reference event and the schema it is flattened by.
type fixture struct {
	sch  *schema.Schema
	body []byte
}

func load(tb testing.TB) fixture {
	tb.Helper()
	y, err := os.ReadFile("testdata/tables.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	sch, err := schema.Parse(y)
	if err != nil {
		tb.Fatal(err)
	}
	body, err := os.ReadFile("testdata/event.json")
	if err != nil {
		tb.Fatal(err)
	}
	return fixture{sch: sch, body: bytes.TrimSpace(body)}
}

// flattenFunc appends the rows of one message body to dst.
type flattenFunc func(body []byte, dst []schema.Row) ([]schema.Row, error)

func wharfFlatten(sch *schema.Schema) flattenFunc {
	dec := schema.NewDecoder(sch, schema.DefaultEnvelope())
	return func(body []byte, dst []schema.Row) ([]schema.Row, error) {
		ev, err := dec.Decode(body, "sqs-message-id", received)
		if err != nil {
			return dst, err
		}
		return dec.Flatten(ev, dst)
	}
}

func naiveFlatten(sch *schema.Schema) flattenFunc {
	n := NewNaive(sch, schema.DefaultEnvelope())
	return func(body []byte, dst []schema.Row) ([]schema.Row, error) {
		return n.Flatten(body, "sqs-message-id", received, dst)
	}
}

// BenchmarkEvents measures events/s through decode, flatten and Parquet
// encode, wharf's path against the naive one, in one run. Run it on one
// core (-cpu 1): the figure is per core.
func BenchmarkEvents(b *testing.B) {
	f := load(b)
	for _, impl := range []struct {
		name string
		fn   func(*schema.Schema) flattenFunc
	}{{"wharf", wharfFlatten}, {"naive", naiveFlatten}} {
		b.Run(impl.name, func(b *testing.B) {
			flatten := impl.fn(f.sch)
			p := newPipeline(f.sch)
			b.ReportAllocs()
			b.SetBytes(int64(len(f.body)))
			events := 0
			var rows []schema.Row
			for b.Loop() {
				var err error
				if rows, err = flatten(f.body, rows); err != nil {
					b.Fatal(err)
				}
				if events++; events%eventsPerFile == 0 {
					if err := p.encode(rows); err != nil {
						b.Fatal(err)
					}
					rows = rows[:0]
				}
			}
			if err := p.encode(rows); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(p.fileBytes)/float64(events), "parquet-B/event")
		})
	}
}

// BenchmarkStages splits wharf's path into its three stages, each reported
// in ns/event, to show where BenchmarkEvents/wharf spends its time: decode
// (parse, shape checks, envelope), flatten (rows from a decoded event) and
// encode (Parquet, spread over the events of a file).
func BenchmarkStages(b *testing.B) {
	f := load(b)
	b.Run("decode", func(b *testing.B) {
		dec := schema.NewDecoder(f.sch, schema.DefaultEnvelope())
		b.ReportAllocs()
		for b.Loop() {
			if _, err := dec.Decode(f.body, "sqs-message-id", received); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/event")
	})
	b.Run("flatten", func(b *testing.B) {
		dec := schema.NewDecoder(f.sch, schema.DefaultEnvelope())
		ev, err := dec.Decode(f.body, "sqs-message-id", received)
		if err != nil {
			b.Fatal(err)
		}
		var rows []schema.Row
		b.ReportAllocs()
		for b.Loop() {
			if rows, err = dec.Flatten(ev, rows[:0]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/event")
	})
	b.Run("encode", func(b *testing.B) {
		flatten := wharfFlatten(f.sch)
		var rows []schema.Row
		for range eventsPerFile {
			var err error
			if rows, err = flatten(f.body, rows); err != nil {
				b.Fatal(err)
			}
		}
		p := newPipeline(f.sch)
		b.ReportAllocs()
		for b.Loop() {
			if err := p.encode(rows); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*eventsPerFile), "ns/event")
	})
}

// pipeline encodes a batch of rows into one Parquet file per table, as the
// batcher does, reusing a writer per table and one buffer.
type pipeline struct {
	writers   map[*schema.Table]*pq.Writer
	byTable   map[*schema.Table][]schema.Row
	buf       bytes.Buffer
	fileBytes int64
}

func newPipeline(sch *schema.Schema) *pipeline {
	p := &pipeline{writers: map[*schema.Table]*pq.Writer{}, byTable: map[*schema.Table][]schema.Row{}}
	for _, t := range sch.All() {
		p.writers[t] = pq.NewWriter(t)
	}
	return p
}

func (p *pipeline) encode(rows []schema.Row) error {
	for _, r := range rows {
		p.byTable[r.Table] = append(p.byTable[r.Table], r)
	}
	for t, rs := range p.byTable {
		if len(rs) == 0 {
			continue
		}
		p.buf.Reset()
		if err := p.writers[t].Encode(&p.buf, rs); err != nil {
			return err
		}
		p.fileBytes += int64(p.buf.Len())
		clear(rs)
		p.byTable[t] = rs[:0]
	}
	return nil
}

// TestNaiveMatchesWharf checks that the two paths the benchmark compares
// build the same rows from the reference event (_extras compared as JSON:
// encoding/json sorts keys, wharf keeps the event's order).
func TestNaiveMatchesWharf(t *testing.T) {
	f := load(t)
	want, err := wharfFlatten(f.sch)(f.body, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := naiveFlatten(f.sch)(f.body, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(want) != 3 {
		t.Fatalf("naive made %d rows, wharf %d (want 3: a parent and two tags)", len(got), len(want))
	}
	for i := range want {
		if got[i].Table != want[i].Table {
			t.Fatalf("row %d: table %s, want %s", i, got[i].Table.Name, want[i].Table.Name)
		}
		for j, c := range want[i].Table.Columns {
			g, w := got[i].Values[j], want[i].Values[j]
			if c.Type.Kind == schema.JSON && !g.Null && !w.Null {
				var gj, wj any
				if err := json.Unmarshal([]byte(g.S), &gj); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal([]byte(w.S), &wj); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(gj, wj) {
					t.Errorf("%s.%s: naive %s, wharf %s", c.Name, want[i].Table.Name, g.S, w.S)
				}
				continue
			}
			if g != w {
				t.Errorf("%s.%s: naive %+v, wharf %+v", want[i].Table.Name, c.Name, g, w)
			}
		}
	}
}
