package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wharfdata/wharf/deadletter"
	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/internal/stacktest"
	"github.com/wharfdata/wharf/internal/statuspage"
)

// freePort returns a loopback address nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// httpProc is a wharf serve whose log may be read while it runs.
type httpProc struct {
	cmd  *exec.Cmd
	logs *lockedBuffer
	done chan error
}

// serveWithHTTP starts wharf serve with its HTTP endpoints on a free port,
// with the extra environment given, and waits until /readyz answers.
func (e *e2e) serveWithHTTP(extra ...string) (*httpProc, string) {
	e.t.Helper()
	addr := freePort(e.t)
	p := &httpProc{cmd: e.cmd("serve", "-c", e.cfg, "--http", addr), logs: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd.Env = append(p.cmd.Env, extra...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	e.t.Cleanup(func() {
		p.cmd.Process.Kill()
		if e.t.Failed() {
			e.t.Logf("serve log:\n%s", tail(p.logs.String(), 6000))
		}
	})
	base := "http://" + addr
	ready := stacktest.WaitFor(30*time.Second, func() bool {
		select {
		case err := <-p.done:
			e.t.Fatalf("serve exited before it was ready: %v\n%s", err, p.logs.String())
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if !ready {
		e.t.Fatalf("serve not ready after 30s:\n%s", p.logs.String())
	}
	return p, base
}

// scrape reads /metrics as series name{labels} → value.
func scrape(base string) (map[string]float64, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// metricCheck is one metric of issue 6 and how a scrape shows it moved.
type metricCheck struct {
	what   string // as the issue names it
	series string // a series name, or a prefix of series names ending in "{"
	labels string // a label the series must carry, such as reason="age" (optional)
}

// issue6Metrics is every metric /metrics must show moving during a flow.
var issue6Metrics = []metricCheck{
	{"messages received", "wharf_received_messages_total", ""},
	{"messages deleted", "wharf_deleted_messages_total", ""},
	{"dead-lettered by reason", "wharf_deadletters_total{", `reason="`},
	{"visibility extensions", "wharf_visibility_extensions_total", ""},
	{"rows buffered", "wharf_buffered_rows{", `table="`},
	{"flushes by reason", "wharf_flushes_total{", `reason="age"`},
	{"flush duration", "wharf_flush_duration_seconds_count", ""},
	{"load duration", "wharf_load_duration_seconds_count", ""},
	{"bytes written", "wharf_written_bytes_total{", `table="`},
	{"files written", "wharf_written_files_total{", `table="`},
	{"rows loaded", "wharf_load_rows_total{", `table="`},
	{"truncations", "wharf_truncations_total{", `table="signups"`},
	{"end-to-end lag per table", "wharf_load_lag_seconds_count{", `table="`},
	{"oldest held message age", "wharf_oldest_held_message_age_seconds", ""},
}

// peak returns, for a check, the largest value any matching series has in m.
func (c metricCheck) peak(m map[string]float64) (float64, bool) {
	best, found := 0.0, false
	for k, v := range m {
		match := k == c.series
		if strings.HasSuffix(c.series, "{") {
			match = strings.HasPrefix(k, c.series) && strings.Contains(k, c.labels)
		}
		if match {
			found = true
			best = max(best, v)
		}
	}
	return best, found
}

// TestServeObservability runs the demo flow through a real `wharf serve`
// with its HTTP endpoints on, scraping /metrics all along: every metric of
// issue 6 must exist and move above zero (counters and histograms count,
// gauges are seen above zero at some scrape). Then /status, as JSON, must
// show every table with the rows the ledger holds; and headless Chromium
// must render the HTML page with those numbers, on a phone-sized screen
// without sideways scrolling, saving screenshots for a person to look at.
func TestServeObservability(t *testing.T) {
	e := newE2E(t)
	e.run(nil, "schema", "apply", "-c", e.cfg)
	// A short visibility timeout and a longer max_age make the consumer
	// extend visibility while rows wait in a buffer, and flushes go by age.
	queue := e.st.Queue(t, map[string]string{"VisibilityTimeout": "4"})
	events, m := e.events(2000, 21, "obs")
	// One more signup whose plan is longer than varchar(32): a truncation.
	events = append(events, []byte(`{"event":"signup","id":"obs-trunc-1","timestamp":"2026-01-02T03:04:05Z","user_id":1,"plan":"`+strings.Repeat("p", 40)+`"}`+"\n")...)
	m.Rows["signups"]++
	m.Lines++

	p, base := e.serveWithHTTP("WHARF_SQS_QUEUE_URL="+queue, "WHARF_BATCH_MAX_AGE=4s", "WHARF_SQS_WAIT_TIME=1s", "WHARF_WAREHOUSE_LOAD_INTERVAL=2s")
	for i, kv := range e.env {
		if strings.HasPrefix(kv, "WHARF_SQS_QUEUE_URL=") {
			e.env[i] = "WHARF_SQS_QUEUE_URL=" + queue // for wharf send
		}
	}

	// Scrape every 200 ms until stopped, keeping each series' peak.
	peaks := map[string]float64{}
	var mu sync.Mutex
	stop := make(chan struct{})
	scraped := make(chan struct{})
	go func() {
		defer close(scraped)
		for {
			if got, err := scrape(base); err == nil {
				mu.Lock()
				for k, v := range got {
					peaks[k] = max(peaks[k], v)
				}
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	first, err := scrape(base)
	if err != nil {
		t.Fatal(err)
	}

	out := e.run(events, "send", "-c", e.cfg)
	if !strings.Contains(out, fmt.Sprintf("sent %d messages", m.Lines)) {
		t.Fatalf("send: %s", out)
	}
	e.waitRows(m.Rows, 3*time.Minute)
	e.checkDeadLetters(m.DeadLetters)
	close(stop)
	<-scraped
	// One more scrape, after the last load.
	last, err := scrape(base)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range last {
		peaks[k] = max(peaks[k], v)
	}

	mu.Lock()
	for _, c := range issue6Metrics {
		before, _ := c.peak(first)
		after, found := c.peak(peaks)
		switch {
		case !found:
			t.Errorf("%s: no series %s%s on /metrics", c.what, c.series, c.labels)
		case after <= before || after <= 0:
			t.Errorf("%s: %s%s did not move (%v before, peak %v)", c.what, c.series, c.labels, before, after)
		default:
			t.Logf("%-26s %s%s: %v → peak %v", c.what, c.series, c.labels, before, after)
		}
	}
	// Present, if not moving: what the process runs, and the queue's depth.
	for _, c := range []metricCheck{{"build info", "wharf_build_info{", `commit="`}, {"queue backlog", "wharf_sqs_backlog_messages{", `state="visible"`}} {
		if v, found := c.peak(peaks); !found || (c.what == "build info" && v != 1) {
			t.Errorf("%s: %s%s is %v (found %v), want a series (build info: 1)", c.what, c.series, c.labels, v, found)
		}
	}
	mu.Unlock()

	// /status as JSON: every table, with the rows of its loaded files.
	var st statuspage.Data
	getJSON(t, base+"/status?format=json", &st)
	if len(st.Tables) != len(m.Rows) {
		t.Fatalf("/status has %d tables, want %d: %+v", len(st.Tables), len(m.Rows), st.Tables)
	}
	for _, ts := range st.Tables {
		want := int64(m.Rows[ts.Name])
		if ts.RowsLastHour < want || ts.LastLoad == nil || ts.State != "ok" {
			t.Errorf("/status table %s: %d rows last hour (want at least %d), last load %v, state %s", ts.Name, ts.RowsLastHour, want, ts.LastLoad, ts.State)
		}
		var sum int64
		for _, v := range ts.Series {
			sum += v
		}
		if sum != ts.RowsLastHour {
			t.Errorf("/status table %s: sparkline sums to %d, rows last hour %d", ts.Name, sum, ts.RowsLastHour)
		}
	}
	if st.Queue == nil {
		t.Errorf("/status has no queue backlog: %s", st.QueueError)
	}
	var dl int64
	for _, r := range st.DeadLetters {
		dl += r.Count
	}
	if dl < int64(sum(m.DeadLetters)) {
		t.Errorf("/status dead letters %v, want %d in all", st.DeadLetters, sum(m.DeadLetters))
	}
	if len(st.RecentLoads) == 0 {
		t.Errorf("/status has no recent loads")
	}
	// Nothing secret on the page.
	body := get(t, base+"/status")
	for _, secret := range []string{e.st.WarehouseDSN, e.st.Env["AWS_SECRET_ACCESS_KEY"] + `"`, "postgres://"} {
		if strings.Contains(body, secret) {
			t.Errorf("/status shows %q", secret)
		}
	}

	renderStatus(t, base, st)

	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Error("serve did not stop within 30s of SIGTERM")
	}

	// The log: batch lines carry table, rows, reason and file; no line
	// holds an event body, a DSN or a URI with credentials.
	forbidden := []string{e.st.WarehouseDSN, e.st.MongoURI, "postgres://", "mongodb://", strings.Repeat("p", 40)}
	for _, line := range strings.Split(string(events), "\n") {
		if len(line) >= 30 {
			forbidden = append(forbidden, line)
		}
	}
	recs, err := deadletter.Read(context.Background(), s3store.New(e.st.S3(t), e.st.Bucket), e.prefix, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if len(r.Body) >= 20 {
			forbidden = append(forbidden, r.Body)
		}
	}
	checkLogs(t, p.logs.String(), forbidden)
}

// batchLines are the log messages about one batch (a flushed file, a
// merged batch of files, a dead-letter file), and the keys each must carry.
var batchLines = map[string][]string{
	"flush":                {"table", "rows", "reason", "file"},
	"flush failed":         {"table", "rows", "reason", "file"},
	"put failed; retrying": {"table", "rows", "reason", "file"},
	"loaded":               {"table", "rows", "reason", "file"},
	"dead letters written": {"rows", "reason", "file"}, // dead letters have no table
}

// checkLogs checks every JSON line of a wharf log: batch lines carry their
// keys, and no line contains any of forbidden.
func checkLogs(t *testing.T, logs string, forbidden []string) {
	t.Helper()
	seen := map[string]int{}
	for i, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line %d is not JSON: %s", i+1, line)
			continue
		}
		msg, _ := m["msg"].(string)
		if keys, ok := batchLines[msg]; ok {
			seen[msg]++
			for _, k := range keys {
				if v, ok := m[k]; !ok || v == "" {
					t.Errorf("log line %d (%s) lacks %s: %s", i+1, msg, k, line)
				}
			}
		}
		for _, f := range forbidden {
			if f != "" && strings.Contains(line, f) {
				t.Errorf("log line %d holds %.60q: %s", i+1, f, line)
			}
		}
	}
	for _, msg := range []string{"flush", "loaded", "dead letters written"} {
		if seen[msg] == 0 {
			t.Errorf("no %q line in the log", msg)
		}
	}
	t.Logf("log lines about batches: %v", seen)
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(get(t, url)), v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}

// chromium returns the Chromium to drive: WHARF_CHROMIUM or Debian's.
// `make test` installs it first (deploy/local/chromium.sh).
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("WHARF_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p != "" {
			if _, err := exec.LookPath(p); err == nil {
				return p
			}
		}
	}
	if os.Getenv("WHARF_REQUIRE_STACK") == "1" {
		t.Fatal("no Chromium: run deploy/local/chromium.sh (make test does)")
	}
	t.Skip("no Chromium: run deploy/local/chromium.sh")
	return ""
}

// screenshotDir is where the page's screenshots go: WHARF_ARTIFACTS, or
// .stack/artifacts in the repository.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("WHARF_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(stacktest.RepoRoot(), ".stack", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// renderStatus opens /status in headless Chromium, on a phone's screen and
// on a desktop's, checks that each table shows the rows /status reported,
// and saves screenshots.
func renderStatus(t *testing.T, base string, want statuspage.Data) {
	t.Helper()
	exe := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()

	dir := screenshotDir(t)
	for _, screen := range []struct {
		name          string
		width, height int64
		mobile        bool
	}{{"phone", 390, 844, true}, {"desktop", 1280, 900, false}} {
		vp := []chromedp.EmulateViewportOption{chromedp.EmulateScale(2)}
		if screen.mobile {
			vp = append(vp, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
		}
		if err := chromedp.Do(ctx,
			chromedp.EmulateViewport(screen.width, screen.height, vp...),
			chromedp.Navigate(base+"/status"),
			chromedp.WaitVisible(chromedp.CSS(`#tables .table-card`)),
		); err != nil {
			t.Fatalf("chromium (%s): %v", screen.name, err)
		}
		names := evaluate[[]string](ctx, t, `[...document.querySelectorAll('#tables .table-card')].map(c => c.dataset.table)`)
		rows := evaluate[[]string](ctx, t, `[...document.querySelectorAll('#tables .rows-hour')].map(e => e.firstChild.textContent.trim())`)
		bars := evaluate[int](ctx, t, `document.querySelectorAll('#tables svg.spark rect').length`)
		overflow := evaluate[bool](ctx, t, `document.documentElement.scrollWidth > document.documentElement.clientWidth`)
		shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("chromium (%s): screenshot: %v", screen.name, err)
		}
		path := filepath.Join(dir, "status-"+screen.name+".png")
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("status page screenshot (%s, %dx%d): %s", screen.name, screen.width, screen.height, path)
		if len(names) != len(want.Tables) {
			t.Errorf("%s: page shows tables %v, want %d", screen.name, names, len(want.Tables))
			continue
		}
		for i, ts := range want.Tables {
			// The page may be a newer snapshot than want: at least as many rows.
			got, _ := strconv.ParseInt(strings.ReplaceAll(rows[i], ",", ""), 10, 64)
			if names[i] != ts.Name || got < ts.RowsLastHour || got == 0 {
				t.Errorf("%s: table %d is %s with %q rows, want %s with %d", screen.name, i, names[i], rows[i], ts.Name, ts.RowsLastHour)
			}
		}
		if bars == 0 {
			t.Errorf("%s: no sparkline bars", screen.name)
		}
		if screen.mobile && overflow {
			t.Errorf("%s: the page scrolls sideways on a %d px wide screen", screen.name, screen.width)
		}
	}
}

func evaluate[T any](ctx context.Context, t *testing.T, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("chromium: %s: %v", js, err)
	}
	return v
}
