"""Differential test: our plans against the real ``restic forget --dry-run --json``.

Four snapshot histories (a spread over two and a half years, a dense few days, a daily series
with missed days across new year, and hand-placed edge cases: ISO week 53, a leap day, month
ends and snapshots exactly on window cutoffs) are written into one local restic repository,
one host per history, with times set by ``restic backup --time`` in UTC. Each policy is then
applied by restic and by `plan`, and the kept snapshots and the rules that keep each one must
agree.

restic 0.14 (Debian's) predates the "oldest" rule of restic 0.16 (count rules with room left and
periodic windows that reach the oldest snapshot keep it), so the comparison accounts for it
explicitly: against a restic older than 0.16 the expected set is our plan minus the snapshots
kept only by an "oldest" reason, and "oldest" reasons are left out of the rule comparison; from
0.16 on, everything is compared as is. Histories include cases where the rule applies (counts
with room left, windows longer than a history) and where it cannot (counts that run out,
windows that end inside a history). restic's own golden files for 0.16 and later are checked in
``tests/test_retention_restic_fixtures.py``.

restic is installed with apt-get when missing; the test fails, never skips, without it.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from ctfy_vault.retention import Duration, Policy, plan

PASSWORD = "differential-test-only"
WORKERS = 3
TIMEOUT = 300

POLICIES = [
    "last=5",
    "hourly=6",
    "daily=7",
    "weekly=4",
    "monthly=6",
    "yearly=3",
    "daily=1000",
    "weekly=1000,yearly=1000",
    "daily=7,weekly=4,monthly=12,yearly=5",
    "last=2,hourly=3,daily=3,weekly=2,monthly=2,yearly=2",
    "within=3d",
    "within=1m",
    "within=1y",
    "within=1y2m3d4h",
    "within_hourly=1d",
    "within_daily=14d",
    "within_weekly=8w",
    "within_monthly=6m",
    "within_yearly=1y",
    "within_daily=14d,within_weekly=8w,within_monthly=6m,within_yearly=1y",
    "daily=3,within_weekly=1m,tags=keep",
    "yearly=2,within=10d",
    "last=1,tags=keep",
]


@attrs.frozen
class Record:
    """One snapshot of a history: its host, its time (whole seconds, UTC) and its tags."""

    host: str
    time: datetime
    tags: frozenset[str] = frozenset()


def _unique_seconds(
    rng: random.Random, start: datetime, seconds: int, count: int
) -> list[datetime]:
    picked = rng.sample(range(seconds), count)
    return [start + timedelta(seconds=offset) for offset in picked]


def _histories() -> dict[str, list[datetime]]:
    """Return the fixed, seeded histories by host name."""
    rng = random.Random(20240229)  # noqa: S311  # seeded for reproducible histories, no secret
    spread = _unique_seconds(rng, datetime(2021, 6, 1, tzinfo=UTC), 940 * 86400, 22)
    dense = _unique_seconds(rng, datetime(2023, 3, 1, tzinfo=UTC), 4 * 86400, 22)
    days = sorted(rng.sample(range(52), 24))
    series = [
        datetime(2022, 11, 20, tzinfo=UTC) + timedelta(days=day, seconds=rng.randrange(86400))
        for day in days
    ]
    edges = [
        datetime.fromisoformat(text).replace(tzinfo=UTC)
        for text in (
            "2020-12-27 12:00:00",  # Sunday of 2020-W52
            "2020-12-28 12:00:00",  # Monday of 2020-W53
            "2021-01-03 23:59:59",  # Sunday of 2020-W53, in 2021
            "2021-01-04 00:00:00",  # Monday of 2021-W01
            "2023-01-28 08:00:00",  # exactly 1y2m3d4h before the newest
            "2023-01-28 08:00:01",
            "2023-02-28 12:00:00",
            "2023-03-31 12:00:00",  # exactly 1y before the newest
            "2023-03-31 12:00:01",
            "2024-02-04 12:00:00",  # exactly 8w before the newest
            "2024-02-29 12:00:00",  # leap day
            "2024-03-01 23:59:59",
            "2024-03-02 12:00:00",  # 1m before Mar 31 is "Feb 31", i.e. Mar 2
            "2024-03-02 12:00:01",
            "2024-03-21 12:00:00",  # exactly 10d before the newest
            "2024-03-30 23:00:00",
            "2024-03-31 00:00:00",
            "2024-03-31 11:00:00",
            "2024-03-31 12:00:00",  # the newest: every window is measured from here
        )
    ]
    return {"spread": spread, "dense": dense, "series": series, "edges": edges}


def _records() -> list[Record]:
    rng = random.Random(7)  # noqa: S311  # seeded for reproducible tags, no secret
    return [
        Record(
            host=host, time=moment, tags=frozenset({"keep"}) if rng.random() < 0.15 else frozenset()
        )
        for host, times in _histories().items()
        for moment in times
    ]


def _install_restic() -> str:
    """Return restic's path, installing Debian's package when it is missing."""
    found = shutil.which("restic")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.fail("restic is not installed and installing it needs root (apt-get install restic)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "restic"]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        subprocess.run(install, env=env, capture_output=True, check=False)
    found = shutil.which("restic")
    if not found:
        pytest.fail("restic is not installed and apt-get could not install it")
    return found


@attrs.frozen
class Restic:
    """A local restic repository holding the histories."""

    executable: str
    env: dict[str, str]
    version: tuple[int, int]

    def run(self, *args: str) -> str:
        """Run one restic command in UTC and return its standard output."""
        done = subprocess.run(
            [self.executable, "--no-cache", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"restic {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout


@pytest.fixture(scope="module")
def restic(tmp_path_factory: pytest.TempPathFactory) -> Restic:
    """Install restic if needed, create a repository and back up every history into it."""
    executable = _install_restic()
    root = tmp_path_factory.mktemp("restic")
    data = root / "data"
    data.mkdir()
    (data / "file.txt").write_text("the content does not matter, only the snapshot times\n")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "TZ": "UTC",
        "RESTIC_PASSWORD": PASSWORD,
        "RESTIC_REPOSITORY": str(root / "repo"),
    }
    printed = subprocess.run(
        [executable, "version"], capture_output=True, text=True, check=True, timeout=TIMEOUT
    ).stdout
    match = re.search(r"restic (\d+)\.(\d+)", printed)
    assert match, printed
    repo = Restic(executable, env, (int(match[1]), int(match[2])))
    repo.run("init", "--quiet")

    def backup(record: Record) -> str:
        tags = [arg for tag in sorted(record.tags) for arg in ("--tag", tag)]
        stamp = record.time.strftime("%Y-%m-%d %H:%M:%S")
        # Backups take a shared lock, so several can write into the repository at once.
        return repo.run(
            "backup", "--quiet", "--host", record.host, "--time", stamp, *tags, str(data)
        )

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(backup, _records()))
    return repo


def _restic_flags(policy: Policy) -> list[str]:
    flags: list[str] = []
    for rule, count in policy.counts().items():
        flags += [f"--keep-{rule}", str(count)]
    for rule, window in policy.windows().items():
        flags += [f"--keep-{rule.replace('_', '-')}", _restic_duration(window)]
    for tag in sorted(policy.tags):
        flags += ["--keep-tag", tag]
    return flags


def _restic_duration(window: Duration) -> str:
    # restic has no week unit; a week is seven calendar days in both.
    days = window.weeks * 7 + window.days
    parts = [(window.years, "y"), (window.months, "m"), (days, "d"), (window.hours, "h")]
    return "".join(f"{value}{unit}" for value, unit in parts if value)


def _rule_of(match: str) -> str:
    """Map one of restic's reason texts to our rule name."""
    if match.startswith("has tags"):
        return "tags"
    if match.startswith("within "):
        return "within"
    words = match.removeprefix("oldest ").split()
    if words[0] == "last":
        return "last"
    return f"within_{words[0]}" if words[1] == "within" else words[0]


@pytest.fixture(scope="module")
def decisions(restic: Restic) -> dict[str, dict[tuple[str, str], set[str]]]:
    """Run restic's forget for every policy; map (host, time) of each kept snapshot to rules."""

    def forget(text: str) -> dict[tuple[str, str], set[str]]:
        flags = _restic_flags(Policy.parse(text))
        # --no-lock lets the dry runs share the repository; nothing is written.
        output = restic.run("--no-lock", "forget", "--dry-run", "--json", *flags)
        groups: list[dict[str, Any]] = json.loads(output)
        kept: dict[tuple[str, str], set[str]] = {}
        for group in groups:
            for reason in group.get("reasons") or []:
                snapshot = reason["snapshot"]
                moment = datetime.fromisoformat(snapshot["time"]).astimezone(UTC)
                key = (snapshot["hostname"], moment.isoformat())
                kept[key] = {_rule_of(match) for match in reason["matches"]}
            assert len(group.get("keep") or []) == sum(1 for key in kept if key[0] == group["host"])
        return kept

    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(zip(POLICIES, pool.map(forget, POLICIES), strict=True))


def _ours(policy: Policy, restic_version: tuple[int, int]) -> dict[tuple[str, str], set[str]]:
    """Return what restic of this version should keep, by our plan."""
    records = _records()
    kept: dict[tuple[str, str], set[str]] = {}
    for host in _histories():
        result = plan([record for record in records if record.host == host], policy)
        for record in result.keep:
            reasons = result.reasons[record]
            if restic_version < (0, 16):
                # restic 0.14 has no "oldest" rule: what only that rule keeps, it forgets.
                reasons = tuple(reason for reason in reasons if not reason.oldest)
            if reasons:
                kept[(host, record.time.isoformat())] = {reason.rule for reason in reasons}
    return kept


def _show(kept: dict[tuple[str, str], set[str]]) -> list[str]:
    return [f"{host} {time} {sorted(rules)}" for (host, time), rules in sorted(kept.items())]


@pytest.mark.slow
@pytest.mark.parametrize("text", POLICIES)
def test_plan_agrees_with_restic_forget(
    text: str, restic: Restic, decisions: dict[str, dict[tuple[str, str], set[str]]]
) -> None:
    """For each policy, we keep the snapshots restic keeps, for the same rules."""
    expected = decisions[text]
    ours = _ours(Policy.parse(text), restic.version)
    assert _show(ours) == _show(expected)


@pytest.mark.parametrize("kind", ["counts", "windows"])
def test_histories_exercise_the_oldest_rule_both_ways(kind: str, restic: Restic) -> None:
    """The oldest rule, for counts and for periodic windows, applies in some histories, not all."""
    records = _records()
    applied = not_applied = 0
    for text in POLICIES:
        policy = Policy.parse(text)
        rules = set(policy.counts()) if kind == "counts" else set(policy.windows()) - {"within"}
        if not rules:
            continue
        for host in _histories():
            result = plan([record for record in records if record.host == host], policy)
            oldest = any(
                reason.oldest and reason.rule in rules
                for item in result.keep
                for reason in result.reasons[item]
            )
            applied += oldest
            not_applied += not oldest
    assert applied >= 3
    assert not_applied >= 3
    assert restic.version >= (0, 14)


def test_restic_repository_holds_every_history(restic: Restic) -> None:
    """Every generated snapshot is in the repository, at its time, under its host."""
    listed = json.loads(restic.run("snapshots", "--json"))
    found = sorted(
        (entry["hostname"], datetime.fromisoformat(entry["time"]).astimezone(UTC).isoformat())
        for entry in listed
    )
    assert found == sorted((record.host, record.time.isoformat()) for record in _records())
