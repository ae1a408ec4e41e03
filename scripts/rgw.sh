#!/usr/bin/env bash
# A throwaway Ceph RADOS Gateway (S3) on 127.0.0.1 for the test suite.
#
# One monitor, one OSD on a RAM-only "memstore" object store, no manager, one radosgw: the smallest
# cluster that serves real S3 (SigV4 signatures, presigned expiry, versioning, Object Lock,
# conditional writes). Every file and daemon belongs to $RGW_DIR; nothing is registered with systemd.
#
#   scripts/rgw.sh install    install Debian's radosgw, ceph-mon and ceph-osd if missing (needs root)
#   scripts/rgw.sh start      install if needed, start, write $RGW_DIR/env
#   scripts/rgw.sh stop       stop the daemons of $RGW_DIR and remove what start created there
#
# Settings (environment):
#   RGW_DIR            data, logs, pid files and the env file    (default: .cache/rgw in the repository)
#   RGW_PORT           S3 port                                    (default 17480)
#   RGW_MON_V2_PORT    monitor msgr2 port                         (default 13300)
#   RGW_MON_V1_PORT    monitor legacy msgr1 port                  (default 16789)
#                      any port set to "auto" (or 0) becomes a free port chosen at start
#   RGW_TIMEOUT        seconds for the cluster to come up, installs not counted (default 180)
#   RGW_ACCESS_KEY     S3 access key of the test user             (default ctfy-test-access)
#   RGW_SECRET_KEY     S3 secret key of the test user             (default ctfy-test-secret)
#   RGW_WRITER_ACCESS_KEY, RGW_WRITER_SECRET_KEY
#                      keys of a second user, `ctfy-writer`, for least-privilege tests: it owns
#                      nothing; bucket policies grant it what a backup needs (defaults
#                      ctfy-writer-access, ctfy-writer-secret)
#
# $RGW_DIR/env holds RGW_ENDPOINT, RGW_ACCESS_KEY, RGW_SECRET_KEY, RGW_REGION and the writer's
# RGW_WRITER_ACCESS_KEY and RGW_WRITER_SECRET_KEY, one KEY='value' a
# line (readable by `source` and by tests/support/servers.py). Any step that does not finish in time makes the
# script print the tail of the logs, stop what it started and exit non-zero.
set -Eeuo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${RGW_DIR:-$REPO/.cache/rgw}"
PORT="${RGW_PORT:-17480}"
MON_V2="${RGW_MON_V2_PORT:-13300}"
MON_V1="${RGW_MON_V1_PORT:-16789}"
TIMEOUT="${RGW_TIMEOUT:-180}"
ACCESS_KEY="${RGW_ACCESS_KEY:-ctfy-test-access}"
SECRET_KEY="${RGW_SECRET_KEY:-ctfy-test-secret}"
WRITER_ACCESS_KEY="${RGW_WRITER_ACCESS_KEY:-ctfy-writer-access}"
WRITER_SECRET_KEY="${RGW_WRITER_SECRET_KEY:-ctfy-writer-secret}"
CONF="$DIR/ceph.conf"
# Everything start creates inside $DIR; stop removes exactly these names and nothing else.
OWNED=(ceph.conf monmap env mon osd run log ceph.mon..keyring ceph.mon.a.keyring
  ceph.client.admin.keyring ceph.client.rgw.a.keyring)

T0="$(date +%s%N)"
say() {
  local ms=$((($(date +%s%N) - T0) / 1000000))
  printf '[rgw %4d.%01ds] %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$*"
}

# Print the last lines of every log we have, to stderr.
show_logs() {
  local f
  for f in "$DIR"/log/*; do
    [ -s "$f" ] || continue
    printf '\n----- %s (last 25 lines) -----\n' "${f#"$DIR"/}" >&2
    tail -n 25 "$f" >&2
  done
}

fail() {
  trap - ERR
  printf '[rgw] FAILED: %s\n' "$*" >&2
  show_logs
  stop_daemons
  printf '\n[rgw] FAILED: %s (logs in %s/log)\n' "$*" "$DIR" >&2
  exit 1
}

on_error() {
  # A failure inside $(...) is reported once, by the main shell.
  [ "$BASHPID" = "$$" ] || exit 1
  fail "command failed (exit $1) at line $2: $3"
}

# The pids of daemons started from this $DIR's config whose pid files match PATTERN, checked against
# /proc so that a recycled pid of an unrelated process is never signalled.
our_pids() {
  local f pid
  for f in "$DIR"/run/$1.pid; do
    [ -e "$f" ] || continue
    pid="$(cat "$f" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || continue
    if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$CONF"; then
      echo "$pid"
    fi
  done
}

# TERM the daemons matching PATTERN, wait up to 10 s, then KILL what is left.
stop_matching() {
  local pids
  mapfile -t pids < <(our_pids "$1")
  [ "${#pids[@]}" -gt 0 ] || return 0
  kill "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 1 100); do
    mapfile -t pids < <(our_pids "$1")
    [ "${#pids[@]}" -gt 0 ] || return 0
    sleep 0.1
  done
  kill -9 "${pids[@]}" 2>/dev/null || true
}

# Gateway and OSD first, monitor last: an OSD that outlives its monitor waits for it before exiting.
stop_daemons() {
  stop_matching 'client.rgw.*'
  stop_matching 'osd.*'
  stop_matching 'mon.*'
}

cmd_stop() {
  stop_daemons
  remove_owned
}

have_all() {
  local c
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || return 1; done
}

# shellcheck source=scripts/lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
apt_install() { apt_install_or_die rgw "$@"; }

cmd_install() {
  local need=()
  have_all radosgw radosgw-admin ceph-mon ceph-osd ceph ceph-authtool monmaptool ||
    need+=(radosgw ceph-mon ceph-osd)
  have_all uuidgen || need+=(uuid-runtime)
  have_all curl || need+=(curl)
  if [ "${#need[@]}" -gt 0 ]; then apt_install "${need[@]}"; fi
}

# shellcheck source=scripts/lib/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/ports.sh"
# shellcheck source=scripts/lib/proc.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/proc.sh"

# Resolve "auto"/0 to a free port; refuse a fixed port that something already listens on.
pick_port() {
  local name="$1" value="$2"
  if [ "$value" = auto ] || [ "$value" = 0 ]; then
    free_port rgw
  elif [[ ! "$value" =~ ^[0-9]+$ ]]; then
    echo "[rgw] $name must be a port number or 'auto', got '$value'" >&2
    return 1
  elif port_in_use "$value"; then
    echo "[rgw] port $value ($name) is already in use; set $name=auto to pick a free one" >&2
    return 1
  else
    echo "$value"
  fi
}

DEADLINE=0
# wait_for DESCRIPTION COMMAND...: retry COMMAND until it succeeds or RGW_TIMEOUT runs out.
wait_for() {
  local what="$1"
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$DEADLINE" ] || fail "$what did not happen within ${TIMEOUT}s"
    sleep 0.3
  done
}

write_conf() {
  local fsid="$1"
  cat >"$CONF" <<EOF
# Generated by scripts/rgw.sh: a single-node test cluster, not for real data.
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$MON_V2,v1:127.0.0.1:$MON_V1]
public network = 127.0.0.0/8
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = $DIR/\$cluster.\$name.keyring
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
log to stderr = false
err to stderr = true
# one OSD: every pool keeps a single copy and may be small
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 1

[mon]
mon data = $DIR/mon/\$name
mon initial members = a
mon cluster log file = $DIR/log/cluster.log
# commit map changes without the default 1 s batching: radosgw creates its pools one map change at a
# time, so this cuts start-up from about 13 s to about 3 s
paxos propose interval = 0.05
paxos min wait = 0.01

[osd]
osd data = $DIR/osd/\$name
keyring = $DIR/osd/\$name/keyring
osd objectstore = memstore
memstore device bytes = 4294967296
osd max object name len = 460
osd max object namespace len = 64
osd memory target = 1073741824

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$PORT
rgw dns name = localhost
rgw enable usage log = false
rgw thread pool size = 64
EOF
}

mon_answers() {
  timeout 10 ceph -c "$CONF" --connect-timeout 5 -n client.admin mon stat
}

osd_up() {
  timeout 10 ceph -c "$CONF" --connect-timeout 5 osd dump 2>/dev/null | grep -q "^osd\.$1 up"
}

s3_answers() {
  curl -sS --noproxy '*' -o /dev/null --max-time 5 "http://127.0.0.1:$PORT/"
}

# ListBuckets signed with the test user's keys: proves the user exists and signatures verify.
s3_user_works() {
  local code
  code="$(curl -sS --noproxy '*' -o /dev/null -w '%{http_code}' --max-time 5 \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' --aws-sigv4 'aws:amz:default:s3' \
    --user "$ACCESS_KEY:$SECRET_KEY" "http://127.0.0.1:$PORT/")"
  [ "$code" = 200 ]
}

cmd_start() {
  cmd_install
  PORT="$(pick_port RGW_PORT "$PORT")"
  MON_V2="$(pick_port RGW_MON_V2_PORT "$MON_V2")"
  MON_V1="$(pick_port RGW_MON_V1_PORT "$MON_V1")"
  if [ "$MON_V2" = "$MON_V1" ] || [ "$PORT" = "$MON_V1" ] || [ "$PORT" = "$MON_V2" ]; then
    echo "[rgw] RGW_PORT, RGW_MON_V2_PORT and RGW_MON_V1_PORT must differ" >&2
    exit 1
  fi

  # A leftover cluster from an earlier run in the same folder goes first.
  if [ -e "$CONF" ]; then cmd_stop; fi
  mkdir -p "$DIR"/{mon,osd,run,log}
  DEADLINE=$((SECONDS + TIMEOUT))
  trap 'on_error $? $LINENO "$BASH_COMMAND"' ERR

  local fsid osd_uuid osd_id
  fsid="$(uuidgen)"
  write_conf "$fsid"

  say "monitor: keys, map, mkfs, start (v2 port $MON_V2, v1 port $MON_V1)"
  ceph-authtool --create-keyring "$DIR/ceph.mon..keyring" --gen-key -n mon. --cap mon 'allow *' \
    >/dev/null
  ceph-authtool --create-keyring "$DIR/ceph.client.admin.keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$DIR/ceph.mon..keyring" --import-keyring "$DIR/ceph.client.admin.keyring" >/dev/null
  cp "$DIR/ceph.mon..keyring" "$DIR/ceph.mon.a.keyring"
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_V2,v1:127.0.0.1:$MON_V1]" \
    "$DIR/monmap" >/dev/null
  timeout 60 ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/ceph.mon..keyring" \
    >>"$DIR/log/mon-mkfs.out" 2>&1
  # Daemons fork into the background; their stdio goes to files so that no caller's pipe is held open.
  timeout 60 ceph-mon -c "$CONF" -i a </dev/null >>"$DIR/log/daemons.out" 2>&1
  wait_for "the monitor answering" mon_answers

  say "OSD: create, mkfs (memstore), start"
  osd_uuid="$(uuidgen)"
  osd_id="$(timeout 30 ceph -c "$CONF" --connect-timeout 10 osd new "$osd_uuid")"
  mkdir -p "$DIR/osd/osd.$osd_id"
  timeout 60 ceph-osd -c "$CONF" -i "$osd_id" --mkfs --mkkey --no-mon-config --osd-uuid "$osd_uuid" \
    </dev/null >>"$DIR/log/osd-mkfs.out" 2>&1
  timeout 30 ceph -c "$CONF" --connect-timeout 10 auth add "osd.$osd_id" osd 'allow *' \
    mon 'allow profile osd' -i "$DIR/osd/osd.$osd_id/keyring" >>"$DIR/log/ceph-cli.out" 2>&1
  timeout 60 ceph-osd -c "$CONF" -i "$osd_id" </dev/null >>"$DIR/log/daemons.out" 2>&1
  wait_for "osd.$osd_id coming up" osd_up "$osd_id"

  say "radosgw: start on 127.0.0.1:$PORT"
  timeout 30 ceph -c "$CONF" --connect-timeout 10 auth get-or-create client.rgw.a \
    mon 'allow rw' osd 'allow rwx' -o "$DIR/ceph.client.rgw.a.keyring" >>"$DIR/log/ceph-cli.out" 2>&1
  timeout 60 radosgw -c "$CONF" -n client.rgw.a </dev/null >>"$DIR/log/daemons.out" 2>&1
  wait_for "radosgw answering on port $PORT" s3_answers

  say "test user"
  timeout 60 radosgw-admin -c "$CONF" user create --uid=ctfy-test --display-name="ctfy test" \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null 2>>"$DIR/log/ceph-cli.out"
  wait_for "a signed request from the test user succeeding" s3_user_works
  timeout 60 radosgw-admin -c "$CONF" user create --uid=ctfy-writer --display-name="ctfy writer" \
    --access-key="$WRITER_ACCESS_KEY" --secret-key="$WRITER_SECRET_KEY" >/dev/null \
    2>>"$DIR/log/ceph-cli.out"
  trap - ERR

  local tmp="$DIR/env.tmp"
  {
    printf "RGW_ENDPOINT='http://127.0.0.1:%s'\n" "$PORT"
    printf "RGW_ACCESS_KEY='%s'\n" "$ACCESS_KEY"
    printf "RGW_SECRET_KEY='%s'\n" "$SECRET_KEY"
    printf "RGW_REGION='default'\n"
    printf "RGW_WRITER_ACCESS_KEY='%s'\n" "$WRITER_ACCESS_KEY"
    printf "RGW_WRITER_SECRET_KEY='%s'\n" "$WRITER_SECRET_KEY"
  } >"$tmp"
  mv "$tmp" "$DIR/env"
  say "ready: RGW_ENDPOINT=http://127.0.0.1:$PORT (keys in $DIR/env)"
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
