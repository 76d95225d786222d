package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wharfdata/wharf/internal/stacktest"
)

func TestMain(m *testing.M) { stacktest.VerifyNoLeaks(m) }

func TestSummarize(t *testing.T) {
	xs := make([]float64, 0, 100)
	for i := 100; i >= 1; i-- {
		xs = append(xs, float64(i))
	}
	got := summarize(xs)
	want := summary{N: 100, Min: 1, P50: 50, P90: 90, P99: 99, Max: 100}
	if got != want {
		t.Fatalf("summarize = %+v, want %+v", got, want)
	}
	if got := summarize(nil); got != (summary{}) {
		t.Fatalf("summarize(nil) = %+v", got)
	}
	if got := summarize([]float64{7}); got.P99 != 7 || got.P50 != 7 {
		t.Fatalf("summarize one = %+v", got)
	}
}

func TestScrapeAndLabel(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `# HELP wharf_sqs_calls_total SQS API calls by kind.
# TYPE wharf_sqs_calls_total counter
wharf_sqs_calls_total{call="delete"} 2001
wharf_sqs_calls_total{call="receive"} 2082
wharf_deleted_messages_total 20000
wharf_flushes_total{reason="age",table="orders"} 3
`)
	}))
	defer srv.Close()
	m, err := scrape(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if m["wharf_deleted_messages_total"] != 20000 || m[`wharf_sqs_calls_total{call="receive"}`] != 2082 {
		t.Fatalf("scrape = %v", m)
	}
	for _, c := range []struct {
		series, metric, label, want string
		ok                          bool
	}{
		{`wharf_sqs_calls_total{call="delete"}`, "wharf_sqs_calls_total", "call", "delete", true},
		{`wharf_flushes_total{reason="age",table="orders"}`, "wharf_flushes_total", "reason", "age", true},
		{`wharf_flushes_total{reason="age",table="orders"}`, "wharf_flushes_total", "table", "orders", true},
		{`wharf_flushes_total{reason="age"}`, "wharf_sqs_calls_total", "call", "", false},
		{`wharf_deleted_messages_total`, "wharf_deleted_messages_total", "call", "", false},
	} {
		got, ok := label(c.series, c.metric, c.label)
		if got != c.want || ok != c.ok {
			t.Errorf("label(%s, %s, %s) = %q, %v; want %q, %v", c.series, c.metric, c.label, got, ok, c.want, c.ok)
		}
	}
}

func TestParsePids(t *testing.T) {
	got, err := parsePids("fauxqs=12,postgres=7")
	if err != nil || got["fauxqs"] != 12 || got["postgres"] != 7 || len(got) != 2 {
		t.Fatalf("parsePids = %v, %v", got, err)
	}
	for _, bad := range []string{"fauxqs", "x=0", "x=y", "=3,"} {
		if _, err := parsePids(bad); err == nil {
			t.Errorf("parsePids(%q) accepted", bad)
		}
	}
}

func TestProc(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Fatalf("wharf-bench reads /proc (Linux only): %v", err)
	}
	if s, err := treeCPU(os.Getpid()); err != nil || s < 0 {
		t.Fatalf("treeCPU = %v, %v", s, err)
	}
	if kib, err := memKiB(os.Getpid(), "VmHWM"); err != nil || kib <= 0 {
		t.Fatalf("memKiB = %v, %v", kib, err)
	}
	if s, err := machineCPU(); err != nil || s <= 0 {
		t.Fatalf("machineCPU = %v, %v", s, err)
	}
}

func TestServeLog(t *testing.T) {
	log := strings.Join([]string{
		`{"level":"info","ts":"2026-11-25T18:08:51.120Z","msg":"flush","component":"batcher","table":"page_views","file":"p/page_views/dt=2026-11-25/A.parquet"}`,
		`{"level":"info","ts":"2026-11-25T18:08:55.500Z","msg":"loaded","component":"warehouse","table":"page_views","files":1}`,
		`{"level":"info","ts":"2026-11-25T18:09:05.800Z","msg":"loaded","component":"warehouse","table":"page_views","files":1}`,
		`SDK 2026/11/25 18:08:54 WARN something that is not JSON`,
	}, "\n")
	name := t.TempDir() + "/serve.log"
	if err := os.WriteFile(name, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := readServeLog(name)
	if err != nil {
		t.Fatal(err)
	}
	at := func(v string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	if got := s.put["p/page_views/dt=2026-11-25/A.parquet"]; !got.Equal(at("2026-11-25T18:08:51.120Z")) {
		t.Fatalf("put = %v", got)
	}
	for _, c := range []struct{ began, want string }{
		{"2026-11-25T18:08:55.100Z", "2026-11-25T18:08:55.500Z"},
		{"2026-11-25T18:08:55.5004Z", "2026-11-25T18:08:55.500Z"}, // the log's ms precision
		{"2026-11-25T18:09:00Z", "2026-11-25T18:09:05.800Z"},
	} {
		if got := s.commitAfter("page_views", at(c.began)); !got.Equal(at(c.want)) {
			t.Errorf("commitAfter(%s) = %v, want %s", c.began, got, c.want)
		}
	}
	if got := s.commitAfter("page_views", at("2026-11-25T18:10:00Z")); !got.IsZero() {
		t.Errorf("commitAfter after the last load = %v", got)
	}
}
