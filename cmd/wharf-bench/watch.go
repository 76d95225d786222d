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

// cmdWatch waits until a warehouse schema holds -want rows, polling its
// tables and `wharf serve`'s /metrics every -interval, and reports when the
// queue was drained (wharf_deleted_messages_total reached -messages) and
// when the last row arrived, the SQS calls serve made, its peak RSS and the
// CPU it and the stack used. It fails if serve exits first.
func cmdWatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("watch", stderr)
	dsn := fs.String("dsn", "", "warehouse DSN (required)")
	dbSchema := fs.String("schema", "", "warehouse schema whose tables to count (required)")
	want := fs.Int64("want", 0, "rows expected across the schema's tables (required)")
	messages := fs.Int64("messages", 0, "messages serve must delete")
	metricsURL := fs.String("metrics", "", "serve's /metrics URL")
	since := fs.Int64("since", 0, "when serve started, Unix nanoseconds (default: now)")
	pid := fs.Int("pid", 0, "serve's process id (for liveness, RSS and CPU)")
	interval := fs.Duration("interval", 500*time.Millisecond, "poll interval")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after this long")
	stackPids := fs.String("cpu-pids", "", "name=pid,… process trees whose CPU to report")
	logPath := fs.String("log", "", "also write the progress lines to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dsn == "" || *dbSchema == "" || *want <= 0 {
		return errors.New("watch: -dsn, -schema and -want are required")
	}
	progress := stderr
	if *logPath != "" {
		f, err := os.Create(*logPath)
		if err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		defer f.Close()
		progress = io.MultiWriter(stderr, f)
	}
	pids, err := parsePids(*stackPids)
	if err != nil {
		return fmt.Errorf("watch: -cpu-pids: %w", err)
	}
	start := time.Now()
	if *since > 0 {
		start = time.Unix(0, *since)
	}
	cpu := newCPUMeter(pids)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	conn, err := newPG(ctx, *dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	count, err := countQuery(ctx, conn, *dbSchema)
	if err != nil {
		return err
	}

	res := watchResult{Want: *want, Messages: *messages}
	var rssMax int64
	scraped := false
	lastLog := time.Time{}
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		if *pid > 0 {
			if syscall.Kill(*pid, 0) != nil {
				return fmt.Errorf("watch: serve (pid %d) exited after %s", *pid, time.Since(start).Round(time.Second))
			}
			if kib, err := memKiB(*pid, "VmRSS"); err == nil {
				rssMax = max(rssMax, kib)
			}
		}
		var deleted, held float64
		if *metricsURL != "" {
			m, err := scrape(ctx, *metricsURL)
			switch {
			case err != nil && !scraped && time.Since(start) < time.Minute:
				// serve is still starting
			case err != nil:
				return err
			default:
				scraped = true
			}
			deleted = m["wharf_deleted_messages_total"]
			held = m["wharf_sqs_held_messages"]
			res.HeldMax = max(res.HeldMax, held)
			if res.Drained99S == 0 && *messages > 0 && deleted >= 0.99*float64(*messages) {
				res.Drained99S = round(time.Since(start).Seconds(), 3)
			}
			if res.DrainedS == 0 && *messages > 0 && deleted >= float64(*messages) {
				res.DrainedS = round(time.Since(start).Seconds(), 3)
			}
		}
		if err := conn.QueryRow(ctx, count).Scan(&res.Rows); err != nil {
			return fmt.Errorf("watch: count rows: %w", err)
		}
		if res.Loaded99S == 0 && res.Rows*100 >= *want*99 {
			res.Loaded99S = round(time.Since(start).Seconds(), 3)
		}
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			fmt.Fprintf(progress, "  watch: %6.1fs  deleted %8.0f / %d  rows %9d / %d  held %6.0f  rss %5.0f MiB\n",
				time.Since(start).Seconds(), deleted, *messages, res.Rows, *want, held, float64(rssMax)/1024)
		}
		if res.Rows >= *want {
			res.LoadedS = round(time.Since(start).Seconds(), 3)
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("watch: %d of %d rows after %s: %w", res.Rows, *want, time.Since(start).Round(time.Second), ctx.Err())
		case <-tick.C:
		}
	}

	if *messages > 0 {
		res.EventsPerS = round(float64(*messages)/res.LoadedS, 1)
		if res.DrainedS > 0 {
			res.DrainPerS = round(float64(*messages)/res.DrainedS, 1)
		}
	}
	if *metricsURL != "" {
		m, err := scrape(ctx, *metricsURL)
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
		if *messages > 0 {
			res.SQSCallsPer1 = round(total/float64(*messages)*1000, 1)
		}
	}
	if *pid > 0 {
		if kib, err := memKiB(*pid, "VmHWM"); err == nil {
			res.RSSPeakMiB = round(float64(kib)/1024, 1)
		}
		res.RSSMaxMiB = round(float64(rssMax)/1024, 1)
		if s, err := treeCPU(*pid); err == nil {
			res.ServeCPU = round(s, 2)
		}
	}
	res.StackCPU = cpu.stop()
	return printJSON(stdout, res)
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
