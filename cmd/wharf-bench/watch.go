package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// watchResult is what `watch` prints. Times are seconds from -since (when
// `wharf serve` was started).
type watchResult struct {
	Rows         int64              `json:"rows"`
	Want         int64              `json:"want_rows"`
	Messages     int64              `json:"messages"`
	DrainedS     float64            `json:"drained_s"`   // every message deleted: rows durable in S3 (and Mongo)
	Drained99S   float64            `json:"drained99_s"` // 99% of the messages deleted
	LoadedS      float64            `json:"loaded_s"`    // every row in the warehouse
	Loaded99S    float64            `json:"loaded99_s"`  // 99% of the rows in the warehouse
	EventsPerS   float64            `json:"events_per_s"`
	DrainPerS    float64            `json:"drain_events_per_s"`
	SQSCalls     map[string]float64 `json:"sqs_calls"`
	SQSCallsPer1 float64            `json:"sqs_calls_per_1k_events"`
	RSSPeakMiB   float64            `json:"rss_peak_mib"` // VmHWM of the watched process
	RSSMaxMiB    float64            `json:"rss_max_sampled_mib"`
	HeldMax      float64            `json:"held_max"` // most messages serve held at once (wharf_sqs_held_messages), as sampled
	ServeCPU     float64            `json:"serve_cpu_s"`
	StackCPU     map[string]float64 `json:"cpu_s"`
	Flushes      map[string]float64 `json:"flushes,omitempty"` // by reason
}

// watchFlags are the flags of watch.
type watchFlags struct {
	dsn, schema, metrics, cpuPids, log string
	want, messages, since              int64
	pid                                int
	interval, timeout                  time.Duration
}

func parseWatchFlags(args []string, stderr io.Writer) (watchFlags, error) {
	var f watchFlags
	fs := newFlags("watch", stderr)
	fs.StringVar(&f.dsn, "dsn", "", "warehouse DSN (required)")
	fs.StringVar(&f.schema, "schema", "", "warehouse schema whose tables to count (required)")
	fs.Int64Var(&f.want, "want", 0, "rows expected across the schema's tables (required)")
	fs.Int64Var(&f.messages, "messages", 0, "messages serve must delete")
	fs.StringVar(&f.metrics, "metrics", "", "serve's /metrics URL")
	fs.Int64Var(&f.since, "since", 0, "when serve started, Unix nanoseconds (default: now)")
	fs.IntVar(&f.pid, "pid", 0, "serve's process id (for liveness, RSS and CPU)")
	fs.DurationVar(&f.interval, "interval", 500*time.Millisecond, "poll interval")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Minute, "give up after this long")
	fs.StringVar(&f.cpuPids, "cpu-pids", "", "name=pid,… process trees whose CPU to report")
	fs.StringVar(&f.log, "log", "", "also write the progress lines to this file")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if f.dsn == "" || f.schema == "" || f.want <= 0 {
		return f, errors.New("watch: -dsn, -schema and -want are required")
	}
	return f, nil
}

// cmdWatch waits until a warehouse schema holds -want rows, polling its
// tables and `wharf serve`'s /metrics every -interval, and reports when the
// queue was drained (wharf_deleted_messages_total reached -messages) and
// when the last row arrived, the SQS calls serve made, its peak RSS and the
// CPU it and the stack used. It fails if serve exits first.
func cmdWatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseWatchFlags(args, stderr)
	if err != nil {
		return err
	}
	w := &watcher{f: f, progress: stderr, start: time.Now(), res: watchResult{Want: f.want, Messages: f.messages}}
	if f.log != "" {
		file, err := os.Create(f.log)
		if err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		defer file.Close()
		w.progress = io.MultiWriter(stderr, file)
	}
	pids, err := parsePids(f.cpuPids)
	if err != nil {
		return fmt.Errorf("watch: -cpu-pids: %w", err)
	}
	if f.since > 0 {
		w.start = time.Unix(0, f.since)
	}
	cpu := newCPUMeter(pids)
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if w.conn, err = newPG(ctx, f.dsn); err != nil {
		return err
	}
	defer w.conn.Close(context.WithoutCancel(ctx))
	if w.count, err = countQuery(ctx, w.conn, f.schema); err != nil {
		return err
	}
	tick := time.NewTicker(f.interval)
	defer tick.Stop()
	for {
		if done, err := w.poll(ctx); err != nil || done {
			if err != nil {
				return err
			}
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("watch: %d of %d rows after %s: %w", w.res.Rows, f.want, time.Since(w.start).Round(time.Second), ctx.Err())
		case <-tick.C:
		}
	}
	if err := w.finish(ctx); err != nil {
		return err
	}
	w.res.StackCPU = cpu.stop()
	return printJSON(stdout, w.res)
}

// watcher polls serve and the warehouse until the rows are in.
type watcher struct {
	f        watchFlags
	progress io.Writer
	start    time.Time
	conn     *pgx.Conn
	count    string // the query counting the rows
	res      watchResult
	rssMax   int64 // KiB
	scraped  bool  // /metrics answered once
	lastLog  time.Time
}

// poll samples serve and counts the rows once; done when every row is in.
func (w *watcher) poll(ctx context.Context) (done bool, err error) {
	f, res := w.f, &w.res
	if f.pid > 0 {
		if syscall.Kill(f.pid, 0) != nil {
			return false, fmt.Errorf("watch: serve (pid %d) exited after %s", f.pid, time.Since(w.start).Round(time.Second))
		}
		if kib, err := memKiB(f.pid, "VmRSS"); err == nil {
			w.rssMax = max(w.rssMax, kib)
		}
	}
	var deleted, held float64
	if f.metrics != "" {
		m, err := scrape(ctx, f.metrics)
		switch {
		case err != nil && !w.scraped && time.Since(w.start) < time.Minute:
			// serve is still starting
		case err != nil:
			return false, err
		default:
			w.scraped = true
		}
		deleted = m["wharf_deleted_messages_total"]
		held = m["wharf_sqs_held_messages"]
		res.HeldMax = max(res.HeldMax, held)
		if res.Drained99S == 0 && f.messages > 0 && deleted >= 0.99*float64(f.messages) {
			res.Drained99S = round(time.Since(w.start).Seconds(), 3)
		}
		if res.DrainedS == 0 && f.messages > 0 && deleted >= float64(f.messages) {
			res.DrainedS = round(time.Since(w.start).Seconds(), 3)
		}
	}
	if err := w.conn.QueryRow(ctx, w.count).Scan(&res.Rows); err != nil {
		return false, fmt.Errorf("watch: count rows: %w", err)
	}
	if res.Loaded99S == 0 && res.Rows*100 >= f.want*99 {
		res.Loaded99S = round(time.Since(w.start).Seconds(), 3)
	}
	if time.Since(w.lastLog) >= 5*time.Second {
		w.lastLog = time.Now()
		fmt.Fprintf(w.progress, "  watch: %6.1fs  deleted %8.0f / %d  rows %9d / %d  held %6.0f  rss %5.0f MiB\n",
			time.Since(w.start).Seconds(), deleted, f.messages, res.Rows, f.want, held, float64(w.rssMax)/1024)
	}
	if res.Rows >= f.want {
		res.LoadedS = round(time.Since(w.start).Seconds(), 3)
		return true, nil
	}
	return false, nil
}

// finish adds the rates, serve's SQS calls and flushes, and its memory and
// CPU to the result.
func (w *watcher) finish(ctx context.Context) error {
	f, res := w.f, &w.res
	if f.messages > 0 {
		res.EventsPerS = round(float64(f.messages)/res.LoadedS, 1)
		if res.DrainedS > 0 {
			res.DrainPerS = round(float64(f.messages)/res.DrainedS, 1)
		}
	}
	if f.metrics != "" {
		m, err := scrape(ctx, f.metrics)
		if err != nil {
			return err
		}
		res.SQSCalls, res.Flushes = map[string]float64{}, map[string]float64{}
		var total float64
		for k, v := range m {
			if call, ok := label(k, "wharf_sqs_calls_total", "call"); ok {
				res.SQSCalls[call] = v
				total += v
			}
			if reason, ok := label(k, "wharf_flushes_total", "reason"); ok {
				res.Flushes[reason] += v
			}
		}
		if f.messages > 0 {
			res.SQSCallsPer1 = round(total/float64(f.messages)*1000, 1)
		}
	}
	if f.pid > 0 {
		if kib, err := memKiB(f.pid, "VmHWM"); err == nil {
			res.RSSPeakMiB = round(float64(kib)/1024, 1)
		}
		res.RSSMaxMiB = round(float64(w.rssMax)/1024, 1)
		if s, err := treeCPU(f.pid); err == nil {
			res.ServeCPU = round(s, 2)
		}
	}
	return nil
}

// countQuery returns a query summing the rows of every table of dbSchema
// except wharf's own.
func countQuery(ctx context.Context, conn *pgx.Conn, dbSchema string) (string, error) {
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables
WHERE table_schema = $1 AND table_type = 'BASE TABLE' AND table_name NOT LIKE 'wharf\_%' ORDER BY 1`, dbSchema)
	if err != nil {
		return "", fmt.Errorf("watch: list tables of %s: %w", dbSchema, err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("watch: list tables of %s: %w", dbSchema, err)
	}
	if len(tables) == 0 {
		return "", fmt.Errorf("watch: schema %s has no tables (run wharf schema apply)", dbSchema)
	}
	parts := make([]string, len(tables))
	for i, t := range tables {
		parts[i] = "(SELECT count(*) FROM " + pgx.Identifier{dbSchema, t}.Sanitize() + ")"
	}
	return "SELECT " + strings.Join(parts, " + "), nil
}

// scrape reads a Prometheus text exposition into series → value, summing
// nothing: the key is the series as written, such as
// wharf_sqs_calls_total{call="receive"}.
func scrape(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
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
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	return out, nil
}

// label returns the value of label name in a series of metric, and false
// when the series is of another metric or lacks the label.
func label(series, metric, name string) (string, bool) {
	rest, ok := strings.CutPrefix(series, metric+"{")
	if !ok {
		return "", false
	}
	for _, kv := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k == name {
			return strings.Trim(v, `"`), true
		}
	}
	return "", false
}
