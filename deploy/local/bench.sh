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
#   latency  a backlog drained through Toxiproxy at production round trips (SQS 20 ms,
#          S3 50 ms, Mongo 2 ms): `wharf serve` with its defaults, the bare loop at the
#          same pollers, then serve at 8, 16, 32 and 64 pollers (sqs.pollers)
#
# Every run gets fresh queues, S3 prefixes, Mongo databases and warehouse
# schemas, deleted at the end (BENCH_KEEP=1 keeps all but the queues). Logs
# and raw results go to .stack/bench/RUN/ (.stack/bench/latest points there).
#
# Knobs (environment):
#   BENCH_ONLY           phases to run, comma-separated (default cpu,e2e,bare,rss,fresh,latency)
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
#   BENCH_PPROF          1 to profile `wharf serve`'s CPU over the whole e2e run (serve has no
#                        /debug/pprof: a copy is built with cmd/wharf-bench/servepprof compiled
#                        in); the top costs go to .stack/bench/RUN/e2e-pprof-top.txt
#   BENCH_LATENCY_EVENTS backlog of each latency run (default 50000)
#   BENCH_LATENCY_POLLERS  sqs.pollers of the latency sweep (default 8,16,32,64)
#   BENCH_LATENCY_BARE   0 to run the bare loop only at serve's default pollers (default 1: at
#                        every point of the sweep too, for a ratio at each)
#   BENCH_LATENCY_SQS_MS, BENCH_LATENCY_S3_MS, BENCH_LATENCY_MONGO_MS
#                        round trips Toxiproxy adds, half each way (default 20, 50, 2)
set -euo pipefail
shopt -s inherit_errexit

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO="$(cd "$HERE/../.." && pwd -P)"
cd "$REPO"

ONLY=",${BENCH_ONLY:-cpu,e2e,bare,rss,fresh,latency},"
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
PPROF="${BENCH_PPROF:-0}"
LAT_N="${BENCH_LATENCY_EVENTS:-50000}"
LAT_POLLERS="${BENCH_LATENCY_POLLERS:-8,16,32,64}"
LAT_BARE_ALL="${BENCH_LATENCY_BARE:-1}"
LAT_SQS_MS="${BENCH_LATENCY_SQS_MS:-20}"
LAT_S3_MS="${BENCH_LATENCY_S3_MS:-50}"
LAT_MONGO_MS="${BENCH_LATENCY_MONGO_MS:-2}"

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
BIN="$OUT/bin" # this run's binaries: another run, or a demo, builds its own
mkdir -p "$OUT" "$BIN"
ln -sfn "$RUN" .stack/bench/latest
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
: >"$OUT/notes.jsonl"
CFG=deploy/local/wharf.yaml
WHARF=$BIN/wharf
WB=$BIN/wharf-bench
T_START=$(date +%s)

# ------------------------------------------------------------ clean-up ---

SERVE_PID="" TOXI_PID=""
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
	stop_toxiproxy
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
	rm -f "$BIN"/wharf "$BIN"/wharf-bench "$BIN"/wharf-demo-events "$BIN"/toxiproxy # wharf-pprof stays, to read its profile
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
watch_serve() { watch_serve_pids "$1" "$2" "$3" "$(stack_pids)"; }

# watch_serve_pids NAME MESSAGES ROWS PIDS: the same, with the process trees
# (name=pid,…) whose CPU to account for.
watch_serve_pids() {
	run $WB watch -dsn "$WHARF_WAREHOUSE_DSN" -schema "$WHARF_WAREHOUSE_SCHEMA" -want "$3" -messages "$2" \
		-metrics "$METRICS" -since "$SERVE_T0" -pid "$SERVE_PID" -cpu-pids "$4" -timeout "${TIMEOUT}s" \
		-log "$OUT/$1-watch.log" >"$OUT/$1-watch.json" ||
		die "$1: watching wharf serve failed: see $OUT/$1-watch.log and $SERVE_LOG"
}

# ---------------------------------------------------------- toxiproxy ---

# start_toxiproxy NAME: a Toxiproxy of its own for one latency run (its log,
# $OUT/NAME-toxiproxy.log, names every connection it accepted, per proxy);
# proxies in front of SQS, S3 and Mongo add the round trips of the knobs,
# half each way. Sets TOXI_PID and LAT_ENV, the overrides that send wharf's
# (or the bare loop's) traffic through them.
start_toxiproxy() {
	local name=$1 addr="" sqs s3 mongo
	TOXI_LOG="$OUT/$name-toxiproxy.log"
	$BIN/toxiproxy -listen 127.0.0.1:0 >"$OUT/$name-toxiproxy.out" 2>"$TOXI_LOG" &
	TOXI_PID=$!
	for _ in $(seq 1 100); do
		addr=$(sed -n 's/^listening //p' "$OUT/$name-toxiproxy.out")
		[[ -n $addr ]] && break
		kill -0 "$TOXI_PID" 2>/dev/null || die "toxiproxy exited at start: see $TOXI_LOG"
		sleep 0.05
	done
	[[ -n $addr ]] || die "toxiproxy did not start: see $TOXI_LOG"
	TOXI_API="http://$addr"
	sqs=$(toxi_proxy sqs "$(hostport "$AWS_ENDPOINT_URL")" "$LAT_SQS_MS")
	s3=$(toxi_proxy s3 "$(hostport "$AWS_ENDPOINT_URL")" "$LAT_S3_MS")
	mongo=$(toxi_proxy mongo "$(hostport "$WHARF_MONGO_URI")" "$LAT_MONGO_MS")
	LAT_MONGO_URI=$(mongo_via "$mongo")
	LAT_ENV=(AWS_ENDPOINT_URL_SQS="http://$sqs" AWS_ENDPOINT_URL_S3="http://$s3" WHARF_MONGO_URI="$LAT_MONGO_URI")
}

stop_toxiproxy() {
	[[ -n $TOXI_PID ]] || return 0
	kill -TERM "$TOXI_PID" 2>/dev/null || true
	wait "$TOXI_PID" 2>/dev/null || true
	TOXI_PID=""
}

# toxi METHOD PATH [JSON]: a call to Toxiproxy's HTTP API.
toxi() {
	curl -fsS -X "$1" -H 'Content-Type: application/json' "$TOXI_API$2" ${3:+--data "$3"} ||
		die "toxiproxy $1 $2 failed"
}

# toxi_proxy NAME UPSTREAM MS: a proxy to UPSTREAM (host:port) that adds MS
# milliseconds to every round trip (a latency toxic of MS/2 on the way up and
# the rest on the way down); prints the address it listens on.
toxi_proxy() {
	local name=$1 up=$(($3 / 2)) down=$(($3 - $3 / 2)) listen
	listen=$(toxi POST /proxies "{\"name\": \"$name\", \"listen\": \"127.0.0.1:0\", \"upstream\": \"$2\"}" |
		node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).listen))')
	[[ $listen == 127.0.0.1:* ]] || die "toxiproxy: no listen address for $name"
	toxi POST "/proxies/$name/toxics" "{\"name\": \"up\", \"type\": \"latency\", \"stream\": \"upstream\", \"attributes\": {\"latency\": $up}}" >/dev/null
	toxi POST "/proxies/$name/toxics" "{\"name\": \"down\", \"type\": \"latency\", \"stream\": \"downstream\", \"attributes\": {\"latency\": $down}}" >/dev/null
	echo "$listen"
}

# hostport URL: the host:port of an http:// or mongodb:// URL (credentials dropped).
hostport() {
	local rest=${1#*://}
	rest=${rest%%/*}
	rest=${rest%%\?*}
	echo "${rest##*@}"
}

# mongo_via ADDR: WHARF_MONGO_URI with its host:port replaced by ADDR.
mongo_via() {
	local scheme=${WHARF_MONGO_URI%%://*} rest=${WHARF_MONGO_URI#*://} hosts creds=""
	hosts=${rest%%[/?]*}
	[[ $hosts == *@* ]] && creds="${hosts%@*}@"
	echo "$scheme://$creds$1${rest#"$hosts"}"
}

# proxied NAME: how many connections each proxy of the run accepted (from
# Toxiproxy's log), as "sqs N, s3 N, mongo N"; dies when one that the run
# must use accepted none (then the traffic did not go through it).
proxied() {
	local p n out=""
	for p in sqs s3 mongo; do
		n=$(grep -c "\"name\":\"$p\".*Accepted client" "$TOXI_LOG" || true)
		[[ $n != 0 || ( $p == s3 && $1 == bare ) ]] || die "$1: no connection went through the $p proxy: see $TOXI_LOG"
		out+="$p $n, "
	done
	echo "${out%, }"
}

# -------------------------------------------------------------- build ---

log "run $RUN: logs in $OUT"
go build -o $WHARF ./cmd/wharf
go build -o $BIN/wharf-demo-events ./cmd/wharf-demo-events
go build -o $WB ./cmd/wharf-bench
if want latency; then
	go build -C deploy/local/toxiproxy -o "$REPO/$BIN/toxiproxy" .
fi
if [[ $PPROF == 1 ]] && want e2e; then
	# serve has no /debug/pprof: a copy with a CPU profiler compiled in,
	# the product's source untouched (see cmd/wharf-bench/servepprof).
	printf '{"Replace": {"%s": "%s"}}\n' "$REPO/cmd/wharf/zz_bench_pprof.go" "$REPO/cmd/wharf-bench/servepprof/cpuprofile.go" >"$OUT/pprof-overlay.json"
	go build -tags wharf_bench_pprof -overlay "$OUT/pprof-overlay.json" -o $BIN/wharf-pprof ./cmd/wharf
fi

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
	# Per second of the benchmark process's own CPU time: the one-core figure
	# when other work shares the machine (the wall-clock one then reads low).
	CPU_WHARF_CPU=$(median events/cpu-s BenchmarkEvents/wharf)
	CPU_NAIVE_CPU=$(median events/cpu-s BenchmarkEvents/naive)
	note cpu events_per_cpu_s "wharf $(calc "int($CPU_WHARF_CPU)"), naive $(calc "int($CPU_NAIVE_CPU)"), ratio $(calc "int($CPU_WHARF_CPU / $CPU_NAIVE_CPU * 100 + 0.5) / 100")"
	log "  wharf $CPU_WHARF events/s, naive $CPU_NAIVE events/s; per CPU-second: wharf $CPU_WHARF_CPU, naive $CPU_NAIVE_CPU; per event: ${STAGES%, }"
fi

# ------------------------------------------------------- e2e and bare ---

if want e2e || want bare; then
	log "e2e: generating a backlog of $E2E_N events"
	run $BIN/wharf-demo-events -n "$E2E_N" -dup 0 -bad 0 -id-prefix "$ID" -manifest "$OUT/e2e-manifest.json" >"$OUT/e2e-events.jsonl"
	E2E_ROWS=$(manifest_rows "$OUT/e2e-manifest.json")
fi

if want e2e; then
	fresh e2e
	log "e2e: loading the backlog into a fresh queue"
	send "$OUT/e2e-events.jsonl"
	log "e2e: wharf serve (Mongo on, batch.max_age 5s, load_interval 2s) until $E2E_ROWS rows are in the warehouse"
	E2E_SERVE=()
	if [[ $PPROF == 1 ]]; then
		WHARF=$BIN/wharf-pprof # for this one run
		E2E_SERVE=(WHARF_BENCH_CPUPROFILE="$REPO/$OUT/e2e-cpu.pprof")
		note e2e pprof "CPU profile of the whole serve process (BENCH_PPROF=1)"
	fi
	start_serve e2e WHARF_WAREHOUSE_LOAD_INTERVAL=2s WHARF_BATCH_MAX_AGE=5s "${E2E_SERVE[@]}"
	WHARF=$BIN/wharf
	busy e2e
	watch_serve e2e "$E2E_N" "$E2E_ROWS"
	note e2e load_after "$(loadavg)"
	if [[ $PPROF == 1 ]]; then
		kill -USR1 "$SERVE_PID"
		for _ in $(seq 1 100); do [[ -e $OUT/e2e-cpu.pprof.done ]] && break; sleep 0.1; done
		[[ -e $OUT/e2e-cpu.pprof.done ]] || die "e2e: serve wrote no CPU profile: see $SERVE_LOG"
	fi
	stop_serve || die "wharf serve exited $? after SIGTERM: see $SERVE_LOG"
	note e2e cut_responses "$(cut_responses "$SERVE_LOG")"
	W="$OUT/e2e-watch.json"
	E2E=$(jget "$W" events_per_s)
	emit e2e_events_per_s "$E2E" events/s
	emit sqs_calls_per_1k_events "$(jget "$W" sqs_calls_per_1k_events)" calls
	E2E_CPU1K=$(calc "int($(jget "$W" serve_cpu_s) / $E2E_N * 1000 * 1000 + 0.5) / 1000")
	emit e2e_cpu_s_per_1k "$E2E_CPU1K" s "\"cpu_s\": $(jget "$W" serve_cpu_s), \"events\": $E2E_N"
	# the tail: from 99% to 100% of the messages deleted (a lost receive
	# leaves its messages invisible for the visibility timeout); the load's
	# tail (99% → 100% of the rows in the warehouse) is a note.
	emit e2e_tail_s "$(calc "int(($(jget "$W" drained_s) - $(jget "$W" drained99_s)) * 10 + 0.5) / 10")" s
	note e2e load_tail_s "$(calc "int(($(jget "$W" loaded_s) - $(jget "$W" loaded99_s)) * 10 + 0.5) / 10")"
	if [[ $PPROF == 1 ]]; then
		go tool pprof -top -nodecount=60 $BIN/wharf-pprof "$OUT/e2e-cpu.pprof" >"$OUT/e2e-pprof-top.txt" 2>&1
		go tool pprof -top -cum -nodecount=80 $BIN/wharf-pprof "$OUT/e2e-cpu.pprof" >"$OUT/e2e-pprof-cum.txt" 2>&1
		log "  CPU profile: $OUT/e2e-cpu.pprof (top: $OUT/e2e-pprof-top.txt, cumulative: $OUT/e2e-pprof-cum.txt)"
	fi
	log "  drained in $(jget "$W" drained_s) s ($(jget "$W" drain_events_per_s) events/s), all rows loaded at $(jget "$W" loaded_s) s"
	log "  SQS calls $(jget "$W" sqs_calls); CPU s: serve $(jget "$W" serve_cpu_s), $(jget "$W" cpu_s)"
fi

if want bare; then
	fresh bare
	log "bare: loading the same backlog into a fresh queue"
	send "$OUT/e2e-events.jsonl"
	E2E_POLLERS=$(sed -n 's/^  pollers: *\([0-9][0-9]*\).*/\1/p' $CFG | head -1) # serve's, from its configuration
	[[ -n $E2E_POLLERS ]] || die "no sqs.pollers in $CFG"
	log "bare: $E2E_POLLERS pollers of receive(10) → InsertMany → DeleteMessageBatch"
	busy bare
	run $WB bare -queue-url "$WHARF_SQS_QUEUE_URL" -mongo "$WHARF_MONGO_URI" -mongo-db "$WHARF_MONGO_DATABASE" \
		-pollers "$E2E_POLLERS" -n "$E2E_N" -timeout "${TIMEOUT}s" -cpu-pids "$(stack_pids)" >"$OUT/bare.json" 2>"$OUT/bare.log" ||
		die "the bare loop failed: see $OUT/bare.log"
	note bare load_after "$(loadavg)"
	note bare cut_responses "$(cut_responses "$OUT/bare.log")"
	BARE=$(jget "$OUT/bare.json" events_per_s)
	emit bare_events_per_s "$BARE" events/s
	emit e2e_bare_cpu_s_per_1k "$(calc "int($(jget "$OUT/bare.json" self_cpu_s) / $E2E_N * 1000 * 1000 + 0.5) / 1000")" s \
		"\"cpu_s\": $(jget "$OUT/bare.json" self_cpu_s), \"events\": $E2E_N"
	emit bare_tail_s "$(calc "int(($(jget "$OUT/bare.json" seconds) - $(jget "$OUT/bare.json" seconds99)) * 10 + 0.5) / 10")" s
	log "  $BARE events/s in $(jget "$OUT/bare.json" seconds) s; CPU s: self $(jget "$OUT/bare.json" self_cpu_s), $(jget "$OUT/bare.json" cpu_s)"
	if want e2e; then
		emit e2e_ratio "$(calc "int($E2E / $BARE * 1000 + 0.5) / 1000")" x
	fi
fi

# ---------------------------------------------------------------- rss ---

if want rss; then
	log "rss: generating a backlog of $RSS_N events"
	run $BIN/wharf-demo-events -n "$RSS_N" -dup 0 -bad 0 -id-prefix "$ID" -manifest "$OUT/rss-manifest.json" >"$OUT/rss-events.jsonl"
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

# ------------------------------------------------------------ latency ---

if want latency; then
	log "latency: generating a backlog of $LAT_N events"
	run $BIN/wharf-demo-events -n "$LAT_N" -dup 0 -bad 0 -id-prefix "${ID}_lat" -manifest "$OUT/latency-manifest.json" >"$OUT/latency-events.jsonl"
	LAT_ROWS=$(manifest_rows "$OUT/latency-manifest.json")
	PROXY_NOTE="SQS +$LAT_SQS_MS ms, S3 +$LAT_S3_MS ms, Mongo +$LAT_MONGO_MS ms per round trip"
	note latency proxies "$PROXY_NOTE"
	: >"$OUT/latency-sweep.jsonl"

	# lat_serve NAME [ENV...]: serve (with ENV) drains the backlog through a
	# fresh Toxiproxy until every row is loaded; $OUT/NAME-watch.json.
	# Events/s is to the last message deleted (rows durable in S3 and Mongo):
	# the bare loop's finish line; the warehouse is not behind a proxy.
	lat_serve() {
		local name=$1
		shift
		fresh "$name"
		send "$OUT/latency-events.jsonl" # straight to fauxqs, not through the proxy
		start_toxiproxy "$name"
		log "$name: wharf serve ${*:-(defaults)} through Toxiproxy ($PROXY_NOTE)"
		busy "$name"
		start_serve "$name" "${LAT_ENV[@]}" "$@"
		watch_serve_pids "$name" "$LAT_N" "$LAT_ROWS" "$(stack_pids),toxiproxy=$TOXI_PID"
		note "$name" load_after "$(loadavg)"
		note "$name" proxied "$(proxied serve)"
		stop_serve || die "wharf serve exited $? after SIGTERM: see $SERVE_LOG"
		stop_toxiproxy
		note "$name" cut_responses "$(cut_responses "$SERVE_LOG")"
		local w="$OUT/$name-watch.json"
		log "  $(jget "$w" drain_events_per_s) events/s (all deleted at $(jget "$w" drained_s) s, loaded at $(jget "$w" loaded_s) s); SQS calls $(jget "$w" sqs_calls); CPU s: serve $(jget "$w" serve_cpu_s), $(jget "$w" cpu_s)"
	}

	# lat_bare NAME POLLERS: the bare loop, same backlog, same proxies.
	lat_bare() {
		local name=$1
		fresh "$name"
		send "$OUT/latency-events.jsonl"
		start_toxiproxy "$name"
		log "$name: the bare loop at $2 pollers through Toxiproxy"
		busy "$name"
		run env "${LAT_ENV[@]}" $WB bare -queue-url "$WHARF_SQS_QUEUE_URL" -mongo "$LAT_MONGO_URI" \
			-mongo-db "$WHARF_MONGO_DATABASE" -pollers "$2" -n "$LAT_N" -timeout "${TIMEOUT}s" \
			-cpu-pids "$(stack_pids),toxiproxy=$TOXI_PID" >"$OUT/$name.json" 2>"$OUT/$name.log" ||
			die "$name: the bare loop failed: see $OUT/$name.log"
		note "$name" load_after "$(loadavg)"
		note "$name" proxied "$(proxied bare)"
		stop_toxiproxy
		log "  $(jget "$OUT/$name.json" events_per_s) events/s in $(jget "$OUT/$name.json" seconds) s; receive round trip $(jget "$OUT/$name.json" receive_s) s; CPU s: self $(jget "$OUT/$name.json" self_cpu_s), $(jget "$OUT/$name.json" cpu_s)"
	}

	lat_serve latency
	W="$OUT/latency-watch.json"
	LAT_P=$(sed -n 's/.*"msg":"consumer ready".*"pollers":\([0-9]*\).*/\1/p' "$OUT/latency-serve.log" | head -1)
	[[ -n $LAT_P ]] || die "latency: no pollers in serve's \"consumer ready\" line: see $OUT/latency-serve.log"
	LAT=$(jget "$W" drain_events_per_s)
	printf '{"pollers": %s, "events_per_s": %s, "run": "latency"}\n' "$LAT_P" "$LAT" >>"$OUT/latency-sweep.jsonl"
	lat_bare latency_bare "$LAT_P"
	LAT_BARE=$(jget "$OUT/latency_bare.json" events_per_s)
	emit latency_events_per_s "$LAT" events/s "\"pollers\": $LAT_P, \"events\": $LAT_N"
	emit latency_bare_events_per_s "$LAT_BARE" events/s "\"pollers\": $LAT_P, \"events\": $LAT_N"
	emit latency_ratio "$(calc "int($LAT / $LAT_BARE * 1000 + 0.5) / 1000")" x
	emit latency_sqs_calls_per_1k_events "$(jget "$W" sqs_calls_per_1k_events)" calls

	for p in ${LAT_POLLERS//,/ }; do
		if [[ $p != "$LAT_P" ]]; then
			lat_serve "latency_p$p" WHARF_SQS_POLLERS="$p"
			printf '{"pollers": %s, "events_per_s": %s, "run": "latency_p%s"}\n' "$p" "$(jget "$OUT/latency_p$p-watch.json" drain_events_per_s)" "$p" >>"$OUT/latency-sweep.jsonl"
		fi
		if [[ $LAT_BARE_ALL == 1 && $p != "$LAT_P" ]]; then
			lat_bare "latency_bare_p$p" "$p"
		fi
	done
	# the curve, one figure per point (serve; bare where it ran)
	while read -r line; do
		p=$(node -e 'console.log(JSON.parse(process.argv[1]).pollers)' "$line")
		v=$(node -e 'console.log(JSON.parse(process.argv[1]).events_per_s)' "$line")
		bare_f="$OUT/latency_bare_p$p.json"
		[[ $p == "$LAT_P" ]] && bare_f="$OUT/latency_bare.json"
		extra="\"pollers\": $p"
		[[ -s $bare_f ]] && extra+=", \"bare_events_per_s\": $(jget "$bare_f" events_per_s)"
		emit "latency_events_per_s_p$p" "$v" events/s "$extra"
	done < <(sort -t: -k2 -n "$OUT/latency-sweep.jsonl")
	rm -f "$OUT/latency-events.jsonl"
fi

# -------------------------------------------------------------- report ---

node - "$RESULTS" "$OUT" "$E2E_N" "$RSS_N" "$LAT_N" <<'EOF'
const fs = require("fs");
const [file, out, e2eN, rssN, latN] = process.argv.slice(2);
const rows = fs.readFileSync(file, "utf8").split("\n").filter(Boolean).map(JSON.parse);
const read = (f) => { try { return JSON.parse(fs.readFileSync(`${out}/${f}`, "utf8")); } catch { return null; } };
const targets = {
  cpu_events_per_s: [">=", 1e6], cpu_ratio: [">=", 4], e2e_ratio: [">=", 0.9],
  rss_mib_1m_backlog: ["<=", 256], sqs_calls_per_1k_events: ["<=", 210],
  freshness_s3_p99_s: ["<=", 7], freshness_warehouse_p99_s: ["<=", 20],
  latency_ratio: [">=", 1.5], e2e_tail_s: ["<=", 5],
};
const notes = {
  cpu_events_per_s: "one core, reference event (bench/testdata), median",
  naive_events_per_s: "encoding/json into map[string]any, same rows, same run",
  cpu_ratio: "wharf / naive",
  e2e_events_per_s: `${e2eN} events, serve start → last row in warehouse (Mongo on)`,
  bare_events_per_s: `${e2eN} events, receive → InsertMany → delete, serve's pollers (wharf.yaml)`,
  e2e_ratio: "e2e / bare",
  sqs_calls_per_1k_events: "receive + delete + change_visibility, e2e run",
  freshness_s3_p99_s: "event time → Parquet file named (ULID)",
  freshness_warehouse_p99_s: "event time → ledger loaded_at (merge start)",
  e2e_cpu_s_per_1k: "CPU s of wharf serve (whole process, start → last row loaded) per 1,000 events, e2e run",
  e2e_bare_cpu_s_per_1k: "CPU s of the bare loop per 1,000 events, bare run",
  e2e_tail_s: "e2e: 99% → 100% of the messages deleted",
  bare_tail_s: "bare: 99% → 100% of the messages deleted",
  latency_events_per_s: `${latN} events through Toxiproxy, serve (defaults) start → last message deleted`,
  latency_bare_events_per_s: `${latN} events, the bare loop through the same proxies, same pollers`,
  latency_ratio: "latency / latency_bare",
  latency_sqs_calls_per_1k_events: "receive + delete + change_visibility, latency run",
};
const fmt = (v) => typeof v === "number" ? (Math.abs(v) >= 1000 ? Math.round(v).toLocaleString("en-US") : String(v)) : String(v);
console.log("");
console.log(`${"benchmark".padEnd(31)} ${"value".padStart(12)} ${"unit".padEnd(9)} ${"target".padEnd(12)} ${"".padEnd(4)} notes`);
console.log("-".repeat(115));
for (const r of rows) {
  const t = targets[r.bench];
  let status = "", target = "";
  if (t) {
    target = `${t[0]} ${fmt(t[1])}`;
    status = (t[0] === ">=" ? r.value >= t[1] : r.value <= t[1]) ? "ok" : "MISS";
  }
  let note = notes[r.bench] || "";
  if (r.bench.startsWith("latency_events_per_s_p")) note = `serve at ${r.pollers} pollers, through Toxiproxy${r.bare_events_per_s ? `; bare ${r.bare_events_per_s} events/s = ${(r.value / r.bare_events_per_s).toFixed(3)}x` : ""}`;
  if (r.bench === "rss_mib_1m_backlog") note = `${r.events.toLocaleString("en-US")} events (${r.backlog}), Mongo ${r.mongo}, VmHWM of wharf serve`;
  console.log(`${r.bench.padEnd(31)} ${fmt(r.value).padStart(12)} ${r.unit.padEnd(9)} ${target.padEnd(12)} ${status.padEnd(4)} ${note}`);
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
if (e2e) console.log(`e2e:   99% of the messages deleted at ${e2e.drained99_s} s, all at ${e2e.drained_s} s = ${e2e.drain_events_per_s} events/s; 99% of the rows loaded at ${e2e.loaded99_s} s, the last at ${e2e.loaded_s} s (load tail ${notes2.e2e?.load_tail_s} s)${notes2.e2e?.pprof ? "; " + notes2.e2e.pprof : ""}; ${phase("e2e")}\n       CPU s: ${cpu({ "wharf serve": e2e.serve_cpu_s, ...stackCPU(e2e.cpu_s) }, e2e.cpu_s.machine)}`);
const bare = read("bare.json");
if (bare) console.log(`bare:  99% deleted at ${bare.seconds99} s, all at ${bare.seconds} s; ${phase("bare")}\n       CPU s: ${cpu({ "bare loop": bare.self_cpu_s, ...stackCPU(bare.cpu_s) }, bare.cpu_s.machine)}`);
const lat = read("latency-watch.json"), latBare = read("latency_bare.json");
if (lat) {
  console.log(`latency (${notes2.latency?.proxies}): serve all deleted at ${lat.drained_s} s, loaded at ${lat.loaded_s} s; proxied connections ${notes2.latency?.proxied}; ${phase("latency")}\n       CPU s: ${cpu({ "wharf serve": lat.serve_cpu_s, ...stackCPU(lat.cpu_s) }, lat.cpu_s.machine)}`);
  if (latBare) console.log(`       bare: all deleted at ${latBare.seconds} s, receive round trip p50 ${latBare.receive_s.p50} s, p90 ${latBare.receive_s.p90} s, DeleteMessageBatch p50 ${latBare.delete_s.p50} s; proxied connections ${notes2["latency_bare"]?.proxied}; ${phase("latency_bare")}`);
  const sweep = rows.filter((r) => r.bench.startsWith("latency_events_per_s_p"));
  if (sweep.length) console.log(`       sweep (events/s by sqs.pollers): ${sweep.map((r) => `${r.pollers}: ${r.value}`).join(", ")}`);
}
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
