#!/usr/bin/env bash
# bench-backfill.sh — the backfill figures of issue 4, on the local stack,
# printed as one JSON line per figure on stdout: {"bench": NAME, "value": X, "unit": U}
# (progress and notes go to stderr). `make bench-backfill` runs it.
#
#   backfill_docs_per_s    documents of one collection into the warehouse per
#                          second: `wharf backfill` from start to exit, the
#                          final load included (the rows are queryable then)
#   bare_scan_docs_per_s   the same plan and the same range queries, reading
#                          the documents and discarding them (--scan-only)
#   backfill_ratio         backfill / bare scan (target ≥ 0.8)
#   backfill_rss_mib_2m    peak RSS of `wharf backfill` over 2,000,000
#                          documents (target ≤ 256)
#
# The backfill runs first and the bare scan second, so a warm cache favours
# the bare scan: the ratio errs low. Both use --workers BENCH_BACKFILL_WORKERS.
# On FerretDB every range is a full scan and a sort in memory (design §9), so
# more workers mean more scans there; on MongoDB each range walks the _id index.
#
# Knobs (environment):
#   BENCH_BACKFILL_ONLY         phases, comma-separated (default ratio,rss)
#   BENCH_BACKFILL_DOCS         documents of the ratio phase (default 200000)
#   BENCH_BACKFILL_WORKERS      --workers of the ratio phase (default 2)
#   BENCH_BACKFILL_RSS_DOCS     documents of the RSS phase (default 2000000)
#   BENCH_BACKFILL_RSS_WORKERS  --workers of the RSS phase (default 1)
#   BENCH_KEEP                  1 to keep the Mongo databases and warehouse schemas
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO="$(cd "$HERE/../.." && pwd -P)"
cd "$REPO"

ONLY=",${BENCH_BACKFILL_ONLY:-ratio,rss},"
DOCS="${BENCH_BACKFILL_DOCS:-200000}"
WORKERS="${BENCH_BACKFILL_WORKERS:-2}"
RSS_DOCS="${BENCH_BACKFILL_RSS_DOCS:-2000000}"
RSS_WORKERS="${BENCH_BACKFILL_RSS_WORKERS:-1}"
KEEP="${BENCH_KEEP:-0}"

log() { printf 'bench-backfill: %s\n' "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}
want() { [[ $ONLY == *",$1,"* ]]; }
[[ -s .stack/env ]] || die ".stack/env is missing: run make stack-up first"
set -a
. .stack/env
set +a

RUN="$(date -u +%Y%m%dt%H%M%S)_$$"
OUT=".stack/bench/backfill-$RUN"
mkdir -p "$OUT" .stack/bin
go build -o .stack/bin/wharf ./cmd/wharf
go build -o .stack/bin/wharf-demo-history ./cmd/wharf-demo-history
WHARF=.stack/bin/wharf
HIST=.stack/bin/wharf-demo-history
CFG=deploy/local/wharf.yaml
export WHARF_LOG_FORMAT=json
DBS=() SCHEMAS=()

cleanup() {
	local rc=$?
	set +e
	if [[ $KEEP == 1 ]]; then
		((${#DBS[@]})) && log "kept: Mongo databases ${DBS[*]}, warehouse schemas ${SCHEMAS[*]}"
	else
		for d in "${DBS[@]}"; do $HIST -db "$d" -drop 2>>"$OUT/cleanup.log"; done
		for s in "${SCHEMAS[@]}"; do psql "$WHARF_WAREHOUSE_DSN" -X -q -c "DROP SCHEMA IF EXISTS $s CASCADE" 2>>"$OUT/cleanup.log"; done
	fi
	((rc)) && log "logs: $OUT"
	exit $rc
}
trap cleanup EXIT

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.4g\", $1 }"; }
emit() { printf '{"bench": "%s", "value": %s, "unit": "%s"%s}\n' "$1" "$2" "$3" "${4:+, $4}"; }

# seed NAME DOCS: about DOCS page views (ObjectId _ids, BSON dates) in a
# fresh database; sets DB and SEEDED.
seed() {
	DB="bfbench_${RUN}_$1"
	DBS+=("$DB")
	log "$1: seeding $2 documents into $DB"
	# -only keeps page_views, half of what the generator makes.
	$HIST -db "$DB" -n $(($2 * 2)) -only page_views -bad 0 -other 0 -batch 2000 -manifest "$OUT/$1-manifest.json" 2>>"$OUT/$1-seed.log" ||
		die "$1: seeding failed: see $OUT/$1-seed.log"
	SEEDED=$(node -e 'console.log(require(process.argv[1]).documents.page_views)' "$REPO/$OUT/$1-manifest.json")
}

# run_backfill NAME DB WORKERS [ARGS…]: wharf backfill of page_views; sets SECS and PEAK_KB.
run_backfill() {
	local name=$1 db=$2 workers=$3
	shift 3
	local schema="bfbench_${RUN}_${name}"
	SCHEMAS+=("$schema")
	local t0 t1
	t0=$(now)
	WHARF_MONGO_DATABASE="$db" WHARF_WAREHOUSE_SCHEMA="$schema" WHARF_S3_PREFIX="bench-backfill/$RUN/$name/" \
		/usr/bin/time -f '%M' -o "$OUT/$name.maxrss" \
		$WHARF backfill -c $CFG --table page_views --workers "$workers" --progress log --progress-interval 10s "$@" \
		>"$OUT/$name.out" 2>"$OUT/$name.log" || die "$name: wharf backfill failed: see $OUT/$name.log"
	t1=$(now)
	SECS=$(calc "$t1 - $t0")
	PEAK_KB=$(tail -1 "$OUT/$name.maxrss")
	grep -q "documents read  $SEEDED " "$OUT/$name.out" || die "$name: did not read $SEEDED documents: see $OUT/$name.out"
}

if want ratio; then
	seed ratio "$DOCS"
	N=$SEEDED
	log "ratio: wharf backfill --workers $WORKERS of $N documents, into the warehouse"
	run_backfill ratio "$DB" "$WORKERS"
	grep -q "the rows are in the warehouse" "$OUT/ratio.out" || die "ratio: no final load: see $OUT/ratio.out"
	BF=$(calc "$N / $SECS")
	log "  $SECS s: $BF documents/s (peak RSS $((PEAK_KB / 1024)) MiB)"
	log "ratio: the bare scan (--scan-only) of the same documents"
	run_backfill bare "$DB" "$WORKERS" --scan-only
	BARE=$(calc "$N / $SECS")
	log "  $SECS s: $BARE documents/s"
	emit backfill_docs_per_s "$BF" "docs/s" "\"documents\": $N, \"workers\": $WORKERS"
	emit bare_scan_docs_per_s "$BARE" "docs/s" "\"documents\": $N, \"workers\": $WORKERS"
	emit backfill_ratio "$(calc "$BF / $BARE")" "" "\"target\": \">= 0.8\""
fi

if want rss; then
	seed rss "$RSS_DOCS"
	# The design's default max_age (60 s) rather than the local 5 s: buffers
	# then fill up to batch.max_bytes, the cap whose memory this measures.
	log "rss: wharf backfill --workers $RSS_WORKERS of $SEEDED documents (batch.max_age 60s)"
	WHARF_BATCH_MAX_AGE=60s run_backfill rss "$DB" "$RSS_WORKERS"
	log "  $SECS s: $(calc "$SEEDED / $SECS") documents/s, peak RSS $((PEAK_KB / 1024)) MiB"
	emit backfill_rss_mib_2m "$(calc "$PEAK_KB / 1024")" "MiB" "\"documents\": $SEEDED, \"target\": \"<= 256\""
fi
