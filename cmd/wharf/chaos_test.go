package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wharfdata/wharf/internal/fault"
	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/internal/stacktest"
	"github.com/wharfdata/wharf/schema"
)

// The fault harness of issue 3 (docs/design.md §2, guarantees 1 and 2): the real
// binary on the local stack, killed with SIGKILL at each fault point of
// internal/fault (WHARF_FAULT), restarted until every event is loaded; then
// the set of event ids sent is compared with the sets in the warehouse and
// in Mongo. `make test` runs the short matrix; `make chaos` sets
// WHARF_CHAOS=full for the full one. WHARF_CHAOS_SEED=N replays the random
// choices of a run.

// chaosPlan sizes the matrix.
type chaosPlan struct {
	name       string
	runs       int // runs per fault point
	events     int // unique valid events per run (plus ~5% duplicates and 12 bad events)
	rearm      int // restarts at most this many times with the fault armed again
	concurrent int // unique valid events of the concurrency test
	timeout    time.Duration
}

func chaosPlanFor(t *testing.T) chaosPlan {
	switch v := os.Getenv("WHARF_CHAOS"); v {
	case "", "short":
		return chaosPlan{name: "short", runs: 2, events: 400, rearm: 1, concurrent: 1500, timeout: 3 * time.Minute}
	case "full":
		return chaosPlan{name: "full", runs: 8, events: 3000, rearm: 3, concurrent: 10000, timeout: 6 * time.Minute}
	default:
		t.Fatalf("WHARF_CHAOS=%q: want short or full", v)
		return chaosPlan{}
	}
}

// chaosSeed returns the seed of the run's random choices.
func chaosSeed(t *testing.T) uint64 {
	if v := os.Getenv("WHARF_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("WHARF_CHAOS_SEED=%q: %v", v, err)
		}
		return s
	}
	return uint64(time.Now().UnixNano())
}

// firstHits bounds the hit at which an armed point first fires: well below
// the hits a run makes (receives and raw writes come in batches of at most
// ten messages, files per table and flush, merges per table and load).
func firstHits(point fault.Point, events int) int {
	switch point {
	case fault.AfterReceive, fault.AfterMongo:
		return max(8, events/40)
	case fault.AfterS3Put:
		return max(5, events/400)
	default:
		return 4
	}
}

// chaosResult is one run's comparison of ids sent with ids stored.
type chaosResult struct {
	point                            fault.Point
	run                              int
	kills                            int
	sent, warehouse                  int // unique valid event ids; distinct ids in the parent tables
	lost, duplicated, unexpected     int
	mongoLost, mongoUnexpected       int
	childRows, childWant, childDupes int
	took                             time.Duration
}

func (r chaosResult) line() string {
	return fmt.Sprintf("fault %s run %d: sent %d unique, warehouse %d, lost %d, duplicated %d, unexpected %d, mongo lost %d (killed %d×, child rows %d/%d, %s)",
		r.point, r.run, r.sent, r.warehouse, r.lost, r.duplicated, r.unexpected, r.mongoLost, r.kills, r.childRows, r.childWant, r.took.Round(time.Second))
}

func (r chaosResult) ok() bool {
	return r.lost == 0 && r.duplicated == 0 && r.unexpected == 0 && r.mongoLost == 0 && r.mongoUnexpected == 0 &&
		r.childDupes == 0 && r.childRows == r.childWant
}

// TestChaos runs every fault point several times: each run is one isolated
// deployment, one stream of events, kills at random hits of the point, and
// restarts until everything is loaded.
func TestChaos(t *testing.T) {
	plan := chaosPlanFor(t)
	var mu sync.Mutex
	var results []chaosResult
	t.Run("points", func(t *testing.T) {
		for _, point := range fault.Points {
			t.Run(string(point), func(t *testing.T) {
				t.Parallel()
				for run := 1; run <= plan.runs; run++ {
					t.Run(fmt.Sprint("run", run), func(t *testing.T) {
						r := chaosRun(t, plan, point, run)
						t.Log(r.line())
						mu.Lock()
						results = append(results, r)
						mu.Unlock()
						if !r.ok() {
							t.Errorf("%s", r.line())
						}
					})
				}
			})
		}
	})
	// The table of the README's Reliability section.
	var b strings.Builder
	fmt.Fprintf(&b, "fault matrix (%s, %d events per run)\n", plan.name, plan.events)
	fmt.Fprintf(&b, "%-14s %4s %6s %8s %5s %10s %10s %10s\n", "fault", "runs", "kills", "events", "lost", "duplicated", "unexpected", "mongo lost")
	for _, p := range fault.Points {
		var s chaosResult
		runs := 0
		for _, r := range results {
			if r.point == p {
				runs++
				s.kills += r.kills
				s.sent += r.sent
				s.lost += r.lost
				s.duplicated += r.duplicated
				s.unexpected += r.unexpected
				s.mongoLost += r.mongoLost
			}
		}
		fmt.Fprintf(&b, "%-14s %4d %6d %8d %5d %10d %10d %10d\n", p, runs, s.kills, s.sent, s.lost, s.duplicated, s.unexpected, s.mongoLost)
	}
	t.Log("\n" + b.String())
	writeReport(t, plan, "matrix", b.String())
}

// writeReport keeps a test's summary in .stack/chaos-PLAN-NAME.txt, for
// `make test` to print (go test shows the logs of passing tests only with -v).
func writeReport(t *testing.T, plan chaosPlan, name, text string) {
	dir := filepath.Join(stacktest.RepoRoot(), ".stack")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Log(err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, "chaos-"+plan.name+"-"+name+".txt"), []byte(text), 0o644); err != nil {
		t.Log(err)
	}
}

// chaosEnv is one deployment of a chaos run: an e2e with a queue whose
// visibility timeout is short, so that messages held by a killed process
// come back quickly.
type chaosEnv struct {
	*e2e
	queue string
	sqs   *sqs.Client
	store *s3store.Store
	sch   *schema.Schema
}

func newChaosEnv(t *testing.T) *chaosEnv {
	e := newE2E(t)
	queue := e.st.Queue(t, map[string]string{"VisibilityTimeout": "10"})
	e.env = append(e.env, "WHARF_SQS_QUEUE_URL="+queue) // the last value wins
	data, err := os.ReadFile(filepath.Join(filepath.Dir(e.cfg), "tables.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sch, err := schema.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	c := &chaosEnv{e2e: e, queue: queue, sqs: e.st.SQS(t), store: s3store.New(e.st.S3(t), e.st.Bucket), sch: sch}
	c.run(nil, "schema", "apply", "-c", c.cfg)
	c.dropKeys()
	return c
}

// dropKeys drops the primary keys of the tables and of the ledger. Redshift
// does not enforce keys, so there only the merge (the lock, the ledger read
// under it, the dedupe against staging and target) keeps a row or a file
// from going in twice; without the keys PostgreSQL shows whether it does,
// where with them a second insert would fail instead of duplicating.
func (c *chaosEnv) dropKeys() {
	c.t.Helper()
	ctx := context.Background()
	tables := []string{schema.LedgerTable}
	for _, t := range c.sch.All() {
		tables = append(tables, t.Name)
	}
	for _, name := range tables {
		qn := schema.QualifiedName(c.schema, name)
		var con string
		if err := c.pool.QueryRow(ctx, "SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'p'", qn).Scan(&con); err != nil {
			c.t.Fatalf("primary key of %s: %v", qn, err)
		}
		if _, err := c.pool.Exec(ctx, "ALTER TABLE "+qn+" DROP CONSTRAINT "+schema.QuoteIdent(con)); err != nil {
			c.t.Fatal(err)
		}
	}
}

// proc is one `wharf serve` process.
type proc struct {
	cmd   *exec.Cmd
	logs  *lockedBuffer
	done  chan struct{} // closed when it has exited
	fault string
}

// start runs `wharf serve` with WHARF_FAULT=spec ("" for none).
func (c *chaosEnv) start(spec string) *proc {
	c.t.Helper()
	p := &proc{cmd: c.cmd("serve", "-c", c.cfg, "--http", ""), logs: &lockedBuffer{}, done: make(chan struct{}), fault: spec}
	p.cmd.Env = append(slices.Clone(c.env), "WHARF_FAULT="+spec)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	c.t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if c.t.Failed() {
			c.t.Logf("serve log (WHARF_FAULT=%q):\n%s", spec, tail(p.logs.String(), 3000))
		}
	})
	return p
}

// killedByFault reports whether p, which has exited, died of its own
// injected SIGKILL.
func (p *proc) killedByFault() bool {
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL && strings.Contains(p.logs.String(), "fault injected: SIGKILL")
}

// stop sends SIGTERM and expects a clean exit within the drain timeout.
func (c *chaosEnv) stop(p *proc) {
	c.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			c.t.Errorf("serve exited %d after SIGTERM:\n%s", code, tail(p.logs.String(), 3000))
		}
	case <-time.After(30 * time.Second):
		c.t.Errorf("serve did not exit within 30s of SIGTERM")
	}
}

// send sends events with `wharf send` in the background; the channel gets
// its output.
func (c *chaosEnv) send(events []byte) <-chan string {
	out := make(chan string, 1)
	go func() {
		cmd := c.cmd("send", "-c", c.cfg)
		cmd.Stdin = bytes.NewReader(events)
		b, _ := cmd.CombinedOutput()
		out <- string(b)
	}()
	return out
}

// settled reports whether the deployment has nothing left to do: the queue
// holds no message (visible or in flight), and every Parquet file under the
// prefix is in the ledger. Otherwise it says what is left.
func (c *chaosEnv) settled() (bool, string) {
	ctx := context.Background()
	out, err := c.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(c.queue), AttributeNames: []types.QueueAttributeName{
		types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible, types.QueueAttributeNameApproximateNumberOfMessagesDelayed}})
	if err != nil {
		return false, err.Error()
	}
	for k, v := range out.Attributes {
		if v != "0" {
			return false, fmt.Sprintf("queue %s=%s", k, v)
		}
	}
	files, err := c.files()
	if err != nil {
		return false, err.Error()
	}
	loaded := c.ledger()
	for _, f := range files {
		if !loaded[f] {
			return false, "not loaded: " + f
		}
	}
	return true, ""
}

// files returns the keys of every Parquet file under the prefix.
func (c *chaosEnv) files() ([]string, error) {
	objs, err := c.store.List(context.Background(), c.prefix, "")
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, o := range objs {
		if strings.HasSuffix(o.Key, ".parquet") {
			keys = append(keys, o.Key)
		}
	}
	return keys, nil
}

// ledger returns the file keys in wharf_loads.
func (c *chaosEnv) ledger() map[string]bool {
	c.t.Helper()
	rows, err := c.pool.Query(context.Background(), "SELECT file_key FROM "+schema.QualifiedName(c.schema, schema.LedgerTable))
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			c.t.Fatal(err)
		}
		out[k] = true
	}
	if err := rows.Err(); err != nil {
		c.t.Fatal(err)
	}
	return out
}

// sentEvents is what was sent, by event id.
type sentEvents struct {
	table map[string]string // valid event id → its parent table
	coll  map[string]string // valid event id → its Mongo collection
	all   map[string]bool   // every id sent, bad events' too
}

// parseSent reads the generated JSON lines. The generator names bad events
// PREFIX-bad-NNNN; every other event must load.
func (c *chaosEnv) parseSent(events []byte) sentEvents {
	c.t.Helper()
	s := sentEvents{table: map[string]string{}, coll: map[string]string{}, all: map[string]bool{}}
	sc := bufio.NewScanner(bytes.NewReader(events))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev struct {
			ID    string `json:"id"`
			Event string `json:"event"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			c.t.Fatal(err)
		}
		s.all[ev.ID] = true
		if strings.Contains(ev.ID, "-bad-") {
			continue
		}
		tables := c.sch.Route(ev.Event)
		coll, _ := c.sch.CollectionFor(ev.Event)
		if len(tables) != 1 {
			c.t.Fatalf("event type %q goes to %d tables", ev.Event, len(tables))
		}
		s.table[ev.ID], s.coll[ev.ID] = tables[0].Name, coll
	}
	return s
}

// compare fills r with the comparison of the ids sent with the ids in the
// warehouse's tables and in Mongo, and checks the dead letters.
func (c *chaosEnv) compare(r *chaosResult, sent sentEvents, m manifest) {
	c.t.Helper()
	ctx := context.Background()
	r.sent = len(sent.table)
	// Parent tables: the set of event ids, each with its table.
	seen := map[string]int{}
	for _, t := range c.sch.Tables {
		rows, err := c.pool.Query(ctx, fmt.Sprintf("SELECT event_id FROM %s", schema.QualifiedName(c.schema, t.Name)))
		if err != nil {
			c.t.Fatal(err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				c.t.Fatal(err)
			}
			seen[id]++
			if sent.table[id] != t.Name {
				r.unexpected++
				c.t.Logf("unexpected: event %q in table %s", id, t.Name)
			}
		}
		if err := rows.Err(); err != nil {
			c.t.Fatal(err)
		}
	}
	r.warehouse = len(seen)
	for id, n := range seen {
		if n > 1 {
			r.duplicated += n - 1
			c.t.Logf("duplicated: event %q %d times", id, n)
		}
	}
	for id := range sent.table {
		if seen[id] == 0 {
			r.lost++
			if r.lost <= 10 {
				c.t.Logf("lost: event %q (%s)", id, sent.table[id])
			}
		}
	}
	// Child tables: exact row counts and no key twice.
	for _, t := range c.sch.All() {
		if !t.IsChild() {
			continue
		}
		var n, dupes int
		q := fmt.Sprintf("SELECT count(*), count(*) - count(DISTINCT (event_id, idx)) FROM %s", schema.QualifiedName(c.schema, t.Name))
		if err := c.pool.QueryRow(ctx, q).Scan(&n, &dupes); err != nil {
			c.t.Fatal(err)
		}
		r.childRows += n
		r.childWant += m.Rows[t.Name]
		r.childDupes += dupes
	}
	// Mongo: one raw document per id (its _id), valid events in their
	// collection; the bad ones that reach Mongo are counted by the manifest.
	client, _ := c.st.Mongo(c.t)
	db := client.Database(c.mongoDB)
	inMongo := map[string]string{}
	for coll, want := range m.Mongo {
		cur, err := db.Collection(coll).Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			c.t.Fatal(err)
		}
		var docs []struct {
			ID string `bson:"_id"`
		}
		if err := cur.All(ctx, &docs); err != nil {
			c.t.Fatal(err)
		}
		for _, d := range docs {
			inMongo[d.ID] = coll
			if !sent.all[d.ID] {
				r.mongoUnexpected++
			}
		}
		if len(docs) != want {
			c.t.Errorf("mongo %s: %d raw documents, want %d", coll, len(docs), want)
		}
	}
	for id, coll := range sent.coll {
		if inMongo[id] != coll {
			r.mongoLost++
		}
	}
	c.checkDeadLetters(m.DeadLetters)
}

// chaosRun is one run of one fault point.
func chaosRun(t *testing.T, plan chaosPlan, point fault.Point, run int) chaosResult {
	start := time.Now()
	seed := chaosSeed(t)
	rnd := rand.New(rand.NewPCG(seed, uint64(run)))
	t.Logf("WHARF_CHAOS_SEED=%d", seed)
	c := newChaosEnv(t)
	events, m := c.events(plan.events, int(rnd.Int32N(1<<30)), fmt.Sprintf("%s-%d", strings.ReplaceAll(string(point), "_", ""), run))
	sent := c.parseSent(events)

	arm := func(first bool) string {
		n := firstHits(point, plan.events)
		if !first {
			n *= 2 // a restarted process may have little left to do: it need not fire
		}
		return fmt.Sprintf("%s:after=%d,seed=%d", point, rnd.IntN(n), rnd.Uint64())
	}
	r := chaosResult{point: point, run: run}
	p := c.start(arm(true))
	// Start sending at a random moment of the process's start-up (the
	// moment is the test's fault, not a wait).
	time.Sleep(time.Duration(rnd.IntN(1500)) * time.Millisecond)
	sendOut := c.send(events)
	var sendDone bool
	deadline := time.Now().Add(plan.timeout)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			if !p.killedByFault() {
				t.Fatalf("serve (WHARF_FAULT=%s) exited on its own: %v\n%s", p.fault, p.cmd.ProcessState, tail(p.logs.String(), 3000))
			}
			r.kills++
			spec := ""
			if r.kills <= plan.rearm && rnd.IntN(2) == 0 {
				spec = arm(false)
			}
			t.Logf("killed at %s (WHARF_FAULT=%s); restarting with WHARF_FAULT=%q", point, p.fault, spec)
			p = c.start(spec)
			continue
		case out := <-sendOut:
			if !strings.Contains(out, fmt.Sprintf("sent %d messages", m.Lines)) {
				t.Fatalf("send: %s", out)
			}
			sendDone = true
			continue
		case <-tick.C:
		}
		if !sendDone {
			continue
		}
		ok, why := c.settled()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled after %s: %s; warehouse %v", plan.timeout, why, c.counts())
		}
	}
	if r.kills == 0 {
		t.Errorf("the fault at %s never fired (WHARF_FAULT=%s): the run proves nothing", point, p.fault)
	}
	c.stop(p)
	c.compare(&r, sent, m)
	r.took = time.Since(start)
	return r
}

// TestChaosConcurrent runs three `wharf serve` processes on one queue and
// one warehouse, their loaders racing for the same files, and replays
// already-loaded files (copies under new keys, as a re-run backfill or an
// operator's copy would make): no event is lost or duplicated, and every
// file, replayed ones included, is in the ledger once.
func TestChaosConcurrent(t *testing.T) {
	plan := chaosPlanFor(t)
	start := time.Now()
	seed := chaosSeed(t)
	rnd := rand.New(rand.NewPCG(seed, 3))
	t.Logf("WHARF_CHAOS_SEED=%d", seed)
	c := newChaosEnv(t)
	events, m := c.events(plan.concurrent, int(rnd.Int32N(1<<30)), "conc")
	sent := c.parseSent(events)
	procs := []*proc{c.start(""), c.start(""), c.start("")}
	sendOut := c.send(events)

	// Replay while the loaders race: copy loaded files as they appear.
	replayed := map[string]string{} // replay key → original
	replay := func(n int) {
		loaded := c.ledger()
		var keys []string
		for k := range loaded {
			if !strings.Contains(k, "/replay-") {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		rnd.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		for _, k := range keys[:min(n, len(keys))] {
			data, err := c.store.Get(context.Background(), k)
			if err != nil {
				t.Fatal(err)
			}
			dir, base := k[:strings.LastIndexByte(k, '/')+1], k[strings.LastIndexByte(k, '/')+1:]
			nk := dir + "replay-" + stacktest.ID() + "-" + base
			if err := c.store.Put(context.Background(), nk, bytes.NewReader(data), int64(len(data))); err != nil {
				t.Fatal(err)
			}
			replayed[nk] = k
		}
	}
	deadline := time.Now().Add(plan.timeout)
	var sendDone bool
	// Every second: a look at the processes and the send, and, every other
	// second while the events flow, five more files replayed.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for rounds := 0; ; rounds++ {
		<-tick.C
		for _, p := range procs {
			select {
			case <-p.done:
				t.Fatalf("a serve process exited: %v\n%s", p.cmd.ProcessState, tail(p.logs.String(), 3000))
			default:
			}
		}
		select {
		case out := <-sendOut:
			if !strings.Contains(out, fmt.Sprintf("sent %d messages", m.Lines)) {
				t.Fatalf("send: %s", out)
			}
			sendDone = true
		default:
		}
		if rounds%2 == 1 && len(replayed) < 40 {
			replay(5)
		}
		if !sendDone || len(replayed) < 10 {
			continue
		}
		if ok, why := c.settled(); ok {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("not settled after %s: %s; warehouse %v", plan.timeout, why, c.counts())
		}
	}
	// Replay once more after everything is loaded, and let the loaders race for it.
	replay(10)
	var why string
	settled := func() bool {
		var ok bool
		ok, why = c.settled()
		return ok
	}
	if !stacktest.WaitFor(time.Until(deadline), settled) {
		t.Fatalf("replayed files not loaded after %s: %s", plan.timeout, why)
	}
	for _, p := range procs {
		c.stop(p)
	}
	var r chaosResult
	c.compare(&r, sent, m)
	r.took = time.Since(start)

	// Every replayed file was merged (it is in the ledger) and added nothing.
	var replayRows, replayFiles int
	keys := make([]string, 0, len(replayed))
	for k := range replayed {
		keys = append(keys, k)
	}
	q := fmt.Sprintf(`SELECT count(*), coalesce(sum("rows"), 0) FROM %s WHERE file_key = ANY($1)`, schema.QualifiedName(c.schema, schema.LedgerTable))
	if err := c.pool.QueryRow(context.Background(), q, keys).Scan(&replayFiles, &replayRows); err != nil {
		t.Fatal(err)
	}
	if replayFiles != len(replayed) {
		t.Errorf("%d replayed files in the ledger, want %d", replayFiles, len(replayed))
	}
	// What the three loaders did, from their logs.
	var merged, skipped, loadedRows, conflicts int
	for i, p := range procs {
		var pm, ps int
		for _, line := range strings.Split(p.logs.String(), "\n") {
			var l struct {
				Msg     string `json:"msg"`
				Files   int    `json:"files"`
				Skipped int    `json:"files_already_loaded"`
				Rows    int    `json:"rows_loaded"`
				// Child rows that loaded before their parent and were
				// deleted when a parent of another delivery merged: the
				// rows the tables gained are rows_loaded less these.
				Gone int `json:"child_rows_removed"`
			}
			if json.Unmarshal([]byte(line), &l) != nil {
				continue
			}
			switch l.Msg {
			case "loaded":
				pm += l.Files
				ps += l.Skipped
				loadedRows += l.Rows - l.Gone
			case "merge conflicted; retrying":
				conflicts++
			}
		}
		t.Logf("serve %d merged %d files, skipped %d merged by another loader", i+1, pm, ps)
		merged += pm
		skipped += ps
	}
	summary := fmt.Sprintf("concurrent: 3 serve processes, sent %d unique, warehouse %d, lost %d, duplicated %d, unexpected %d, mongo lost %d; "+
		"%d files merged (%d of them replays of loaded files, %d rows read from those), %d skipped as merged by another loader, %d merge retries (%s)",
		r.sent, r.warehouse, r.lost, r.duplicated, r.unexpected, r.mongoLost, merged, replayFiles, replayRows, skipped, conflicts, r.took.Round(time.Second))
	t.Log(summary)
	writeReport(t, plan, "concurrent", summary+"\n")
	if !r.ok() {
		t.Errorf("%s", r.line())
	}
	if total := len(c.ledger()); merged != total {
		t.Errorf("the loaders report %d files merged, the ledger holds %d", merged, total)
	}
	if want := sum(m.Rows); loadedRows != want {
		t.Errorf("the loaders report %d rows added (net of child rows of another delivery removed), want %d", loadedRows, want)
	}
}
