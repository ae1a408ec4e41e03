"""Stray and damaged objects on one target stop no backup; verify names them; heal fixes them.

One target's write credential can put anything under ``snapshots/`` or ``objects/``. Nothing it
can put there without the repository's keys counts as a snapshot, so no backup of any lineage
waits for it; ``verify`` reports it; plain ``heal`` reports what it leaves; ``heal(repair=True)``
replaces a damaged copy from a good one, and moves what no good copy proves damaged to
``quarantine/`` (never deleting it outright). Run on local folders and on moto.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from ctfy_vault.crypto import RawKey
from ctfy_vault.exceptions import TargetsFailedError
from ctfy_vault.manifest import Manifest
from ctfy_vault.retention import Policy
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault
from ctfy_vault.writer import StreamSource, chunk_key
from tests.support.faults import FaultPlan, faulty_local_target
from tests.support.servers import S3Endpoint, make_bucket, s3_target
from tests.support.vaults import pack_of
from tests.support.writer_strategies import NOW, SMALL

KEY = RawKey(b"s" * 32)
#: A well-formed snapshot name that sorts after every head the tests write.
LATE = "snapshots/99991231T235959.999999Z-zzz"

Pair = Callable[[], list[Target]]


@pytest.fixture(params=["local", pytest.param("moto", marks=pytest.mark.moto)])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Pair:
    """Builds fresh targets ``a`` and ``b`` (local folders, or two prefixes of a moto bucket)."""
    if request.param == "local":
        return lambda: [Target.from_url(str(tmp_path / name), name=name) for name in ("a", "b")]
    moto: S3Endpoint = request.getfixturevalue("moto_s3")
    bucket = make_bucket(moto, f"strays-{uuid.uuid4().hex[:12]}")
    return lambda: [s3_target(moto, bucket, prefix, name=prefix) for prefix in ("a", "b")]


def _raw_store(target: Target, key: str, blob: bytes) -> None:
    """Put bytes straight into the backend, as an outside writer with the credential would."""
    path = f"{target.root}/{key}"
    target.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    target.fs.pipe_file(path, blob)


def _flip(target: Target, key: str) -> None:
    blob = bytearray(target.read(key))
    blob[len(blob) // 2] ^= 0x01
    _raw_store(target, key, bytes(blob))


def _backup(vault: Vault, lineage: str, hours: int, data: bytes = b"") -> Manifest:
    info = vault.backup(
        [StreamSource(name=f"{lineage}.dump", stream=io.BytesIO(data or lineage.encode() * 900))],
        lineage=lineage,
        host="h",
        now=NOW + timedelta(hours=hours),
    )
    return vault.manifest(info.name)


def _seeded(pair: Pair, format: int = 2) -> tuple[Vault, list[Target]]:
    targets = pair()
    vault = Vault.init(targets, key=KEY, now=NOW, chunker=SMALL, format=format)
    _backup(vault, "db", 1)
    _backup(vault, "files", 2)
    return Vault.open(pair(), key=KEY), targets


def _found(vault: Vault, read_data: bool = False) -> set[tuple[str, str, str | None, str | None]]:
    report = vault.verify(read_data=read_data)
    return {(p.kind, p.severity, p.target, p.key) for p in report.problems}


@pytest.mark.parametrize("key", ["snapshots/zzz", LATE])
def test_a_stray_snapshot_object_on_one_target_stops_no_backup(pair: Pair, key: str) -> None:
    """Junk under snapshots/ on one target: every lineage backs up onto its head; verify names it."""
    vault, (_a, b) = _seeded(pair)
    heads = {info.lineage: info.hash for info in vault.snapshots()}
    _raw_store(b, key, b"junk\n")
    vault = Vault.open(pair(), key=KEY)
    for hours, lineage in enumerate(("db", "files"), start=3):
        manifest = _backup(vault, lineage, hours)
        assert manifest.previous == heads[lineage]
    assert len(vault.snapshots()) == 4
    report = vault.verify()
    assert report.chain.ok
    if key == LATE:
        # A name the library could have written: a damaged snapshot would look the same, so it
        # is an error (a real head destroyed everywhere must never pass unnoticed).
        assert _found(vault) == {("manifest", "error", "b", key)}
        (problem,) = report.problems
        assert "opens on no target" in problem.detail
        assert not report.ok
    else:
        assert _found(vault) == {("unexpected", "warning", "b", key)}
        assert report.ok


@pytest.mark.parametrize(
    ("key", "format"),
    [
        ("snapshots/zzz", 2),
        (LATE, 2),
        ("objects/zz/not-a-chunk", 1),
        ("objects/zz/not-a-chunk", 2),
        ("packs/zz/not-a-pack", 2),
        (f"packs/{'ab' * 32}", 2),  # a pack-like name without its fan-out folder
        ("index/not-an-index", 2),
        (f"index/ab/{'ab' * 32}", 2),  # index objects are not fanned out
    ],
)
def test_plain_heal_reports_a_stray_and_repair_quarantines_it(
    pair: Pair, key: str, format: int
) -> None:
    """Plain heal copies nothing of it and reports it; repair moves it to quarantine/, intact."""
    vault, (a, b) = _seeded(pair, format)
    _raw_store(b, key, b"junk\n")
    report = vault.heal(now=NOW)
    assert not report.ok
    assert [(target, stray) for target, stray, _why in report.unfixed] == [("b", key)]
    assert report.copied == 0
    assert not a.exists(key)
    assert b.read(key) == b"junk\n"
    repaired = vault.heal(repair=True, now=NOW)
    assert repaired.ok
    aside = f"quarantine/{NOW.strftime('%Y%m%dT%H%M%SZ')}/{key}"
    by_target = {o.target: o for o in repaired.outcomes}
    assert by_target["b"].quarantined == ((key, aside),)
    assert by_target["a"].quarantined == ()
    assert not b.exists(key)
    assert b.read(aside) == b"junk\n"
    after = vault.verify()
    assert after.ok
    assert _found(vault) == {("quarantined", "warning", "b", aside)}
    assert vault.heal(now=NOW).ok


def test_a_head_damaged_on_one_target_is_read_from_the_other_and_repaired(pair: Pair) -> None:
    """A head damaged on one target: backup chains onto the good copy; repair replaces it."""
    vault, (a, _b) = _seeded(pair)
    head = next(info for info in vault.snapshots() if info.lineage == "db")
    key = f"snapshots/{head.name}"
    _flip(a, key)
    vault = Vault.open(pair(), key=KEY)
    assert _backup(vault, "db", 5).previous == head.hash
    report = vault.verify()
    problems = [p for p in report.problems if p.kind == "manifest"]
    assert [(p.target, p.key) for p in problems] == [("a", key)]
    assert "a good copy is on b" in problems[0].detail
    plain = vault.heal(now=NOW)
    assert [(target, k) for target, k, _why in plain.unfixed] == [("a", key)]
    repaired = vault.heal(repair=True, now=NOW)
    assert {o.target: o.repaired for o in repaired.outcomes} == {"a": (key,), "b": ()}
    assert repaired.quarantined == 0
    assert vault.verify(read_data=True).ok


@pytest.mark.parametrize("format", [1, 2])
def test_a_chunk_damaged_on_one_target_is_named_by_heal_and_repaired(
    pair: Pair, format: int
) -> None:
    """heal(read_data=True) names the damaged chunk (or pack) and changes nothing; repair fixes it."""
    vault, (_a, b) = _seeded(pair, format)
    manifest = _backup(vault, "db", 4, b"chunk data " * 3000)
    chunk_id = manifest.files[0].chunks[0]
    key = chunk_key(chunk_id) if format == 1 else pack_of(vault, b, chunk_id, KEY)
    _flip(b, key)
    damaged = b.read(key)
    plain = vault.heal()
    assert plain.ok  # chunks are not re-read by default, and it says so
    assert not plain.data_read
    looked = vault.heal(read_data=True)
    assert looked.data_read
    assert [(target, k) for target, k, _why in looked.unfixed] == [("b", key)]
    assert b.read(key) == damaged
    kind = "corrupt-chunk" if format == 1 else "corrupt-pack"
    assert _found(vault, read_data=True) == {(kind, "error", "b", key)}
    repaired = vault.heal(repair=True, now=NOW)
    assert {o.target: o.repaired for o in repaired.outcomes} == {"a": (), "b": (key,)}
    assert repaired.ok
    assert vault.verify(read_data=True).ok


def test_prune_sweeps_past_a_stray_name(pair: Pair) -> None:
    """A stray name is no snapshot object: the chunk sweep runs as if it were not there."""
    vault, (_a, b) = _seeded(pair, format=1)  # format 1's sweep; format 2's is prune's own
    _backup(vault, "db", 3, b"replaced " * 2000)
    _raw_store(b, "snapshots/zzz", b"junk\n")
    report = vault.prune({"db": Policy(last=1)}, now=NOW + timedelta(hours=9), grace=timedelta(0))
    assert report.sweep_skipped is None
    assert report.chunks_deleted > 0
    assert b.read("snapshots/zzz") == b"junk\n"


def test_an_object_no_target_could_be_asked_for_still_holds_the_backup(tmp_path: Path) -> None:
    """An object unread for transient failures may be the head: backup waits, then goes on."""
    roots = [tmp_path / "a", tmp_path / "b"]
    vault = Vault.init(
        [Target.from_url(str(root), name=root.name) for root in roots],
        key=KEY,
        now=NOW,
        chunker=SMALL,
    )
    _backup(vault, "db", 1)
    (roots[1] / LATE).write_bytes(b"junk\n")
    plan = FaultPlan(server_error=1.0, operations=frozenset({"read"}), where=(LATE,))
    flaky = faulty_local_target(plan, str(roots[1]), label="b")
    vault = Vault.open([Target.from_url(str(roots[0]), name="a"), flaky], key=KEY)
    with pytest.raises(TargetsFailedError, match="transient"):
        _backup(vault, "db", 2)
    plan.enabled = False
    assert _backup(vault, "db", 3).previous is not None
