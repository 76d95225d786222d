package backfill

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Write writes what the run of table did, as `wharf backfill` prints it;
// scanOnly: what a scan that wrote nothing read.
func (s Summary) Write(w io.Writer, table string, scanOnly bool) {
	secs := max(s.Elapsed.Seconds(), 0.001)
	what := "backfill"
	if scanOnly {
		what = "scan"
	}
	fmt.Fprintf(w, "%s of %s, job %s: %d of %d ranges done\n", what, table, s.Job, s.RangesDone, s.Ranges)
	fmt.Fprintf(w, "  documents read  %d (%.0f/s)\n", s.Read, float64(s.Read)/secs)
	if !scanOnly {
		fmt.Fprintf(w, "  rows            %s\n", counts(s.Rows))
		fmt.Fprintf(w, "  dead letters    %s\n", counts(s.DeadLetters))
		fmt.Fprintf(w, "  skipped         %s\n", counts(s.Skipped))
	}
	fmt.Fprintf(w, "  elapsed         %s\n", s.Elapsed.Round(time.Millisecond))
}

func counts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// Write writes the audit as `wharf audit` prints it: the totals and the
// hours that differ (the first 50 of more than 60), or with asJSON the
// hours as JSON lines.
func (a Audit) Write(w io.Writer, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, d := range a.Diffs {
			enc.Encode(d)
		}
		return
	}
	fmt.Fprintf(w, "audit of %s from %s to %s: Mongo %d documents, warehouse %d rows (Mongo counted by %s)\n",
		a.Table, a.From.Format(time.RFC3339), a.To.Format(time.RFC3339), a.Mongo, a.Warehouse, a.Method)
	if len(a.Diffs) == 0 {
		fmt.Fprintln(w, "  every hour matches")
		return
	}
	fmt.Fprintf(w, "  %d hours differ:\n  %-20s %9s %9s %9s\n", len(a.Diffs), "hour (UTC)", "mongo", "warehouse", "missing")
	for i, d := range a.Diffs {
		if i == 50 && len(a.Diffs) > 60 {
			fmt.Fprintf(w, "  … and %d more\n", len(a.Diffs)-50)
			break
		}
		fmt.Fprintf(w, "  %-20s %9d %9d %9d\n", d.Hour.Format("2006-01-02T15:04Z"), d.Mongo, d.Warehouse, d.Mongo-d.Warehouse)
	}
}
