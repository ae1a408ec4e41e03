#!/usr/bin/env bash
# Azurite (Microsoft's Azure Storage emulator, blob service only) on 127.0.0.1 for the test suite.
#
#   scripts/azurite.sh install   install Azurite from the npm registry into the project cache
#   scripts/azurite.sh start     install if needed, start azurite-blob, write $AZURITE_DIR/env
#   scripts/azurite.sh stop      stop the Azurite of $AZURITE_DIR and remove what start created there
#
# Settings (environment):
#   AZURITE_DIR       data, log, pid file and the env file   (default: .cache/azurite-data in the repo)
#   AZURITE_PORT      blob port; "auto" (or 0) picks a free one (default 10100)
#   AZURITE_TIMEOUT   seconds for Azurite to answer           (default 60)
#   AZURITE_VERSION   npm version to install                  (default 3.37.0; 3.35.0 on Node.js < 20)
#   AZURITE_PREFIX    npm install folder                      (default: .cache/azurite in the repo)
#
# $AZURITE_DIR/env holds AZURITE_BLOB_ENDPOINT, AZURITE_ACCOUNT_NAME, AZURITE_ACCOUNT_KEY and
# AZURITE_CONNECTION_STRING, one KEY='value' a line. The account is Azurite's built-in development
# account, whose key is published in Microsoft's documentation: it guards nothing.
set -Eeuo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${AZURITE_DIR:-$REPO/.cache/azurite-data}"
PREFIX="${AZURITE_PREFIX:-$REPO/.cache/azurite}"
PORT="${AZURITE_PORT:-10100}"
TIMEOUT="${AZURITE_TIMEOUT:-60}"
ACCOUNT_NAME=devstoreaccount1
ACCOUNT_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
BIN="$PREFIX/node_modules/.bin/azurite-blob"
PIDFILE="$DIR/azurite.pid"
LOG="$DIR/azurite.log"
# Everything start creates inside $DIR; stop removes exactly these names and nothing else.
OWNED=(data azurite.pid azurite.log env env.tmp)

T0="$(date +%s%N)"
say() {
  local ms=$((($(date +%s%N) - T0) / 1000000))
  printf '[azurite %3d.%01ds] %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$*"
}

fail() {
  trap - ERR
  printf '[azurite] FAILED: %s\n' "$*" >&2
  if [ -s "$LOG" ]; then
    printf '\n----- azurite.log (last 40 lines) -----\n' >&2
    tail -n 40 "$LOG" >&2
    printf '\n[azurite] FAILED: %s\n' "$*" >&2
  fi
  stop_server
  exit 1
}

node_major() {
  node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

# Azurite 3.37 declares Node.js >= 22 but serves the blob API correctly on Node.js 20 (npm only
# warns). Debian 12's own Node.js is 18: there, 3.35.0, the last release without that requirement.
default_version() {
  if [ "$(node_major)" -ge 20 ]; then echo 3.37.0; else echo 3.35.0; fi
}

installed_version() {
  local pkg="$PREFIX/node_modules/azurite/package.json"
  [ -f "$pkg" ] || return 0
  node -p "require(process.argv[1]).version" "$pkg" 2>/dev/null || true
}

# shellcheck source=scripts/lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
apt_install() { apt_install_or_die azurite "$@"; }

cmd_install() {
  local need=()
  command -v node >/dev/null 2>&1 || need+=(nodejs)
  command -v npm >/dev/null 2>&1 || need+=(npm)
  command -v curl >/dev/null 2>&1 || need+=(curl)
  if [ "${#need[@]}" -gt 0 ]; then apt_install "${need[@]}"; fi

  local want have
  want="${AZURITE_VERSION:-$(default_version)}"
  have="$(installed_version)"
  if [ "$have" = "$want" ] && [ -x "$BIN" ]; then
    return 0
  fi
  say "npm install azurite@$want into ${PREFIX#"$REPO"/}"
  mkdir -p "$PREFIX"
  local log="$PREFIX/npm-install.log"
  if ! npm install --prefix "$PREFIX" --no-audit --no-fund --no-update-notifier \
    --loglevel=error "azurite@$want" >"$log" 2>&1; then
    echo "[azurite] FAILED: npm install azurite@$want" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  [ -x "$BIN" ] || {
    echo "[azurite] FAILED: npm install finished but $BIN is missing" >&2
    exit 1
  }
  say "installed azurite $(installed_version)"
}

# shellcheck source=scripts/lib/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/ports.sh"
# shellcheck source=scripts/lib/proc.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/proc.sh"

# The pid of the Azurite started from this $DIR, checked against /proc so that a recycled pid of an
# unrelated process is never signalled.
our_pid() {
  local pid
  [ -f "$PIDFILE" ] || return 0
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$DIR/data"; then
    echo "$pid"
  fi
}

stop_server() { terminate_our_pid; }

cmd_stop() {
  stop_server
  remove_owned
}

# Any HTTP answer (Azurite says 403 to an unsigned request) means the server is serving.
answers() {
  local code
  code="$(curl -sS --noproxy '*' -o /dev/null -w '%{http_code}' --max-time 2 \
    "http://127.0.0.1:$PORT/$ACCOUNT_NAME?comp=list" 2>/dev/null || true)"
  [ -n "$code" ] && [ "$code" != 000 ]
}

cmd_start() {
  cmd_install
  if [ "$PORT" = auto ] || [ "$PORT" = 0 ]; then
    PORT="$(free_port azurite)"
  elif [[ ! "$PORT" =~ ^[0-9]+$ ]]; then
    echo "[azurite] AZURITE_PORT must be a port number or 'auto', got '$PORT'" >&2
    exit 1
  elif port_in_use "$PORT"; then
    echo "[azurite] port $PORT is already in use; set AZURITE_PORT=auto to pick a free one" >&2
    exit 1
  fi

  # A leftover server from an earlier run in the same folder goes first.
  cmd_stop
  mkdir -p "$DIR/data"
  say "azurite-blob: start on 127.0.0.1:$PORT"
  # setsid: a session of its own, so the caller's terminal signals and pipes do not reach it.
  setsid "$BIN" --blobHost 127.0.0.1 --blobPort "$PORT" --location "$DIR/data" \
    --skipApiVersionCheck --disableTelemetry </dev/null >"$LOG" 2>&1 &
  echo "$!" >"$PIDFILE"
  trap 'fail "command failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

  local deadline=$((SECONDS + TIMEOUT))
  until answers; do
    [ -n "$(our_pid)" ] || fail "azurite-blob exited during start"
    [ "$SECONDS" -lt "$deadline" ] || fail "azurite-blob did not answer within ${TIMEOUT}s"
    sleep 0.2
  done

  local endpoint="http://127.0.0.1:$PORT/$ACCOUNT_NAME"
  {
    printf "AZURITE_BLOB_ENDPOINT='%s'\n" "$endpoint"
    printf "AZURITE_ACCOUNT_NAME='%s'\n" "$ACCOUNT_NAME"
    printf "AZURITE_ACCOUNT_KEY='%s'\n" "$ACCOUNT_KEY"
    printf "AZURITE_CONNECTION_STRING='DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;'\n" \
      "$ACCOUNT_NAME" "$ACCOUNT_KEY" "$endpoint"
  } >"$DIR/env.tmp"
  mv "$DIR/env.tmp" "$DIR/env"
  trap - ERR
  say "ready: AZURITE_BLOB_ENDPOINT=$endpoint (connection string in $DIR/env)"
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
