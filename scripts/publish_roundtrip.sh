#!/usr/bin/env bash
# The release path end to end, on this machine: `nox -s publish` uploads to a password-protected
# package index on 127.0.0.1, and a new virtual environment installs ctfy-vault back from that index
# alone and runs `ctfy-vault demo`. Run it through `nox -s publish_roundtrip`, which installs
# pypiserver and passlib into the session and sets NOX_PYTHON to the interpreter running nox.
#
# In order:
#   1. `nox -s publish` refuses to start without TWINE_USERNAME and with credentials inside
#      TWINE_REPOSITORY_URL, naming the problem and never printing the password;
#   2. pypiserver starts on a free loopback port, every request authenticated against an htpasswd
#      file (written with passlib) holding a password made for this run;
#   3. `nox -s publish` with a wrong password is refused by the index (and does not print it), then
#      with the right one builds the sdist and wheel and uploads them there with twine;
#   4. the wheel carries LICENSE, the licence expression and every [project.urls] entry;
#   5. the runtime dependencies are downloaded (from the usual indexes) into the server's folder;
#   6. a new virtual environment installs the uploaded version from the local index only (pip's
#      configuration files ignored, the password read from a netrc file) and runs the demo.
#
# Every command's output is shown after it is searched for the password; finding it fails the run.
# Any failing step exits non-zero, and the server is stopped and the work folder removed whatever
# happens.
set -Eeuo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
# shellcheck source=scripts/lib/ports.sh
. scripts/lib/ports.sh

if [ -n "${NOX_PYTHON:-}" ]; then NOX=("$NOX_PYTHON" -m nox); else NOX=(nox); fi
USERNAME=publisher
WORK="$(mktemp -d -t ctfy-publish.XXXXXX)"
PACKAGES="$WORK/packages"
SERVER_LOG="$WORK/pypiserver.log"
SERVER_PID=""
# The local index is reached directly, whatever proxy the environment sets for the registries.
export NO_PROXY="127.0.0.1${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1${no_proxy:+,$no_proxy}"

T0="$(date +%s)"
say() { printf '[publish-roundtrip +%ss] %s\n' $(($(date +%s) - T0)) "$*"; }

fail() {
  printf '[publish-roundtrip] FAILED: %s\n' "$*" >&2
  exit 1
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    if [ "$status" -ne 0 ] && [ -s "$SERVER_LOG" ]; then
      printf '\n----- pypiserver log (last 30 lines) -----\n' >&2
      masked "$SERVER_LOG" | tail -n 30 >&2
    fi
  fi
  rm -rf "$WORK"
  say "done, exit status $status"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The password is a token of [A-Za-z0-9_-] made for this run, so it is a literal sed pattern.
PASSWORD="$(python -c 'import secrets; print(secrets.token_urlsafe(24))')"
masked() { sed "s/$PASSWORD/[password]/g" "$1"; }

# Fail if FILE holds the password; what it holds is shown with the password masked.
refuse_leak() {
  if grep -qF -- "$PASSWORD" "$1"; then
    masked "$1"
    fail "the password appears in $2 (masked above)"
  fi
}

# run_logged CMD...: run CMD, show its output (checked for the password first), fail if CMD fails.
run_logged() {
  local log="$WORK/step.log" status=0
  "$@" >"$log" 2>&1 || status=$?
  refuse_leak "$log" "the output of: $*"
  cat "$log"
  [ "$status" -eq 0 ] || fail "exit $status: $*"
}

# expect_refusal TEXT CMD...: CMD must fail, say TEXT and not print the password.
expect_refusal() {
  local text="$1" log="$WORK/step.log" status=0
  shift
  "$@" >"$log" 2>&1 || status=$?
  refuse_leak "$log" "the output of: $*"
  [ "$status" -ne 0 ] || {
    cat "$log"
    fail "expected a refusal from: $*"
  }
  grep -qF -- "$text" "$log" || {
    cat "$log"
    fail "the refusal does not say '$text'"
  }
  grep -F -- "$text" "$log"
}

PORT="$(free_port publish-roundtrip)"
INDEX="http://127.0.0.1:$PORT"

say "nox -s publish refuses a missing TWINE_USERNAME and credentials in TWINE_REPOSITORY_URL"
export TWINE_REPOSITORY_URL="$INDEX/" TWINE_USERNAME="$USERNAME" TWINE_PASSWORD="$PASSWORD"
expect_refusal "set TWINE_USERNAME in the environment" env -u TWINE_USERNAME "${NOX[@]}" -s publish
TWINE_REPOSITORY_URL="http://$USERNAME:$PASSWORD@127.0.0.1:$PORT/" expect_refusal \
  "TWINE_REPOSITORY_URL holds credentials" "${NOX[@]}" -s publish

say "pypiserver on $INDEX, every request authenticated"
mkdir -p "$PACKAGES"
python - "$WORK/htpasswd" "$USERNAME" <<'EOF'
import os
import sys

from passlib.apache import HtpasswdFile

htpasswd = HtpasswdFile(sys.argv[1], new=True, default_scheme="sha256_crypt")
htpasswd.set_password(sys.argv[2], os.environ["TWINE_PASSWORD"])
htpasswd.save()
EOF
python -m pypiserver run --host 127.0.0.1 --port "$PORT" --passwords "$WORK/htpasswd" \
  --authenticate download,list,update --disable-fallback "$PACKAGES" </dev/null >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
python - "$INDEX/simple/" <<'EOF' || fail "pypiserver did not answer, or answered without a password"
import sys
import time
import urllib.error
import urllib.request

deadline = time.monotonic() + 30
while True:
    try:
        urllib.request.urlopen(sys.argv[1], timeout=2)
    except urllib.error.HTTPError as err:
        sys.exit(0 if err.code == 401 else f"unauthenticated listing: HTTP {err.code}")
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("no answer within 30 s")
        time.sleep(0.2)
    else:
        sys.exit("the index lists packages without a password")
EOF

# A password that starts with the real one: twine printing it would show the real one too.
say "nox -s publish with a wrong password is refused by the index, without printing it"
TWINE_PASSWORD="${PASSWORD}x" expect_refusal "403 Forbidden" "${NOX[@]}" -s publish
[ -z "$(ls -A "$PACKAGES")" ] || fail "the index stored an upload made with a wrong password"

say "nox -s publish to $INDEX/"
run_logged "${NOX[@]}" -s publish
unset TWINE_REPOSITORY_URL TWINE_USERNAME TWINE_PASSWORD
shopt -s nullglob
wheels=(dist/*.whl)
sdists=(dist/*.tar.gz)
[ "${#wheels[@]}" -eq 1 ] && [ "${#sdists[@]}" -eq 1 ] || fail "expected one wheel and one sdist in dist/"
WHEEL="${wheels[0]}"
for file in "$WHEEL" "${sdists[0]}"; do
  [ -f "$PACKAGES/$(basename "$file")" ] || fail "the index did not store $(basename "$file")"
done

say "the wheel's licence and project URLs"
VERSION="$(python - "$WHEEL" <<'EOF'
import email.parser
import sys
import tomllib
import zipfile

project = tomllib.load(open("pyproject.toml", "rb"))["project"]
wheel = zipfile.ZipFile(sys.argv[1])
(metadata_name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
dist_info = metadata_name.rpartition("/")[0]
metadata = email.parser.Parser().parsestr(wheel.read(metadata_name).decode())
problems = []
if metadata["License-Expression"] != project["license"]:
    problems.append(f"License-Expression is {metadata['License-Expression']!r}")
for name in project["license-files"]:
    if name not in (metadata.get_all("License-File") or []):
        problems.append(f"no License-File: {name}")
    if wheel.read(f"{dist_info}/licenses/{name}") != open(name, "rb").read():
        problems.append(f"{dist_info}/licenses/{name} differs from {name}")
urls = set(metadata.get_all("Project-URL") or [])
problems += [f"no Project-URL {k}" for k, v in project["urls"].items() if f"{k}, {v}" not in urls]
if problems:
    sys.exit("the wheel's metadata is incomplete: " + "; ".join(problems))
print(metadata["Version"])
EOF
)" || fail "the wheel's metadata check"
say "ctfy-vault $VERSION: License-Expression, LICENSE and every project URL are in the wheel"

say "the runtime dependencies into the index (downloaded from the usual indexes)"
run_logged python -m pip download --quiet --only-binary=:all: --dest "$WORK/dependencies" "$WHEEL"
find "$WORK/dependencies" -type f ! -name 'ctfy_vault-*' -exec cp -t "$PACKAGES" {} +
say "the index holds $(find "$PACKAGES" -type f | wc -l) files"

say "a new virtual environment installs ctfy-vault==$VERSION from $INDEX/simple/ only"
python -m venv "$WORK/venv"
(umask 077 && printf 'machine 127.0.0.1\nlogin %s\npassword %s\n' "$USERNAME" "$PASSWORD" >"$WORK/netrc")
# No pip configuration file and no variable may add another index or a folder of wheels.
run_logged env -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_FIND_LINKS -u PIP_NO_INDEX \
  PIP_CONFIG_FILE=/dev/null NETRC="$WORK/netrc" \
  "$WORK/venv/bin/python" -m pip install --no-cache-dir --disable-pip-version-check \
  --index-url "$INDEX/simple/" "ctfy-vault==$VERSION"

say "ctfy-vault demo from that environment"
installed="$("$WORK/venv/bin/ctfy-vault" --version)"
[[ "$installed" == *"$VERSION"* ]] || fail "ctfy-vault --version says '$installed', not $VERSION"
cd "$WORK"
run_logged "$WORK/venv/bin/ctfy-vault" demo
refuse_leak "$SERVER_LOG" "the pypiserver log"
say "ok: published, installed from the local index alone, demo passed"
