// Command wharf-demo-events writes a reproducible stream of tracking events
// shaped like a real product's (page views, actions with a bounded array and
// a tag list, orders with line items, signups), with some exact duplicates
// and a few bad events, as JSON lines on stdout. With --manifest it also
// writes what wharf must make of them: rows per table, dead letters by
// reason and raw documents per collection, for the demo and the tests to
// check against.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "check-mongo" {
		if err := checkMongo(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "wharf-demo-events check-mongo:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "wharf-demo-events:", err)
		os.Exit(1)
	}
}

// Manifest is what the events must become.
type Manifest struct {
	Lines       int            `json:"lines"`
	Unique      int            `json:"unique"`
	Duplicates  int            `json:"duplicates"`
	Rows        map[string]int `json:"rows"`        // per table
	DeadLetters map[string]int `json:"deadletters"` // per reason
	Mongo       map[string]int `json:"mongo"`       // raw documents per collection
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("wharf-demo-events", flag.ContinueOnError)
	n := fs.Int("n", 100000, "unique valid events")
	days := fs.Int("days", 30, "spread event times over this many days before --now")
	dupPct := fs.Float64("dup", 2, "percent of events sent twice")
	bad := fs.Int("bad", 60, "bad events (spread over the dead-letter reasons)")
	seed := fs.Uint64("seed", 1, "random seed")
	nowFlag := fs.String("now", "", "end of the time range (RFC 3339; default now)")
	prefix := fs.String("id-prefix", "demo", "prefix of event ids")
	manifestPath := fs.String("manifest", "", "write the manifest here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	now := time.Now().UTC()
	if *nowFlag != "" {
		t, err := time.Parse(time.RFC3339, *nowFlag)
		if err != nil {
			return err
		}
		now = t
	}
	g := &generator{r: rand.New(rand.NewPCG(*seed, *seed^0x9e3779b97f4a7c15)), w: bufio.NewWriterSize(stdout, 1<<20), now: now, prefix: *prefix,
		m: Manifest{Rows: map[string]int{}, DeadLetters: map[string]int{}, Mongo: map[string]int{}}}
	span := time.Duration(*days) * 24 * time.Hour
	for i := 0; i < *n; i++ {
		ev := g.event(i, span)
		g.m.Unique++
		if err := g.emit(ev); err != nil {
			return err
		}
		if g.r.Float64()*100 < *dupPct {
			g.m.Duplicates++
			if err := g.emit(ev); err != nil {
				return err
			}
		}
	}
	if err := g.bad(*bad); err != nil {
		return err
	}
	if err := g.w.Flush(); err != nil {
		return err
	}
	if *manifestPath != "" {
		b, _ := json.MarshalIndent(g.m, "", "  ")
		return os.WriteFile(*manifestPath, b, 0o644)
	}
	return nil
}

// generator writes the events and keeps the manifest of what they must
// become.
type generator struct {
	r      *rand.Rand
	w      *bufio.Writer
	m      Manifest
	now    time.Time
	prefix string
}

func (g *generator) emit(ev map[string]any) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	g.m.Lines++
	g.w.Write(b)
	return g.w.WriteByte('\n')
}

var (
	uas       = []string{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148", "okhttp/4.12.0"}
	actions   = []string{"click", "scroll", "share", "like", "follow", "search", "add_to_cart"}
	pages     = []string{"/", "/pricing", "/blog/launch", "/docs/getting-started", "/product/42", "/cart", "/checkout"}
	countries = []string{"US", "DE", "FR", "GB", "JP", "BR", "IN"}
)

// event returns the ith valid event, at a time within span before now.
func (g *generator) event(i int, span time.Duration) map[string]any {
	r := g.r
	t := g.now.Add(-time.Duration(r.Int64N(int64(span))))
	user := 1000 + r.Int64N(20000)
	id := fmt.Sprintf("%s-%08d", g.prefix, i)
	switch k := r.IntN(100); {
	case k < 45:
		g.m.Rows["page_views"]++
		g.m.Mongo["page_views"]++
		return map[string]any{"event": "page_view", "id": id, "timestamp": t.Format(time.RFC3339Nano), "user_id": user,
			"session_id": fmt.Sprintf("s-%d-%d", user, r.IntN(50)),
			"page":       map[string]any{"url": pages[r.IntN(len(pages))], "referrer": "https://www.google.com/", "title": "Page"},
			"context":    map[string]any{"ua": uas[r.IntN(len(uas))], "geo": map[string]any{"country": countries[r.IntN(len(countries))], "city": "Somewhere"}},
			"perf":       map[string]any{"load_ms": 50 + r.IntN(3000), "ttfb_ms": r.IntN(400)}}
	case k < 80:
		return g.action(id, t, user)
	case k < 95:
		return g.order(id, t, user)
	}
	g.m.Rows["signups"]++
	g.m.Mongo["signups"]++
	return map[string]any{"event": "signup", "id": id, "timestamp": t.Format(time.RFC3339), "user_id": user, "plan": []string{"free", "pro", "team"}[r.IntN(3)],
		"profile": map[string]any{"birthday": fmt.Sprintf("%d-%02d-%02d", 1950+r.IntN(55), 1+r.IntN(12), 1+r.IntN(28)), "score": r.Float64() * 100}}
}

// action is an actions_taken event, with a bounded array and a tag list.
func (g *generator) action(id string, t time.Time, user int64) map[string]any {
	r := g.r
	vals := make([]int, r.IntN(4))
	for j := range vals {
		vals[j] = r.IntN(1000)
	}
	tags := make([]string, r.IntN(5))
	for j := range tags {
		tags[j] = fmt.Sprintf("tag%d", r.IntN(30))
	}
	g.m.Rows["actions_taken"]++
	g.m.Rows["actions_taken_tags"] += len(tags)
	g.m.Mongo["actions_taken"]++
	return map[string]any{"event": "actions_taken", "id": id, "timestamp": g.now.Format(time.RFC3339), "date": t.UnixMilli(), "user_id": user,
		"action": actions[r.IntN(len(actions))], "target": map[string]any{"id": fmt.Sprintf("item-%d", r.IntN(500)), "type": "item"},
		"meta": map[string]any{"ua": uas[r.IntN(len(uas))], "app_version": "3.14.1"}, "value": vals, "tags": tags}
}

// order is an order_completed event with line items.
func (g *generator) order(id string, t time.Time, user int64) map[string]any {
	r := g.r
	items := make([]map[string]any, 1+r.IntN(4))
	for j := range items {
		items[j] = map[string]any{"sku": fmt.Sprintf("SKU-%04d", r.IntN(2000)), "qty": 1 + r.IntN(5), "price": float64(100+r.IntN(20000)) / 100}
	}
	order := map[string]any{"id": "o-" + id, "total": float64(100+r.IntN(100000)) / 100, "currency": "USD", "paid_at": t.Add(3 * time.Second).Format(time.RFC3339),
		"gift": r.IntN(10) == 0, "shipping": map[string]any{"method": "ground", "address": map[string]any{"country": countries[r.IntN(len(countries))]}}, "items": items}
	if r.IntN(5) == 0 {
		order["coupon"] = "WELCOME10"
	}
	g.m.Rows["orders"]++
	g.m.Rows["order_items"] += len(items)
	g.m.Mongo["orders"]++
	return map[string]any{"event": "order_completed", "id": id, "timestamp": t.Unix(), "user_id": user, "order": order}
}

// badKinds are the bad events: each is a JSON object (wharf send refuses
// anything else) that wharf must dead-letter with the given reason.
var badKinds = []struct {
	reason string
	coll   string // raw document still written to this collection
	make   func(id string) map[string]any
}{
	{"unknown_event_type", "", func(id string) map[string]any { return map[string]any{"event": "mystery_event", "id": id} }},
	{"type_mismatch", "page_views", func(id string) map[string]any {
		return map[string]any{"event": "page_view", "id": id, "user_id": "not-a-number"}
	}},
	{"expand_overflow", "actions_taken", func(id string) map[string]any {
		return map[string]any{"event": "actions_taken", "id": id, "value": []int{1, 2, 3, 4, 5}}
	}},
	{"bad_time", "", func(id string) map[string]any {
		return map[string]any{"event": "signup", "id": id, "timestamp": "last tuesday"}
	}},
	{"missing_event_type", "", func(id string) map[string]any { return map[string]any{"id": id, "hello": "world"} }},
	{"out_of_range", "order_items", func(id string) map[string]any {
		return map[string]any{"event": "order_completed", "id": id, "order": map[string]any{"items": []any{map[string]any{"sku": "X", "qty": 100000}}}}
	}},
}

// bad writes n bad events, spread over badKinds.
func (g *generator) bad(n int) error {
	for i := 0; i < n; i++ {
		k := badKinds[i%len(badKinds)]
		if err := g.emit(k.make(fmt.Sprintf("%s-bad-%04d", g.prefix, i))); err != nil {
			return err
		}
		g.m.DeadLetters[k.reason]++
		if k.coll == "order_items" {
			g.m.Mongo["orders"]++
		} else if k.coll != "" {
			g.m.Mongo[k.coll]++
		}
	}
	return nil
}

// checkMongo compares the raw documents per collection with a manifest.
func checkMongo(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("check-mongo", flag.ContinueOnError)
	manifest := fs.String("manifest", "", "the manifest written by the generator")
	uri := fs.String("uri", os.Getenv("WHARF_MONGO_URI"), "Mongo URI")
	db := fs.String("db", os.Getenv("WHARF_MONGO_DATABASE"), "database")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := os.ReadFile(*manifest)
	if err != nil {
		return err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(*uri))
	if err != nil {
		return err
	}
	defer client.Disconnect(ctx)
	bad := 0
	for coll, want := range m.Mongo {
		got, err := client.Database(*db).Collection(coll).CountDocuments(ctx, bson.D{})
		if err != nil {
			return fmt.Errorf("count %s: %w", coll, err)
		}
		mark := "ok"
		if got != int64(want) {
			mark, bad = "MISMATCH", bad+1
		}
		fmt.Fprintf(stdout, "   %-20s %8d raw documents   expected %8d   %s\n", coll, got, want, mark)
	}
	if bad > 0 {
		return fmt.Errorf("%d collections differ", bad)
	}
	return nil
}
