package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"syscall"
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
type flattenFunc func(body []byte, dst *schema.Rows) error

// wharfFlatten is wharf's path: one pass of the message into the decoder's
// tape, then its rows into column buffers.
func wharfFlatten(sch *schema.Schema) flattenFunc {
	dec := schema.NewDecoder(sch, schema.DefaultEnvelope())
	var ev schema.Event // reused, as ingest's items and backfill's workers hold one
	return func(body []byte, dst *schema.Rows) error {
		if err := dec.DecodeInto(&ev, body, "sqs-message-id", received); err != nil {
			return err
		}
		return dec.FlattenInto(&ev, dst)
	}
}

// naiveFlatten is encoding/json's path: the message into a map, then rows
// one by one, each appended to dst as it comes.
func naiveFlatten(sch *schema.Schema) flattenFunc {
	n := NewNaive(sch, schema.DefaultEnvelope())
	var rows []schema.Row
	return func(body []byte, dst *schema.Rows) error {
		var err error
		if rows, err = n.Flatten(body, "sqs-message-id", received, rows[:0]); err != nil {
			return err
		}
		for _, r := range rows {
			dst.AppendRow(r)
		}
		return nil
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
			var rows schema.Rows
			cpu0 := cpuTime()
			for b.Loop() {
				if err := flatten(f.body, &rows); err != nil {
					b.Fatal(err)
				}
				if events++; events%eventsPerFile == 0 {
					if err := p.encode(&rows); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := p.encode(&rows); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
			// The same per second of CPU time the process used (GC included):
			// the figure of one core where other processes share the machine.
			b.ReportMetric(float64(events)/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
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
		var ev schema.Event
		b.ReportAllocs()
		cpu0 := cpuTime()
		for b.Loop() {
			if err := dec.DecodeInto(&ev, f.body, "sqs-message-id", received); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/event")
		b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/event")
	})
	b.Run("flatten", func(b *testing.B) {
		dec := schema.NewDecoder(f.sch, schema.DefaultEnvelope())
		ev, err := dec.Decode(f.body, "sqs-message-id", received)
		if err != nil {
			b.Fatal(err)
		}
		var rows schema.Rows
		b.ReportAllocs()
		cpu0 := cpuTime()
		n := 0
		for b.Loop() {
			if n++; n%eventsPerFile == 0 {
				rows.Reset() // a file's rows, as BenchmarkEvents holds them
			}
			if err := dec.FlattenInto(ev, &rows); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/event")
		b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/event")
	})
	b.Run("encode", func(b *testing.B) {
		flatten := wharfFlatten(f.sch)
		var rows schema.Rows
		for range eventsPerFile {
			if err := flatten(f.body, &rows); err != nil {
				b.Fatal(err)
			}
		}
		p := newPipeline(f.sch)
		p.keep = true
		b.ReportAllocs()
		cpu0 := cpuTime()
		for b.Loop() {
			if err := p.encode(&rows); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*eventsPerFile), "ns/event")
		b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N*eventsPerFile), "cpu-ns/event")
	})
}

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pipeline encodes a batch of rows into one Parquet file per table, as the
// batcher does, reusing a writer per table and one buffer.
type pipeline struct {
	writers   map[*schema.Table]*pq.Writer
	buf       bytes.Buffer
	fileBytes int64
	keep      bool // encode leaves the rows (BenchmarkStages/encode encodes them again)
}

func newPipeline(sch *schema.Schema) *pipeline {
	p := &pipeline{writers: map[*schema.Table]*pq.Writer{}}
	for _, t := range sch.All() {
		p.writers[t] = pq.NewWriter(t)
	}
	return p
}

func (p *pipeline) encode(rows *schema.Rows) error {
	for _, tr := range rows.Tables() {
		if tr.Len == 0 {
			continue
		}
		p.buf.Reset()
		if err := p.writers[tr.Table].EncodeRows(&p.buf, tr); err != nil {
			return err
		}
		p.fileBytes += int64(p.buf.Len())
	}
	if !p.keep {
		rows.Reset()
	}
	return nil
}

// TestNaiveMatchesWharf checks that the two paths the benchmark compares
// build the same rows from the reference event (_extras compared as JSON:
// encoding/json sorts keys, wharf keeps the event's order).
func TestNaiveMatchesWharf(t *testing.T) {
	f := load(t)
	var wr, nr schema.Rows
	if err := wharfFlatten(f.sch)(f.body, &wr); err != nil {
		t.Fatal(err)
	}
	if err := naiveFlatten(f.sch)(f.body, &nr); err != nil {
		t.Fatal(err)
	}
	want, got := wr.Slice(nil), nr.Slice(nil)
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
