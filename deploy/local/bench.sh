#!/usr/bin/env bash
# bench.sh — `make bench`: the README's benchmarks on the local stack, printed
# as a table and as one JSON line per figure: {"bench": NAME, "value": X, "unit": U}.
#
#   cpu    decode + flatten + Parquet encode on one core (go test -bench ./bench/),
#          wharf's path and the naive encoding/json one in the same run
#   e2e    `wharf serve` draining a pre-loaded backlog (Mongo on) until every row
#          is in the warehouse; SQS calls per 1,000 events from its /metrics
#   bare   the same backlog drained by receive → InsertMany → delete, nothing else
#   rss    peak RSS of `wharf serve` draining a large backlog
#   fresh  event time → S3 and → warehouse latency at a steady 1,000 events/s
#
# Every run gets fresh queues, S3 prefixes, Mongo databases and warehouse
# schemas, deleted at the end (BENCH_KEEP=1 keeps all but the queues). Logs
# and raw results go to .stack/bench/RUN/ (.stack/bench/latest points there).
#
# Knobs (environment):
#   BENCH_ONLY           phases to run, comma-separated (default cpu,e2e,bare,rss,fresh)
#   BENCH_CPU_COUNT      go test -count for the CPU benchmarks (default 3; medians reported)
#   BENCH_E2E_EVENTS     backlog of the e2e and bare runs (default 200000)
#   BENCH_RSS_EVENTS     backlog of the RSS run (default 1000000)
#   BENCH_RSS_MONGO      1 to write raw events to Mongo in the RSS run (default 0: off,
#                        the faster drain, so more is in flight; on takes ~10 min per 1M here)
#   BENCH_RSS_KEEP       in the RSS run, feed the backlog while serve drains it, keeping at most
#                        this many messages waiting (default 50000); 0 pre-loads it all. fauxqs
#                        slows to a few hundred receives/s with a million messages waiting
#   BENCH_FRESH_RATE     events/s of the freshness run (default 1000)
#   BENCH_FRESH_SECONDS  how long it sends (default 60)
#   BENCH_TIMEOUT        seconds any one drain may take (default 1800)
#   BENCH_VISIBILITY     visibility timeout of the fresh queues, seconds (default 120)
#   BENCH_KEEP           1 to keep the S3 files, Mongo databases and warehouse schemas
set -euo pipefail
shopt -s inherit_errexit

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO="$(cd "$HERE/../.." && pwd -P)"
cd "$REPO"

ONLY=",${BENCH_ONLY:-cpu,e2e,bare,rss,fresh},"
CPU_COUNT="${BENCH_CPU_COUNT:-3}"
E2E_N="${BENCH_E2E_EVENTS:-200000}"
RSS_N="${BENCH_RSS_EVENTS:-1000000}"
RSS_MONGO="${BENCH_RSS_MONGO:-0}"
RSS_KEEP="${BENCH_RSS_KEEP:-50000}"
FRESH_RATE="${BENCH_FRESH_RATE:-1000}"
FRESH_SECONDS="${BENCH_FRESH_SECONDS:-60}"
TIMEOUT="${BENCH_TIMEOUT:-1800}"
VISIBILITY="${BENCH_VISIBILITY:-120}"
KEEP="${BENCH_KEEP:-0}"

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
	printf 'bench: ERROR: %s\n' "$*" >&2
	exit 1
}
trap 'rc=$?; log "failed (exit $rc) at line $LINENO: $BASH_COMMAND"' ERR
want() { [[ $ONLY == *",$1,"* ]]; }

[[ -s .stack/env ]] || die ".stack/env is missing: run make stack-up first"
set -a
. .stack/env
set +a
for v in AWS_ENDPOINT_URL WHARF_S3_BUCKET WHARF_MONGO_URI WHARF_WAREHOUSE_DSN; do
	[[ -n ${!v:-} ]] || die "$v is not set by .stack/env"
done

RUN="$(date -u +%Y%m%dt%H%M%S)"
ID="bench_${RUN}_$$"  # a lower-case identifier: warehouse schemas, Mongo databases
OUT=".stack/bench/$RUN"
mkdir -p "$OUT" .stack/bin
ln -sfn "$RUN" .stack/bench/latest
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
: >"$OUT/notes.jsonl"
CFG=deploy/local/wharf.yaml
WHARF=.stack/bin/wharf
WB=.stack/bin/wharf-bench
T_START=$(date +%s)

# ------------------------------------------------------------ clean-up ---

SERVE_PID=""
QUEUES=() PREFIXES=() DBS=() SCHEMAS=()

# run CMD...: run CMD in the background and wait for it. Bash runs a trap
# only once a foreground command has ended, but `wait` returns at once on a
# signal: so an interrupted benchmark stops at once and cleans up.
run() {
	local rc=0
	"$@" <&0 & # <&0: a background command's stdin is /dev/null unless redirected
	wait $! || rc=$?
	return $rc
}

# stop_serve: SIGTERM wharf serve, wait for its drain, SIGKILL after 60 s.
# Returns serve's exit code.
stop_serve() {
	[[ -n $SERVE_PID ]] || return 0
	local pid=$SERVE_PID rc=0
	SERVE_PID=""
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 600); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "wharf serve (pid $pid) still running 60 s after SIGTERM: SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || rc=$?
	return $rc
}

cleanup() {
	local rc=$?
	trap - ERR
	set +e
	stop_serve
	local jobs # this script's other background jobs that still run
	jobs=$(jobs -p)
	if [[ -n $jobs ]]; then
		kill -TERM $jobs 2>/dev/null
		wait $jobs 2>/dev/null
	fi
	local q p
	for q in "${QUEUES[@]}"; do $WB cleanup -queue-url "$q" >/dev/null 2>>"$OUT/cleanup.log"; done
	if [[ $KEEP == 1 ]]; then
		((${#SCHEMAS[@]})) && log "kept: warehouse schemas ${SCHEMAS[*]}, Mongo databases ${DBS[*]}, S3 prefixes ${PREFIXES[*]}"
	else
		for p in "${PREFIXES[@]}"; do $WB cleanup -bucket "$WHARF_S3_BUCKET" -prefix "$p" -path-style >/dev/null 2>>"$OUT/cleanup.log"; done
		for p in "${DBS[@]}"; do $WB cleanup -mongo "$WHARF_MONGO_URI" -mongo-db "$p" >/dev/null 2>>"$OUT/cleanup.log"; done
		for p in "${SCHEMAS[@]}"; do $WB cleanup -dsn "$WHARF_WAREHOUSE_DSN" -schema "$p" >/dev/null 2>>"$OUT/cleanup.log"; done
	fi
	rm -f "$OUT"/*-events.jsonl # the generated backlogs: 60 MB per 200,000 events
	[[ -s $OUT/cleanup.log ]] && log "clean-up had errors: see $OUT/cleanup.log"
	((rc)) && log "logs: $OUT"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------- helpers ---

# jget FILE PATH: a value of the JSON object in FILE, by dotted path.
jget() {
	node -e 'let v=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));for(const k of process.argv[2].split("."))v=v==null?undefined:v[k];if(v===undefined)process.exit(3);console.log(typeof v==="object"?JSON.stringify(v):v)' "$1" "$2" ||
		die "$1 has no $2"
}

# manifest_rows FILE: total rows the generator's manifest expects.
manifest_rows() {
	node -e 'const m=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(Object.values(m.rows).reduce((a,b)=>a+b,0))' "$1"
}

# calc EXPR: floating-point arithmetic.
calc() { awk "BEGIN { printf \"%.6g\", $1 }"; }

# emit NAME VALUE UNIT [EXTRA_JSON_FIELDS]: record one figure.
emit() {
	printf '{"bench": "%s", "value": %s, "unit": "%s"%s}\n' "$1" "$2" "$3" "${4:+, $4}" >>"$RESULTS"
}

# note PHASE KEY VALUE: a fact about a phase for the report (.stack/bench/RUN/notes.jsonl).
note() { printf '{"phase": "%s", "key": "%s", "value": "%s"}\n' "$1" "$2" "$3" >>"$OUT/notes.jsonl"; }

# loadavg: the 1-minute load average (2 cores here: above 2 means waiting).
loadavg() { cut -d' ' -f1 /proc/loadavg; }

# busy PHASE: warn when other work already keeps the cores busy.
busy() {
	local l
	l=$(loadavg)
	note "$1" load_before "$l"
	if awk -v l="$l" -v n="$(nproc)" 'BEGIN { exit !(l > n) }'; then
		log "WARNING: load average $l on $(nproc) cores before $1: other work competes for the CPU, figures will be low"
	fi
}

# cut_responses LOG: SQS/S3 responses the AWS SDK saw cut off by a closed
# connection. A cut ReceiveMessage is retried by the SDK, and the messages
# of the lost response stay invisible until the visibility timeout.
cut_responses() { grep -c 'failed to discard remaining HTTP response body' "$1" || true; }

# stack_pids: the stack's process trees, for CPU accounting.
stack_pids() {
	local pg
	pg=$(head -1 .stack/pg/data/postmaster.pid 2>/dev/null || true)
	printf 'fauxqs=%s,ferretdb=%s%s' "$(cat .stack/fauxqs.pid)" "$(cat .stack/ferretdb.pid)" "${pg:+,postgres=$pg}"
}

# fresh NAME: a new queue, S3 prefix, Mongo database and warehouse schema for
# one run, exported as wharf's environment overrides; applies the schema.
fresh() {
	local name=$1 q
	q=$($WB mkqueue -name "${ID//_/-}-$name" -visibility "$VISIBILITY") || die "cannot create a queue"
	QUEUES+=("$q")
	export WHARF_SQS_QUEUE_URL="$q"
	export WHARF_S3_PREFIX="bench/$RUN/$name/"
	export WHARF_MONGO_DATABASE="${ID}_$name"
	export WHARF_WAREHOUSE_SCHEMA="${ID}_$name"
	PREFIXES+=("$WHARF_S3_PREFIX") DBS+=("$WHARF_MONGO_DATABASE") SCHEMAS+=("$WHARF_WAREHOUSE_SCHEMA")
	$WHARF schema apply -c $CFG >"$OUT/$name-schema.log" 2>&1 || die "wharf schema apply failed: see $OUT/$name-schema.log"
}

# send FILE: load a backlog into the current queue.
send() {
	local t0 want got
	t0=$(date +%s%N)
	want=$(wc -l <"$1")
	run $WHARF send -c $CFG <"$1" >"$OUT/send.log" 2>&1 || die "wharf send failed: see $OUT/send.log"
	got=$(sed -n 's/^sent \([0-9]*\) messages.*/\1/p' "$OUT/send.log")
	[[ $got == "$want" ]] || die "wharf send sent ${got:-?} of $want messages: see $OUT/send.log"
	log "  queued $want events in $(calc "($(date +%s%N) - $t0) / 1e9") s"
}

# start_serve NAME [ENV...]: start wharf serve with the current overrides (and
# ENV, as for env(1)); sets SERVE_PID, SERVE_T0 (Unix ns) and METRICS.
start_serve() {
	local name=$1
	shift
	SERVE_LOG="$OUT/$name-serve.log"
	SERVE_T0=$(date +%s%N)
	env "$@" $WHARF serve -c $CFG --http 127.0.0.1:0 >"$SERVE_LOG" 2>&1 &
	SERVE_PID=$!
	local addr=""
	for _ in $(seq 1 300); do
		addr=$(sed -n 's/.*"msg":"http listening".*"addr":"\([^"]*\)".*/\1/p' "$SERVE_LOG" | head -1)
		[[ -n $addr ]] && break
		kill -0 "$SERVE_PID" 2>/dev/null || die "wharf serve exited at start: see $SERVE_LOG"
		sleep 0.05
	done
	[[ -n $addr ]] || die "wharf serve did not open its HTTP port: see $SERVE_LOG"
	METRICS="http://$addr/metrics"
}

# watch_serve NAME MESSAGES ROWS: wait until serve has loaded ROWS rows; the result
# goes to $OUT/NAME-watch.json.
watch_serve() {
	run $WB watch -dsn "$WHARF_WAREHOUSE_DSN" -schema "$WHARF_WAREHOUSE_SCHEMA" -want "$3" -messages "$2" \
		-metrics "$METRICS" -since "$SERVE_T0" -pid "$SERVE_PID" -cpu-pids "$(stack_pids)" -timeout "${TIMEOUT}s" \
		-log "$OUT/$1-watch.log" >"$OUT/$1-watch.json" ||
		die "$1: watching wharf serve failed: see $OUT/$1-watch.log and $SERVE_LOG"
}

# -------------------------------------------------------------- build ---

log "run $RUN: logs in $OUT"
go build -o $WHARF ./cmd/wharf
go build -o .stack/bin/wharf-demo-events ./cmd/wharf-demo-events
go build -o $WB ./cmd/wharf-bench

# ---------------------------------------------------------------- cpu ---

if want cpu; then
	log "cpu: go test -bench . -cpu 1 -count $CPU_COUNT ./bench/"
	busy cpu
	run go test -run '^$' -bench . -cpu 1 -count "$CPU_COUNT" -timeout 20m ./bench/ >"$OUT/cpu.txt" 2>&1 ||
		die "the CPU benchmarks failed: see $OUT/cpu.txt"
	# median METRIC BENCH: the median of a metric over the -count runs.
	median() {
		awk -v b="$2" -v m="$1" '$1 ~ "^"b"(-[0-9]+)?$" { for (i = 2; i <= NF; i++) if ($i == m) print $(i-1) }' "$OUT/cpu.txt" |
			sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else exit 1 }' ||
			die "no $1 for $2 in $OUT/cpu.txt"
	}
	note cpu load_after "$(loadavg)"
	CPU_WHARF=$(median events/s BenchmarkEvents/wharf)
	CPU_NAIVE=$(median events/s BenchmarkEvents/naive)
	emit cpu_events_per_s "$(calc "int($CPU_WHARF)")" events/s
	emit naive_events_per_s "$(calc "int($CPU_NAIVE)")" events/s
	emit cpu_ratio "$(calc "int($CPU_WHARF / $CPU_NAIVE * 100 + 0.5) / 100")" x
	STAGES=""
	for s in decode flatten encode; do
		STAGES+="$s $(median ns/event BenchmarkStages/$s) ns, "
	done
	note cpu stages "${STAGES%, }"
	log "  wharf $CPU_WHARF events/s, naive $CPU_NAIVE events/s; per event: ${STAGES%, }"
fi

# ------------------------------------------------------- e2e and bare ---

if want e2e || want bare; then
	log "e2e: generating a backlog of $E2E_N events"
	run .stack/bin/wharf-demo-events -n "$E2E_N" -dup 0 -bad 0 -id-prefix "$ID" -manifest "$OUT/e2e-manifest.json" >"$OUT/e2e-events.jsonl"
	E2E_ROWS=$(manifest_rows "$OUT/e2e-manifest.json")
fi

if want e2e; then
	fresh e2e
	log "e2e: loading the backlog into a fresh queue"
	send "$OUT/e2e-events.jsonl"
	log "e2e: wharf serve (Mongo on, batch.max_age 5s, load_interval 2s) until $E2E_ROWS rows are in the warehouse"
	start_serve e2e WHARF_WAREHOUSE_LOAD_INTERVAL=2s WHARF_BATCH_MAX_AGE=5s
	busy e2e
	watch_serve e2e "$E2E_N" "$E2E_ROWS"
	note e2e load_after "$(loadavg)"
	stop_serve || die "wharf serve exited $? after SIGTERM: see $SERVE_LOG"
	note e2e cut_responses "$(cut_responses "$SERVE_LOG")"
	W="$OUT/e2e-watch.json"
	E2E=$(jget "$W" events_per_s)
	emit e2e_events_per_s "$E2E" events/s
	emit sqs_calls_per_1k_events "$(jget "$W" sqs_calls_per_1k_events)" calls
	log "  drained in $(jget "$W" drained_s) s ($(jget "$W" drain_events_per_s) events/s), all rows loaded at $(jget "$W" loaded_s) s"
	log "  SQS calls $(jget "$W" sqs_calls); CPU s: serve $(jget "$W" serve_cpu_s), $(jget "$W" cpu_s)"
fi

if want bare; then
	fresh bare
	log "bare: loading the same backlog into a fresh queue"
	send "$OUT/e2e-events.jsonl"
	log "bare: 8 pollers of receive(10) → InsertMany → DeleteMessageBatch"
	busy bare
	run $WB bare -queue-url "$WHARF_SQS_QUEUE_URL" -mongo "$WHARF_MONGO_URI" -mongo-db "$WHARF_MONGO_DATABASE" \
		-pollers 8 -n "$E2E_N" -timeout "${TIMEOUT}s" -cpu-pids "$(stack_pids)" >"$OUT/bare.json" 2>"$OUT/bare.log" ||
		die "the bare loop failed: see $OUT/bare.log"
	note bare load_after "$(loadavg)"
	note bare cut_responses "$(cut_responses "$OUT/bare.log")"
	BARE=$(jget "$OUT/bare.json" events_per_s)
	emit bare_events_per_s "$BARE" events/s
	log "  $BARE events/s in $(jget "$OUT/bare.json" seconds) s; CPU s: self $(jget "$OUT/bare.json" self_cpu_s), $(jget "$OUT/bare.json" cpu_s)"
	if want e2e; then
		emit e2e_ratio "$(calc "int($E2E / $BARE * 1000 + 0.5) / 1000")" x
	fi
fi

# ---------------------------------------------------------------- rss ---

if want rss; then
	log "rss: generating a backlog of $RSS_N events"
	run .stack/bin/wharf-demo-events -n "$RSS_N" -dup 0 -bad 0 -id-prefix "$ID" -manifest "$OUT/rss-manifest.json" >"$OUT/rss-events.jsonl"
	RSS_ROWS=$(manifest_rows "$OUT/rss-manifest.json")
	fresh rss
	if [[ $RSS_KEEP == 0 ]]; then
		FEED_NOTE="pre-loaded"
		send "$OUT/rss-events.jsonl"
		rm -f "$OUT/rss-events.jsonl"
	else
		FEED_NOTE="fed while draining, at most $RSS_KEEP waiting"
	fi
	if [[ $RSS_MONGO == 1 ]]; then
		MONGO_NOTE="on"
		log "rss: wharf serve (Mongo on) until $RSS_ROWS rows are in the warehouse; backlog $FEED_NOTE"
		start_serve rss WHARF_WAREHOUSE_LOAD_INTERVAL=10s
	else
		MONGO_NOTE="off"
		log "rss: wharf serve (Mongo OFF: no mongo.uri) until $RSS_ROWS rows are in the warehouse; backlog $FEED_NOTE"
		start_serve rss -u WHARF_MONGO_URI WHARF_WAREHOUSE_LOAD_INTERVAL=10s
		grep -q 'mongo.uri is not set' "$SERVE_LOG" || die "rss: serve did not turn Mongo off: see $SERVE_LOG"
	fi
	if [[ $RSS_KEEP != 0 ]]; then
		$WB feed -queue-url "$WHARF_SQS_QUEUE_URL" -file "$OUT/rss-events.jsonl" -keep "$RSS_KEEP" -workers 16 >"$OUT/rss-feed.json" 2>"$OUT/rss-feed.log" &
		FEED_PID=$!
	fi
	busy rss
	watch_serve rss "$RSS_N" "$RSS_ROWS"
	note rss load_after "$(loadavg)"
	if [[ $RSS_KEEP != 0 ]]; then
		wait "$FEED_PID" || die "feeding the backlog failed: see $OUT/rss-feed.log"
		note rss feed "sent $(jget "$OUT/rss-feed.json" sent) in $(jget "$OUT/rss-feed.json" seconds) s, at most $(jget "$OUT/rss-feed.json" max_visible) waiting"
		rm -f "$OUT/rss-events.jsonl"
	fi
	note rss backlog "$FEED_NOTE"
	stop_serve || die "wharf serve exited $? after SIGTERM: see $SERVE_LOG"
	W="$OUT/rss-watch.json"
	emit rss_mib_1m_backlog "$(jget "$W" rss_peak_mib)" MiB "\"events\": $RSS_N, \"mongo\": \"$MONGO_NOTE\", \"backlog\": \"$FEED_NOTE\""
	log "  peak RSS $(jget "$W" rss_peak_mib) MiB over $RSS_N events (Mongo $MONGO_NOTE); drained at $(jget "$W" drained_s) s ($(jget "$W" drain_events_per_s) events/s), loaded at $(jget "$W" loaded_s) s"
fi

# -------------------------------------------------------------- fresh ---

if want fresh; then
	FRESH_N=$(calc "int($FRESH_RATE * $FRESH_SECONDS)")
	fresh fresh
	log "fresh: wharf serve (Mongo on, batch.max_age 5s, load_interval 10s); sending $FRESH_RATE events/s for $FRESH_SECONDS s"
	busy fresh
	start_serve fresh WHARF_WAREHOUSE_LOAD_INTERVAL=10s WHARF_BATCH_MAX_AGE=5s
	for _ in $(seq 1 100); do curl -fsS "${METRICS%/metrics}/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
	run $WB pace -queue-url "$WHARF_SQS_QUEUE_URL" -rate "$FRESH_RATE" -duration "${FRESH_SECONDS}s" -id-prefix "$ID" \
		>"$OUT/fresh-pace.json" 2>"$OUT/fresh-pace.log" || die "pace failed: see $OUT/fresh-pace.log"
	log "  sent $(jget "$OUT/fresh-pace.json" sent) at $(jget "$OUT/fresh-pace.json" events_per_s) events/s (latest batch $(jget "$OUT/fresh-pace.json" max_lag_ms) ms behind schedule)"
	watch_serve fresh "$FRESH_N" "$FRESH_N"
	note fresh load_after "$(loadavg)"
	stop_serve || die "wharf serve exited $? after SIGTERM: see $SERVE_LOG"
	note fresh cut_responses "$(cut_responses "$SERVE_LOG")"
	run $WB freshness -dsn "$WHARF_WAREHOUSE_DSN" -schema "$WHARF_WAREHOUSE_SCHEMA" -bucket "$WHARF_S3_BUCKET" \
		-prefix "$WHARF_S3_PREFIX" -path-style -schema-file deploy/local/tables.yaml -table page_views \
		-serve-log "$SERVE_LOG" >"$OUT/fresh.json" 2>"$OUT/fresh.log" || die "freshness failed: see $OUT/fresh.log"
	F="$OUT/fresh.json"
	[[ $(jget "$F" events) == "$FRESH_N" ]] || die "freshness: $(jget "$F" events) events in the files, $FRESH_N sent"
	emit freshness_s3_p99_s "$(jget "$F" s3.p99)" s
	emit freshness_warehouse_p99_s "$(jget "$F" warehouse.p99)" s
	log "  to S3 (file named): $(jget "$F" s3); put done: $(jget "$F" s3_put)"
	log "  to warehouse (ledger loaded_at = merge start): $(jget "$F" warehouse); merge committed: $(jget "$F" warehouse_commit)"
fi

# -------------------------------------------------------------- report ---

node - "$RESULTS" "$OUT" "$E2E_N" "$RSS_N" <<'EOF'
const fs = require("fs");
const [file, out, e2eN, rssN] = process.argv.slice(2);
const rows = fs.readFileSync(file, "utf8").split("\n").filter(Boolean).map(JSON.parse);
const read = (f) => { try { return JSON.parse(fs.readFileSync(`${out}/${f}`, "utf8")); } catch { return null; } };
const targets = {
  cpu_events_per_s: [">=", 1e6], cpu_ratio: [">=", 4], e2e_ratio: [">=", 0.9],
  rss_mib_1m_backlog: ["<=", 256], sqs_calls_per_1k_events: ["<=", 210],
  freshness_s3_p99_s: ["<=", 7], freshness_warehouse_p99_s: ["<=", 20],
};
const notes = {
  cpu_events_per_s: "one core, reference event (bench/testdata), median",
  naive_events_per_s: "encoding/json into map[string]any, same rows, same run",
  cpu_ratio: "wharf / naive",
  e2e_events_per_s: `${e2eN} events, serve start → last row in warehouse (Mongo on)`,
  bare_events_per_s: `${e2eN} events, receive → InsertMany → delete, 8 pollers`,
  e2e_ratio: "e2e / bare",
  sqs_calls_per_1k_events: "receive + delete + change_visibility, e2e run",
  freshness_s3_p99_s: "event time → Parquet file named (ULID)",
  freshness_warehouse_p99_s: "event time → ledger loaded_at (merge start)",
};
const fmt = (v) => typeof v === "number" ? (Math.abs(v) >= 1000 ? Math.round(v).toLocaleString("en-US") : String(v)) : String(v);
console.log("");
console.log(`${"benchmark".padEnd(26)} ${"value".padStart(12)} ${"unit".padEnd(9)} ${"target".padEnd(12)} ${"".padEnd(4)} notes`);
console.log("-".repeat(110));
for (const r of rows) {
  const t = targets[r.bench];
  let status = "", target = "";
  if (t) {
    target = `${t[0]} ${fmt(t[1])}`;
    status = (t[0] === ">=" ? r.value >= t[1] : r.value <= t[1]) ? "ok" : "MISS";
  }
  let note = notes[r.bench] || "";
  if (r.bench === "rss_mib_1m_backlog") note = `${r.events.toLocaleString("en-US")} events (${r.backlog}), Mongo ${r.mongo}, VmHWM of wharf serve`;
  console.log(`${r.bench.padEnd(26)} ${fmt(r.value).padStart(12)} ${r.unit.padEnd(9)} ${target.padEnd(12)} ${status.padEnd(4)} ${note}`);
}
const notes2 = {};
for (const l of fs.readFileSync(`${out}/notes.jsonl`, "utf8").split("\n").filter(Boolean)) {
  const n = JSON.parse(l);
  (notes2[n.phase] ??= {})[n.key] = n.value;
}
const cpu = (named, m) => {
  const parts = Object.entries(named).filter(([, v]) => v != null).map(([k, v]) => `${k} ${v}`);
  const sum = Object.values(named).reduce((a, b) => a + (b || 0), 0);
  if (m != null) parts.push(`everything else on the machine ${Math.max(0, m - sum).toFixed(1)}`);
  return parts.join(", ");
};
const phase = (p) => {
  const n = notes2[p] || {};
  let s = `load average ${n.load_before ?? "?"} → ${n.load_after ?? "?"}`;
  if (Number(n.load_before) > require("os").cpus().length || Number(n.load_after) > require("os").cpus().length) s += " (BUSY MACHINE: other work competed, figures are low)";
  if (n.cut_responses && n.cut_responses !== "0") s += `; ${n.cut_responses} SQS responses cut by a closed connection (their messages wait out the visibility timeout)`;
  return s;
};
console.log("");
if (notes2.cpu) console.log(`cpu:   wharf per event: ${notes2.cpu.stages}; ${phase("cpu")}`);
const stackCPU = (c) => { const o = { ...c }; delete o.machine; return o; };
const e2e = read("e2e-watch.json");
if (e2e) console.log(`e2e:   99% of the messages deleted at ${e2e.drained99_s} s, all at ${e2e.drained_s} s = ${e2e.drain_events_per_s} events/s; last row loaded at ${e2e.loaded_s} s; ${phase("e2e")}\n       CPU s: ${cpu({ "wharf serve": e2e.serve_cpu_s, ...stackCPU(e2e.cpu_s) }, e2e.cpu_s.machine)}`);
const bare = read("bare.json");
if (bare) console.log(`bare:  99% deleted at ${bare.seconds99} s, all at ${bare.seconds} s; ${phase("bare")}\n       CPU s: ${cpu({ "bare loop": bare.self_cpu_s, ...stackCPU(bare.cpu_s) }, bare.cpu_s.machine)}`);
const rss = read("rss-watch.json");
if (rss) console.log(`rss:   ${notes2.rss?.feed ? `backlog fed: ${notes2.rss.feed}; ` : ""}peak RSS ${rss.rss_peak_mib} MiB (highest sampled ${rss.rss_max_sampled_mib}) with at most ${rss.held_max} messages held (sqs.max_in_flight caps it); drained at ${rss.drained_s} s = ${rss.drain_events_per_s} events/s, loaded at ${rss.loaded_s} s; ${phase("rss")}\n       CPU s: ${cpu({ "wharf serve": rss.serve_cpu_s, ...stackCPU(rss.cpu_s) }, rss.cpu_s.machine)}`);
const fr = read("fresh.json");
if (fr && fr.warehouse_commit) console.log(`fresh: p50/p99/max s: to S3 (file named) ${fr.s3.p50}/${fr.s3.p99}/${fr.s3.max}, (put done) ${fr.s3_put.p50}/${fr.s3_put.p99}/${fr.s3_put.max}; to warehouse (ledger loaded_at) ${fr.warehouse.p50}/${fr.warehouse.p99}/${fr.warehouse.max}, (merge committed) ${fr.warehouse_commit.p50}/${fr.warehouse_commit.p99}/${fr.warehouse_commit.max}; ${phase("fresh")}`);
const fw = read("fresh-watch.json");
if (fw) console.log(`       SQS calls at a steady ${read("fresh-pace.json")?.events_per_s} events/s: ${fw.sqs_calls_per_1k_events} per 1,000 events (${Object.entries(fw.sqs_calls).map(([k, v]) => `${k} ${v}`).join(", ")}): a long poll returns as soon as one message is there, so receives carry few messages`);
console.log("");
for (const r of rows) console.log(JSON.stringify(r));
EOF
log "done in $(($(date +%s) - T_START)) s; logs and raw results in $OUT"
