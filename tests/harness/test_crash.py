"""Crash consistency: backups and prunes SIGKILLed at random points lose nothing.

A fork server (`tests/crash_worker.py`) runs each backup or prune in a child process and kills it
with SIGKILL after a delay drawn from a seeded generator across the operation's measured duration.
After every kill the test checks, in this process:

* every listed snapshot restores byte-identical to the content its seed label implies;
* every snapshot known complete before the kill is still listed and intact (a killed prune may only
  have removed what its retention plan forgot);
* ``verify`` finds no manifest that does not open, no manifest naming a missing chunk, and an
  unbroken hash chain (targets may disagree: one may lack what the other got before the kill);
* a prune with grace 0 then leaves no chunk that no manifest names (format 1: no such chunk
  object; format 2: no such chunk in any pack, and no pack that no index object lists; that prune
  repacks every pack holding dead chunks), a killed prune's lock broken first, as an operator would;
* the same backup or prune, run again, completes; ``heal`` then makes the targets agree, and
  ``verify`` (every fifth round with ``read_data``) finds nothing wrong at all.

The counts are printed (``pytest -s``) and recorded as junit properties (``record_property``).
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from ctfy_vault.repository import DEFAULT_PACK_SIZE, load_packed
from ctfy_vault.retention import Policy
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault
from ctfy_vault.writer import ChunkerParams, StreamSource, index_chunks
from tests.support import crash_worker as worker
from tests.support.paths import REPO_ROOT
from tests.support.servers import S3Endpoint, make_bucket

pytestmark = pytest.mark.slow

#: Snapshots the clean-up prune keeps; the killed prunes keep one, so they always forget some.
KEEP = 2
#: Full ``verify(read_data=True)`` every this many rounds (structure is checked every round).
READ_DATA_EVERY = 5


@attrs.define
class Tally:
    """What one harness run did, for the summary."""

    kills: dict[str, int] = attrs.field(factory=lambda: {"backup": 0, "prune": 0})
    finished_before_kill: int = 0
    snapshots_checked: int = 0
    earlier_snapshots_checked: int = 0
    orphans_cleaned: int = 0
    locks_broken: int = 0
    partial_commits: int = 0
    temp_files_left: int = 0
    kill_quarters: list[int] = attrs.field(factory=lambda: [0, 0, 0, 0])

    @property
    def total_kills(self) -> int:
        """Children that were really killed mid-operation."""
        return sum(self.kills.values())

    def summary(self, scenario: str) -> dict[str, Any]:
        """The counts as one JSON-able mapping."""
        return {"scenario": scenario, "kills_total": self.total_kills, **attrs.asdict(self)}


class ForkServer:
    """The running `tests.support.crash_worker` process: one JSON job in, one JSON answer out."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.crash_worker"],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        """Run one job in a fresh child; return whether it was killed, how long it ran, its status."""
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(job) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        assert line, "the crash worker died"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        """Stop the server (it exits when its stdin closes)."""
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=30)


@pytest.fixture
def fork_server() -> Iterator[ForkServer]:
    """A crash worker fork server for one test."""
    server = ForkServer()
    yield server
    server.close()


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A folder in RAM when there is one (``/dev/shm``), else ``tmp_path``.

    A SIGKILL ends the process, not the machine, so the page cache survives it and a RAM folder
    shows the same crash states as a disk; it is only faster (unlinks cost milliseconds on some
    CI disks, and the clean-up prunes delete thousands of chunks).
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="ctfy-crash-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _labels(vault: Vault, name: str) -> tuple[int, float]:
    labels = dict(vault.manifest(name).labels)
    return int(labels["seed"]), float(labels["scale"])


def _check_restores(vault: Vault, tally: Tally) -> dict[str, int]:
    """Restore every listed snapshot and compare with its seed's content; return id -> seed."""
    listed: dict[str, int] = {}
    for info in vault.snapshots(worker.LINEAGE):
        seed, scale = _labels(vault, info.name)
        expected = worker.content(seed, scale)
        assert {entry.path for entry in vault.ls(info)} == set(expected), info.name
        for path, data in expected.items():
            with vault.open_file(info, path) as stream:
                assert stream.read() == data, f"{info.name}:{path} differs after a crash"
        listed[info.snapshot_id] = seed
        tally.snapshots_checked += 1
    return listed


def _orphans(vault: Vault) -> int:
    """Chunks, summed over targets, that no manifest on any target names.

    Format 2 counts such chunks in indexed packs, plus every pack that no index object lists.
    """
    referenced = {
        chunk
        for info in vault.snapshots()
        for entry in vault.manifest(info).files
        for chunk in entry.chunks
    }
    if not vault.config.packed:
        return sum(len(index_chunks(target) - referenced) for target in vault.targets)
    found = 0
    for target in vault.targets:
        held = load_packed(target, worker.sealer(target, vault))
        found += sum(1 for chunk in held.chunk_ids() if chunk not in referenced)
        found += len(held.loose_packs())
    return found


def _check_structure(vault: Vault, *, after_kill: bool, read_data: bool = False) -> bool:
    """Check that no manifest fails to open or names a missing chunk and that the chain holds.

    After a kill the targets may disagree (one got what the other did not) and hold loose packs;
    otherwise nothing at all may be wrong. Returns whether anything was reported.
    """
    report = vault.verify(read_data=read_data)
    # A kill may leave one target without what the other got, and (format 2) packs a killed
    # backup stored before it could write their index object.
    allowed = {"lacking", "loose-pack"} if after_kill else set()
    bad = [p for p in report.problems if p.kind not in allowed]
    assert not bad, bad
    assert report.chain.ok, report.chain
    return bool(report.problems)


def _temp_files(roots: list[Path]) -> set[str]:
    return {
        str(path)
        for root in roots
        if (root / ".ctfy-tmp").is_dir()
        for path in (root / ".ctfy-tmp").iterdir()
    }


@attrs.define
class Harness:
    """One repository, a fork server, a seeded generator and the checks after every kill."""

    specs: list[dict[str, Any]]
    server: ForkServer
    rng: random.Random
    scale: float = 1.0
    chunker: ChunkerParams = worker.CHUNKS
    local_roots: list[Path] = attrs.field(factory=list)
    tally: Tally = attrs.field(factory=Tally)
    durations: dict[str, list[float]] = attrs.field(factory=lambda: {"backup": [], "prune": []})
    temp_files: set[str] = attrs.field(factory=set)
    next_seed: int = 0
    rounds: int = 0
    clock: datetime = worker.START
    repository_format: int = 2
    pack_size: int = worker.PACK_SIZE
    targets: list[Target] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        # Built once: every open below reuses them (listings are never cached by a Target).
        self.targets = worker.targets(self.specs)

    def open(self) -> Vault:
        """The repository, freshly opened (no snapshot read before is remembered)."""
        return Vault.open(self.targets, key=worker.KEY)

    def job(self, op: str) -> dict[str, Any]:
        """The next job of kind ``op`` (a backup takes the next seed)."""
        self.clock += timedelta(minutes=1)
        if op == "backup":
            seed = self.next_seed
            self.next_seed += 1
            return {
                "op": "backup",
                "seed": seed,
                "scale": self.scale,
                "now": self.clock.isoformat(),
                "targets": self.specs,
            }
        return {
            "op": "prune",
            "last": 1,
            "now": self.clock.isoformat(),
            "targets": self.specs,
            # Every pack with a dead chunk is repacked, so kills land in repacks too.
            "repack_below": 1.0,
        }

    def start(self) -> None:
        """Create the repository and time a few backups and prunes, unkilled."""
        Vault.init(
            self.targets,
            key=worker.KEY,
            now=self.clock,
            chunker=self.chunker,
            format=self.repository_format,
            pack_size=self.pack_size if self.repository_format == 2 else DEFAULT_PACK_SIZE,
        )
        for op in ("backup", "backup", "prune", "backup"):
            answer = self.server.run(self.job(op))
            assert answer["status"] == 0, answer
            self.durations[op].append(answer["elapsed"])
        self.durations = {op: [statistics.median(d)] for op, d in self.durations.items()}

    def round(self) -> None:
        """One job killed at a random point, then every check, clean-up, re-run and heal."""
        before = self.open()
        # Each was restored and compared after the previous kill; here they are only listed.
        known = {
            info.snapshot_id: _labels(before, info.name)[0]
            for info in before.snapshots(worker.LINEAGE)
        }
        # Every third round prunes (when there is something to forget), so both kinds get killed.
        self.rounds += 1
        op = "prune" if self.rounds % 3 == 0 and len(known) >= 2 else "backup"
        job = self.job(op)
        may_forget: set[str] = set()
        if op == "prune":
            plans = before.forget(Policy(last=1), now=self.clock)
            may_forget = {info.snapshot_id for info in plans[worker.LINEAGE].forget}
        # Anywhere across the operation's measured (median) duration.
        duration = self.durations[op][0]
        job["delay"] = self.rng.uniform(0.0, duration)
        answer = self.server.run(job)
        assert answer["status"] in (0, -9), f"the {op} child failed: {answer}"
        if answer["killed"]:
            self.tally.kills[op] += 1
            self.tally.kill_quarters[min(int(4 * job["delay"] / duration), 3)] += 1
        else:
            self.tally.finished_before_kill += 1
        self.after_kill(job, known, may_forget)

    def after_kill(self, job: dict[str, Any], known: dict[str, int], may_forget: set[str]) -> None:
        """Check the repository a kill left, clean up, finish the work, heal, check again."""
        vault = self.open()
        if vault.lock_info() is not None:
            vault.break_lock(now=self.clock, force=True)
            self.tally.locks_broken += 1
        if _check_structure(vault, after_kill=True):
            self.tally.partial_commits += 1
        listed = _check_restores(vault, self.tally)
        lost = set(known) - set(listed) - may_forget
        assert not lost, f"snapshots lost by a killed {job['op']}: {lost}"
        for snapshot_id in set(known) & set(listed):
            assert listed[snapshot_id] == known[snapshot_id]
            self.tally.earlier_snapshots_checked += 1
        self.temp_files |= _temp_files(self.local_roots)

        # A later prune with grace 0 removes what the kill left unreferenced.
        orphans = _orphans(vault)
        self.clock += timedelta(seconds=10)
        report = vault.prune(
            Policy(last=KEEP), now=self.clock, grace=timedelta(0), repack_below=1.0
        )
        assert report.ok, report.errors
        assert _orphans(vault) == 0, "a prune with grace 0 left unreferenced chunks"
        self.tally.orphans_cleaned += orphans

        # The same job, run again (later: the clock moved on), completes.
        self.clock += timedelta(seconds=10)
        worker.run(dict(job, delay=None, now=self.clock.isoformat()), self.targets)
        vault = self.open()
        vault.heal()
        _check_structure(vault, after_kill=False, read_data=self.rounds % READ_DATA_EVERY == 0)


@attrs.frozen(kw_only=True)
class Scenario:
    """One harness run: its targets, how many kills, how much data."""

    name: str
    specs: list[dict[str, Any]]
    kills: int
    seed: int
    scale: float = 1.0
    chunker: ChunkerParams = worker.CHUNKS
    local_roots: list[Path] = attrs.field(factory=list)
    repository_format: int = 2
    pack_size: int = worker.PACK_SIZE


def _run_harness(
    scenario: Scenario, server: ForkServer, record: Callable[[str, object], None]
) -> Tally:
    rng = random.Random(scenario.seed)  # noqa: S311 - kill points, not secrets
    harness = Harness(
        specs=scenario.specs,
        server=server,
        rng=rng,
        scale=scenario.scale,
        chunker=scenario.chunker,
        local_roots=scenario.local_roots,
        repository_format=scenario.repository_format,
        pack_size=scenario.pack_size,
    )
    harness.start()
    for _ in range(scenario.kills * 3):  # a kill that lands after the end does not count
        if harness.tally.total_kills >= scenario.kills:
            break
        harness.round()
    harness.tally.temp_files_left = len(harness.temp_files)
    summary = harness.tally.summary(scenario.name)
    summary["median_run_seconds"] = {op: d[0] for op, d in harness.durations.items()}
    print(f"\ncrash harness {json.dumps(summary, sort_keys=True)}")
    for name, value in summary.items():
        record(f"crash_{name}", value)
    assert harness.tally.total_kills >= scenario.kills, summary
    assert harness.tally.kills["prune"] > 0, summary
    assert harness.tally.kills["backup"] > 0, summary
    return harness.tally


def test_sigkilled_backups_and_prunes_on_local_folders_lose_nothing(
    fast_tmp: Path, fork_server: ForkServer, record_property: Callable[[str, object], None]
) -> None:
    """Format 2 on two local folders: backups, prunes and repacks SIGKILLed 44 times lose nothing."""
    roots = [fast_tmp / "amsterdam", fast_tmp / "ireland"]
    specs = [{"url": str(root), "name": root.name} for root in roots]
    scenario = Scenario(name="local", specs=specs, kills=44, seed=20261126, local_roots=roots)
    _run_harness(scenario, fork_server, record_property)


def test_sigkilled_backups_and_prunes_of_a_v1_repository_lose_nothing(
    fast_tmp: Path, fork_server: ForkServer, record_property: Callable[[str, object], None]
) -> None:
    """Format 1 on two local folders: backups and prunes SIGKILLed 16 times lose nothing."""
    roots = [fast_tmp / "v1-amsterdam", fast_tmp / "v1-ireland"]
    specs = [{"url": str(root), "name": root.name} for root in roots]
    scenario = Scenario(
        name="local-v1",
        specs=specs,
        kills=16,
        seed=20261202,
        local_roots=roots,
        repository_format=1,
    )
    _run_harness(scenario, fork_server, record_property)


def test_sigkilled_backups_and_prunes_on_moto_s3_lose_nothing(
    moto_s3: S3Endpoint, fork_server: ForkServer, record_property: Callable[[str, object], None]
) -> None:
    """Format 2 on two moto S3 buckets: backups and prunes SIGKILLed 6 times lose no snapshot.

    Moto runs in this process and every request takes milliseconds, so the data is a quarter of
    the local scenario's and the chunks are twice as large (about 25 objects per backup).
    """
    options = {
        "endpoint_url": moto_s3.endpoint_url,
        "key": moto_s3.key,
        "secret": moto_s3.secret,
        "region": moto_s3.region,
    }
    specs = []
    for name in ("spaces", "aws"):
        bucket = make_bucket(moto_s3, f"crash-{name}-{uuid.uuid4().hex[:8]}")
        specs.append({"url": f"s3://{bucket}/repo", "name": name, "options": options})
    scenario = Scenario(
        name="moto",
        specs=specs,
        kills=6,
        seed=1126,
        scale=0.25,
        chunker=ChunkerParams(min_size=4096, avg_size=16384, max_size=65536),
    )
    _run_harness(scenario, fork_server, record_property)


def test_a_retry_with_the_same_now_keeps_the_chain_linear() -> None:
    """A backup retried with the same ``now`` (a scheduled time), then the next, verifies clean."""
    targets = [Target.from_url(f"memory://crash-tie-{uuid.uuid4().hex}-{n}") for n in range(2)]
    vault = Vault.init(targets, key=worker.KEY, now=worker.START)
    for attempt in range(64):  # the order of two random names decides; one try in two shows it
        lineage = f"db{attempt}"
        first = vault.backup(_tiny(), lineage=lineage, host="h", now=worker.START)
        retry = vault.backup(_tiny(), lineage=lineage, host="h", now=worker.START)
        if first.name > retry.name:
            break
    vault.backup(_tiny(), lineage=lineage, host="h", now=worker.START + timedelta(days=1))
    report = vault.verify()
    assert report.chain.ok, [p.detail for p in report.problems]


def _tiny() -> StreamSource:
    return StreamSource(name="dump.sql", stream=io.BytesIO(b"INSERT 1;"))
