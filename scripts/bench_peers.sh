#!/usr/bin/env bash
# Install the benchmark peers from Debian's packages if missing: restic and rclone (issue 10), and
# openssl for the raw cipher figure. Used by `nox -s bench`; needs root when something is missing.
set -Eeuo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/apt.sh
source "$here/lib/apt.sh"

missing=()
for tool in restic rclone openssl; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt_install_or_die bench-peers "${missing[@]}"
fi
for tool in restic rclone openssl; do
  echo "[bench-peers] $("$tool" version 2>/dev/null | head -n 1)" >&2
done
