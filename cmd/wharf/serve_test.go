package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wharfdata/wharf/deadletter"
	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/internal/stacktest"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds wharf and the demo event generator once per test run.
func binaries(t *testing.T) (wharf, gen string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "wharf-bin-")
		if buildErr != nil {
			return
		}
		for _, p := range []string{"wharf", "wharf-demo-events"} {
			out, err := exec.Command("go", "build", "-tags", "wharffault", "-o", filepath.Join(binDir, p), "../"+p).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", p, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "wharf"), filepath.Join(binDir, "wharf-demo-events")
}

type manifest struct {
	Lines       int            `json:"lines"`
	Rows        map[string]int `json:"rows"`
	DeadLetters map[string]int `json:"deadletters"`
	Mongo       map[string]int `json:"mongo"`
}

// e2e is one isolated wharf deployment on the local stack: its own queue,
// S3 prefix, warehouse schema and Mongo database.
type e2e struct {
	t       *testing.T
	st      *stacktest.Stack
	wharf   string
	gen     string
	env     []string
	pool    *pgxpool.Pool
	schema  string
	prefix  string
	mongoDB string
	dir     string
	cfg     string
}

// testReplayKey is deadletter.replay_key of every e2e deployment.
const testReplayKey = "e2e-replay-key-0123456789"

func newE2E(t *testing.T) *e2e {
	st := stacktest.Get(t)
	wharf, gen := binaries(t)
	e := &e2e{t: t, st: st, wharf: wharf, gen: gen, prefix: st.Prefix(), dir: t.TempDir()}
	queue := st.Queue(t, map[string]string{"VisibilityTimeout": "30"})
	e.pool, e.schema = st.Warehouse(t)
	_, e.mongoDB = st.Mongo(t)
	e.cfg = filepath.Join(stacktest.RepoRoot(), "deploy", "local", "wharf.yaml")
	e.env = st.Environ("WHARF_SQS_QUEUE_URL="+queue, "WHARF_S3_PREFIX="+e.prefix, "WHARF_WAREHOUSE_SCHEMA="+e.schema,
		"WHARF_MONGO_DATABASE="+e.mongoDB, "WHARF_WAREHOUSE_LOAD_INTERVAL=1s", "WHARF_BATCH_MAX_AGE=1s", "WHARF_SQS_WAIT_TIME=2s",
		"WHARF_DRAIN_TIMEOUT=15s", "WHARF_LOG_FORMAT=json", "WHARF_DEADLETTER_REPLAY_KEY="+testReplayKey)
	return e
}

func (e *e2e) cmd(args ...string) *exec.Cmd {
	c := exec.Command(e.wharf, args...)
	c.Env = e.env
	return c
}

func (e *e2e) run(stdin []byte, args ...string) string {
	e.t.Helper()
	c := e.cmd(args...)
	c.Stdin = bytes.NewReader(stdin)
	out, err := c.CombinedOutput()
	if err != nil {
		e.t.Fatalf("wharf %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// events generates n events (with duplicates and bad ones) and their manifest.
func (e *e2e) events(n int, seed int, idPrefix string) ([]byte, manifest) {
	e.t.Helper()
	mpath := filepath.Join(e.dir, fmt.Sprintf("manifest-%d.json", seed))
	out, err := exec.Command(e.gen, "-n", fmt.Sprint(n), "-seed", fmt.Sprint(seed), "-bad", "12", "-dup", "5", "-id-prefix", idPrefix, "-manifest", mpath).Output()
	if err != nil {
		e.t.Fatal(err)
	}
	var m manifest
	b, _ := os.ReadFile(mpath)
	if err := json.Unmarshal(b, &m); err != nil {
		e.t.Fatal(err)
	}
	return out, m
}

type serveProc struct {
	cmd  *exec.Cmd
	logs *lockedBuffer
	done chan error
}

func (e *e2e) serve() *serveProc {
	e.t.Helper()
	p := &serveProc{cmd: e.cmd("serve", "-c", e.cfg, "--http", ""), logs: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	e.t.Cleanup(func() {
		p.cmd.Process.Kill()
		if e.t.Failed() {
			e.t.Logf("serve log:\n%s", tail(p.logs.String(), 4000))
		}
	})
	return p
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer = stacktest.LockedBuffer

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (e *e2e) counts() map[string]int {
	e.t.Helper()
	out := map[string]int{}
	for _, tbl := range []string{"page_views", "actions_taken", "actions_taken_tags", "orders", "order_items", "signups"} {
		var n int
		if err := e.pool.QueryRow(context.Background(), fmt.Sprintf(`SELECT count(*) FROM %q.%q`, e.schema, tbl)).Scan(&n); err != nil {
			return nil
		}
		out[tbl] = n
	}
	return out
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// waitRows waits until the warehouse holds want rows per table.
func (e *e2e) waitRows(want map[string]int, timeout time.Duration) {
	e.t.Helper()
	var got map[string]int
	if !stacktest.WaitFor(timeout, func() bool { got = e.counts(); return got != nil && sum(got) >= sum(want) }) {
		e.t.Fatalf("timed out: warehouse has %v, want %v", got, want)
	}
	for tbl, n := range want {
		if got[tbl] != n {
			e.t.Fatalf("table %s has %d rows, want %d (all: %v)", tbl, got[tbl], n, got)
		}
	}
}

func (e *e2e) checkMongo(want map[string]int) {
	e.t.Helper()
	client, _ := e.st.Mongo(e.t)
	for coll, n := range want {
		got, err := client.Database(e.mongoDB).Collection(coll).CountDocuments(context.Background(), bson.D{})
		if err != nil || got != int64(n) {
			e.t.Errorf("mongo %s: %d raw documents (%v), want %d", coll, got, err, n)
		}
	}
}

// checkDeadLetters compares dead letters by reason with want, counting each
// distinct message body once: the dead-letter store is at least once (a
// crash between its put and the SQS delete writes the record again).
func (e *e2e) checkDeadLetters(want map[string]int) {
	e.t.Helper()
	store := s3store.New(e.st.S3(e.t), e.st.Bucket)
	// Dead letters held by a killed process come back only after the
	// queue's visibility timeout (30 s here), then wait for a flush.
	var got map[string]int
	stacktest.WaitFor(90*time.Second, func() bool {
		recs, err := deadletter.Read(context.Background(), store, e.prefix, time.Time{}, time.Time{})
		if err != nil {
			e.t.Fatal(err)
		}
		got = map[string]int{}
		seen := map[string]bool{}
		for _, r := range recs {
			if !seen[r.Body] {
				seen[r.Body] = true
				got[r.Reason]++
			}
		}
		return sum(got) >= sum(want)
	})
	for reason, n := range want {
		if got[reason] != n {
			e.t.Errorf("dead letters %s: %d, want %d (all: %v)", reason, got[reason], n, got)
		}
	}
}

// The streaming path end to end with the real binary: every unique valid
// event is one row, duplicates collapse, bad events are dead-lettered with
// their reason, Mongo holds one raw document per unique known-type event,
// and SIGTERM drains and exits 0.
func TestServeEndToEnd(t *testing.T) {
	e := newE2E(t)
	e.run(nil, "schema", "apply", "-c", e.cfg)
	events, m := e.events(3000, 7, "e2e")
	p := e.serve()
	out := e.run(events, "send", "-c", e.cfg)
	if !strings.Contains(out, fmt.Sprintf("sent %d messages", m.Lines)) {
		t.Fatalf("send: %s", out)
	}
	e.waitRows(m.Rows, 3*time.Minute)
	e.checkDeadLetters(m.DeadLetters)
	e.checkMongo(m.Mongo)

	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit within 30s of SIGTERM")
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("drain took %s, more than drain_timeout", d)
	}
	if !strings.Contains(p.logs.String(), `"msg":"stopped"`) {
		t.Errorf("no clean stop in the log")
	}
	// Nothing more arrives after the stop: counts are still exact.
	if got := e.counts(); sum(got) != sum(m.Rows) {
		t.Fatalf("after stop: %v, want %v", got, m.Rows)
	}
}

// Killed with SIGKILL while events flow and started again, wharf loses and
// duplicates nothing.
func TestServeKilledAndRestarted(t *testing.T) {
	e := newE2E(t)
	e.run(nil, "schema", "apply", "-c", e.cfg)
	events, m := e.events(4000, 11, "kill")
	p := e.serve()
	sendDone := make(chan string, 1)
	go func() {
		c := e.cmd("send", "-c", e.cfg)
		c.Stdin = bytes.NewReader(events)
		out, _ := c.CombinedOutput()
		sendDone <- string(out)
	}()
	// Kill while serve holds messages (received, not deleted) and rows are
	// already loaded: in the middle of the stream, with work in every stage.
	stacktest.Eventually(t, "messages held and rows loaded", time.Minute, func() bool {
		_, inFlight := e.queueDepth(e.queueURL())
		return inFlight >= 50 && sum(e.counts()) > 0
	})
	p.cmd.Process.Kill() // SIGKILL: no drain at all
	<-p.done
	e.serve()
	if out := <-sendDone; !strings.Contains(out, fmt.Sprintf("sent %d messages", m.Lines)) {
		t.Fatalf("send: %s", out)
	}
	// Messages held by the killed process reappear after the 30s visibility timeout.
	e.waitRows(m.Rows, 4*time.Minute)
	e.checkMongo(m.Mongo)
	e.checkDeadLetters(m.DeadLetters)
	var dups int
	if err := e.pool.QueryRow(context.Background(), fmt.Sprintf(`SELECT count(*) - count(DISTINCT event_id) FROM %q.page_views`, e.schema)).Scan(&dups); err != nil || dups != 0 {
		t.Fatalf("page_views duplicates: %d (%v)", dups, err)
	}
}

// wharf send reports a line that is not a JSON object with its line number
// and does not send it; the rest go in batches of ten.
func TestSendReportsBadLines(t *testing.T) {
	e := newE2E(t)
	input := "{\"event\":\"signup\",\"id\":\"s1\"}\nnot json\n[1,2]\n\n{\"event\":\"signup\",\"id\":\"s2\"}\n"
	c := e.cmd("send", "-c", e.cfg)
	c.Stdin = strings.NewReader(input)
	out, err := c.CombinedOutput()
	if code := c.ProcessState.ExitCode(); code != 1 || err == nil {
		t.Fatalf("exit %d, want 1: %s", code, out)
	}
	for _, want := range []string{"line 2: not JSON", "line 3: not a JSON object", "sent 2 messages; 2 lines rejected"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	sqsc := e.st.SQS(t)
	var queue string
	for _, kv := range e.env {
		if v, ok := strings.CutPrefix(kv, "WHARF_SQS_QUEUE_URL="); ok {
			queue = v
		}
	}
	got, err := sqsc.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: &queue, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages}})
	if err != nil {
		t.Fatal(err)
	}
	if n := got.Attributes["ApproximateNumberOfMessages"]; n != "2" {
		t.Fatalf("%s messages in the queue, want 2", n)
	}
}
