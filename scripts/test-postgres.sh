#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite.
#
#   scripts/test-postgres.sh run -- CMD [ARG...]
#       Start a server, run CMD with DATABASE_URL exported, stop the server (also when CMD
#       fails or is interrupted) and exit with CMD's exit code.
#   eval "$(scripts/test-postgres.sh start)"
#       Start a server; prints `export DATABASE_URL=...` and `export ORDERDESK_TEST_PG_DIR=...`.
#   scripts/test-postgres.sh stop [DIR]
#       Stop the server started in DIR (default: $ORDERDESK_TEST_PG_DIR) and delete DIR.
#
# The server listens on 127.0.0.1 on a free port, trusts every connection and has one
# superuser role `orderdesk` owning the database `orderdesk`; its data lives in a temporary
# directory. PostgreSQL refuses to run as root, so as root it runs as the `postgres` user.
# If no PostgreSQL binaries are found and we are root, the Debian package is installed.
# Set PG_BINDIR to use the binaries in a particular directory.
set -euo pipefail

ROLE=orderdesk
DBNAME=orderdesk
MARKER=.orderdesk-test-postgres

log() { echo "test-postgres: $*" >&2; }
die() { log "error: $*"; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

# Run a command as the user that owns the cluster.
as_pg() {
    if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

find_bindir() {
    local candidates=() c dir
    [ -n "${PG_BINDIR:-}" ] && candidates+=("$PG_BINDIR/pg_ctl")
    c=$(command -v pg_ctl 2>/dev/null || true)
    [ -n "$c" ] && candidates+=("$c")
    candidates+=(/usr/local/bin/pg_ctl)
    while IFS= read -r dir; do
        candidates+=("$dir/pg_ctl")
    done < <(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -V -r)
    for c in "${candidates[@]}"; do
        [ -x "$c" ] || continue
        dir=$(dirname "$(readlink -f "$c")")
        if [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

install_postgres() {
    is_root || die "PostgreSQL server binaries (pg_ctl, initdb) not found; install PostgreSQL 15 (Debian: apt-get install postgresql) or set PG_BINDIR"
    command -v apt-get >/dev/null || die "PostgreSQL server binaries not found and apt-get is not available; install PostgreSQL 15 or set PG_BINDIR"
    log "PostgreSQL not found; installing it with apt-get"
    # Keep the package's own cluster from being started: we only want the binaries.
    local policy=/usr/sbin/policy-rc.d created_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        created_policy=1
    fi
    local rc=0
    {
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >&2 &&
            apt-get install -y -q --no-install-recommends postgresql >&2
    } || rc=$?
    [ -n "$created_policy" ] && rm -f "$policy"
    [ "$rc" -eq 0 ] || die "apt-get install postgresql failed"
}

ensure_postgres_user() {
    is_root || return 0
    getent passwd postgres >/dev/null && return 0
    log "creating system user postgres"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin postgres
}

free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# initdb locale: a UTF-8 one where possible, so upper()/lower() (Django's iexact, icontains)
# work on Cyrillic text.
locale_args() {
    local all
    all=$(locale -a 2>/dev/null || true)
    if grep -qix 'c\.utf-\?8' <<<"$all"; then
        echo "--locale=C.UTF-8"
    elif grep -qix 'en_US\.utf-\?8' <<<"$all"; then
        echo "--locale=en_US.UTF-8"
    else
        echo "--no-locale"
    fi
}

cmd_start() {
    local bindir
    if ! bindir=$(find_bindir); then
        install_postgres
        bindir=$(find_bindir) || die "PostgreSQL binaries still not found after installing"
    fi
    ensure_postgres_user
    pgbin() { if [ -x "$bindir/$1" ]; then echo "$bindir/$1"; else command -v "$1" || die "$1 not found"; fi; }
    local pg_ctl initdb psql pg_isready
    pg_ctl=$(pgbin pg_ctl); initdb=$(pgbin initdb); psql=$(pgbin psql); pg_isready=$(pgbin pg_isready)
    log "using $("$bindir/postgres" --version) from $bindir"

    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/orderdesk-pg.XXXXXX")
    touch "$dir/$MARKER"
    # Stop and clean up if anything below fails.
    trap "cmd_stop '$dir' >/dev/null 2>&1 || true" EXIT
    if is_root; then
        chown -R postgres: "$dir"
        runuser -u postgres -- test -w "$dir" ||
            die "user postgres cannot write to $dir; set TMPDIR to a directory it can reach"
    fi

    # Run from the temp dir: the postgres user may not be allowed into the current one.
    (cd "$dir" && as_pg "$initdb" -D "$dir/data" -U "$ROLE" -A trust -E UTF8 $(locale_args) \
        >"$dir/initdb.log" 2>&1) || { cat "$dir/initdb.log" >&2; die "initdb failed"; }

    local port="" attempt
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        if (cd "$dir" && as_pg "$pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k '$dir' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >/dev/null); then
            break
        fi
        log "start on port $port failed (attempt $attempt)"
        port=""
    done
    [ -n "$port" ] || { tail -n 30 "$dir/postgres.log" >&2 || true; die "could not start PostgreSQL"; }

    local i
    for i in $(seq 1 60); do
        "$pg_isready" -q -h 127.0.0.1 -p "$port" -U "$ROLE" -d postgres && break
        [ "$i" -eq 60 ] && die "PostgreSQL on port $port is not accepting connections"
        sleep 0.5
    done
    "$psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$ROLE" -d postgres \
        -c "CREATE DATABASE $DBNAME OWNER $ROLE" >&2 || die "could not create database $DBNAME"

    trap - EXIT
    local url="postgres://$ROLE@127.0.0.1:$port/$DBNAME"
    log "PostgreSQL is up: DATABASE_URL=$url (data in $dir)"
    echo "export DATABASE_URL='$url'"
    echo "export ORDERDESK_TEST_PG_DIR='$dir'"
}

# True if the process exists and is not a zombie (an exited postmaster whose parent, e.g.
# PID 1 in a container, does not reap children still answers kill -0).
alive() {
    local state
    state=$(sed -n 's/^.*) \(.\).*$/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

cmd_stop() {
    local dir="${1:-${ORDERDESK_TEST_PG_DIR:-}}"
    [ -n "$dir" ] || die "stop: no directory given and ORDERDESK_TEST_PG_DIR is not set"
    [ -d "$dir" ] || { log "stop: $dir does not exist; nothing to do"; return 0; }
    [ -e "$dir/$MARKER" ] || die "stop: $dir was not created by this script; not touching it"
    local pidfile="$dir/data/postmaster.pid" bindir pid
    if [ -f "$pidfile" ]; then
        pid=$(head -n 1 "$pidfile")
        bindir=$(find_bindir || true)
        if [ -n "$bindir" ]; then
            (cd "$dir" && as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1) || true
        fi
        if [ -n "$pid" ] && alive "$pid"; then
            log "pg_ctl stop did not stop PostgreSQL (pid $pid); killing it"
            kill -QUIT "$pid" 2>/dev/null || true
            sleep 2
            pkill -KILL -P "$pid" 2>/dev/null || true
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$dir"
    log "PostgreSQL stopped, $dir removed"
}

cmd_run() {
    [ "${1:-}" = "--" ] && shift
    [ "$#" -gt 0 ] || die "usage: $0 run -- CMD [ARG...]"
    local env
    env=$(cmd_start)
    eval "$env"
    local dir="$ORDERDESK_TEST_PG_DIR"
    unset ORDERDESK_TEST_PG_DIR
    trap "cmd_stop '$dir'" EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    local rc=0
    "$@" || rc=$?
    exit "$rc"
}

case "${1:-}" in
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    run) shift; cmd_run "$@" ;;
    *)
        echo "usage: $0 start | stop [DIR] | run -- CMD [ARG...]" >&2
        exit 2
        ;;
esac
