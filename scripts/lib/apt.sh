# shellcheck shell=bash
# Shared by the server scripts: install Debian packages, refreshing the package lists once if the
# first attempt fails. Usage: apt_install_or_die TAG PACKAGE... (TAG prefixes every message).

apt_install_or_die() {
  local tag="$1"
  shift
  if [ "$(id -u)" != 0 ]; then
    echo "[$tag] missing packages: $*; install them (apt-get install $*) or run this script as root" >&2
    exit 1
  fi
  local log
  log="$(mktemp)"
  echo "[$tag] apt-get install $*" >&2
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >"$log" 2>&1; then
    echo "[$tag] install failed; apt-get update and retry" >&2
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"; } >>"$log" 2>&1; then
      echo "[$tag] FAILED: apt-get install $*" >&2
      tail -n 40 "$log" >&2
      rm -f "$log"
      exit 1
    fi
  fi
  rm -f "$log"
}
