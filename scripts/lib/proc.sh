# shellcheck shell=bash
# Shared by the server scripts: stopping what they started and removing what they created.
# Each script defines `our_pid`, printing the pid of its server (checked against /proc) or nothing.

# Signal the server with TERM, wait up to 5 s for `our_pid` to come back empty, then KILL it.
terminate_our_pid() {
  local pid
  pid="$(our_pid)"
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    [ -n "$(our_pid)" ] || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

# Remove exactly the names in OWNED under DIR (never anything else), then DIR if it is empty.
remove_owned() {
  local name
  for name in "${OWNED[@]}"; do rm -rf "${DIR:?}/$name"; done
  rmdir "$DIR" 2>/dev/null || true
}
