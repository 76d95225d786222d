// Command wharf-demo-history seeds MongoDB with years of reproducible
// tracking history, stored the way an application stores it: one document
// per event, an ObjectId _id made at the event's time, BSON dates, integers
// and doubles; some documents, as written before wharf, carry no event-type
// field (their collection is their type). The documents follow the demo's tracking plan
// (deploy/local/tables.yaml), with a few bad ones. With --manifest it writes
// what `wharf backfill` must make of them: rows per table, dead letters by
// reason, documents skipped, and monthly active users, for the demo and the
// tests to check against.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "wharf-demo-history:", err)
		os.Exit(1)
	}
}

// Manifest is what the seeded documents must become.
type Manifest struct {
	Documents   map[string]int            `json:"documents"`   // per collection
	Rows        map[string]int            `json:"rows"`        // per table
	DeadLetters map[string]int            `json:"deadletters"` // per reason
	Skipped     map[string]int            `json:"skipped"`     // per collection: documents of an event type no table takes
	Untyped     map[string]int            `json:"untyped"`     // per collection: valid documents without an event-type field
	MAU         map[string]int            `json:"mau"`         // distinct users with a page view, per month (YYYY-MM)
	Hours       map[string]map[string]int `json:"hours"`       // per table: rows per hour (RFC 3339), with --hours
	From        time.Time                 `json:"from"`
	To          time.Time                 `json:"to"`
}

// flags are the command's flags.
type flags struct {
	uri, db, to, only, manifest string
	n, bad, other, untyped      int
	batch, parallel             int
	years                       float64
	seed                        uint64
	mixed, hours, drop          bool
}

func parseFlags(args []string) (flags, error) {
	var o flags
	fs := flag.NewFlagSet("wharf-demo-history", flag.ContinueOnError)
	fs.StringVar(&o.uri, "uri", os.Getenv("WHARF_MONGO_URI"), "Mongo URI")
	fs.StringVar(&o.db, "db", os.Getenv("WHARF_MONGO_DATABASE"), "database")
	fs.IntVar(&o.n, "n", 300_000, "documents (valid ones, spread over the collections)")
	fs.Float64Var(&o.years, "years", 3, "history spans this many years before --to")
	fs.StringVar(&o.to, "to", "", "end of the history (RFC 3339; default the start of the current hour)")
	fs.IntVar(&o.bad, "bad", 30, "bad documents, spread over the dead-letter reasons")
	fs.IntVar(&o.other, "other", 10, "documents of an event type no table takes (skipped by backfill)")
	fs.IntVar(&o.untyped, "untyped", 20, "every Nth valid document has no event-type field, as history written before wharf (0: none)")
	fs.BoolVar(&o.mixed, "mixed-ids", false, "give some documents a string _id (as wharf serve writes them) or an integer _id")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed")
	fs.IntVar(&o.batch, "batch", 1000, "documents per InsertMany")
	fs.IntVar(&o.parallel, "parallel", 2, "concurrent inserts")
	fs.StringVar(&o.only, "only", "", "seed only this collection")
	fs.BoolVar(&o.hours, "hours", false, "record rows per hour per table in the manifest")
	fs.StringVar(&o.manifest, "manifest", "", "write the manifest here")
	fs.BoolVar(&o.drop, "drop", false, "drop the database and exit")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.uri == "" || o.db == "" {
		return o, fmt.Errorf("--uri and --db (or WHARF_MONGO_URI and WHARF_MONGO_DATABASE) are required")
	}
	return o, nil
}

func run(args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	to := time.Now().UTC().Truncate(time.Hour)
	if o.to != "" {
		t, err := time.Parse(time.RFC3339, o.to)
		if err != nil {
			return err
		}
		to = t.UTC()
	}
	from := to.Add(-time.Duration(o.years * 365 * 24 * float64(time.Hour)))
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(o.uri))
	if err != nil {
		return err
	}
	defer client.Disconnect(ctx)
	db := client.Database(o.db)
	if o.drop {
		return db.Drop(ctx)
	}
	sd := &seeder{o: o, g: newGen(o.seed, from, to, o.mixed), ins: newInserter(ctx, db, o.batch, o.parallel), mau: map[string]map[int64]bool{},
		m: Manifest{Documents: map[string]int{}, Rows: map[string]int{}, DeadLetters: map[string]int{}, Skipped: map[string]int{}, Untyped: map[string]int{}, MAU: map[string]int{}, From: from, To: to}}
	if o.hours {
		sd.m.Hours = map[string]map[string]int{}
	}
	start := time.Now()
	sd.valid()
	sd.bad()
	sd.other()
	if err := sd.ins.close(); err != nil {
		return err
	}
	for month, users := range sd.mau {
		sd.m.MAU[month] = len(users)
	}
	total := 0
	for _, c := range sd.m.Documents {
		total += c
	}
	fmt.Fprintf(os.Stderr, "seeded %d documents into %s (%s to %s) in %s\n", total, o.db,
		from.Format(time.DateOnly), to.Format(time.DateOnly), time.Since(start).Round(time.Millisecond))
	if o.manifest != "" {
		b, _ := json.MarshalIndent(sd.m, "", "  ")
		return os.WriteFile(o.manifest, b, 0o644)
	}
	return nil
}

// seeder inserts the documents and keeps the manifest of what they must
// become.
type seeder struct {
	o   flags
	g   *gen
	ins *inserter
	m   Manifest
	mau map[string]map[int64]bool // users with a page view, per month
}

// hour counts rows of table at t, with --hours.
func (sd *seeder) hour(table string, t time.Time, rows int) {
	if sd.m.Hours == nil || rows == 0 {
		return
	}
	if sd.m.Hours[table] == nil {
		sd.m.Hours[table] = map[string]int{}
	}
	sd.m.Hours[table][t.Truncate(time.Hour).Format(time.RFC3339)] += rows
}

// valid inserts the valid documents, in time order (as an application
// writes them).
func (sd *seeder) valid() {
	from, to, g := sd.m.From, sd.m.To, sd.g
	step := to.Sub(from) / time.Duration(max(sd.o.n, 1))
	for i := 0; i < sd.o.n; i++ {
		t := from.Add(step*time.Duration(i) + time.Duration(g.r.Int64N(int64(max(step, 1)))))
		coll, doc, rows, user := g.event(t)
		if sd.o.only != "" && coll != sd.o.only {
			continue
		}
		if u := sd.o.untyped; u > 0 && i%u == u-1 {
			doc = slices.DeleteFunc(doc, func(e bson.E) bool { return e.Key == "event" })
			sd.m.Untyped[coll]++
		}
		sd.ins.add(coll, doc)
		sd.m.Documents[coll]++
		for table, k := range rows {
			sd.m.Rows[table] += k
			sd.hour(table, t, k)
		}
		if coll == "page_views" {
			month := t.Format("2006-01")
			if sd.mau[month] == nil {
				sd.mau[month] = map[int64]bool{}
			}
			sd.mau[month][user] = true
		}
	}
}

// badKinds are the bad documents: each must reach the dead-letter store
// with its reason.
var badKinds = []struct {
	reason, coll string
	make         func(t time.Time) bson.D
}{
	{"type_mismatch", "page_views", func(t time.Time) bson.D {
		return bson.D{{Key: "event", Value: "page_view"}, {Key: "timestamp", Value: t}, {Key: "user_id", Value: "not-a-number"}}
	}},
	{"expand_overflow", "actions_taken", func(t time.Time) bson.D {
		return bson.D{{Key: "event", Value: "actions_taken"}, {Key: "date", Value: t}, {Key: "value", Value: bson.A{1, 2, 3, 4, 5}}}
	}},
	{"out_of_range", "orders", func(t time.Time) bson.D {
		return bson.D{{Key: "event", Value: "order_completed"}, {Key: "timestamp", Value: t},
			{Key: "order", Value: bson.D{{Key: "items", Value: bson.A{bson.D{{Key: "sku", Value: "X"}, {Key: "qty", Value: 100000}}}}}}}
	}},
	{"bad_time", "signups", func(time.Time) bson.D {
		return bson.D{{Key: "event", Value: "signup"}, {Key: "timestamp", Value: "last tuesday"}}
	}},
	// (A document with no type at all takes its collection's type.)
	{"missing_event_type", "page_views", func(t time.Time) bson.D {
		return bson.D{{Key: "event", Value: 42}, {Key: "timestamp", Value: t}, {Key: "hello", Value: "world"}}
	}},
}

// bad inserts the bad documents, spread over badKinds.
func (sd *seeder) bad() {
	from, to := sd.m.From, sd.m.To
	for i := 0; i < sd.o.bad; i++ {
		k := badKinds[i%len(badKinds)]
		if sd.o.only != "" && k.coll != sd.o.only {
			continue
		}
		t := from.Add(time.Duration(sd.g.r.Int64N(int64(to.Sub(from)))))
		doc := append(bson.D{{Key: "_id", Value: sd.g.objectID(t)}}, k.make(t)...)
		sd.ins.add(k.coll, doc)
		sd.m.Documents[k.coll]++
		sd.m.DeadLetters[k.reason]++
	}
}

// other inserts the documents of an event type no table takes.
func (sd *seeder) other() {
	from, to := sd.m.From, sd.m.To
	for i := 0; i < sd.o.other; i++ {
		coll := []string{"page_views", "actions_taken", "orders", "signups"}[i%4]
		if sd.o.only != "" && coll != sd.o.only {
			continue
		}
		t := from.Add(time.Duration(sd.g.r.Int64N(int64(to.Sub(from)))))
		sd.ins.add(coll, bson.D{{Key: "_id", Value: sd.g.objectID(t)}, {Key: "event", Value: "mystery_event"}, {Key: "timestamp", Value: t}})
		sd.m.Documents[coll]++
		sd.m.Skipped[coll]++
	}
}

// gen makes reproducible events.
type gen struct {
	r        *rand.Rand
	from, to time.Time
	mixed    bool
	counter  uint32
	seq      int
}

func newGen(seed uint64, from, to time.Time, mixed bool) *gen {
	return &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), from: from, to: to, mixed: mixed}
}

// objectID makes an ObjectId for time t, unique within the run.
func (g *gen) objectID(t time.Time) bson.ObjectID {
	var id bson.ObjectID
	binary.BigEndian.PutUint32(id[0:4], uint32(t.Unix()))
	binary.BigEndian.PutUint32(id[4:8], g.r.Uint32())
	g.counter++
	id[8] = byte(g.counter >> 24)
	id[9] = byte(g.counter >> 16)
	id[10] = byte(g.counter >> 8)
	id[11] = byte(g.counter)
	return id
}

// id is the _id of the next valid document: an ObjectId, or with mixed ids
// sometimes a string (as `wharf serve` writes raw events) or an integer.
func (g *gen) id(t time.Time) any {
	g.seq++
	if g.mixed {
		switch k := g.r.IntN(100); {
		case k < 10:
			return fmt.Sprintf("evt-%09d", g.seq)
		case k < 12:
			return int64(g.seq)
		}
	}
	return g.objectID(t)
}

// users is how many users exist at time t: the product grows over the years,
// with a summer dip.
func (g *gen) users(t time.Time) int64 {
	f := float64(t.Sub(g.from)) / float64(g.to.Sub(g.from))
	season := 1 - 0.15*math.Cos(2*math.Pi*float64(t.YearDay()-15)/365)
	return int64((300 + 15000*f*f) * season)
}

var (
	uas       = []string{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148", "okhttp/4.12.0"}
	actions   = []string{"click", "scroll", "share", "like", "follow", "search", "add_to_cart"}
	pages     = []string{"/", "/pricing", "/blog/launch", "/docs/getting-started", "/product/42", "/cart", "/checkout"}
	countries = []string{"US", "DE", "FR", "GB", "JP", "BR", "IN"}
)

// event returns one valid document at time t, its collection, the rows it
// makes per table, and its user.
func (g *gen) event(t time.Time) (string, bson.D, map[string]int, int64) {
	r := g.r
	user := 1 + r.Int64N(max(g.users(t), 1))
	id := g.id(t)
	switch k := r.IntN(100); {
	case k < 50:
		return "page_views", bson.D{{Key: "_id", Value: id}, {Key: "event", Value: "page_view"}, {Key: "timestamp", Value: t}, {Key: "user_id", Value: user},
			{Key: "session_id", Value: fmt.Sprintf("s-%d-%d", user, r.IntN(50))},
			{Key: "page", Value: bson.D{{Key: "url", Value: pages[r.IntN(len(pages))]}, {Key: "referrer", Value: "https://www.google.com/"}, {Key: "title", Value: "Page"}}},
			{Key: "context", Value: bson.D{{Key: "ua", Value: uas[r.IntN(len(uas))]}, {Key: "geo", Value: bson.D{{Key: "country", Value: countries[r.IntN(len(countries))]}, {Key: "city", Value: "Somewhere"}}}}},
			{Key: "perf", Value: bson.D{{Key: "load_ms", Value: int32(50 + r.IntN(3000))}, {Key: "ttfb_ms", Value: int32(r.IntN(400))}}}}, map[string]int{"page_views": 1}, user
	case k < 80:
		vals := bson.A{}
		for range r.IntN(4) {
			vals = append(vals, int32(r.IntN(1000)))
		}
		tags := bson.A{}
		for range r.IntN(5) {
			tags = append(tags, fmt.Sprintf("tag%d", r.IntN(30)))
		}
		return "actions_taken", bson.D{{Key: "_id", Value: id}, {Key: "event", Value: "actions_taken"}, {Key: "date", Value: t}, {Key: "user_id", Value: user},
				{Key: "action", Value: actions[r.IntN(len(actions))]}, {Key: "target", Value: bson.D{{Key: "id", Value: fmt.Sprintf("item-%d", r.IntN(500))}, {Key: "type", Value: "item"}}},
				{Key: "meta", Value: bson.D{{Key: "ua", Value: uas[r.IntN(len(uas))]}, {Key: "app_version", Value: "3.14.1"}}}, {Key: "value", Value: vals}, {Key: "tags", Value: tags}},
			map[string]int{"actions_taken": 1, "actions_taken_tags": len(tags)}, user
	case k < 93:
		items := bson.A{}
		ni := 1 + r.IntN(4)
		for range ni {
			items = append(items, bson.D{{Key: "sku", Value: fmt.Sprintf("SKU-%04d", r.IntN(2000))}, {Key: "qty", Value: int32(1 + r.IntN(5))}, {Key: "price", Value: float64(100+r.IntN(20000)) / 100}})
		}
		order := bson.D{{Key: "id", Value: fmt.Sprintf("o-%d", g.seq)}, {Key: "total", Value: float64(100+r.IntN(100000)) / 100}, {Key: "currency", Value: "USD"},
			{Key: "paid_at", Value: t.Add(3 * time.Second)}, {Key: "gift", Value: r.IntN(10) == 0},
			{Key: "shipping", Value: bson.D{{Key: "method", Value: "ground"}, {Key: "address", Value: bson.D{{Key: "country", Value: countries[r.IntN(len(countries))]}}}}},
			{Key: "items", Value: items}}
		if r.IntN(5) == 0 {
			order = append(order, bson.E{Key: "coupon", Value: "WELCOME10"})
		}
		return "orders", bson.D{{Key: "_id", Value: id}, {Key: "event", Value: "order_completed"}, {Key: "timestamp", Value: t}, {Key: "user_id", Value: user}, {Key: "order", Value: order}},
			map[string]int{"orders": 1, "order_items": ni}, user
	default:
		return "signups", bson.D{{Key: "_id", Value: id}, {Key: "event", Value: "signup"}, {Key: "timestamp", Value: t}, {Key: "user_id", Value: user},
				{Key: "plan", Value: []string{"free", "pro", "team"}[r.IntN(3)]},
				{Key: "profile", Value: bson.D{{Key: "birthday", Value: fmt.Sprintf("%d-%02d-%02d", 1950+r.IntN(55), 1+r.IntN(12), 1+r.IntN(28))}, {Key: "score", Value: r.Float64() * 100}}}},
			map[string]int{"signups": 1}, user
	}
}

// inserter writes documents with InsertMany in batches, a few at once.
type inserter struct {
	ctx  context.Context
	db   *mongo.Database
	size int
	bufs map[string][]any
	work chan job
	wg   sync.WaitGroup
	mu   sync.Mutex
	err  error
}

type job struct {
	coll string
	docs []any
}

func newInserter(ctx context.Context, db *mongo.Database, size, parallel int) *inserter {
	in := &inserter{ctx: ctx, db: db, size: size, bufs: map[string][]any{}, work: make(chan job, parallel)}
	for range max(parallel, 1) {
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			for j := range in.work {
				if _, err := db.Collection(j.coll).InsertMany(ctx, j.docs, options.InsertMany().SetOrdered(false)); err != nil {
					in.mu.Lock()
					if in.err == nil {
						in.err = fmt.Errorf("insert into %s: %w", j.coll, err)
					}
					in.mu.Unlock()
				}
			}
		}()
	}
	return in
}

func (in *inserter) add(coll string, doc bson.D) {
	in.bufs[coll] = append(in.bufs[coll], doc)
	if len(in.bufs[coll]) >= in.size {
		in.work <- job{coll, in.bufs[coll]}
		in.bufs[coll] = nil
	}
}

func (in *inserter) close() error {
	colls := make([]string, 0, len(in.bufs))
	for c := range in.bufs {
		colls = append(colls, c)
	}
	sort.Strings(colls)
	for _, c := range colls {
		if len(in.bufs[c]) > 0 {
			in.work <- job{c, in.bufs[c]}
		}
	}
	close(in.work)
	in.wg.Wait()
	return in.err
}
