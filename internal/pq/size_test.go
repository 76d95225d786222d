package pq

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/wharfdata/wharf/schema"
)

// representativeBatch flattens n varied events of the benchmark's schema
// (bench/testdata: actions_taken and its tags) into rows. Unlike
// BenchmarkStages, whose file repeats one event 10,000 times, every event
// differs: unique ids, increasing times, user ids, items and user agents
// drawn from sets of realistic sizes, random counters, 0-3 tags, and a few
// unmapped fields for _extras.
func representativeBatch(tb testing.TB, n int) (*schema.Schema, []schema.Row) {
	tb.Helper()
	y, err := os.ReadFile("../../bench/testdata/tables.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	sch, err := schema.Parse(y)
	if err != nil {
		tb.Fatal(err)
	}
	d := schema.NewDecoder(sch, schema.DefaultEnvelope())
	rng := rand.New(rand.NewPCG(1, 2))
	actions := []string{"view", "click", "add_to_cart", "remove_from_cart", "checkout", "purchase", "search", "share", "like", "scroll", "login", "logout"}
	types := []string{"item", "category", "banner", "page"}
	tags := []string{"promo", "mobile", "web", "email", "push", "organic", "paid", "retarget", "new", "returning", "vip", "beta", "ab-a", "ab-b", "sale", "gift", "bundle", "clearance", "seasonal", "flash"}
	uas := make([]string, 40)
	for i := range uas {
		uas[i] = fmt.Sprintf("Mozilla/5.0 (iPhone; CPU iPhone OS 18_%d like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.%d Mobile/15E%d Safari/604.1", i%7, i%5, 100+i)
	}
	t0 := time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	var rows []schema.Row
	for i := range n {
		var tg bytes.Buffer
		for k := range rng.IntN(4) {
			if k > 0 {
				tg.WriteByte(',')
			}
			fmt.Fprintf(&tg, "%q", tags[rng.IntN(len(tags))])
		}
		body := fmt.Sprintf(`{"event":"actions_taken","id":"evt-%08x-%04x-%04x","timestamp":%q,"user_id":%d,"action":%q,"target":{"id":"item-%d","type":%q},"meta":{"ua":%q,"app_version":"3.%d.%d"},"value":[%d,%d,%d],"tags":[%s]}`,
			rng.Uint32(), rng.IntN(1<<16), i&0xffff,
			t0.Add(time.Duration(i)*500*time.Microsecond+time.Duration(rng.IntN(1000))*time.Microsecond).Format(time.RFC3339Nano),
			10_000_000+rng.IntN(5000), actions[rng.IntN(len(actions))], rng.IntN(2000), types[rng.IntN(len(types))],
			uas[rng.IntN(len(uas))], 10+rng.IntN(5), rng.IntN(3),
			rng.IntN(10), rng.IntN(1000), rng.IntN(100_000)-50_000, tg.String())
		ev, err := d.Decode([]byte(body), "m", t0.Add(time.Duration(i)*500*time.Microsecond+2*time.Second))
		if err != nil {
			tb.Fatal(err)
		}
		if rows, err = d.Flatten(ev, rows); err != nil {
			tb.Fatal(err)
		}
	}
	return sch, rows
}

// BenchmarkEncodeSize encodes a batch of 10,000 events (one file per table,
// as the batcher writes them) and reports the files' bytes per event and the
// encode time per event, for two batches: "varied", the representative batch
// above, and "repeated", bench/testdata/event.json 10,000 times (the file of
// bench's BenchmarkStages/encode):
//
//	go test -run '^$' -bench EncodeSize -cpu 1 ./internal/pq/
func BenchmarkEncodeSize(b *testing.B) {
	const events = 10_000
	b.Run("varied", func(b *testing.B) {
		sch, rows := representativeBatch(b, events)
		benchEncodeSize(b, sch, rows, events)
	})
	b.Run("repeated", func(b *testing.B) {
		sch, _ := representativeBatch(b, 0)
		body, err := os.ReadFile("../../bench/testdata/event.json")
		if err != nil {
			b.Fatal(err)
		}
		d := schema.NewDecoder(sch, schema.DefaultEnvelope())
		var rows []schema.Row
		for range events {
			ev, err := d.Decode(bytes.TrimSpace(body), "sqs-message-id", time.Date(2026, 3, 14, 9, 26, 54, 0, time.UTC))
			if err != nil {
				b.Fatal(err)
			}
			if rows, err = d.Flatten(ev, rows); err != nil {
				b.Fatal(err)
			}
		}
		benchEncodeSize(b, sch, rows, events)
	})
}

func benchEncodeSize(b *testing.B, sch *schema.Schema, rows []schema.Row, events int) {
	byTable := map[*schema.Table][]schema.Row{}
	for _, r := range rows {
		byTable[r.Table] = append(byTable[r.Table], r)
	}
	writers := map[*schema.Table]*Writer{}
	for _, t := range sch.All() {
		writers[t] = NewWriter(t)
	}
	var buf bytes.Buffer
	var size int64
	b.ReportAllocs()
	for b.Loop() {
		size = 0
		for t, rs := range byTable {
			buf.Reset()
			if err := writers[t].Encode(&buf, rs); err != nil {
				b.Fatal(err)
			}
			size += int64(buf.Len())
		}
	}
	b.ReportMetric(float64(size)/float64(events), "bytes/event")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
}
