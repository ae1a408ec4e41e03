# shellcheck shell=bash
# Shared by the server scripts: loopback port checks. Usage: free_port TAG prints a free port.

port_in_use() {
  (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
  local tag="$1" p
  for _ in $(seq 1 200); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    port_in_use "$p" || {
      echo "$p"
      return 0
    }
  done
  echo "[$tag] no free port found" >&2
  return 1
}
