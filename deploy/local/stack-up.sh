#!/usr/bin/env bash
# stack-up.sh — start the local development stack (design.md §9) on loopback:
#
#   fauxqs      SQS + S3 emulator (npm, pinned)      127.0.0.1:4566
#   FerretDB    MongoDB wire protocol, SQLite backend 127.0.0.1:27018
#   PostgreSQL  Debian's postgresql-15, private cluster 127.0.0.1:5433
#
# All state lives in $REPO/.stack (gitignored). The addresses are written to
# $REPO/.stack/env (source it from sh). Idempotent: services that are alive
# (pid + health probe) are left alone; dead ones are restarted. The SQS queues
# and the S3 bucket are (re)created on every run because fauxqs keeps its
# state in memory.
#
# Usually run as `make stack-up`. Optional overrides (for tests of this script):
#   STACK_FAUXQS_PORT, STACK_FERRETDB_PORT, STACK_PG_PORT, STACK_WAIT_SECS
set -euo pipefail
shopt -s inherit_errexit

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO="$(cd "$HERE/../.." && pwd -P)"
STATE="$REPO/.stack"

FAUXQS_VERSION=1.9.2
# DuckDB for Node: internal/pq's tests read wharf's Parquet files back with it
# (an engine outside Go's ecosystem). Its engine ships in the platform package
# @duckdb/node-bindings-linux-x64; nothing is downloaded after install.
DUCKDB_NODE_VERSION=1.5.6-r.1
FAUXQS_PORT="${STACK_FAUXQS_PORT:-4566}"
FERRET_PORT="${STACK_FERRETDB_PORT:-27018}"
PG_PORT="${STACK_PG_PORT:-5433}"
WAIT_SECS="${STACK_WAIT_SECS:-60}"
PG_BIN=/usr/lib/postgresql/15/bin

QUEUE=wharf-events
DLQ=wharf-events-dlq
BUCKET=wharf-local
DATABASE=wharf

FAUXQS_URL="http://127.0.0.1:$FAUXQS_PORT"
FAUXQS_MAIN="$HERE/fauxqs.mjs"
FERRET_SRC="$HERE/ferretdb"
FERRET_BIN="$STATE/bin/ferretdb"

T0=$(date +%s%N)
CHANGED=()

log() { printf 'stack-up: %s\n' "$*"; }
die() {
	printf 'stack-up: ERROR: %s\n' "$*" >&2
	exit 1
}
# die_log MESSAGE LOGFILE: fail, pointing at (and quoting the end of) a log.
die_log() {
	printf 'stack-up: ERROR: %s\nstack-up: see %s; last lines:\n' "$1" "$2" >&2
	tail -n 25 "$2" 2>/dev/null | sed 's/^/    /' >&2 || true
	exit 1
}
elapsed() { echo $((($(date +%s%N) - T0) / 1000000)); }

mkdir -p "$STATE/bin"
# One stack-up/stack-down at a time.
exec 9>"$STATE/.lock"
flock -w 300 9 || die "another stack-up/stack-down holds $STATE/.lock"

# ---------------------------------------------------------------- helpers ---

# is_running PID: the process exists and is not a zombie.
is_running() {
	local st
	kill -0 "$1" 2>/dev/null || return 1
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[[ -n $st && $st != Z ]]
}

# pid_alive PIDFILE PATTERN: the pid in PIDFILE is running and its command
# line contains PATTERN (guards against pid reuse).
pid_alive() {
	local pid
	[[ -s $1 ]] || return 1
	pid=$(<"$1")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	is_running "$pid" || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"
}

tcp_open() { timeout 2 bash -c ">/dev/tcp/$1/$2" 2>/dev/null; }

# port_owner PORT: pid of the process listening on 127.0.0.1/0.0.0.0:PORT.
port_owner() {
	ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true
}

cmdline_of() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true; }

# stop_pid PID: TERM, wait up to 15 s, then KILL.
stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 150; i++)); do
		is_running "$pid" || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

# start_bg PIDFILE LOGFILE CMD...: start CMD detached (own session, so ^C on
# make does not reach it), stdout+stderr to LOGFILE (previous log kept as
# LOGFILE.1), pid to PIDFILE.
start_bg() {
	local pidfile=$1 logfile=$2 i
	shift 2
	[[ -f $logfile ]] && mv -f "$logfile" "$logfile.1"
	rm -f "$pidfile"
	printf '==== %s stack-up starting: %s\n' "$(date -Is)" "$*" >"$logfile"
	# 9>&-: the service must not inherit (and so hold) the stack lock.
	# shellcheck disable=SC2016 # $$ and "$@" expand in the child shell
	setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >>"$logfile" 2>&1 </dev/null 9>&- &
	for ((i = 0; i < 50; i++)); do
		[[ -s $pidfile ]] && return 0
		sleep 0.1
	done
	die_log "could not start: $*" "$logfile"
}

# ensure_service NAME PIDFILE PATTERN PROBE LOGFILE PORT -- CMD...
# Leaves a healthy service alone; adopts an orphan of ours found on PORT;
# otherwise (re)starts CMD and waits until PROBE succeeds.
ensure_service() {
	local name=$1 pidfile=$2 pat=$3 probe=$4 logfile=$5 port=$6 owner deadline
	shift 7
	if pid_alive "$pidfile" "$pat"; then
		if [[ $(port_owner "$port") == "$(<"$pidfile")" ]] && $probe; then
			return 0
		fi
		log "$name (pid $(<"$pidfile")) is not healthy on port $port; restarting"
		stop_pid "$(<"$pidfile")"
	fi
	owner=$(port_owner "$port")
	if [[ -n $owner ]]; then
		if cmdline_of "$owner" | grep -qF -- "$pat" && $probe; then
			log "$name: adopting running pid $owner"
			echo "$owner" >"$pidfile"
			return 0
		fi
		die "$name: port $port is already in use by pid $owner ($(cmdline_of "$owner"))"
	fi
	log "starting $name on 127.0.0.1:$port (log: $logfile)"
	start_bg "$pidfile" "$logfile" "$@"
	deadline=$((SECONDS + WAIT_SECS))
	until $probe; do
		pid_alive "$pidfile" "$pat" || die_log "$name exited during startup" "$logfile"
		((SECONDS < deadline)) || die_log "$name not healthy after ${WAIT_SECS}s" "$logfile"
		sleep 0.2
	done
	CHANGED+=("$name")
}

# ----------------------------------------------------------------- fauxqs ---

command -v node >/dev/null || die "node is not installed (need Node >= 20 for fauxqs $FAUXQS_VERSION)"

installed_version() { # PACKAGE
	sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$HERE/node_modules/$1/package.json" 2>/dev/null | head -n1 || true
}
fauxqs_installed_version() { installed_version fauxqs; }

fauxqs_pidfile="$STATE/fauxqs.pid"
fauxqs_log="$STATE/fauxqs.log"
if [[ $(fauxqs_installed_version) != "$FAUXQS_VERSION" ]] ||
	[[ $(installed_version @duckdb/node-api) != "$DUCKDB_NODE_VERSION" ]] ||
	[[ $HERE/package-lock.json -nt $HERE/node_modules/.package-lock.json ]]; then
	log "installing fauxqs@$FAUXQS_VERSION and @duckdb/node-api@$DUCKDB_NODE_VERSION into deploy/local/node_modules"
	command -v npm >/dev/null || die "npm is not installed"
	node_major=$(node -p 'process.versions.node.split(".")[0]')
	((node_major >= 20)) || die "Node >= 20 needed for fauxqs $FAUXQS_VERSION, found $(node --version)"
	# Engines: fauxqs 1.9.2 itself needs Node >= 20; one transitive dependency
	# (cookie 2.x via fastify's light-my-request) declares >= 22 but is not
	# used at run time. --engine-strict=false keeps a user's npmrc from failing.
	npm_args=(--no-audit --no-fund --no-progress --loglevel=error --engine-strict=false)
	if [[ -f $HERE/package-lock.json ]]; then
		(cd "$HERE" && npm ci "${npm_args[@]}") || die "npm ci failed in $HERE"
	else
		(cd "$HERE" && npm install "${npm_args[@]}") || die "npm install failed in $HERE"
	fi
	[[ $(fauxqs_installed_version) == "$FAUXQS_VERSION" ]] ||
		die "fauxqs $FAUXQS_VERSION not installed (package.json/package-lock.json out of sync?)"
	[[ $(installed_version @duckdb/node-api) == "$DUCKDB_NODE_VERSION" ]] ||
		die "@duckdb/node-api $DUCKDB_NODE_VERSION not installed (package.json/package-lock.json out of sync?)"
	# A running fauxqs uses the old files: restart it.
	if pid_alive "$fauxqs_pidfile" "$FAUXQS_MAIN"; then stop_pid "$(<"$fauxqs_pidfile")"; fi
fi

fauxqs_healthy() { curl -fsS -m 2 "$FAUXQS_URL/health" 2>/dev/null | grep -q '"ok"'; }

# fauxqs.mjs wraps fauxqs's buildApp(): loopback only, no request log (its
# cli.js ignores FAUXQS_LOGGER and binds 0.0.0.0). Queue URLs look like
# http://sqs.us-east-1.localhost:4566/000000000000/NAME. glibc and Go do not
# resolve that host, but the AWS SDKs never dial it: they send to
# AWS_ENDPOINT_URL with the URL in the body, and fauxqs looks queues up by
# the exact URL string — so use WHARF_SQS_QUEUE_URL verbatim.
ensure_service fauxqs "$fauxqs_pidfile" "$FAUXQS_MAIN" fauxqs_healthy "$fauxqs_log" "$FAUXQS_PORT" -- \
	env FAUXQS_PORT="$FAUXQS_PORT" FAUXQS_LOGGER="${FAUXQS_LOGGER:-false}" \
	node "$FAUXQS_MAIN"

# --------------------------------------------------------------- FerretDB ---

ferret_pidfile="$STATE/ferretdb.pid"
ferret_log="$STATE/ferretdb.log"
if [[ ! -x $FERRET_BIN ]] || [[ -n $(find "$FERRET_SRC" -maxdepth 1 -type f -newer "$FERRET_BIN" -print -quit) ]]; then
	command -v go >/dev/null || die "go is not installed (needed to build $FERRET_SRC)"
	log "building FerretDB helper -> $FERRET_BIN (first build takes about a minute)"
	# GOWORK=off: a go.work at the repo root must not capture this module.
	(cd "$FERRET_SRC" && GOWORK=off nice go build -p 2 -trimpath -o "$FERRET_BIN.tmp" .) ||
		die "building $FERRET_SRC failed"
	mv -f "$FERRET_BIN.tmp" "$FERRET_BIN"
	# A running FerretDB is the old build: restart it.
	if pid_alive "$ferret_pidfile" "$FERRET_BIN"; then stop_pid "$(<"$ferret_pidfile")"; fi
fi

ferret_healthy() { tcp_open 127.0.0.1 "$FERRET_PORT"; }

mkdir -p "$STATE/ferretdb"
ensure_service ferretdb "$ferret_pidfile" "$FERRET_BIN" ferret_healthy "$ferret_log" "$FERRET_PORT" -- \
	"$FERRET_BIN" -listen "127.0.0.1:$FERRET_PORT" -dir "$STATE/ferretdb"

# ------------------------------------------------------------- PostgreSQL ---

if [[ ! -x $PG_BIN/initdb ]]; then
	log "installing postgresql-15 from Debian (apt-get)"
	sudo=()
	if ((EUID != 0)); then
		command -v sudo >/dev/null || die "$PG_BIN/initdb missing and not root: install postgresql-15"
		sudo=(sudo -n)
	fi
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
		die "apt-get update failed"
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-15 ||
		die "apt-get install postgresql-15 failed"
	[[ -x $PG_BIN/initdb ]] || die "postgresql-15 installed but $PG_BIN/initdb is missing"
fi

# The server refuses to run as root: as root, run it as the `postgres` user.
if ((EUID == 0)); then
	PG_USER=postgres
	id -u "$PG_USER" >/dev/null 2>&1 || die "user $PG_USER does not exist (it comes with the postgresql-15 package)"
else
	PG_USER=$(id -un)
fi
as_pg() {
	if ((EUID == 0)); then
		if command -v runuser >/dev/null; then
			(cd / && runuser -u "$PG_USER" -- "$@")
		else
			(cd / && su -s /bin/sh "$PG_USER" -c "$(printf '%q ' "$@")")
		fi
	else
		"$@"
	fi
}

# $STATE/pg holds the cluster (data/), its log (postgres.log) and its unix
# socket. If the postgres user cannot reach $STATE (e.g. the repo is under
# /root, mode 0700) or the socket path would be too long, the directory lives
# at /var/tmp/wharf-stack-pg-<hash of repo path> and $STATE/pg is a symlink.
PG_LINK="$STATE/pg"
if [[ -L $PG_LINK ]]; then
	PG_HOME=$(readlink "$PG_LINK")
elif [[ -d $PG_LINK ]]; then
	PG_HOME=$PG_LINK
else
	PG_HOME=$PG_LINK
	if ! as_pg test -x "$STATE" 2>/dev/null || ((${#PG_HOME} > 90)); then
		PG_HOME="/var/tmp/wharf-stack-pg-$(printf '%s' "$REPO" | sha256sum | cut -c1-12)"
		log "postgres cannot use $PG_LINK directly; cluster lives in $PG_HOME (symlinked)"
		ln -sfn "$PG_HOME" "$PG_LINK"
	fi
fi
PGDATA="$PG_HOME/data"
PG_LOG="$PG_HOME/postgres.log"
mkdir -p "$PG_HOME"
if ((EUID == 0)); then chown "$PG_USER": "$PG_HOME"; fi
chmod 0700 "$PG_HOME"
as_pg test -w "$PG_HOME" || die "user $PG_USER cannot write $PG_HOME"

if [[ ! -s $PGDATA/PG_VERSION ]]; then
	log "initdb: new cluster in $PGDATA"
	locale_opt=--locale=C
	if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then locale_opt=--locale=C.UTF-8; fi
	as_pg "$PG_BIN/initdb" -D "$PGDATA" -A trust -U postgres --encoding=UTF8 "$locale_opt" \
		--no-instructions >"$PG_HOME/initdb.log" 2>&1 || die_log "initdb failed" "$PG_HOME/initdb.log"
fi
if ! grep -q "^include_if_exists = 'wharf-stack.conf'" "$PGDATA/postgresql.conf"; then
	printf '\n%s\n' "include_if_exists = 'wharf-stack.conf'" >>"$PGDATA/postgresql.conf"
fi
# Regenerated on every run. fsync stays on: crash tests rely on durability.
pg_conf=$(
	cat <<EOF
# Written by deploy/local/stack-up.sh on every run; edit there.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_HOME'
max_connections = 200
fsync = on
full_page_writes = on
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
timezone = 'UTC'
EOF
)
pg_conf_changed=0
if [[ ! -f $PGDATA/wharf-stack.conf ]] || [[ $(<"$PGDATA/wharf-stack.conf") != "$pg_conf" ]]; then
	pg_conf_changed=1
	printf '%s\n' "$pg_conf" >"$PGDATA/wharf-stack.conf"
	if ((EUID == 0)); then chown "$PG_USER": "$PGDATA/wharf-stack.conf"; fi
fi
ln -sfn "$PG_LOG" "$STATE/postgres.log"

pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -t 2; }
pg_pid() { head -n1 "$PGDATA/postmaster.pid" 2>/dev/null || true; }
# pg_running: postmaster.pid names a live (not zombie) postmaster.
pg_running() {
	local p
	p=$(pg_pid)
	[[ $p =~ ^[0-9]+$ ]] && is_running "$p" && as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
}
# pg_wait_ready: wait until the running server accepts connections (it may be
# in crash recovery); fail 1 if it stops running meanwhile.
pg_wait_ready() {
	local deadline=$((SECONDS + WAIT_SECS))
	until pg_ready; do
		pg_running || return 1
		((SECONDS < deadline)) || die_log "postgres is running but not accepting connections on port $PG_PORT after ${WAIT_SECS}s" "$PG_LOG"
		sleep 0.2
	done
}

if pg_running && { ((pg_conf_changed)) || [[ $(sed -n 4p "$PGDATA/postmaster.pid") != "$PG_PORT" ]]; }; then
	log "postgres settings changed; restarting it"
	as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w -t "$WAIT_SECS" stop >/dev/null ||
		die_log "could not stop postgres" "$PG_LOG"
fi
# Running (possibly still in crash recovery): wait, do not restart.
if ! { pg_running && pg_wait_ready; }; then
	deadline=$((SECONDS + WAIT_SECS))
	# A killed postmaster stays a zombie until init reaps it (here ~2 s); its
	# pid in postmaster.pid still "exists" and would make the new one refuse
	# to start. Backends of a killed postmaster also need a moment to exit.
	p=$(pg_pid)
	while [[ $p =~ ^[0-9]+$ ]] && kill -0 "$p" 2>/dev/null && ! is_running "$p"; do
		((SECONDS < deadline)) || die "dead postmaster pid $p was not reaped within ${WAIT_SECS}s"
		sleep 0.2
	done
	owner=$(port_owner "$PG_PORT")
	[[ -z $owner ]] || die "postgres: port $PG_PORT is already in use by pid $owner ($(cmdline_of "$owner"))"
	log "starting postgres on 127.0.0.1:$PG_PORT (log: $STATE/postgres.log)"
	until as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PG_LOG" -w -t "$WAIT_SECS" start >/dev/null 9>&-; do
		((SECONDS < deadline)) || die_log "postgres did not start within ${WAIT_SECS}s" "$PG_LOG"
		log "postgres did not start; retrying (see $STATE/postgres.log)"
		sleep 1
	done
	pg_ready || die_log "postgres started but is not accepting connections on 127.0.0.1:$PG_PORT" "$PG_LOG"
	CHANGED+=(postgres)
fi

pg_psql() { PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"; }
if [[ $(pg_psql -d postgres -tAc "select 1 from pg_database where datname = '$DATABASE'") != 1 ]]; then
	log "creating database $DATABASE"
	pg_psql -d postgres -c "create database $DATABASE" >/dev/null || die "could not create database $DATABASE"
fi

# ----------------------------------------------- SQS queues and S3 bucket ---

# sqs ACTION JSON: call fauxqs's SQS JSON protocol; prints the response body.
sqs() {
	local out code
	out=$(curl -sS -m 10 -w '\n%{http_code}' -X POST "$FAUXQS_URL/" \
		-H "X-Amz-Target: AmazonSQS.$1" -H 'Content-Type: application/x-amz-json-1.0' \
		--data-binary "$2") || die "SQS $1: request to $FAUXQS_URL failed"
	code=${out##*$'\n'}
	out=${out%$'\n'*}
	if [[ $code != 2* ]]; then
		printf '%s' "$out"
		return 1
	fi
	printf '%s' "$out"
}
# json_get PATH: print the string at PATH (e.g. Attributes.QueueArn) of the
# JSON on stdin; fail if absent. jq when installed, else node.
# json_str S: S as a JSON string literal.
if command -v jq >/dev/null; then
	json_get() { jq -er ".$1 | strings"; }
	json_str() { jq -cn --arg s "$1" '$s'; }
else
	json_get() {
		node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{let v=JSON.parse(s);for(const k of process.argv[1].split("."))v=v?.[k];if(typeof v!=="string")process.exit(1);process.stdout.write(v)})' "$1"
	}
	json_str() { node -e 'process.stdout.write(JSON.stringify(process.argv[1]))' "$1"; }
fi

# ensure_queue NAME ATTRIBUTES_JSON: create the queue, or bring an existing
# one's attributes back to ATTRIBUTES_JSON. Prints the queue URL.
ensure_queue() {
	local out url
	if out=$(sqs GetQueueUrl "{\"QueueName\":\"$1\"}"); then
		url=$(json_get QueueUrl <<<"$out")
		out=$(sqs SetQueueAttributes "{\"QueueUrl\":$(json_str "$url"),\"Attributes\":$2}") ||
			die "SetQueueAttributes on $1 failed: $out"
	else
		out=$(sqs CreateQueue "{\"QueueName\":\"$1\",\"Attributes\":$2}") ||
			die "CreateQueue $1 failed: $out"
		url=$(json_get QueueUrl <<<"$out") || die "CreateQueue $1: no QueueUrl in $out"
	fi
	printf '%s' "$url"
}

dlq_url=$(ensure_queue "$DLQ" '{"MessageRetentionPeriod":"1209600"}')
out=$(sqs GetQueueAttributes "{\"QueueUrl\":$(json_str "$dlq_url"),\"AttributeNames\":[\"QueueArn\"]}") ||
	die "GetQueueAttributes on $DLQ failed: $out"
dlq_arn=$(json_get Attributes.QueueArn <<<"$out") || die "no QueueArn for $DLQ in $out"
redrive="{\"deadLetterTargetArn\":\"$dlq_arn\",\"maxReceiveCount\":5}"
queue_url=$(ensure_queue "$QUEUE" "{\"VisibilityTimeout\":\"120\",\"RedrivePolicy\":$(json_str "$redrive")}")

code=$(curl -sS -m 10 -o /dev/null -w '%{http_code}' -X PUT "$FAUXQS_URL/$BUCKET") ||
	die "S3 CreateBucket $BUCKET: request to $FAUXQS_URL failed"
[[ $code == 200 || $code == 409 ]] || die "S3 CreateBucket $BUCKET failed (HTTP $code)"

# -------------------------------------------------------------------- env ---

env_file="$STATE/env"
cat >"$env_file.tmp" <<EOF
export AWS_ENDPOINT_URL='http://127.0.0.1:$FAUXQS_PORT'
export AWS_REGION='us-east-1'
export AWS_ACCESS_KEY_ID='test'
export AWS_SECRET_ACCESS_KEY='test'
export WHARF_SQS_QUEUE_URL='$queue_url'
export WHARF_S3_BUCKET='$BUCKET'
export WHARF_MONGO_URI='mongodb://127.0.0.1:$FERRET_PORT/'
export WHARF_WAREHOUSE_DSN='postgres://postgres@127.0.0.1:$PG_PORT/$DATABASE?sslmode=disable'
EOF
if cmp -s "$env_file.tmp" "$env_file"; then rm -f "$env_file.tmp"; else mv -f "$env_file.tmp" "$env_file"; fi

# ---------------------------------------------------------------- summary ---

if ((${#CHANGED[@]} == 0)); then
	log "all services already running; nothing started ($(elapsed) ms)"
else
	log "started: ${CHANGED[*]} ($(elapsed) ms)"
fi
cat <<EOF
  fauxqs    $FAUXQS_URL  (SQS + S3)   pid $(<"$fauxqs_pidfile")  log .stack/fauxqs.log
  ferretdb  mongodb://127.0.0.1:$FERRET_PORT/    pid $(<"$ferret_pidfile")  log .stack/ferretdb.log
  postgres  127.0.0.1:$PG_PORT db $DATABASE          pid $(head -n1 "$PGDATA/postmaster.pid")  log .stack/postgres.log
  queue     $queue_url  (DLQ $DLQ, maxReceiveCount 5)
  bucket    $BUCKET
  env       . $env_file
EOF
