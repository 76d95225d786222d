#!/usr/bin/env bash
# stack-down.sh — stop the local development stack started by stack-up.sh.
#
# Idempotent. Keeps all data in $REPO/.stack unless STACK_CLEAN=1, which also
# removes the state (PostgreSQL cluster, FerretDB data, logs, built helper).
# Note fauxqs keeps its queues/objects in memory only: they are gone either way.
set -euo pipefail
shopt -s inherit_errexit

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO="$(cd "$HERE/../.." && pwd -P)"
STATE="$REPO/.stack"
PG_BIN=/usr/lib/postgresql/15/bin

log() { printf 'stack-down: %s\n' "$*"; }
die() {
	printf 'stack-down: ERROR: %s\n' "$*" >&2
	exit 1
}

if [[ ! -d $STATE ]]; then
	log "nothing to stop ($STATE does not exist)"
	exit 0
fi

exec 9>"$STATE/.lock"
flock -w 300 9 || die "another stack-up/stack-down holds $STATE/.lock"

# is_running PID: the process exists and is not a zombie.
is_running() {
	local st
	kill -0 "$1" 2>/dev/null || return 1
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[[ -n $st && $st != Z ]]
}

# stop_pidfile NAME PIDFILE PATTERN: TERM the pid (if it is ours), wait up to
# 15 s, then KILL.
stop_pidfile() {
	local name=$1 pidfile=$2 pat=$3 pid i
	if [[ ! -s $pidfile ]]; then
		log "$name: not running"
		return 0
	fi
	pid=$(<"$pidfile")
	if ! [[ $pid =~ ^[0-9]+$ ]] || ! is_running "$pid" ||
		! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pat"; then
		log "$name: not running (stale pid file)"
		rm -f "$pidfile"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 150; i++)); do
		is_running "$pid" || break
		sleep 0.1
	done
	if is_running "$pid"; then
		log "$name: pid $pid ignored SIGTERM for 15 s; killing"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
	log "$name: stopped (pid $pid)"
}

stop_pidfile fauxqs "$STATE/fauxqs.pid" "$HERE/fauxqs.mjs"
stop_pidfile ferretdb "$STATE/ferretdb.pid" "$STATE/bin/ferretdb"

# PostgreSQL: $STATE/pg is the cluster home or a symlink to it (see stack-up.sh).
PG_HOME=""
if [[ -L $STATE/pg ]]; then
	PG_HOME=$(readlink "$STATE/pg")
elif [[ -d $STATE/pg ]]; then
	PG_HOME=$STATE/pg
fi
PGDATA="$PG_HOME/data"

if [[ -n $PG_HOME && -s $PGDATA/PG_VERSION ]]; then
	if ((EUID == 0)); then
		PG_USER=$(stat -c %U "$PGDATA")
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
	if [[ ! -x $PG_BIN/pg_ctl ]]; then
		log "postgres: $PG_BIN/pg_ctl missing; not running"
	elif pm=$(head -n1 "$PGDATA/postmaster.pid" 2>/dev/null) && [[ $pm =~ ^[0-9]+$ ]] && is_running "$pm" &&
		as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
		as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null ||
			die "pg_ctl stop failed; see $PG_HOME/postgres.log"
		log "postgres: stopped"
	else
		log "postgres: not running"
	fi
else
	log "postgres: no cluster"
fi

if [[ ${STACK_CLEAN:-0} == 1 ]]; then
	if [[ -n $PG_HOME && $PG_HOME != "$STATE/pg" ]]; then
		case $PG_HOME in
		/var/tmp/wharf-stack-pg-* | /tmp/wharf-stack-pg-*) rm -rf -- "$PG_HOME" ;;
		*) log "not removing unexpected cluster location $PG_HOME" ;;
		esac
	fi
	# Keep the lock file open until the end; remove everything else.
	find "$STATE" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf -- {} +
	rm -f "$STATE/.lock"
	rmdir "$STATE" 2>/dev/null || true
	log "removed $STATE (STACK_CLEAN=1)"
else
	log "data kept in $STATE (STACK_CLEAN=1 removes it)"
fi
