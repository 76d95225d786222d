package statuspage

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"
)

// sparkline draws series as an inline SVG bar chart.
func sparkline(series []int64) template.HTML {
	const w, h = 180, 36
	var peak int64
	for _, v := range series {
		peak = max(peak, v)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="spark" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="rows per bucket over the last hour, peak %d">`, w, h, w, h, peak)
	fmt.Fprintf(&b, `<line x1="0" y1="%d" x2="%d" y2="%d" class="axis"/>`, h-1, w, h-1)
	if n := len(series); n > 0 {
		bw := float64(w) / float64(n)
		for i, v := range series {
			if v == 0 {
				continue
			}
			bh := math.Max(float64(v)/float64(peak)*float64(h-2), 1.5)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%d rows</title></rect>`,
				float64(i)*bw+0.5, float64(h-1)-bh, math.Max(bw-1, 1), bh, v)
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// ago writes a duration as a person reads it: 42s, 7m, 3h 5m, 2d.
func ago(secs float64) string {
	d := time.Duration(secs * float64(time.Second))
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// count writes an integer with thousands separators.
func count(v any) string {
	s := fmt.Sprint(v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

var pageTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"spark":    sparkline,
	"ago":      ago,
	"count":    count,
	"since":    func(now, t time.Time) string { return ago(now.Sub(t).Seconds()) },
	"clock":    func(t time.Time) string { return t.UTC().Format("15:04:05") },
	"stamp":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"deref":    func(p *float64) float64 { return *p },
	"derefInt": func(p *int) int { return *p },
}).Parse(pageHTML))

const pageHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30">
<title>wharf status</title>
<style>
:root { --ok: #1a7f37; --late: #cf222e; --none: #9a6700; --muted: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; padding: 12px; color: #1f2328; background: #f6f8fa; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 20px 0 8px; }
.muted { color: var(--muted); font-size: 13px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; margin-bottom: 10px; }
.grid { display: grid; gap: 10px; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); }
.table-card h3 { font-size: 16px; margin: 0 0 6px; display: flex; justify-content: space-between; align-items: center; gap: 8px; word-break: break-all; }
.badge { font-size: 12px; font-weight: 600; padding: 2px 8px; border-radius: 10px; color: #fff; white-space: nowrap; }
.ok { background: var(--ok); } .late { background: var(--late); } .none { background: var(--none); }
dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; margin: 0 0 6px; font-size: 14px; }
dt { color: var(--muted); } dd { margin: 0; font-variant-numeric: tabular-nums; }
.spark rect { fill: #0969da; } .spark .axis { stroke: var(--line); stroke-width: 1; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
td.wrap { white-space: normal; word-break: break-word; min-width: 200px; }
.alert { background: #ffebe9; border-color: #ff8182; }
.stats { display: flex; flex-wrap: wrap; gap: 6px 18px; font-size: 14px; }
.stats b { font-variant-numeric: tabular-nums; }
</style>
</head>
<body>
<h1>wharf status</h1>
<div class="muted">{{stamp .GeneratedAt}} · freshness target {{.FreshnessTarget}} · refreshes every 30 s · <a href="?format=json">JSON</a> · <a href="/metrics">metrics</a></div>
{{if .Alerts}}<div class="card alert" id="alerts"><b>Needs attention</b><ul>{{range .Alerts}}<li>{{.}}</li>{{end}}</ul></div>{{end}}

<h2>Tables</h2>
<div class="grid" id="tables">
{{$now := .GeneratedAt}}{{$bucket := .BucketSeconds}}
{{range .Tables}}<div class="card table-card" data-table="{{.Name}}">
<h3><span>{{.Name}}</span><span class="badge {{.State}}">{{if eq .State "ok"}}fresh{{else if eq .State "late"}}late{{else}}no load{{end}}</span></h3>
<dl>
<dt>last load</dt><dd class="last-load">{{if .LastLoad}}{{ago (deref .FreshnessSeconds)}} ago <span class="muted">({{clock .LastLoad}})</span>{{else}}none in the last day{{end}}</dd>
<dt>rows, last hour</dt><dd class="rows-hour">{{count .RowsLastHour}} <span class="muted">in {{count .FilesLastHour}} files</span></dd>
{{if .NewestEvent}}<dt>newest event</dt><dd>{{since $now .NewestEvent}} old</dd>{{end}}
{{with .PendingFiles}}<dt>files pending</dt><dd>{{count (derefInt .)}}</dd>{{end}}
</dl>
{{spark .Series}}
<div class="muted">rows loaded per {{$bucket}} s, last hour</div>
</div>
{{end}}
</div>

<h2>Queue and this process</h2>
<div class="card stats" id="queue">
{{if .Queue}}<span>backlog <b class="backlog">{{count .Queue.Visible}}</b></span><span>in flight <b>{{count .Queue.InFlight}}</b></span><span>delayed <b>{{count .Queue.Delayed}}</b></span>{{with .QueueReadAt}}<span class="muted">read {{clock .}}</span>{{end}}{{else}}<span>queue depth unknown: {{.QueueError}}</span>{{end}}
<span>held here <b>{{count .MessagesHeld}}</b></span>
<span>oldest held <b>{{.Process.OldestHeldSecs}} s</b></span>
<span>buffered rows <b>{{count .Batcher.Rows}}</b></span>
<span>received <b>{{count .Process.MessagesReceived}}</b></span>
<span>deleted <b>{{count .Process.MessagesDeleted}}</b></span>
<span>rows to S3 <b>{{count .Process.RowsWritten}}</b> in <b>{{count .Process.FilesWritten}}</b> files</span>
<span>rows loaded <b>{{count .Process.RowsLoaded}}</b></span>
</div>

<h2>Dead letters <span class="muted">(this process, since start)</span></h2>
<div class="card" id="deadletters">
{{if .DeadLetters}}<table><tr><th>reason</th><th>messages</th></tr>
{{range .DeadLetters}}<tr><td>{{.Reason}}</td><td>{{count .Count}}</td></tr>{{end}}</table>
{{else}}<span class="muted">none</span>{{end}}
</div>

{{if .Quarantined}}<h2>Quarantined files</h2>
<div class="card scroll" id="quarantine">
<table><tr><th>since</th><th>table</th><th>file</th><th>reason</th></tr>
{{range .Quarantined}}<tr><td>{{clock .At}}</td><td>{{.Table}}</td><td class="wrap">{{.Key}}</td><td class="wrap">{{.Reason}}</td></tr>{{end}}</table>
</div>
{{end}}
<h2>Recent loads <span class="muted">(this process)</span></h2>
<div class="card scroll" id="loads">
{{if .RecentLoads}}<table><tr><th>time</th><th>table</th><th>files</th><th>rows added</th><th>rows read</th><th>took</th><th>lag</th><th>error</th></tr>
{{range .RecentLoads}}<tr><td>{{clock .At}}</td><td>{{.Table}}</td><td>{{.Files}}</td><td>{{count .Rows}}</td><td>{{count .RowsIn}}</td><td>{{.DurationMS}} ms</td><td>{{if .LagSeconds}}{{ago .LagSeconds}}{{end}}</td><td class="wrap">{{.Error}}</td></tr>{{end}}</table>
{{else}}<span class="muted">none yet</span>{{end}}
</div>

<h2>Recent warnings and errors <span class="muted">(this process)</span></h2>
<div class="card scroll" id="errors">
{{if .RecentErrors}}<table><tr><th>time</th><th>level</th><th>what</th><th>context</th><th>error</th></tr>
{{range .RecentErrors}}<tr><td>{{clock .At}}</td><td>{{.Level}}</td><td class="wrap">{{.Message}}</td><td class="wrap">{{range $i, $f := .Fields}}{{if $i}} {{end}}<span class="muted">{{$f.Key}}=</span>{{$f.Value}}{{end}}</td><td class="wrap">{{.Error}}</td></tr>{{end}}</table>
{{else}}<span class="muted">none</span>{{end}}
</div>
{{if .LedgerError}}<p class="muted">ledger: {{.LedgerError}}</p>{{end}}
</body>
</html>
`
