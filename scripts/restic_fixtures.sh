#!/usr/bin/env bash
# restic's own retention fixtures (TestApplyPolicy) for tests/integration/test_retention_restic_fixtures.py.
#
# Downloads Debian's source package of restic with apt-get, which checks the .dsc and every file it
# names against the suite's signed Sources index; checks the upstream tarball against the .dsc's
# SHA-256 once more; and extracts only the policy test (snapshot_policy_test.go) and its golden
# files (testdata/policy_keep_snapshots_*). Nothing from restic is kept in this repository: the test
# reads these files when it runs. A folder filled by an earlier run is reused without any download.
#
#   scripts/restic_fixtures.sh    fetch if needed, then print the fixture folder (the only stdout line)
#
# Settings (environment):
#   CTFY_RESTIC_FIXTURES_DIR     cache folder            (default: .cache/restic-fixtures in the repository)
#   CTFY_RESTIC_SOURCE_VERSION   Debian source version   (default 0.18.0-1)
#   CTFY_RESTIC_SOURCE_SUITE     suite whose signed index lists that version (default trixie)
#   CTFY_RESTIC_SOURCE_MIRROR    Debian mirror           (default http://deb.debian.org/debian)
#   CTFY_RESTIC_KEYRING          keyring the suite is signed with
#                                (default /usr/share/keyrings/debian-archive-keyring.gpg)
#
# The printed folder holds snapshot_policy_test.go, testdata/policy_keep_snapshots_<n> and SOURCE
# (package, version, suite, the tarball's SHA-256 and the path of the files inside it). The download
# uses its own package lists under the cache folder; the machine's apt sources and lists are left
# alone. Progress and errors go to stderr; any failure exits non-zero with the tail of apt's log.
set -Eeuo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${CTFY_RESTIC_FIXTURES_DIR:-$REPO/.cache/restic-fixtures}"
VERSION="${CTFY_RESTIC_SOURCE_VERSION:-0.18.0-1}"
SUITE="${CTFY_RESTIC_SOURCE_SUITE:-trixie}"
MIRROR="${CTFY_RESTIC_SOURCE_MIRROR:-http://deb.debian.org/debian}"
KEYRING="${CTFY_RESTIC_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}"
OUT="$DIR/restic-$VERSION"
WORK="$DIR/work-$VERSION"
LOG="$WORK/apt.log"

say() { printf '[restic-fixtures] %s\n' "$*" >&2; }

fail() {
  trap - ERR
  say "FAILED: $*"
  if [ -s "$LOG" ]; then
    printf '\n----- apt.log (last 30 lines) -----\n' >&2
    tail -n 30 "$LOG" >&2
  fi
  exit 1
}

# The folder is complete once SOURCE is written (it is written last, then the folder is renamed).
complete() {
  [ -f "$OUT/SOURCE" ] && [ -f "$OUT/snapshot_policy_test.go" ] &&
    compgen -G "$OUT/testdata/policy_keep_snapshots_*" >/dev/null
}

[[ "$VERSION" =~ ^[0-9][0-9A-Za-z.+~:-]*$ ]] || fail "CTFY_RESTIC_SOURCE_VERSION '$VERSION' is not a Debian version"
[[ "$SUITE" =~ ^[a-z0-9-]+$ ]] || fail "CTFY_RESTIC_SOURCE_SUITE '$SUITE' is not a suite name"

mkdir -p "$DIR"
# One download at a time per cache folder: parallel test sessions wait for the first one.
exec 9>"$DIR/.lock"
flock 9

if complete; then
  say "cached: $(head -n 1 "$OUT/SOURCE")"
  printf '%s\n' "$OUT"
  exit 0
fi

command -v apt-get >/dev/null || fail "apt-get is needed to fetch Debian's restic source package"
[ -r "$KEYRING" ] || fail "keyring $KEYRING is missing (apt-get install debian-archive-keyring)"

trap 'fail "command failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR
rm -rf "$WORK" "$OUT.tmp"
mkdir -p "$WORK/lists/partial" "$WORK/cache/archives/partial" "$WORK/download"
: >"$LOG"
printf 'deb-src [signed-by=%s] %s %s main\n' "$KEYRING" "$MIRROR" "$SUITE" >"$WORK/sources.list"
APT=(
  -q
  -o "Dir::Etc::SourceList=$WORK/sources.list"
  -o Dir::Etc::SourceParts=/nonexistent
  -o "Dir::State::Lists=$WORK/lists"
  -o "Dir::Cache=$WORK/cache"
)

say "apt-get update ($SUITE source index from $MIRROR)"
apt-get "${APT[@]}" update >>"$LOG" 2>&1 || fail "apt-get update of the $SUITE source index failed"

say "apt-get source --download-only restic=$VERSION"
if ! (cd "$WORK/download" && apt-get "${APT[@]}" source --download-only "restic=$VERSION") >>"$LOG" 2>&1; then
  listed="$(apt-cache "${APT[@]}" showsrc restic 2>/dev/null | sed -n 's/^Version: //p' | paste -sd ' ' -)"
  fail "restic $VERSION is not in $SUITE's source index (listed: ${listed:-none}); set CTFY_RESTIC_SOURCE_VERSION"
fi

# apt-get verified these files against the signed index; check the tarball against the .dsc again
# so that a tarball swapped in the download folder is never extracted.
DSC="$WORK/download/restic_${VERSION#*:}.dsc"
[ -f "$DSC" ] || fail "apt-get wrote no $(basename "$DSC")"
ORIG="$(find "$WORK/download" -maxdepth 1 -name 'restic_*.orig.tar.*' ! -name '*.asc' | head -n 1)"
[ -n "$ORIG" ] || fail "the source package has no upstream tarball"
WANT="$(awk -v name="$(basename "$ORIG")" '
  /^Checksums-Sha256:/ { section = 1; next }
  /^[^ ]/ { section = 0 }
  section && $3 == name { print $1 }' "$DSC")"
[[ "$WANT" =~ ^[0-9a-f]{64}$ ]] || fail "$(basename "$DSC") lists no SHA-256 for $(basename "$ORIG")"
GOT="$(sha256sum "$ORIG" | cut -d ' ' -f 1)"
[ "$GOT" = "$WANT" ] || fail "$(basename "$ORIG") has SHA-256 $GOT, the .dsc says $WANT"
say "verified $(basename "$ORIG") (sha256 $GOT)"

# Only the policy test and its golden files: restic 0.18 keeps them in internal/restic, later
# releases in internal/data.
mapfile -t TESTS < <(tar -tf "$ORIG" | grep -E '^[^/]+/internal/[a-z]+/snapshot_policy_test\.go$' || true)
[ "${#TESTS[@]}" = 1 ] || fail "expected one internal/*/snapshot_policy_test.go in the tarball, found ${#TESTS[@]}"
INNER="$(dirname "${TESTS[0]}")"
mapfile -t GOLDEN < <(tar -tf "$ORIG" | grep -E "^${INNER//./\\.}/testdata/policy_keep_snapshots_[0-9]+$" || true)
[ "${#GOLDEN[@]}" -gt 0 ] || fail "no $INNER/testdata/policy_keep_snapshots_* in the tarball"

mkdir -p "$WORK/extract"
tar -xf "$ORIG" -C "$WORK/extract" --no-same-owner --no-same-permissions "${TESTS[0]}" "${GOLDEN[@]}"
mkdir -p "$OUT.tmp/testdata"
mv "$WORK/extract/${TESTS[0]}" "$OUT.tmp/snapshot_policy_test.go"
mv "$WORK/extract/$INNER/testdata/"policy_keep_snapshots_* "$OUT.tmp/testdata/"
printf 'restic %s (Debian source package, %s)\nsha256 %s\npath %s\n' \
  "$VERSION" "$SUITE" "$GOT" "${INNER#*/}" >"$OUT.tmp/SOURCE"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
rm -rf "$WORK"
trap - ERR
say "extracted ${#GOLDEN[@]} golden files and ${INNER#*/}/snapshot_policy_test.go into $OUT"
printf '%s\n' "$OUT"
