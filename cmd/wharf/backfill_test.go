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
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wharfdata/wharf/internal/stacktest"
)

var (
	historyOnce sync.Once
	historyBin  string
	historyErr  error
)

// historyBinary builds the history seeder once per test run.
func historyBinary(t *testing.T) string {
	t.Helper()
	historyOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wharf-history-")
		if err != nil {
			historyErr = err
			return
		}
		historyBin = filepath.Join(dir, "wharf-demo-history")
		if out, err := exec.Command("go", "build", "-o", historyBin, "../wharf-demo-history").CombinedOutput(); err != nil {
			historyErr = fmt.Errorf("build wharf-demo-history: %v\n%s", err, out)
		}
	})
	if historyErr != nil {
		t.Fatal(historyErr)
	}
	return historyBin
}

// historyManifest is what wharf-demo-history says its documents become.
type historyManifest struct {
	Documents   map[string]int            `json:"documents"`
	Rows        map[string]int            `json:"rows"`
	DeadLetters map[string]int            `json:"deadletters"`
	Skipped     map[string]int            `json:"skipped"`
	Hours       map[string]map[string]int `json:"hours"`
	From        time.Time                 `json:"from"`
	To          time.Time                 `json:"to"`
}

// seedHistory writes history into the deployment's Mongo database.
func (e *e2e) seedHistory(args ...string) historyManifest {
	e.t.Helper()
	path := filepath.Join(e.dir, fmt.Sprintf("history-%d.json", time.Now().UnixNano()))
	c := exec.Command(historyBinary(e.t), append([]string{"-db", e.mongoDB, "-manifest", path}, args...)...)
	c.Env = e.env
	if out, err := c.CombinedOutput(); err != nil {
		e.t.Fatalf("seed history: %v\n%s", err, out)
	}
	var m historyManifest
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// sharing returns a second deployment (its own S3 prefix and warehouse
// schema) that reads the same Mongo database as e.
func (e *e2e) sharing() *e2e {
	e.t.Helper()
	o := newE2E(e.t)
	o.mongoDB = e.mongoDB
	o.env = append(o.env, "WHARF_MONGO_DATABASE="+e.mongoDB)
	return o
}

// backfillOut runs wharf backfill to completion and returns its stdout.
func (e *e2e) backfill(args ...string) string {
	e.t.Helper()
	c := e.cmd(append([]string{"backfill", "-c", e.cfg}, args...)...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		e.t.Fatalf("wharf backfill %s: %v\n%s\n%s", strings.Join(args, " "), err, stdout.String(), tail(stderr.String(), 4000))
	}
	return stdout.String()
}

var (
	readRE   = regexp.MustCompile(`documents read\s+(\d+)`)
	loadedRE = regexp.MustCompile(`loaded (\S+)\s+files\s+\d+\s+rows\s+(\d+)\s+duplicates\s+(\d+)`)
)

func docsRead(t *testing.T, out string) int {
	t.Helper()
	m := readRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no documents read in:\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// tableRows returns every row of a table as text, in key order, leaving out
// received_at (for documents whose _id is not an ObjectId it is the job's
// start, which differs between jobs).
func (e *e2e) tableRows(table string) []string {
	e.t.Helper()
	ctx := context.Background()
	var cols []string
	rows, err := e.pool.Query(ctx, `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 AND column_name <> 'received_at' ORDER BY ordinal_position`, e.schema, table)
	if err != nil {
		e.t.Fatal(err)
	}
	for rows.Next() {
		var c string
		rows.Scan(&c)
		cols = append(cols, fmt.Sprintf("%q", c))
	}
	rows.Close()
	order := "event_id"
	if slices.Contains(cols, `"idx"`) {
		order = "event_id, idx"
	}
	q := fmt.Sprintf(`SELECT (%s)::text FROM %q.%q ORDER BY %s`, strings.Join(cols, ", "), e.schema, table, order)
	if len(cols) == 1 {
		q = fmt.Sprintf(`SELECT %s::text FROM %q.%q ORDER BY %s`, cols[0], e.schema, table, order)
	}
	rows, err = e.pool.Query(ctx, q)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func (e *e2e) duplicates(table string) int {
	e.t.Helper()
	key := "event_id"
	if strings.HasSuffix(table, "_tags") || table == "order_items" {
		key = "event_id, idx"
	}
	var n int
	if err := e.pool.QueryRow(context.Background(), fmt.Sprintf(`SELECT count(*) - count(DISTINCT (%s)) FROM %q.%q`, key, e.schema, table)).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// Three processes, each one shard of the same job, two workers each, read
// every document of a collection whose _ids are ObjectIds, strings and
// integers mixed: the rows loaded equal what the documents make (no gap),
// and no row was written twice (no overlap: the loader found no duplicate).
func TestBackfillShardsCoverCollection(t *testing.T) {
	e := newE2E(t)
	e.run(nil, "schema", "apply", "-c", e.cfg)
	m := e.seedHistory("-n", "9000", "-years", "2", "-mixed-ids", "-only", "actions_taken", "-bad", "10", "-other", "8")
	const shards = 3
	outs := make([]string, shards)
	var wg sync.WaitGroup
	for i := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = e.backfill("--table", "actions_taken", "--job", "sharded", "--shard", fmt.Sprintf("%d/%d", i, shards), "--workers", "2", "--no-load")
		}()
	}
	wg.Wait()
	read := 0
	for i, out := range outs {
		n := docsRead(t, out)
		if n == 0 {
			t.Errorf("shard %d read nothing:\n%s", i, out)
		}
		if !strings.Contains(out, "2 of 2 ranges done") {
			t.Errorf("shard %d did not finish its 2 ranges:\n%s", i, out)
		}
		read += n
	}
	if read != m.Documents["actions_taken"] {
		t.Errorf("the shards read %d documents; the collection holds %d", read, m.Documents["actions_taken"])
	}
	out := e.run(nil, "load", "-c", e.cfg)
	for _, table := range []string{"actions_taken", "actions_taken_tags"} {
		re := regexp.MustCompile(table + `\s+files\s+\d+\s+rows in\s+(\d+)\s+loaded\s+(\d+)\s+duplicates\s+(\d+)`)
		got := re.FindStringSubmatch(out)
		if got == nil {
			t.Fatalf("no load line for %s:\n%s", table, out)
		}
		if in, _ := strconv.Atoi(got[1]); in != m.Rows[table] {
			t.Errorf("%s: %d rows written to S3, want %d (overlap or gap between shards)", table, in, m.Rows[table])
		}
		if dups, _ := strconv.Atoi(got[3]); dups != 0 {
			t.Errorf("%s: %d duplicate rows: the shards overlap", table, dups)
		}
	}
	e.waitRows(map[string]int{"actions_taken": m.Rows["actions_taken"], "actions_taken_tags": m.Rows["actions_taken_tags"]}, time.Minute)
	e.checkDeadLetters(m.DeadLetters)
	for _, table := range []string{"actions_taken", "actions_taken_tags"} {
		if d := e.duplicates(table); d != 0 {
			t.Errorf("%s: %d duplicates", table, d)
		}
	}
}

// A backfill killed with SIGKILL at random moments and started again with
// the same --job ends with exactly the rows of an uninterrupted run.
func TestBackfillResumeAfterSIGKILL(t *testing.T) {
	ref := newE2E(t)
	ref.seedHistory("-n", "60000", "-years", "3", "-only", "orders", "-bad", "12", "-other", "4")
	ref.backfill("--table", "orders", "--job", "reference", "--workers", "2")

	e := ref.sharing()
	// Small files and frequent checkpoints, so a kill lands between many of them.
	e.env = append(e.env, "WHARF_BATCH_MAX_ROWS=700", "WHARF_BACKFILL_CHECKPOINT_INTERVAL=300ms", "WHARF_BACKFILL_BATCH_SIZE=200")
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	args := []string{"--table", "orders", "--job", "killed", "--workers", "2"}
	kills := 0
	for attempt := 0; attempt < 4; attempt++ {
		// Kill after the k-th file put (k = 0: once the scan starts), a
		// random moment later: between a put and its checkpoint, in the
		// middle of a batch, or while the plan is being made.
		k := r.IntN(8)
		delay := time.Duration(r.IntN(400)) * time.Millisecond
		c := e.cmd(append([]string{"backfill", "-c", e.cfg, "--progress", "none"}, args...)...)
		var stdout, stderr bytes.Buffer
		c.Stdout = &stdout
		pipe, err := c.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		trigger := make(chan struct{})
		scanned := make(chan struct{})
		go func() {
			defer close(scanned)
			sc := bufio.NewScanner(pipe)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			flushes, fired := 0, false
			for sc.Scan() {
				line := sc.Text()
				stderr.WriteString(line + "\n")
				if strings.Contains(line, `"msg":"flush"`) {
					flushes++
				}
				if !fired && (k == 0 && strings.Contains(line, `"msg":"backfill starting"`) || k > 0 && flushes >= k) {
					fired = true
					close(trigger)
				}
			}
		}()
		// out is the whole output, once the process has ended.
		var out bytes.Buffer
		done := make(chan error, 1)
		go func() {
			<-scanned // every read from the pipe comes before Wait
			err := c.Wait()
			out.Write(stdout.Bytes())
			out.Write(stderr.Bytes())
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("backfill failed before the kill: %v\n%s", err, tail(out.String(), 3000))
			}
			t.Logf("run %d finished before its kill (after put %d + %s)", attempt, k, delay)
		case <-trigger:
			time.Sleep(delay) // the random moment of the kill is the test's fault, not a wait
			if attempt == 0 {
				// The first stop is graceful: SIGTERM flushes, saves the
				// checkpoints and exits 1, saying how to resume.
				c.Process.Signal(syscall.SIGTERM)
				select {
				case err := <-done:
					if code := c.ProcessState.ExitCode(); code != 1 || !strings.Contains(out.String(), "progress is saved: run again with --job killed") {
						t.Fatalf("after SIGTERM: exit %d (%v)\n%s", code, err, tail(out.String(), 3000))
					}
				case <-time.After(40 * time.Second):
					t.Fatal("backfill did not stop within 40s of SIGTERM")
				}
				t.Logf("run %d stopped by SIGTERM %s after put %d", attempt, delay, k)
				continue
			}
			c.Process.Kill()
			<-done
			kills++
			t.Logf("run %d killed %s after put %d", attempt, delay, k)
		}
	}
	if kills == 0 {
		t.Fatal("no run was killed: the data set is too small for this machine")
	}
	final := e.backfill(args...)
	t.Logf("after %d kills, the last run:\n%s", kills, final)
	for _, table := range []string{"orders", "order_items"} {
		want, got := ref.tableRows(table), e.tableRows(table)
		if len(want) == 0 {
			t.Fatalf("%s: the reference run loaded nothing", table)
		}
		if !slices.Equal(want, got) {
			t.Errorf("%s: %d rows after kills and resume, %d in the uninterrupted run; first difference: %s", table, len(got), len(want), firstDiff(want, got))
		}
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("row %d:\n  want %s\n  got  %s", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(a), len(b))
}

// --since warehouse starts from the latest event_time loaded (minus the
// overlap): the second run reads only the newer documents, and the table
// ends up holding every row once.
func TestBackfillSinceWarehouse(t *testing.T) {
	e := newE2E(t)
	m := e.seedHistory("-n", "8000", "-years", "3", "-only", "page_views", "-bad", "0", "-other", "0", "-hours")
	cut := m.From.Add(m.To.Sub(m.From) * 2 / 3).Truncate(time.Hour)
	before := 0
	for h, n := range m.Hours["page_views"] {
		if ht, _ := time.Parse(time.RFC3339, h); ht.Before(cut) {
			before += n
		}
	}
	e.backfill("--table", "page_views", "--until", cut.Format(time.RFC3339), "--job", "first")
	if got := e.counts()["page_views"]; got != before {
		t.Fatalf("after --until %s: %d rows, want %d", cut.Format(time.RFC3339), got, before)
	}
	out := e.backfill("--table", "page_views", "--since", "warehouse", "--overlap", "2h", "--job", "incremental")
	read := docsRead(t, out)
	if rest := m.Documents["page_views"] - before; read > rest+200 || read < rest {
		t.Errorf("--since warehouse read %d documents; %d are newer than the cut", read, rest)
	}
	if got := e.counts()["page_views"]; got != m.Rows["page_views"] {
		t.Errorf("after --since warehouse: %d rows, want %d", got, m.Rows["page_views"])
	}
	if d := e.duplicates("page_views"); d != 0 {
		t.Errorf("%d duplicates", d)
	}
}

// --since warehouse follows insertion (the received time: here the ObjectId
// time), not event time: a late arrival (received now, an event time years
// back) is loaded by the next incremental run, and a future-dated event does
// not stall the runs after it.
func TestBackfillSinceWarehouseFollowsInsertion(t *testing.T) {
	e := newE2E(t)
	m := e.seedHistory("-n", "2000", "-years", "1", "-only", "page_views", "-bad", "0", "-other", "0")
	e.backfill("--table", "page_views", "--job", "all")
	if got := e.counts()["page_views"]; got != m.Rows["page_views"] {
		t.Fatalf("%d rows, want %d", got, m.Rows["page_views"])
	}
	client, err := mongo.Connect(options.Client().ApplyURI(e.st.MongoURI))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	coll := client.Database(e.mongoDB).Collection("page_views")
	insert := func(id bson.ObjectID, at time.Time) {
		t.Helper()
		doc := bson.D{{Key: "_id", Value: id}, {Key: "event", Value: "page_view"}, {Key: "timestamp", Value: at}, {Key: "user_id", Value: 1}}
		if _, err := coll.InsertOne(context.Background(), doc); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	late, future := bson.NewObjectIDFromTimestamp(now), bson.NewObjectIDFromTimestamp(now)
	insert(late, m.From.Add(time.Hour))
	insert(future, now.AddDate(1, 0, 0))
	out := e.backfill("--table", "page_views", "--since", "warehouse", "--job", "incremental-1")
	has := func(id bson.ObjectID) bool {
		var n int
		if err := e.pool.QueryRow(context.Background(), fmt.Sprintf(`SELECT count(*) FROM %q.page_views WHERE event_id = $1`, e.schema), id.Hex()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	if !has(late) || !has(future) {
		t.Fatalf("after the first incremental run: late arrival loaded %v, future-dated loaded %v\n%s", has(late), has(future), out)
	}
	next := bson.NewObjectIDFromTimestamp(time.Now().UTC())
	insert(next, time.Now().UTC())
	out = e.backfill("--table", "page_views", "--since", "warehouse", "--job", "incremental-2")
	if !has(next) {
		t.Fatalf("an event received after a future-dated one was not loaded:\n%s", out)
	}
	if got, want := e.counts()["page_views"], m.Rows["page_views"]+3; got != want {
		t.Errorf("%d rows, want %d", got, want)
	}
	if d := e.duplicates("page_views"); d != 0 {
		t.Errorf("%d duplicates", d)
	}
}

// A raw document that serve wrote, backfilled into another deployment,
// gets exactly the event_time and received_at that serve gave its event,
// with or without an event time of its own.
func TestBackfillKeepsServesTimes(t *testing.T) {
	e := newE2E(t)
	e.run(nil, "schema", "apply", "-c", e.cfg)
	e.serve()
	var lines bytes.Buffer
	at := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Millisecond)
	for i := range 20 {
		if i%2 == 0 {
			fmt.Fprintf(&lines, `{"event":"page_view","id":"st-%d","user_id":%d}`+"\n", i, i)
		} else {
			fmt.Fprintf(&lines, `{"event":"page_view","id":"st-%d","user_id":%d,"timestamp":%q}`+"\n", i, i, at.Format(time.RFC3339Nano))
		}
	}
	e.run(lines.Bytes(), "send", "-c", e.cfg)
	e.waitRows(map[string]int{"page_views": 20}, 2*time.Minute)
	o := e.sharing()
	o.backfill("--table", "page_views", "--job", "from-serve")
	times := func(x *e2e) []string {
		rows, err := x.pool.Query(context.Background(), fmt.Sprintf(`SELECT event_id || ' ' || event_time::text || ' ' || received_at::text FROM %q.page_views ORDER BY event_id`, x.schema))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			rows.Scan(&s)
			out = append(out, s)
		}
		return out
	}
	served, backfilled := times(e), times(o)
	if len(served) != 20 || !slices.Equal(served, backfilled) {
		t.Fatalf("served and backfilled times differ (%s):\nserve:    %v\nbackfill: %v", firstDiff(served, backfilled), served, backfilled)
	}
	if a, b := e.tableRows("page_views"), o.tableRows("page_views"); !slices.Equal(a, b) {
		t.Errorf("served and backfilled rows differ: %s", firstDiff(a, b))
	}
}

// A backfill of the same event types while wharf serve ingests live events
// into the same collections: every history document and every live event is
// one row, none twice.
func TestBackfillBesideLiveTraffic(t *testing.T) {
	e := newE2E(t)
	e.run(nil, "schema", "apply", "-c", e.cfg)
	hist := e.seedHistory("-n", "6000", "-years", "1", "-bad", "0", "-other", "0")
	events, live := e.events(4000, 23, "live")
	e.serve()
	sent := make(chan string, 1)
	go func() {
		c := e.cmd("send", "-c", e.cfg)
		c.Stdin = bytes.NewReader(events)
		out, _ := c.CombinedOutput()
		sent <- string(out)
	}()
	// Backfill while the events flow: it reads history and whatever live
	// raw documents serve has written by then (some, at least).
	client, _ := e.st.Mongo(t)
	stacktest.Eventually(t, "20 live documents written by serve", time.Minute, func() bool {
		n, err := client.Database(e.mongoDB).Collection("page_views").CountDocuments(context.Background(), bson.D{{Key: "_id", Value: bson.D{{Key: "$type", Value: "string"}}}})
		return err == nil && n >= 20
	})
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		liveRead int
	)
	for _, table := range []string{"page_views", "actions_taken", "orders"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := e.backfill("--table", table, "--job", "beside-"+table, "--workers", "1")
			mu.Lock()
			liveRead += docsRead(t, out) - hist.Documents[table]
			mu.Unlock()
		}()
	}
	wg.Wait()
	// The backfills must have read raw documents that serve had just
	// written, whose rows serve wrote too: the overlap dedupe must remove.
	t.Logf("the backfills read %d live documents", liveRead)
	if liveRead == 0 {
		t.Fatal("the backfills read no live document: nothing overlapped")
	}
	if out := <-sent; !strings.Contains(out, fmt.Sprintf("sent %d messages", live.Lines)) {
		t.Fatalf("send: %s", out)
	}
	want := map[string]int{}
	for _, table := range []string{"page_views", "actions_taken", "actions_taken_tags", "orders", "order_items"} {
		want[table] = hist.Rows[table] + live.Rows[table]
	}
	want["signups"] = live.Rows["signups"]
	e.waitRows(want, 3*time.Minute)
	for table := range want {
		if d := e.duplicates(table); d != 0 {
			t.Errorf("%s: %d duplicates", table, d)
		}
	}
}

// The progress bar draws and the summary names the rows per table, the dead
// letters by reason and the time taken; a finished job run again reads
// nothing.
func TestBackfillProgressAndSummary(t *testing.T) {
	e := newE2E(t)
	m := e.seedHistory("-n", "20000", "-years", "1", "-only", "signups", "-bad", "10", "-other", "8")
	c := e.cmd("backfill", "-c", e.cfg, "--table", "signups", "--job", "bar", "--progress", "bar")
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	for _, want := range []string{"range 0 signups", "range 1 signups", "total", "docs/s"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("no %q in the progress output:\n%s", want, tail(stderr.String(), 2000))
		}
	}
	out := stdout.String()
	for _, want := range []string{
		fmt.Sprintf("documents read  %d", m.Documents["signups"]),
		fmt.Sprintf("rows            signups %d", m.Rows["signups"]),
		fmt.Sprintf("dead letters    bad_time %d", m.DeadLetters["bad_time"]),
		fmt.Sprintf("skipped         other_event_type %d", m.Skipped["signups"]),
		"elapsed", "the rows are in the warehouse",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the summary:\n%s", want, out)
		}
	}
	if got := e.counts()["signups"]; got != m.Rows["signups"] {
		t.Errorf("signups: %d rows, want %d", got, m.Rows["signups"])
	}
	again := e.backfill("--table", "signups", "--job", "bar", "--progress", "none")
	if n := docsRead(t, again); n != 0 {
		t.Errorf("a finished job read %d documents again", n)
	}
	// Another table under the same job is refused: a job is one plan.
	c = e.cmd("backfill", "-c", e.cfg, "--table", "orders", "--job", "bar")
	if out, err := c.CombinedOutput(); err == nil || c.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "was started with --table signups") {
		t.Errorf("resuming with another table: %v\n%s", err, out)
	}
}

// wharf audit finds the hours where the warehouse lacks rows (here: hours
// never backfilled, and hours whose rows were deleted), counting Mongo's
// side client-side because FerretDB lacks the date operators of the
// aggregation; --repair backfills exactly those hours, after which every
// hour matches and no row is doubled.
func TestAuditAndRepair(t *testing.T) {
	e := newE2E(t)
	m := e.seedHistory("-n", "10000", "-years", "1", "-only", "actions_taken", "-bad", "0", "-other", "6", "-hours")
	cut := m.From.Add(m.To.Sub(m.From) * 3 / 4).Truncate(time.Hour)
	e.backfill("--table", "actions_taken", "--until", cut.Format(time.RFC3339), "--job", "partial")
	// Lose two hours that were loaded.
	var lost []time.Time
	for h := range m.Hours["actions_taken"] {
		ht, _ := time.Parse(time.RFC3339, h)
		if ht.Before(cut) && len(lost) < 2 {
			lost = append(lost, ht)
		}
	}
	for _, h := range lost {
		if _, err := e.pool.Exec(context.Background(), fmt.Sprintf(`DELETE FROM %q.actions_taken WHERE event_time >= $1 AND event_time < $2`, e.schema), h, h.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	want, missing := 0, 0
	for h, n := range m.Hours["actions_taken"] {
		ht, _ := time.Parse(time.RFC3339, h)
		if !ht.Before(cut) || slices.ContainsFunc(lost, ht.Equal) {
			want++
			missing += n
		}
	}
	since := m.From.Truncate(time.Hour).Format(time.RFC3339)
	until := m.To.Add(time.Hour).Format(time.RFC3339)
	out := e.run(nil, "audit", "-c", e.cfg, "--table", "actions_taken", "--since", since, "--until", until)
	if !strings.Contains(out, fmt.Sprintf("%d hours differ", want)) || !strings.Contains(out, "counted by client") {
		t.Fatalf("audit: want %d differing hours counted client-side:\n%s", want, tail(out, 3000))
	}
	out = e.run(nil, "audit", "-c", e.cfg, "--table", "actions_taken", "--since", since, "--until", until, "--repair", "--progress", "none")
	if !strings.Contains(out, "after the repair:") || !strings.HasSuffix(strings.TrimSpace(out), "every hour matches") {
		t.Fatalf("repair did not leave every hour matching:\n%s", tail(out, 3000))
	}
	// Exactly the rows of the differing hours were written again.
	if !strings.Contains(out, fmt.Sprintf("rows            actions_taken %d,", missing)) {
		t.Errorf("the repair should write the %d rows of the differing hours and no other:\n%s", missing, tail(out, 3000))
	}
	if got := e.counts()["actions_taken"]; got != m.Rows["actions_taken"] {
		t.Errorf("actions_taken: %d rows after the repair, want %d", got, m.Rows["actions_taken"])
	}
	for _, table := range []string{"actions_taken", "actions_taken_tags"} {
		if d := e.duplicates(table); d != 0 {
			t.Errorf("%s: %d duplicates", table, d)
		}
	}
}

// --rebuild re-makes a table under changed flatten rules (here: a new
// column) from the raw documents into page_views__rebuild and swaps it in;
// a row that reached the old table meanwhile is carried over, the old table
// is kept as page_views__replaced, and the job cannot be swapped in twice.
func TestBackfillRebuild(t *testing.T) {
	e := newE2E(t)
	m := e.seedHistory("-n", "8000", "-years", "1", "-only", "page_views", "-bad", "0", "-other", "0")
	e.backfill("--table", "page_views", "--job", "before")
	want := m.Rows["page_views"]
	if got := e.counts()["page_views"]; got != want {
		t.Fatalf("page_views: %d rows, want %d", got, want)
	}
	// A row loaded by serve while the rebuild runs (its document is not in
	// this Mongo database): it must survive the swap.
	if _, err := e.pool.Exec(context.Background(), fmt.Sprintf(`INSERT INTO %q.page_views (event_id, event_time, received_at, user_id) VALUES ('late-1', now(), now(), 7)`, e.schema)); err != nil {
		t.Fatal(err)
	}
	// The new rules: a city column.
	data, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "deploy", "local", "tables.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(data), "      - {name: country,    path: context.geo.country, type: varchar(2)}\n",
		"      - {name: country,    path: context.geo.country, type: varchar(2)}\n      - {name: city,       path: context.geo.city, type: varchar(64)}\n", 1)
	if changed == string(data) {
		t.Fatal("tables.yaml has changed: update this test")
	}
	path := filepath.Join(e.dir, "tables.yaml")
	if err := os.WriteFile(path, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	e.env = append(e.env, "WHARF_SCHEMA="+path)
	out := e.backfill("--rebuild", "--table", "page_views", "--job", "rebuild-1")
	if !strings.Contains(out, "swapped page_views") {
		t.Fatalf("no swap:\n%s", out)
	}
	var rows, cities, replaced int
	q := fmt.Sprintf(`SELECT count(*), count(city), (SELECT count(*) FROM %q.page_views__replaced) FROM %q.page_views`, e.schema, e.schema)
	if err := e.pool.QueryRow(context.Background(), q).Scan(&rows, &cities, &replaced); err != nil {
		t.Fatal(err)
	}
	if rows != want+1 || cities != want || replaced != want+1 {
		t.Errorf("after the rebuild: %d rows (want %d), %d with a city (want %d), %d in page_views__replaced (want %d)", rows, want+1, cities, want, replaced, want+1)
	}
	if d := e.duplicates("page_views"); d != 0 {
		t.Errorf("%d duplicates", d)
	}
	c := e.cmd("backfill", "-c", e.cfg, "--rebuild", "--table", "page_views", "--job", "rebuild-1")
	if out, err := c.CombinedOutput(); err == nil || c.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "already swapped in") {
		t.Errorf("a second swap of the same job: %v\n%s", err, out)
	}
}

func TestBackfillUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"backfill"}, "--table is required"},
		{[]string{"backfill", "--table", "nope"}, `no table "nope"`},
		{[]string{"backfill", "--table", "orders", "--shard", "3/3"}, "--shard"},
		{[]string{"backfill", "--table", "orders", "--shard", "1/3"}, "--job is required with --shard"},
		{[]string{"backfill", "--table", "orders", "--since", "yesterday"}, "--since"},
		{[]string{"backfill", "--table", "orders", "--filter", "{"}, "--filter"},
		{[]string{"backfill", "--table", "orders", "--rebuild", "--since", "2024-01-01"}, "--rebuild reads every document"},
		{[]string{"backfill", "--table", "order_items"}, "child table"},
		{[]string{"audit", "--table", "orders"}, "--since is required"},
	} {
		env := map[string]string{"WHARF_S3_BUCKET": "b", "WHARF_MONGO_URI": "mongodb://127.0.0.1:1/", "WHARF_WAREHOUSE_DSN": "postgres://x@127.0.0.1:1/x",
			"WHARF_WAREHOUSE_DIALECT": "postgres", "AWS_REGION": "us-east-1"}
		args := append(slices.Clone(c.args), "-c", filepath.Join(stacktest.RepoRoot(), "deploy", "local", "wharf.yaml"))
		code, _, stderr := runWharf(t, env, "", args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("wharf %s: exit %d, %q; want 2 and %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
}
