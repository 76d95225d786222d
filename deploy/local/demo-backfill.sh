#!/usr/bin/env bash
# demo-backfill.sh — `make demo-backfill`: years of MongoDB history into the
# warehouse through the same path as live events.
# Brings the stack up, seeds Mongo with three years of tracking history
# (DEMO_HISTORY_DOCS documents, 300,000 by default, over four collections,
# with a few bad documents, and one in 20 without an event-type field, as
# history written before wharf: the collection is its type), backfills each table with `wharf backfill` (a
# progress bar on a terminal, progress lines otherwise), checks every table
# against the seeder's manifest, and prints the analyst's chart that was
# impossible before: monthly active users across the three years.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO="$(cd "$HERE/../.." && pwd -P)"
cd "$REPO"
N="${DEMO_HISTORY_DOCS:-300000}"
# On FerretDB every _id range is a full scan and an in-memory sort (design
# §9), so one worker is fastest here; on MongoDB use more.
WORKERS="${DEMO_WORKERS:-1}"

bash "$HERE/stack-up.sh"
set -a; . "$REPO/.stack/env"; set +a

mkdir -p .stack/bin .stack/demo-backfill
go build -o .stack/bin/wharf ./cmd/wharf
go build -o .stack/bin/wharf-demo-history ./cmd/wharf-demo-history
WHARF=.stack/bin/wharf
CFG=deploy/local/wharf.yaml

RUN="$(date -u +%Y%m%dT%H%M%S)"
export WHARF_WAREHOUSE_SCHEMA=demo_history
export WHARF_S3_PREFIX="demo-history/$RUN/"
export WHARF_MONGO_DATABASE="history_$RUN"
PSQL=(psql "$WHARF_WAREHOUSE_DSN" -X -q -v ON_ERROR_STOP=1)
M=.stack/demo-backfill/manifest.json

echo "== fresh demo: warehouse schema demo_history, S3 prefix $WHARF_S3_PREFIX, Mongo database $WHARF_MONGO_DATABASE"
"${PSQL[@]}" -c 'DROP SCHEMA IF EXISTS demo_history CASCADE'
$WHARF schema apply -c $CFG 2>/dev/null

echo "== seeding Mongo with three years of history ($N documents, InsertMany in batches of 2,000)"
.stack/bin/wharf-demo-history -n "$N" -years 3 -bad 40 -other 20 -untyped 20 -batch 2000 -manifest "$M"
node -e 'const m=require(process.argv[1]);for(const [c,n] of Object.entries(m.documents))console.log(`   ${c.padEnd(14)} ${String(n).padStart(8)} documents, ${String(m.untyped[c]||0).padStart(6)} of them without a type field`);console.log(`   from ${m.from.slice(0,10)} to ${m.to.slice(0,10)}`)' "$REPO/$M"

# On a terminal: the progress bars, and only warnings from the log. Otherwise
# the progress log lines.
if [ -t 2 ]; then export WHARF_LOG_LEVEL=warn; fi
start=$(date +%s)
for t in page_views actions_taken orders signups; do
	echo
	echo "== wharf backfill --table $t --workers $WORKERS"
	$WHARF backfill -c $CFG --table "$t" --workers "$WORKERS" --job "demo-$t" | sed 's/^/   /'
done
unset WHARF_LOG_LEVEL
echo
echo "   all backfilled and loaded in $(($(date +%s) - start))s"

echo
echo "== rows per table (expected from the seeder's manifest)"
for t in page_views actions_taken actions_taken_tags orders order_items signups; do
	got=$("${PSQL[@]}" -At -c "SELECT count(*) FROM demo_history.$t")
	want=$(node -e 'console.log(require(process.argv[1]).rows[process.argv[2]]||0)' "$REPO/$M" $t)
	dup=$("${PSQL[@]}" -At -c "SELECT count(*) - count(DISTINCT (event_id$(case $t in *_tags|order_items) echo ", idx";; esac))) FROM demo_history.$t")
	printf '   %-20s %8s rows   expected %8s   duplicates %s\n' "$t" "$got" "$want" "$dup"
	[ "$got" = "$want" ] && [ "$dup" = 0 ] || { echo "demo-backfill: $t does not match" >&2; exit 1; }
done

echo
echo "== dead letters by reason (the bad documents, kept with their reason)"
$WHARF deadletter list -c $CFG 2>/dev/null | sed 's/^/   /'

echo
echo "== the analyst's query: monthly active users, three years back"
"${PSQL[@]}" -c "WITH m AS (
  SELECT date_trunc('month', event_time)::date AS month, count(DISTINCT user_id) AS active_users
  FROM demo_history.page_views GROUP BY 1)
SELECT to_char(month, 'YYYY-MM') AS month, active_users,
       repeat('█', (60 * active_users / max(active_users) OVER ())::int) AS chart
FROM m ORDER BY month"

echo "== checked against the seeder: monthly active users"
"${PSQL[@]}" -At -F ' ' -c "SELECT to_char(date_trunc('month', event_time), 'YYYY-MM'), count(DISTINCT user_id) FROM demo_history.page_views GROUP BY 1 ORDER BY 1" >.stack/demo-backfill/mau.txt
node -e '
const m=require(process.argv[1]).mau; const fs=require("fs");
let bad=0, n=0;
for (const line of fs.readFileSync(process.argv[2],"utf8").trim().split("\n")) {
  const [month, users] = line.split(" "); n++;
  if (m[month] !== Number(users)) { bad++; console.error(`   ${month}: warehouse ${users}, seeder ${m[month]}`); }
}
if (bad || n !== Object.keys(m).length) { console.error("demo-backfill: monthly active users differ"); process.exit(1); }
console.log(`   all ${n} months match`);' "$REPO/$M" "$REPO/.stack/demo-backfill/mau.txt"
