package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/internal/stacktest"
)

// Outage tests (issue 3, item 5): Toxiproxy, the real fault-injecting TCP
// proxy, stands between wharf serve and one of S3, MongoDB or PostgreSQL;
// the test cuts it while events flow and restores it, then checks that the
// process kept running, held memory to its caps and caught up with nothing
// lost or duplicated.
//
// WHARF_OUTAGE sets how long each cut lasts (a Go duration). The default is
// 60s under WHARF_CHAOS=full (make chaos) and 20s otherwise, so that `make
// test` stays in minutes. WHARF_OUTAGE_MODE picks how the cut looks on the
// wire: "down" (the default: the proxy is disabled, so open connections are
// closed and new ones refused, like a service that is down), "blackhole"
// (Toxiproxy's timeout toxic with no timeout: connections stay open and every
// byte is dropped, like a partition or a hung server, until the cut ends and
// Toxiproxy closes them) or "reset" (the
// reset_peer toxic: every connection is reset as soon as data flows).

func outageDuration(t *testing.T) time.Duration {
	if v := os.Getenv("WHARF_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("WHARF_OUTAGE=%q is not a positive duration such as 60s", v)
		}
		return d
	}
	if os.Getenv("WHARF_CHAOS") == "full" {
		return 60 * time.Second
	}
	return 20 * time.Second
}

func outageMode(t *testing.T) string {
	switch m := os.Getenv("WHARF_OUTAGE_MODE"); m {
	case "":
		return "down"
	case "down", "blackhole", "reset":
		return m
	default:
		t.Fatalf("WHARF_OUTAGE_MODE=%q: want down, blackhole or reset", m)
		return ""
	}
}

// toxiproxy is one Toxiproxy server, driven through its HTTP API.
type toxiproxy struct {
	*stacktest.Toxiproxy
}

func startToxiproxy(t *testing.T) *toxiproxy {
	t.Helper()
	return &toxiproxy{stacktest.StartToxiproxy(t)}
}

// proxy creates a proxy to upstream (host:port) and returns the address
// it listens on.
func (tp *toxiproxy) proxy(name, upstream string) string { return tp.Proxy(name, upstream) }

// cut makes the proxy fail in the given mode; restore undoes it.
func (tp *toxiproxy) cut(name, mode string) {
	switch mode {
	case "down":
		tp.Call("POST", "/proxies/"+name, map[string]any{"enabled": false})
	case "blackhole", "reset":
		typ := map[string]string{"blackhole": "timeout", "reset": "reset_peer"}[mode]
		for _, stream := range []string{"upstream", "downstream"} {
			tp.Call("POST", "/proxies/"+name+"/toxics", map[string]any{"name": mode + "_" + stream, "type": typ,
				"stream": stream, "toxicity": 1.0, "attributes": map[string]any{"timeout": 0}})
		}
	}
}

func (tp *toxiproxy) restore(name, mode string) {
	switch mode {
	case "down":
		tp.Call("POST", "/proxies/"+name, map[string]any{"enabled": true})
	default:
		for _, stream := range []string{"upstream", "downstream"} {
			tp.Call("DELETE", "/proxies/"+name+"/toxics/"+mode+"_"+stream, nil)
		}
	}
}

// metrics scrapes /metrics and sums each metric over its labels.
func metricsOf(addr string) (map[string]float64, error) {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		name := line[:sp]
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err == nil {
			out[name] += v
		}
	}
	return out, sc.Err()
}

// rssOf reads a process's resident set size from /proc.
func rssOf(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

func listenAddrFree(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// outageSample is what the test sees of wharf at one instant.
type outageSample struct {
	at      time.Time
	rss     int64
	m       map[string]float64
	files   int // Parquet files under the test's prefix
	rows    int // rows in the warehouse
	visible int // messages waiting in the queue
}

const miB = 1 << 20

// outageCase is one dependency to cut.
type outageCase struct {
	target     string // s3, mongo or warehouse
	events     int    // unique valid events, sent in three parts: before, during and after the cut
	maxBytes   int64  // batch.max_bytes
	visibility int    // the queue's visibility timeout, seconds
	check      func(t *testing.T, r *outageRun)
}

// outageRun is what one outage test measured.
type outageRun struct {
	mode           string
	duration       time.Duration
	before, during []outageSample // sampled before the cut (last few) and from the cut until the restore
	settled        outageSample   // a few seconds into the cut, once work in progress has ended
	restored       outageSample
	end            outageSample
	sentDuring     int
	lines          int
	rows           int
	catchUp        time.Duration
	rssPeak        int64
	rssBound       int64
	maxBytesCfg    int64
}

// full reports whether the long outage matrix runs (make chaos).
func full() bool { return os.Getenv("WHARF_CHAOS") == "full" }

func TestOutageS3(t *testing.T) {
	// Enough events that the rows sent during the cut pass batch.max_bytes.
	// (Rows are held column by column, schema.Rows.Size: some 200 bytes an
	// event here.)
	oc := outageCase{target: "s3", events: 12000, maxBytes: miB / 2, visibility: 20}
	if full() {
		oc.events, oc.maxBytes = 60000, 2*miB
	}
	oc.check = func(t *testing.T, r *outageRun) {
		// Nothing is deleted from SQS while S3 is down: no Parquet file and
		// no dead-letter file can be written, so no ack says "durable".
		if d := r.restored.m["wharf_deleted_messages_total"] - r.settled.m["wharf_deleted_messages_total"]; d != 0 {
			t.Errorf("%v SQS messages deleted while S3 was down", d)
		}
		if r.restored.files != r.settled.files {
			t.Errorf("Parquet files went from %d to %d while S3 was down", r.settled.files, r.restored.files)
		}
		// A black-holed put does not fail: it stalls until the network
		// comes back (within batch's per-attempt timeout of 2 min), so only
		// a refused or reset connection must show as retries.
		if r.mode != "blackhole" && r.end.m["wharf_put_retries_total"] == 0 {
			t.Errorf("no put was retried after S3 went down")
		}
		// Memory held to its caps: the batcher's byte count never passes
		// max_bytes (one message may overshoot it when the buffers are
		// empty, and messages here are far smaller), and once it is reached
		// wharf stops polling, so messages wait in the queue.
		var peak float64
		for _, s := range r.during {
			peak = max(peak, s.m["wharf_buffered_bytes"])
		}
		if peak > float64(r.maxBytes()) {
			t.Errorf("wharf_buffered_bytes reached %.0f, more than batch.max_bytes %d", peak, r.maxBytes())
		}
		if peak < 0.8*float64(r.maxBytes()) {
			t.Errorf("the byte cap was never reached during the outage (%.2f of %.2f MiB): the test proves nothing about it; send more events", peak/miB, float64(r.maxBytes())/miB)
		}
		t.Logf("s3: batcher held at most %.2f MiB of rows (max_bytes %.2f MiB); %d messages waited in the queue at the restore",
			peak/miB, float64(r.maxBytes())/miB, r.restored.visible)
	}
	runOutage(t, oc)
}

func TestOutageMongo(t *testing.T) {
	oc := outageCase{target: "mongo", events: 6000, maxBytes: 16 * miB, visibility: 10}
	if full() {
		oc.events = 18000
	}
	oc.check = func(t *testing.T, r *outageRun) {
		// A write that stalls in a black hole resumes when the cut ends
		// (if it is shorter than the client's 30 s timeout), so only a
		// refused or reset connection must show as failed writes.
		failed := r.end.m["wharf_raw_write_retries_total"] + r.end.m["wharf_raw_write_errors_total"]
		if r.mode != "blackhole" && failed == 0 {
			t.Errorf("no raw write failed after Mongo went down")
		}
		// An unreachable Mongo costs no receive: the consumer holds the
		// messages and retries their raw write, so none comes back from
		// SQS, and however long the outage, none nears maxReceiveCount.
		if n := r.end.m["wharf_received_messages_total"] - float64(r.lines); n != 0 {
			t.Errorf("%v messages received again after a Mongo outage; each receive brings a message nearer the SQS dead-letter queue", n)
		}
	}
	runOutage(t, oc)
}

func TestOutageWarehouse(t *testing.T) {
	oc := outageCase{target: "warehouse", events: 6000, maxBytes: 16 * miB, visibility: 20}
	if full() {
		oc.events = 18000
	}
	oc.check = func(t *testing.T, r *outageRun) {
		// Files pile up in S3 while nothing loads, and load once it is back.
		if r.restored.files <= r.settled.files {
			t.Errorf("no Parquet file piled up in S3 while the warehouse was down (%d then %d)", r.settled.files, r.restored.files)
		}
		if r.restored.rows != r.settled.rows {
			t.Errorf("warehouse rows went from %d to %d while it was down", r.settled.rows, r.restored.rows)
		}
		if r.mode != "blackhole" && r.end.m["wharf_load_errors_total"] == 0 {
			t.Errorf("no load failed after the warehouse went down")
		}
		if n := r.end.m["wharf_pending_files"]; n != 0 {
			t.Errorf("%v files still pending after the catch-up", n)
		}
		t.Logf("warehouse: %d Parquet files piled up in S3 during the outage", r.restored.files-r.settled.files)
	}
	runOutage(t, oc)
}

func (r *outageRun) maxBytes() int64 { return r.maxBytesCfg }

func runOutage(t *testing.T, oc outageCase) {
	t.Parallel()
	e := newE2E(t)
	mode, dur := outageMode(t), outageDuration(t)
	tp := startToxiproxy(t)

	// A queue with a short visibility timeout (messages left for redelivery
	// come back soon) and a redrive policy, so that a dependency outage that
	// burnt receive counts would show up as messages in the SQS dead-letter
	// queue.
	sqsc := e.st.SQS(t)
	dlq := e.st.Queue(t, nil)
	attrs, err := sqsc.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: &dlq, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	redrive, _ := json.Marshal(map[string]string{"deadLetterTargetArn": attrs.Attributes["QueueArn"], "maxReceiveCount": "5"})
	queue := e.st.Queue(t, map[string]string{"VisibilityTimeout": strconv.Itoa(oc.visibility), "RedrivePolicy": string(redrive)})

	env := []string{"WHARF_SQS_QUEUE_URL=" + queue, fmt.Sprintf("WHARF_BATCH_MAX_BYTES=%d", oc.maxBytes)}
	switch oc.target {
	case "s3":
		// Only S3 goes through the proxy: fauxqs serves SQS on the same port,
		// and SQS stays direct.
		u, _ := url.Parse(e.st.Endpoint)
		env = append(env, "AWS_ENDPOINT_URL_S3=http://"+tp.proxy("s3", u.Host))
	case "mongo":
		u, _ := url.Parse(e.st.MongoURI)
		u.Host = tp.proxy("mongo", u.Host)
		env = append(env, "WHARF_MONGO_URI="+u.String())
	case "warehouse":
		u, _ := url.Parse(e.st.WarehouseDSN)
		u.Host = tp.proxy("warehouse", u.Host)
		env = append(env, "WHARF_WAREHOUSE_DSN="+u.String())
	}
	e.env = append(e.env, env...)
	e.run(nil, "schema", "apply", "-c", e.cfg)

	// The events, shuffled so that bad ones and duplicates fall in every part.
	events, m := e.events(oc.events, 23, "out-"+oc.target)
	lines := bytes.Split(bytes.TrimSpace(events), []byte("\n"))
	for i := range lines {
		lines[i] = append(lines[i], '\n')
	}
	rand.New(rand.NewPCG(5, 23)).Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	third := len(lines) / 3
	parts := [][]byte{bytes.Join(lines[:third], nil), bytes.Join(lines[third:2*third], nil), bytes.Join(lines[2*third:], nil)}

	httpAddr := listenAddrFree(t)
	logs := &lockedBuffer{}
	p := &serveProc{cmd: e.cmd("serve", "-c", e.cfg, "--http", httpAddr), done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = logs, logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		if dir := os.Getenv("WHARF_OUTAGE_LOGS"); dir != "" {
			os.WriteFile(filepath.Join(dir, "outage-"+oc.target+".log"), []byte(logs.String()), 0o644)
		}
		if t.Failed() {
			t.Logf("serve log:\n%s", tail(logs.String(), 6000))
		}
	})
	alive := func(when string) {
		t.Helper()
		select {
		case err := <-p.done:
			t.Fatalf("wharf serve exited %s: %v", when, err)
		default:
		}
	}

	store := s3store.New(e.st.S3(t), e.st.Bucket)
	take := func() outageSample {
		s := outageSample{at: time.Now(), rss: rssOf(p.cmd.Process.Pid)}
		s.m, _ = metricsOf(httpAddr)
		if keys, err := store.ListKeys(context.Background(), e.prefix); err == nil {
			for _, k := range keys {
				if strings.HasSuffix(k, ".parquet") {
					s.files++
				}
			}
		}
		s.rows = sum(e.counts())
		s.visible = queueCount(t, sqsc, queue, types.QueueAttributeNameApproximateNumberOfMessages)
		return s
	}
	r := &outageRun{mode: mode, duration: dur, lines: m.Lines, rows: sum(m.Rows), maxBytesCfg: oc.maxBytes}

	send := func(part []byte) <-chan string {
		done := make(chan string, 1)
		go func() {
			c := e.cmd("send", "-c", e.cfg)
			c.Stdin = bytes.NewReader(part)
			out, err := c.CombinedOutput()
			if err != nil {
				out = append(out, []byte(err.Error())...)
			}
			done <- string(out)
		}()
		return done
	}
	sent := func(ch <-chan string, part []byte) {
		t.Helper()
		out := <-ch
		if want := fmt.Sprintf("sent %d messages", bytes.Count(part, []byte("\n"))); !strings.Contains(out, want) {
			t.Fatalf("send: %s (want %q)", out, want)
		}
	}
	// sendPaced sends part in chunks spread over span, so that events keep
	// arriving all through the outage; it reports the chunks' outputs.
	sendPaced := func(part []byte, span time.Duration) <-chan []string {
		const chunks = 8
		lines := bytes.SplitAfter(part, []byte("\n"))
		done := make(chan []string, 1)
		go func() {
			var outs []string
			start := time.Now()
			for i := range chunks {
				// The pace is the test's load, not a wait for a state.
				time.Sleep(time.Until(start.Add(span * time.Duration(i) / chunks)))
				chunk := bytes.Join(lines[i*len(lines)/chunks:(i+1)*len(lines)/chunks], nil)
				out := <-send(chunk)
				if want := fmt.Sprintf("sent %d messages", bytes.Count(chunk, []byte("\n"))); !strings.Contains(out, want) {
					out = fmt.Sprintf("%s (want %q)", out, want)
				}
				outs = append(outs, out)
			}
			done <- outs
		}()
		return done
	}

	// Part one flows through the whole path before the cut.
	sent(send(parts[0]), parts[0])
	stacktest.Eventually(t, "a row in the warehouse before the cut", 2*time.Minute, func() bool {
		alive("before the cut")
		return sum(e.counts()) > 0
	})
	r.before = append(r.before, take())

	// The cut: part two is sent, a chunk at a time, while the dependency
	// is away.
	t.Logf("cutting %s (%s) for %s", oc.target, mode, dur)
	cutAt := time.Now()
	tp.cut(oc.target, mode)
	sending := sendPaced(parts[1], dur*3/4)
	// Work that had finished just before the cut may still complete after
	// it (an ack's delete, a commit): the cut has settled once what it
	// stops (deletes and files for S3, deletes for Mongo, rows for the
	// warehouse) has stood still for two seconds, at least three seconds
	// in. Were it never to stand still, the outage would not be felt: the
	// first sample is then the baseline, and the checks fail.
	settled := false
	var lastMove time.Time
	for time.Since(cutAt) < dur {
		s := take()
		if n := len(r.during); n > 0 {
			prev := r.during[n-1]
			deletes := s.m["wharf_deleted_messages_total"] != prev.m["wharf_deleted_messages_total"]
			if map[string]bool{"s3": deletes || s.files != prev.files, "mongo": deletes, "warehouse": s.rows != prev.rows}[oc.target] {
				lastMove = s.at
			}
		}
		r.during = append(r.during, s)
		if !settled && time.Since(cutAt) >= 3*time.Second && time.Since(lastMove) >= 2*time.Second {
			r.settled, settled = s, true
		}
		alive("during the outage")
		time.Sleep(500 * time.Millisecond) // a sample every half second for the outage's length: time is what is measured
	}
	if !settled {
		r.settled = r.during[0]
	}
	r.restored = take()
	r.during = append(r.during, r.restored)
	tp.restore(oc.target, mode)
	restoredAt := time.Now()
	for _, out := range <-sending {
		if strings.Contains(out, "(want ") {
			t.Fatalf("send during the outage: %s", out)
		}
	}
	t.Logf("restored %s after %s", oc.target, time.Since(cutAt).Round(time.Second))

	// Part three after the restore; then everything must land exactly once.
	sent(send(parts[2]), parts[2])
	var rssMu sync.Mutex
	stopRSS := make(chan struct{})
	rssDone := make(chan struct{})
	go func() {
		defer close(rssDone)
		for {
			select {
			case <-stopRSS:
				return
			case <-time.After(500 * time.Millisecond):
			}
			rss := rssOf(p.cmd.Process.Pid)
			rssMu.Lock()
			r.rssPeak = max(r.rssPeak, rss)
			rssMu.Unlock()
		}
	}()
	e.waitRows(m.Rows, 5*time.Minute)
	r.catchUp = time.Since(restoredAt)
	close(stopRSS)
	<-rssDone
	alive("after the catch-up")
	e.checkMongo(m.Mongo)
	e.checkDeadLetters(m.DeadLetters)
	for _, tbl := range []string{"page_views", "actions_taken", "orders", "signups"} {
		var dups int
		if err := e.pool.QueryRow(context.Background(), fmt.Sprintf(`SELECT count(*) - count(DISTINCT event_id) FROM %q.%q`, e.schema, tbl)).Scan(&dups); err != nil || dups != 0 {
			t.Errorf("%s: %d duplicate event ids (%v)", tbl, dups, err)
		}
	}
	if n := queueCount(t, sqsc, dlq, types.QueueAttributeNameApproximateNumberOfMessages); n != 0 {
		t.Errorf("%d messages went to the SQS dead-letter queue (maxReceiveCount 5)", n)
	}
	// The pending gauge is set by the loader's cycles: give it up to 30 s (on
	// a loaded machine a cycle can lag the rows it already merged).
	stacktest.WaitFor(30*time.Second, func() bool {
		r.end = take()
		return r.end.m["wharf_pending_files"] == 0
	})

	for _, s := range append(r.before, r.during...) {
		r.rssPeak = max(r.rssPeak, s.rss)
	}
	r.sentDuring = bytes.Count(parts[1], []byte("\n"))
	// The bound: the rows the batcher may hold (max_bytes, as schema.Rows.Size
	// counts them), as much again for what that count leaves out (Go's
	// allocation overhead, the Parquet files of the flushes retrying) and
	// once more for the garbage collector's headroom (GOGC=100), on top of a
	// fixed 128 MiB for the process itself (Go runtime, AWS, Mongo and pgx
	// clients).
	r.rssBound = 128*miB + 3*oc.maxBytes
	if r.rssPeak > r.rssBound {
		t.Errorf("RSS peaked at %d MiB, more than the bound %d MiB (128 MiB + 3 × batch.max_bytes %d MiB)", r.rssPeak/miB, r.rssBound/miB, oc.maxBytes/miB)
	}
	oc.check(t, r)

	// And it still stops cleanly.
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("serve did not exit within 30s of SIGTERM")
	}

	deleted := r.restored.m["wharf_deleted_messages_total"] - r.settled.m["wharf_deleted_messages_total"]
	t.Logf("OUTAGE target=%s mode=%s duration=%s events_sent=%d sent_during=%d rows=%d lost=0 duplicated=0 rss_peak_mib=%.1f rss_bound_mib=%d deleted_during_outage=%.0f files_during_outage=%d redelivered=%.0f catch_up=%s",
		oc.target, mode, dur, r.lines, r.sentDuring, r.rows, float64(r.rssPeak)/miB, r.rssBound/miB, deleted,
		r.restored.files-r.settled.files, r.end.m["wharf_received_messages_total"]-float64(r.lines), r.catchUp.Round(time.Second))

	// The row of the outage table, in .stack/outage-PLAN-TARGET.txt for
	// `make test` and `make chaos` to print (go test shows the logs of
	// passing tests only with -v). lost and duplicated are zero here: the
	// checks above fail the test otherwise.
	plan := "short"
	if full() {
		plan = "full"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %-9s %7s %7s %11s %7s %5s %10s %9s %9s %14s %12s %9s\n", "outage", "mode", "length", "events", "sent_in_cut", "rows",
		"lost", "duplicated", "rss_peak", "rss_bound", "deleted_in_cut", "files_in_cut", "catch_up")
	fmt.Fprintf(&b, "%-10s %-9s %7s %7d %11d %7d %5d %10d %8.0fM %8dM %14.0f %12d %9s\n", oc.target, mode, dur, r.lines, r.sentDuring, r.rows,
		0, 0, float64(r.rssPeak)/miB, r.rssBound/miB, deleted, r.restored.files-r.settled.files, r.catchUp.Round(time.Second))
	dir := filepath.Join(stacktest.RepoRoot(), ".stack")
	if err := os.MkdirAll(dir, 0o755); err == nil {
		os.WriteFile(filepath.Join(dir, "outage-"+plan+"-"+oc.target+".txt"), []byte(b.String()), 0o644)
	}
}

func queueCount(t *testing.T, c *sqs.Client, queue string, attr types.QueueAttributeName) int {
	out, err := c.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queue), AttributeNames: []types.QueueAttributeName{attr}})
	if err != nil {
		return -1
	}
	n, _ := strconv.Atoi(out.Attributes[string(attr)])
	return n
}
