"""restic's own retention fixtures, read at test time: ``TestApplyPolicy`` and its golden files.

``scripts/restic_fixtures.sh`` fetches Debian's source package of restic and extracts
``snapshot_policy_test.go`` and ``testdata/policy_keep_snapshots_<n>``; nothing of them is kept
in this repository. This module parses exactly the shapes that test uses:

* the input list, ``var testExpireSnapshots = restic.Snapshots{ {Time: parseTimeUTC("..."),
  Tags: []string{"foo"}, Paths: []string{"p"}}, ... }``;
* the policies, ``var tests = []restic.ExpirePolicy{ {}, {Last: 10}, {Daily: 7, Weekly: 2},
  {Tags: []restic.TagList{{"foo"}, {"bar"}}}, {Within: restic.ParseDurationOrPanic("1d")}, ...}``
  (the package may be ``restic`` or ``data``);
* the loop that pairs policy ``i`` with golden file ``policy_keep_snapshots_<i>``;
* each golden file, JSON ``{"keep": [snapshot, ...], "reasons": [{"snapshot", "matches",
  "counters"}, ...]}``.

Anything else (an unknown field, another function, a block comment, a changed loop or JSON key)
raises `FixtureFormatError`, so a change of restic's test is noticed instead of half read.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import attrs

from ctfy_vault.retention import Duration
from tests.support.paths import REPO_ROOT

__all__ = [
    "COUNT_FIELDS",
    "WINDOW_FIELDS",
    "FixtureFormatError",
    "Fixtures",
    "GoPolicy",
    "GoSnapshot",
    "Golden",
    "GoldenReason",
    "fetch_fixtures",
    "parse_duration",
    "parse_golden",
    "parse_test_file",
    "read_fixtures",
]

SCRIPT: Final = REPO_ROOT / "scripts" / "restic_fixtures.sh"
# Seconds the script may take: an index and a 24 MB tarball from the Debian mirror.
SCRIPT_TIMEOUT: Final = 600

COUNT_FIELDS: Final = {
    "Last": "last",
    "Hourly": "hourly",
    "Daily": "daily",
    "Weekly": "weekly",
    "Monthly": "monthly",
    "Yearly": "yearly",
}
"""restic's ExpirePolicy count fields and our `Policy` names."""

WINDOW_FIELDS: Final = {
    "Within": "within",
    "WithinHourly": "within_hourly",
    "WithinDaily": "within_daily",
    "WithinWeekly": "within_weekly",
    "WithinMonthly": "within_monthly",
    "WithinYearly": "within_yearly",
}
"""restic's ExpirePolicy window fields and our `Policy` names."""

_PACKAGE = r"(?:restic|data)"
_STRING = r'"([^"\\\n]*)"'
_TIME = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.(\d{1,9}))?")
_JSON_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")
_DURATION_PART = re.compile(r"(\d+)([ymdh])")
_SNAPSHOT_FIELDS = {
    "Time": re.compile(rf"parseTimeUTC\({_STRING}\)"),
    "Tags": re.compile(r"\[\]string\{(.*)\}", re.S),
    "Paths": re.compile(r"\[\]string\{(.*)\}", re.S),
}
_DURATION_VALUE = re.compile(rf"(?:{_PACKAGE}\.ParseDurationOrPanic|parseDuration)\({_STRING}\)")
_COUNT_VALUE = re.compile(r"-1|0|[1-9]\d*")
_TAGS_VALUE = re.compile(rf"\[\]{_PACKAGE}\.TagList\{{(.*)\}}", re.S)
# The lines of TestApplyPolicy that tie policy i to golden file i, and the time layout it reads.
_REQUIRED_LINES = (
    'time.Parse("2006-01-02 15:04:05", s)',
    "return t.UTC()",
    "for i, p := range tests {",
    "ApplyPolicy(testExpireSnapshots, p)",
    'fmt.Sprintf("policy_keep_snapshots_%d", i)',
)
_GOLDEN_SNAPSHOT_KEYS = frozenset({"time", "tree", "paths", "tags"})
_COUNTER_KEYS = frozenset({"last", "hourly", "daily", "weekly", "monthly", "yearly"})


class FixtureFormatError(ValueError):
    """restic's fixtures are not in the shape this reader knows; the reader must be updated."""


@attrs.frozen(eq=False)
class GoSnapshot:
    """One snapshot of ``testExpireSnapshots``: its time, tags and paths, and its index there."""

    index: int
    time: datetime
    tags: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    @property
    def content(self) -> tuple[datetime, tuple[str, ...], tuple[str, ...]]:
        """What restic's test compares: time, tags and paths."""
        return (self.time, self.tags, self.paths)


@attrs.frozen
class GoPolicy:
    """One ``ExpirePolicy`` literal of ``tests``.

    Attributes:
        counts: our count rule name to restic's count (-1 is "all").
        windows: our window rule name to the duration.
        tag_lists: restic's tag lists; a snapshot matches a list when it has all of its tags.
        source: the literal as written, for messages.
    """

    counts: dict[str, int]
    windows: dict[str, Duration]
    tag_lists: tuple[tuple[str, ...], ...]
    source: str

    @property
    def kind(self) -> str:
        """``"empty"``, ``"tags-only"`` or ``"rules"`` (counts or windows, maybe with tags)."""
        if self.counts or self.windows:
            return "rules"
        return "tags-only" if self.tag_lists else "empty"


@attrs.frozen
class GoldenReason:
    """One entry of a golden file's ``reasons``."""

    snapshot: tuple[datetime, tuple[str, ...], tuple[str, ...]]
    matches: tuple[str, ...]
    counters: dict[str, int]


@attrs.frozen
class Golden:
    """One golden file: the kept snapshots (time, tags, paths), newest first, and their reasons."""

    keep: tuple[tuple[datetime, tuple[str, ...], tuple[str, ...]], ...]
    reasons: tuple[GoldenReason, ...]


@attrs.frozen
class Fixtures:
    """Everything ``TestApplyPolicy`` uses: the input, the policies and one golden file each."""

    source: str
    snapshots: tuple[GoSnapshot, ...]
    policies: tuple[GoPolicy, ...]
    golden: tuple[Golden, ...]


def _fraction(digits: str | None, text: str) -> int:
    if not digits:
        return 0
    if len(digits) > 6 and int(digits[6:]):
        raise FixtureFormatError(f"time {text!r} is finer than a microsecond")
    return int(digits[:6].ljust(6, "0"))


def parse_go_time(text: str) -> datetime:
    """Read what Go's ``time.Parse("2006-01-02 15:04:05", s)`` reads, as a UTC datetime."""
    match = _TIME.fullmatch(text)
    if match is None:
        raise FixtureFormatError(f"parseTimeUTC({text!r}) is not 'YYYY-MM-DD hh:mm:ss[.frac]'")
    base = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return base.replace(microsecond=_fraction(match[2], text))


def parse_json_time(text: object) -> datetime:
    """Read an RFC 3339 time as Go's JSON encoder writes it."""
    if not isinstance(text, str):
        raise FixtureFormatError(f"a golden time must be a string, got {text!r}")
    match = _JSON_TIME.fullmatch(text)
    if match is None:
        raise FixtureFormatError(f"golden time {text!r} is not RFC 3339")
    zone = "+00:00" if match[3] == "Z" else match[3]
    base = datetime.fromisoformat(match[1] + zone).astimezone(UTC)
    return base.replace(microsecond=_fraction(match[2], text))


def parse_duration(text: str) -> Duration:
    """Read a restic duration (``1y2m3d3h``, units in any order, each once) as a `Duration`."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise FixtureFormatError(f"duration {text!r} is not of restic's form, e.g. '1y2m3d4h'")
    units = [unit for _, unit in parts]
    if len(set(units)) != len(units):
        raise FixtureFormatError(f"duration {text!r} repeats a unit (restic keeps the last one)")
    names = {"y": "years", "m": "months", "d": "days", "h": "hours"}
    return Duration(**{names[unit]: int(number) for number, unit in parts})


def _strip_comments(text: str) -> str:
    """Remove ``//`` comments outside strings; refuse block comments and raw strings."""
    out: list[str] = []
    position, size = 0, len(text)
    while position < size:
        char = text[position]
        if char == '"':
            end = text.find('"', position + 1)
            if end < 0 or "\\" in text[position:end] or "\n" in text[position:end]:
                raise FixtureFormatError(f"unsupported string literal at {text[position:][:40]!r}")
            out.append(text[position : end + 1])
            position = end + 1
        elif text.startswith("//", position):
            end = text.find("\n", position)
            position = size if end < 0 else end
        elif text.startswith("/*", position) or char == "`":
            raise FixtureFormatError(
                f"unsupported block comment or raw string: {text[position:][:40]!r}"
            )
        else:
            out.append(char)
            position += 1
    return "".join(out)


def _closing(text: str, opening: int) -> int:
    """Return the index of the brace closing the one at ``opening`` (strings hold no braces)."""
    depth = 0
    in_string = False
    for index in range(opening, len(text)):
        char = text[index]
        if char == '"':
            in_string = not in_string
        elif in_string:
            continue
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
    raise FixtureFormatError(f"unbalanced braces after {text[opening:][:40]!r}")


def _split_top(text: str, separator: str = ",") -> list[str]:
    """Split at separators outside braces and strings, dropping empty trailing parts."""
    parts: list[str] = []
    depth, start, in_string = 0, 0, False
    for index, char in enumerate(text):
        if char == '"':
            in_string = not in_string
        elif in_string:
            continue
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    stripped = [part.strip() for part in parts]
    if stripped and stripped[-1] == "":
        stripped.pop()
    if "" in stripped:
        raise FixtureFormatError(f"empty element in {text.strip()[:60]!r}")
    return stripped


def _literal_body(source: str, header: str) -> str:
    """Return the text between the braces of the composite literal that ``header`` opens."""
    found = re.search(header, source)
    if found is None:
        raise FixtureFormatError(f"no {header!r} in the test file")
    opening = found.end() - 1
    if source[opening] != "{":
        raise FixtureFormatError(f"{header!r} does not open a composite literal")
    return source[opening + 1 : _closing(source, opening)]


def _elements(body: str, what: str) -> list[str]:
    """Return the inside of each ``{...}`` element of a literal body."""
    elements: list[str] = []
    for part in _split_top(body):
        if not (part.startswith("{") and part.endswith("}")) or _closing(part, 0) != len(part) - 1:
            raise FixtureFormatError(
                f"{what} element {len(elements)} is not a {{...}} literal: {part!r}"
            )
        elements.append(part[1:-1])
    return elements


def _fields(element: str, what: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in _split_top(element):
        name, colon, value = part.partition(":")
        name = name.strip()
        if not colon or not re.fullmatch(r"[A-Z]\w*", name):
            raise FixtureFormatError(f"{what}: {part!r} is not 'Field: value'")
        if name in fields:
            raise FixtureFormatError(f"{what}: field {name} is given twice")
        fields[name] = value.strip()
    return fields


def _strings(inner: str, what: str) -> tuple[str, ...]:
    values = []
    for part in _split_top(inner):
        match = re.fullmatch(_STRING, part)
        if match is None:
            raise FixtureFormatError(f"{what}: {part!r} is not a string literal")
        values.append(match[1])
    return tuple(values)


def _snapshot(index: int, element: str) -> GoSnapshot:
    what = f"testExpireSnapshots[{index}]"
    fields = _fields(element, what)
    unknown = set(fields) - set(_SNAPSHOT_FIELDS)
    if unknown or "Time" not in fields:
        raise FixtureFormatError(f"{what} has fields {sorted(fields)}; expected Time, Tags, Paths")
    parsed: dict[str, Any] = {}
    for name, value in fields.items():
        match = _SNAPSHOT_FIELDS[name].fullmatch(value)
        if match is None:
            raise FixtureFormatError(f"{what}.{name} = {value!r} is not of the known form")
        if name == "Time":
            parsed["time"] = parse_go_time(match[1])
        else:
            parsed[name.lower()] = _strings(match[1], f"{what}.{name}")
    return GoSnapshot(index=index, **parsed)


def _policy(index: int, element: str) -> GoPolicy:
    what = f"tests[{index}]"
    counts: dict[str, int] = {}
    windows: dict[str, Duration] = {}
    tag_lists: tuple[tuple[str, ...], ...] = ()
    for name, value in _fields(element, what).items():
        if name in COUNT_FIELDS:
            if not _COUNT_VALUE.fullmatch(value):
                raise FixtureFormatError(f"{what}.{name} = {value!r} is not a count (n >= 0 or -1)")
            if int(value):
                counts[COUNT_FIELDS[name]] = int(value)
        elif name in WINDOW_FIELDS:
            match = _DURATION_VALUE.fullmatch(value)
            if match is None:
                raise FixtureFormatError(
                    f"{what}.{name} = {value!r} is not ParseDurationOrPanic(...)"
                )
            windows[WINDOW_FIELDS[name]] = parse_duration(match[1])
        elif name == "Tags":
            match = _TAGS_VALUE.fullmatch(value)
            if match is None:
                raise FixtureFormatError(f"{what}.Tags = {value!r} is not a []TagList literal")
            lists = []
            for part in _split_top(match[1]):
                if not (part.startswith("{") and part.endswith("}")):
                    raise FixtureFormatError(f"{what}.Tags: {part!r} is not a {{...}} tag list")
                lists.append(_strings(part[1:-1], f"{what}.Tags"))
            tag_lists = tuple(lists)
        else:
            raise FixtureFormatError(f"{what} has the unknown field {name}")
    return GoPolicy(counts=counts, windows=windows, tag_lists=tag_lists, source=element.strip())


def parse_test_file(text: str) -> tuple[tuple[GoSnapshot, ...], tuple[GoPolicy, ...]]:
    """Read ``testExpireSnapshots`` and ``tests`` from ``snapshot_policy_test.go``.

    Args:
        text: the Go source.

    Returns:
        The input snapshots in source order, and the policies in source order.

    Raises:
        FixtureFormatError: the test is not in the shape described in the module docstring.
    """
    start = text.find("func TestApplyPolicy(")
    if start < 0:
        raise FixtureFormatError("no func TestApplyPolicy in the test file")
    for line in _REQUIRED_LINES:
        if line not in text:
            raise FixtureFormatError(f"the test file no longer contains {line!r}")
    source = _strip_comments(text[start:])
    snapshots_body = _literal_body(source, rf"var testExpireSnapshots = {_PACKAGE}\.Snapshots\{{")
    policies_body = _literal_body(source, rf"var tests = \[\]{_PACKAGE}\.ExpirePolicy\{{")
    snapshots = tuple(
        _snapshot(index, element)
        for index, element in enumerate(_elements(snapshots_body, "testExpireSnapshots"))
    )
    policies = tuple(
        _policy(index, element) for index, element in enumerate(_elements(policies_body, "tests"))
    )
    if not snapshots or not policies:
        raise FixtureFormatError("the test file has no snapshots or no policies")
    return snapshots, policies


def _golden_snapshot(value: object, what: str) -> tuple[datetime, tuple[str, ...], tuple[str, ...]]:
    if not isinstance(value, dict) or "time" not in value:
        raise FixtureFormatError(f"{what} is not a snapshot object: {value!r}")
    unknown = set(value) - _GOLDEN_SNAPSHOT_KEYS
    if unknown:
        raise FixtureFormatError(f"{what} has unknown keys {sorted(unknown)}")
    if value.get("tree") is not None:
        raise FixtureFormatError(f"{what} has a tree; the fixtures have none")
    lists: list[tuple[str, ...]] = []
    for key in ("tags", "paths"):
        items = value.get(key) or []
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise FixtureFormatError(f"{what}.{key} is not a list of strings: {items!r}")
        lists.append(tuple(items))
    return (parse_json_time(value["time"]), lists[0], lists[1])


def parse_golden(text: str, name: str) -> Golden:
    """Read one ``policy_keep_snapshots_<n>`` file.

    Args:
        text: the JSON text.
        name: the file name, for messages.

    Returns:
        The kept snapshots and their reasons.

    Raises:
        FixtureFormatError: the JSON is not the shape restic's test writes.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise FixtureFormatError(f"{name} is not JSON: {err}") from None
    if not isinstance(data, dict) or set(data) - {"keep", "reasons"} or "keep" not in data:
        raise FixtureFormatError(f"{name} is not {{'keep': [...], 'reasons': [...]}}")
    keep_list = data["keep"] or []
    reason_list = data.get("reasons") or []
    if not isinstance(keep_list, list) or not isinstance(reason_list, list):
        raise FixtureFormatError(f"{name}: keep and reasons must be lists")
    keep = tuple(_golden_snapshot(item, f"{name} keep[{i}]") for i, item in enumerate(keep_list))
    reasons = []
    for index, entry in enumerate(reason_list):
        what = f"{name} reasons[{index}]"
        if not isinstance(entry, dict) or set(entry) != {"snapshot", "matches", "counters"}:
            raise FixtureFormatError(f"{what} is not {{snapshot, matches, counters}}: {entry!r}")
        matches, counters = entry["matches"], entry["counters"]
        if not isinstance(matches, list) or not all(isinstance(m, str) for m in matches):
            raise FixtureFormatError(f"{what}.matches is not a list of strings")
        if (
            not isinstance(counters, dict)
            or set(counters) - _COUNTER_KEYS
            or not all(type(count) is int for count in counters.values())
        ):
            raise FixtureFormatError(f"{what}.counters is not a map of rule counters: {counters!r}")
        snapshot = _golden_snapshot(entry["snapshot"], f"{what}.snapshot")
        reasons.append(GoldenReason(snapshot=snapshot, matches=tuple(matches), counters=counters))
    if len(reasons) != len(keep):
        raise FixtureFormatError(
            f"{name} has {len(keep)} kept snapshots and {len(reasons)} reasons"
        )
    return Golden(keep=keep, reasons=tuple(reasons))


def read_fixtures(folder: Path) -> Fixtures:
    """Read the test file and every golden file from the folder the script printed.

    Args:
        folder: holds ``snapshot_policy_test.go``, ``testdata/`` and ``SOURCE``.

    Returns:
        The parsed fixtures; policy ``i`` goes with golden file ``i``.

    Raises:
        FixtureFormatError: a file is missing, unexpected or malformed.
    """
    snapshots, policies = parse_test_file((folder / "snapshot_policy_test.go").read_text())
    names = sorted(path.name for path in (folder / "testdata").iterdir())
    expected = [f"policy_keep_snapshots_{index}" for index in range(len(policies))]
    if sorted(expected) != names:
        raise FixtureFormatError(
            f"{len(policies)} policies but golden files {names}; they must pair one to one"
        )
    golden = tuple(
        parse_golden((folder / "testdata" / name).read_text(), name) for name in expected
    )
    source = (folder / "SOURCE").read_text().splitlines()[0]
    return Fixtures(source=source, snapshots=snapshots, policies=policies, golden=golden)


def fetch_fixtures() -> Path:
    """Run ``scripts/restic_fixtures.sh`` and return the folder it prints.

    Returns:
        The fixture folder (cached under ``CTFY_RESTIC_FIXTURES_DIR`` or the repository's
        ``.cache``).

    Raises:
        RuntimeError: the script failed or printed no folder; the message quotes its output.
    """
    try:
        done = subprocess.run(
            ["bash", str(SCRIPT)],
            env=dict(os.environ),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise RuntimeError(f"{SCRIPT.name} did not finish within {SCRIPT_TIMEOUT}s") from err
    lines = done.stdout.splitlines()
    if done.returncode != 0 or len(lines) != 1 or not Path(lines[0]).is_dir():
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
        raise RuntimeError(f"{SCRIPT.name} failed (exit {done.returncode}):\n{tail}")
    return Path(lines[0])
