#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1 for the test suite and the examples.
#
# Debian's server binaries (/usr/lib/postgresql/<version>/bin), a fresh cluster made by initdb in
# $PG_DIR, listening on loopback TCP only (no Unix socket), password (SCRAM) authentication, and a
# pg_hba.conf that admits 127.0.0.1 and nothing else. Nothing is registered with systemd and Debian's
# own clusters (pg_lsclusters) are left alone. The server refuses to run as root: started by root, it
# runs as $PG_OS_USER (default: Debian's `postgres` system user) through runuser.
#
#   scripts/postgres.sh install   install Debian's postgresql if missing (needs root)
#   scripts/postgres.sh start     install if needed, initdb, start, write $PG_DIR/env
#   scripts/postgres.sh stop      stop the server of $PG_DIR and remove what start created there
#
# Settings (environment):
#   PG_DIR       cluster, log and the env file      (default: .cache/postgres in the repository)
#   PG_PORT      TCP port; "auto" (or 0) picks a free one (default 15432)
#   PG_TIMEOUT   seconds for the server to accept connections (default 60)
#   PG_USER      the cluster's superuser role        (default ctfy)
#   PG_OS_USER   the system user the server runs as when started by root (default postgres)
#   PG_BIN       the server binaries                 (default: the newest /usr/lib/postgresql/*/bin)
#
# $PG_DIR/env holds PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE and PG_BIN, one KEY='value' a
# line (readable by `source` and by tests/support/servers.py's read_env_file): with it, psql, pg_dump and
# createdb connect without more options. The password is drawn at start; it guards a test cluster.
set -Eeuo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${PG_DIR:-$REPO/.cache/postgres}"
PORT="${PG_PORT:-15432}"
TIMEOUT="${PG_TIMEOUT:-60}"
ROLE="${PG_USER:-ctfy}"
OS_USER="${PG_OS_USER:-postgres}"
DATA="$DIR/data"
LOG="$DIR/postgres.log"
# Everything start creates inside $DIR; stop removes exactly these names and nothing else.
OWNED=(data postgres.log pwfile initdb.log env env.tmp)

T0="$(date +%s%N)"
say() {
  local ms=$((($(date +%s%N) - T0) / 1000000))
  printf '[postgres %3d.%01ds] %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$*"
}

fail() {
  trap - ERR
  printf '[postgres] FAILED: %s\n' "$*" >&2
  local f
  for f in "$DIR/initdb.log" "$LOG"; do
    [ -s "$f" ] || continue
    printf '\n----- %s (last 30 lines) -----\n' "${f#"$DIR"/}" >&2
    tail -n 30 "$f" >&2
  done
  stop_server
  printf '\n[postgres] FAILED: %s\n' "$*" >&2
  exit 1
}

# The newest Debian server binaries, or $PG_BIN.
find_bin() {
  if [ -n "${PG_BIN:-}" ]; then
    echo "$PG_BIN"
    return 0
  fi
  local found
  found="$(printf '%s\n' /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)"
  [ -x "$found" ] && echo "${found%/initdb}"
}

# Run a server command as the user the server runs as: $PG_OS_USER under root, else ourselves.
as_server() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$OS_USER" -- "$@"
  else
    "$@"
  fi
}

# shellcheck source=scripts/lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
apt_install() { apt_install_or_die postgres "$@"; }

cmd_install() {
  local need=()
  find_bin >/dev/null || need+=(postgresql)
  command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
  command -v pg_dump >/dev/null 2>&1 || need+=(postgresql-client)
  if [ "${#need[@]}" -gt 0 ]; then
    local start=$SECONDS
    # Debian's postinst creates and starts a "main" cluster where it can; we never use it.
    apt_install "${need[@]}"
    say "installed ${need[*]} in $((SECONDS - start)) s"
  fi
  find_bin >/dev/null || {
    echo "[postgres] no server binaries in /usr/lib/postgresql/*/bin; set PG_BIN" >&2
    exit 1
  }
}

# shellcheck source=scripts/lib/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/ports.sh"
# shellcheck source=scripts/lib/proc.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/proc.sh"

# The postmaster of $DATA, checked against /proc so that a recycled pid is never signalled.
our_pid() {
  local pid
  [ -f "$DATA/postmaster.pid" ] || return 0
  pid="$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$DATA"; then
    echo "$pid"
  fi
}

# Immediate shutdown: the cluster is thrown away next, so there is nothing to checkpoint for.
stop_server() {
  local pid bin
  pid="$(our_pid)"
  [ -n "$pid" ] || return 0
  bin="$(find_bin || true)"
  if [ -n "$bin" ]; then
    as_server "$bin/pg_ctl" -D "$DATA" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
  fi
  terminate_our_pid
}

cmd_stop() {
  stop_server
  remove_owned
}

answers() {
  PGPASSWORD="$PASSWORD" timeout 5 "$BIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U "$ROLE" \
    -d postgres -tAc 'select 1' 2>/dev/null | grep -qx 1
}

cmd_start() {
  cmd_install
  BIN="$(find_bin)"
  local picked=0
  if [ "$PORT" = auto ] || [ "$PORT" = 0 ]; then
    PORT="$(free_port postgres)"
    picked=1
  elif [[ ! "$PORT" =~ ^[0-9]+$ ]]; then
    echo "[postgres] PG_PORT must be a port number or 'auto', got '$PORT'" >&2
    exit 1
  elif port_in_use "$PORT"; then
    echo "[postgres] port $PORT is already in use; set PG_PORT=auto to pick a free one" >&2
    exit 1
  fi
  if [ "$(id -u)" = 0 ] && ! id "$OS_USER" >/dev/null 2>&1; then
    echo "[postgres] the server cannot run as root and system user '$OS_USER' does not exist;" \
      "set PG_OS_USER" >&2
    exit 1
  fi

  # A leftover cluster from an earlier run in the same folder goes first.
  cmd_stop
  mkdir -p "$DIR"
  trap 'fail "command failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR
  if [ "$(id -u)" = 0 ]; then
    # The server user must reach $DIR; a folder it cannot enter fails here with a clear message.
    chmod 0755 "$DIR"
    if ! runuser -u "$OS_USER" -- test -x "$DIR"; then
      fail "user $OS_USER cannot enter $DIR (a parent folder is private); choose another PG_DIR"
    fi
  fi

  PASSWORD="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
  mkdir -m 0700 "$DATA"
  (umask 077 && printf '%s\n' "$PASSWORD" >"$DIR/pwfile")
  if [ "$(id -u)" = 0 ]; then chown "$OS_USER:" "$DATA" "$DIR/pwfile"; fi

  say "initdb $DATA ($("$BIN/postgres" --version))"
  as_server "$BIN/initdb" -D "$DATA" -U "$ROLE" --pwfile="$DIR/pwfile" --auth=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$DIR/initdb.log" 2>&1 ||
    fail "initdb failed"
  rm -f "$DIR/pwfile"
  # Loopback only: TCP on 127.0.0.1, no Unix socket, and pg_hba admits 127.0.0.1/32 alone.
  cat >>"$DATA/postgresql.conf" <<EOF

# scripts/postgres.sh: a throwaway test cluster, not for real data.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
EOF
  cat >"$DATA/pg_hba.conf" <<'EOF'
# scripts/postgres.sh: only the loopback address may connect, with a password.
# TYPE  DATABASE  USER  ADDRESS       METHOD
host    all       all   127.0.0.1/32  scram-sha-256
EOF
  touch "$LOG"
  if [ "$(id -u)" = 0 ]; then chown "$OS_USER:" "$LOG"; fi

  say "start on 127.0.0.1:$PORT"
  local attempt=1
  until as_server "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t "$TIMEOUT" start >/dev/null; do
    # A port picked free can be taken by another process before the server binds it: pick
    # another and try again (three times at most); any other failure is final.
    if [ "$picked" = 1 ] && [ "$attempt" -lt 3 ] && grep -q "Address already in use" "$LOG"; then
      attempt=$((attempt + 1))
      PORT="$(free_port postgres)"
      sed -i "s/^port = .*/port = $PORT/" "$DATA/postgresql.conf"
      say "port taken meanwhile; start on 127.0.0.1:$PORT (attempt $attempt)"
      : >"$LOG"
      continue
    fi
    fail "pg_ctl start failed"
  done
  local deadline=$((SECONDS + TIMEOUT))
  until answers; do
    [ -n "$(our_pid)" ] || fail "the server exited during start"
    [ "$SECONDS" -lt "$deadline" ] || fail "the server did not answer within ${TIMEOUT}s"
    sleep 0.2
  done
  trap - ERR

  {
    printf "PGHOST='127.0.0.1'\n"
    printf "PGPORT='%s'\n" "$PORT"
    printf "PGUSER='%s'\n" "$ROLE"
    printf "PGPASSWORD='%s'\n" "$PASSWORD"
    printf "PGDATABASE='postgres'\n"
    printf "PG_BIN='%s'\n" "$BIN"
  } >"$DIR/env.tmp"
  chmod 0600 "$DIR/env.tmp"
  mv "$DIR/env.tmp" "$DIR/env"
  say "ready: PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=$ROLE (password in $DIR/env)"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  *)
    echo "usage: $0 install|start|stop   (settings: see the header of this script)" >&2
    exit 2
    ;;
esac
