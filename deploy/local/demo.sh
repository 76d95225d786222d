#!/usr/bin/env bash
# demo.sh — `make demo`: wharf's main job end to end on the local stack.
# Brings the stack up, applies the schema, starts `wharf serve`, sends about
# 100,000 events (with duplicates and bad events), waits until every row is
# in the warehouse and every bad event in the dead-letter store, prints what
# landed and an analyst's query, then stops `wharf serve` with SIGTERM.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO="$(cd "$HERE/../.." && pwd -P)"
cd "$REPO"
N="${DEMO_EVENTS:-100000}"
TIMEOUT="${DEMO_TIMEOUT:-900}"
# Knobs for a demo beside other work on the same stack: its own queue
# (DEMO_QUEUE_URL; by default the stack's, purged first), warehouse schema
# (DEMO_SCHEMA, default demo, dropped first), HTTP address (DEMO_HTTP),
# folder of files (DEMO_OUT) and of binaries (DEMO_BIN).
SCHEMA="${DEMO_SCHEMA:-demo}"
HTTP="${DEMO_HTTP:-127.0.0.1:8089}"
OUTDIR="${DEMO_OUT:-.stack/demo}" # the events, the manifest and serve's log
BIN="${DEMO_BIN:-.stack/bin}"     # where it builds wharf and the event generator

[ "${DEMO_STACK_UP:-1}" = 1 ] && bash "$HERE/stack-up.sh" # 0: the stack is already up (another work tree started it)
set -a; . "$REPO/.stack/env"; set +a
[ -n "${DEMO_QUEUE_URL:-}" ] && export WHARF_SQS_QUEUE_URL="$DEMO_QUEUE_URL"

mkdir -p "$BIN" "$OUTDIR"
go build -o $BIN/wharf ./cmd/wharf
go build -o $BIN/wharf-demo-events ./cmd/wharf-demo-events
WHARF=$BIN/wharf
CFG=deploy/local/wharf.yaml

RUN="$(date -u +%Y%m%dT%H%M%S)"
export WHARF_WAREHOUSE_SCHEMA="$SCHEMA"
export WHARF_S3_PREFIX="demo/$RUN/"
export WHARF_MONGO_DATABASE="demo_$RUN"
PSQL=(psql "$WHARF_WAREHOUSE_DSN" -X -q -v ON_ERROR_STOP=1)

echo "== fresh demo: warehouse schema $SCHEMA, S3 prefix $WHARF_S3_PREFIX, Mongo database $WHARF_MONGO_DATABASE"
"${PSQL[@]}" -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE"
curl -fsS -X POST "$AWS_ENDPOINT_URL/" -H 'Content-Type: application/x-amz-json-1.0' \
	-H 'X-Amz-Target: AmazonSQS.PurgeQueue' -d "{\"QueueUrl\":\"$WHARF_SQS_QUEUE_URL\"}" >/dev/null
$WHARF schema apply -c $CFG 2>/dev/null

echo "== generating $N events"
$BIN/wharf-demo-events -n "$N" -manifest $OUTDIR/manifest.json >$OUTDIR/events.jsonl
node -e 'const m=require(process.argv[1]);console.log(`   ${m.lines} lines: ${m.unique} unique events, ${m.duplicates} exact duplicates, ${Object.values(m.deadletters).reduce((a,b)=>a+b,0)} bad events`)' "$REPO/$OUTDIR/manifest.json"

echo "== starting wharf serve (log: $OUTDIR/serve.log)"
$WHARF serve -c $CFG --http $HTTP >$OUTDIR/serve.log 2>&1 &
SERVE=$!
trap 'kill -TERM $SERVE 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fsS $HTTP/readyz >/dev/null 2>&1 && break; sleep 0.2; done

echo "== sending"
start=$(date +%s)
$WHARF send -c $CFG <$OUTDIR/events.jsonl

want_rows=$(node -e 'const m=require(process.argv[1]);console.log(Object.values(m.rows).reduce((a,b)=>a+b,0))' "$REPO/$OUTDIR/manifest.json")
want_dl=$(node -e 'const m=require(process.argv[1]);console.log(Object.values(m.deadletters).reduce((a,b)=>a+b,0))' "$REPO/$OUTDIR/manifest.json")
count_rows() {
	"${PSQL[@]}" -At -c "SELECT (SELECT count(*) FROM $SCHEMA.page_views)+(SELECT count(*) FROM $SCHEMA.actions_taken)+(SELECT count(*) FROM $SCHEMA.actions_taken_tags)+(SELECT count(*) FROM $SCHEMA.orders)+(SELECT count(*) FROM $SCHEMA.order_items)+(SELECT count(*) FROM $SCHEMA.signups)"
}
count_dl() { $WHARF deadletter list -c $CFG --json 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{let n=0;for(const l of s.split("\n"))if(l)n+=JSON.parse(l).count;console.log(n)})'; }
echo "== waiting until $want_rows rows are loaded and $want_dl events dead-lettered"
while :; do
	rows=$(count_rows); dl=$(count_dl)
	printf '   %5ss  rows %8s / %s   dead letters %4s / %s\n' $(($(date +%s) - start)) "$rows" "$want_rows" "$dl" "$want_dl"
	[ "$rows" -ge "$want_rows" ] && [ "$dl" -ge "$want_dl" ] && break
	if [ $(($(date +%s) - start)) -gt "$TIMEOUT" ]; then echo "demo: timed out; see $OUTDIR/serve.log" >&2; exit 1; fi
	if ! kill -0 $SERVE 2>/dev/null; then echo "demo: wharf serve died; see $OUTDIR/serve.log" >&2; exit 1; fi
	sleep 5
done
echo "   all loaded in $(($(date +%s) - start))s"

echo
echo "== rows per table (expected from the generator's manifest)"
for t in page_views actions_taken actions_taken_tags orders order_items signups; do
	got=$("${PSQL[@]}" -At -c "SELECT count(*) FROM $SCHEMA.$t")
	want=$(node -e 'console.log(require(process.argv[1]).rows[process.argv[2]]||0)' "$REPO/$OUTDIR/manifest.json" $t)
	dup=$("${PSQL[@]}" -At -c "SELECT count(*) - count(DISTINCT (event_id$(case $t in *_tags|order_items) echo ", idx";; esac))) FROM $SCHEMA.$t")
	printf '   %-20s %8s rows   expected %8s   duplicates %s\n' "$t" "$got" "$want" "$dup"
	[ "$got" = "$want" ] && [ "$dup" = 0 ] || { echo "demo: $t does not match" >&2; exit 1; }
done

echo
echo "== raw documents in Mongo (one per unique event of a known type, dead-lettered ones included)"
$BIN/wharf-demo-events check-mongo -manifest $OUTDIR/manifest.json

echo
echo "== dead letters by reason"
$WHARF deadletter list -c $CFG --samples 1 2>/dev/null | sed 's/^/   /'

echo
echo "== an analyst's query: actions per day per type, last 7 days"
"${PSQL[@]}" -c "SELECT date_trunc('day', event_time)::date AS day, action, count(*) AS actions, count(DISTINCT user_id) AS users
FROM $SCHEMA.actions_taken WHERE event_time > now() - interval '7 days' GROUP BY 1, 2 ORDER BY 1 DESC, 3 DESC LIMIT 21"

echo "== stopping wharf serve (SIGTERM)"
kill -TERM $SERVE
trap - EXIT
if wait $SERVE; then echo "   wharf serve exited 0"; else echo "demo: wharf serve exited $?" >&2; exit 1; fi
