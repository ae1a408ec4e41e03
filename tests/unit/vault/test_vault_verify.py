"""Verify: a report of structure, chain, agreement between targets and, on request, data."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from ctfy_vault.exceptions import ConfigurationError, RollbackError, TargetsFailedError
from ctfy_vault.repository import DEFAULT_PACK_SIZE
from ctfy_vault.retention import Policy
from ctfy_vault.storage import Target
from ctfy_vault.vault import Problem, SnapshotInfo, Vault, VerifyReport
from ctfy_vault.writer import chunk_key
from tests.support.servers import S3Endpoint, make_bucket, s3_target
from tests.support.vaults import (
    KEY,
    corrupt,
    holdings,
    new_vault,
    pack_of,
    sample_tree,
    stream,
)
from tests.support.writer_strategies import NOW, SMALL, Faults, faulty_target, memory_target


def two_backups(vault: Vault, tmp_path: Path) -> None:
    """Two snapshots of one lineage plus one of another."""
    src = sample_tree(tmp_path)
    vault.backup([src], lineage="files", host="h", now=NOW)
    (src / "a.txt").write_bytes(b"edited")
    vault.backup([src], lineage="files", host="h", now=NOW + timedelta(days=1))
    vault.backup(stream(b"dump" * 300), lineage="db", host="h", now=NOW + timedelta(days=1))


def kinds(report: VerifyReport) -> list[tuple[str, str | None, str | None]]:
    """The problems as ``(kind, target, key)``."""
    return [(p.kind, p.target, p.key) for p in report.problems]


#: The data objects of each format: chunk objects, or packs.
DATA = {1: "objects", 2: "packs"}


def small_packs(count: int, format: int) -> Vault:
    """A fresh vault of the format; format 2 closes packs at 4 KiB, so a backup writes several."""
    return new_vault(count, format=format, pack_size=4096 if format == 2 else DEFAULT_PACK_SIZE)


def stored_chunks(vault: Vault, target: Target, format: int) -> int:
    """The chunks one target holds: its chunk objects, or the chunks its index objects list."""
    if format == 1:
        return len(list(target.list("objects")))
    return sum(1 for _ in holdings(vault, target).chunk_ids())


def chunks_in(vault: Vault, target: Target, pack: str) -> int:
    """Format 2: the chunks a target's index objects list in one pack."""
    store = holdings(vault, target)
    return sum(
        1
        for chunk_id in store.index.chunk_ids()
        if any(pack.endswith(loc.pack_id.hex()) for loc in store.index.locations(chunk_id))
    )


@pytest.mark.parametrize("format", [1, 2])
class TestVerify:
    def test_clean_repository_verifies_ok(self, tmp_path: Path, format: int) -> None:
        """A healthy repository gives an ok report with counts, reading every chunk on request."""
        vault = new_vault(3, format=format)
        two_backups(vault, tmp_path)
        report = vault.verify(read_data=True)
        assert report.ok, report.problems
        assert report.problems == ()
        assert report.targets == tuple(t.name for t in vault.targets)
        assert report.snapshots == 3
        chunks = stored_chunks(vault, vault.targets[0], format)
        assert chunks > 0
        assert report.chunks_read == 3 * chunks
        assert vault.verify().chunks_read == 0

    def test_corrupt_chunk_is_reported_exactly(self, tmp_path: Path, format: int) -> None:
        """With read_data the one altered chunk (or pack) is the only problem, on the one target."""
        vault = small_packs(2, format)
        two_backups(vault, tmp_path)
        key = sorted(vault.targets[1].list(DATA[format]))[3 if format == 1 else 1]
        corrupt(vault.targets[1], key)
        assert vault.verify().ok  # structure alone cannot see altered bytes
        report = vault.verify(read_data=True)
        kind = "corrupt-chunk" if format == 1 else "corrupt-pack"
        assert kinds(report) == [(kind, vault.targets[1].name, key)]
        assert not report.ok

    def test_fraction_reads_a_share_of_chunks(self, tmp_path: Path, format: int) -> None:
        """A fraction re-reads about that share of the chunks (whole packs) on every target."""
        vault = small_packs(2, format)
        two_backups(vault, tmp_path)
        report = vault.verify(read_data=0.25, rng=random.Random(7))  # noqa: S311 - sampling
        assert report.ok
        data = sorted(vault.targets[0].list(DATA[format]))
        if format == 1:
            assert report.chunks_read == 2 * -(-len(data) // 4)
            return
        chosen = random.Random(7).sample(data, -(-len(data) // 4))  # noqa: S311 - sampling
        assert 0 < len(chosen) < len(data)
        expected = sum(chunks_in(vault, vault.targets[0], key) for key in chosen)
        assert report.chunks_read == 2 * expected

    def test_out_of_range_fraction_is_refused(self, format: int) -> None:
        """read_data outside 0..1 is a ValueError."""
        vault = new_vault(1, format=format)
        with pytest.raises(ValueError, match="fraction"):
            vault.verify(read_data=1.5)

    def test_missing_chunk_and_disagreement_are_reported(self, tmp_path: Path, format: int) -> None:
        """A chunk (or its pack) deleted from one target is missing there and lacking there."""
        vault = small_packs(2, format)
        two_backups(vault, tmp_path)
        entry = next(e for e in vault.ls(vault.snapshots("db")[0]) if e.chunks)
        first = vault.targets[0]
        key = chunk_key(entry.chunks[0]) if format == 1 else pack_of(vault, first, entry.chunks[0])
        inside = 1 if format == 1 else chunks_in(vault, first, key)
        first.delete(key)
        report = vault.verify()
        # Every chunk of the pack is named by a snapshot: each is missing, by the pack's key.
        assert kinds(report) == [
            ("lacking", first.name, key),
            *[("missing-chunk", first.name, key)] * inside,
        ]
        vault.heal()
        assert vault.verify(read_data=True).ok

    def test_deleted_snapshot_is_a_chain_gap(self, tmp_path: Path, format: int) -> None:
        """A snapshot deleted from every target (no prune record) is a gap in its lineage."""
        vault = new_vault(2, format=format)
        two_backups(vault, tmp_path)
        first = vault.snapshots("files")[-1]
        for target in vault.targets:
            target.delete(f"snapshots/{first.name}")
        report = vault.verify()
        assert not report.chain.ok
        assert len(report.chain.gaps) == 1
        assert [p.kind for p in report.problems] == ["chain"]
        assert "files" in report.problems[0].detail

    def test_altered_manifest_is_reported(self, tmp_path: Path, format: int) -> None:
        """A manifest altered on one target is reported there; the other copy keeps the chain."""
        vault = new_vault(2, format=format)
        two_backups(vault, tmp_path)
        name = vault.snapshots()[0].name
        corrupt(vault.targets[0], f"snapshots/{name}")
        report = vault.verify()
        assert kinds(report) == [("manifest", vault.targets[0].name, f"snapshots/{name}")]
        assert report.chain.ok

    def test_report_is_frozen_and_printable(self, tmp_path: Path, format: int) -> None:
        """The report and its problems are immutable values with readable reprs."""
        vault = new_vault(2, format=format)
        two_backups(vault, tmp_path)
        report = vault.verify()
        with pytest.raises(AttributeError):
            report.snapshots = 0  # type: ignore[misc]
        problem = Problem(
            kind="lacking", target="a", key="config", detail="another target holds it"
        )
        assert "lacking" in repr(problem)


class TestTargetDown:
    def test_target_down_backup_heal_verify(self, tmp_path: Path) -> None:
        """A target down during a backup: require=1 commits elsewhere, verify says so, heal fixes."""
        faults = Faults()
        targets = [memory_target("ams"), faulty_target(faults, "dub")]
        vault = Vault.init(targets, key=KEY, now=NOW, chunker=SMALL)
        faults.down = True
        with pytest.raises(TargetsFailedError) as caught:
            vault.backup(stream(b"x" * 2000), lineage="db", host="h", now=NOW)
        assert caught.value.outcomes[targets[0].name] is None  # committed where it could
        later = NOW + timedelta(hours=1)
        info = vault.backup(stream(b"y" * 2000), lineage="db", host="h", now=later, require=1)
        assert [o.committed for o in info.outcomes] == [True, False]
        assert next(s.name for s in vault.snapshots()) == info.name  # read from the healthy one
        down = vault.verify()
        assert not down.ok
        assert {p.target for p in down.problems} == {targets[1].name}
        faults.down = False
        assert {p.kind for p in vault.verify().problems} == {"lacking"}
        vault.heal()
        assert vault.verify(read_data=True).ok


@pytest.fixture
def disk_and_moto(tmp_path: Path, moto_s3: S3Endpoint) -> list[Target]:
    """Two providers: a local folder and a moto bucket."""
    bucket = make_bucket(moto_s3, f"heads-{uuid.uuid4().hex[:12]}")
    return [Target.from_url(str(tmp_path / "disk"), name="disk"), s3_target(moto_s3, bucket)]


def delete_everywhere(vault: Vault, info: SnapshotInfo) -> None:
    """Remove one snapshot object from every target, as a provider holding both could."""
    for target in vault.targets:
        target.delete(f"snapshots/{info.name}")


def listing(vault: Vault) -> list[list[str]]:
    """Every target's keys, sorted."""
    return [sorted(target.list("")) for target in vault.targets]


def chain_details(report: VerifyReport) -> list[str]:
    """The details of the chain problems."""
    return [p.detail for p in report.problems if p.kind == "chain"]


class TestKnownHeads:
    def test_newest_snapshot_deleted_everywhere_is_seen_only_with_known_heads(
        self, disk_and_moto: list[Target], tmp_path: Path
    ) -> None:
        """Without known heads the deletion verifies clean (the limit); with them it is reported."""
        vault = Vault.init(disk_and_moto, key=KEY, now=NOW, chunker=SMALL)
        two_backups(vault, tmp_path)
        clean = vault.verify()
        assert clean.ok, clean.problems
        newest = vault.snapshots("files")[0]
        assert clean.heads.get("files") == newest.head
        assert clean.heads.get("db") == vault.snapshots("db")[0].head
        delete_everywhere(vault, newest)
        assert vault.verify().ok  # no gap: the chain alone cannot see it
        report = vault.verify(known_heads=clean.heads)
        assert not report.ok
        assert chain_details(report) == [
            f"lineage files: a known head is missing (known head {newest.name})"
        ]
        assert report.heads.get("files") == vault.snapshots("files")[0].head

    def test_backup_refuses_to_chain_onto_an_older_head(
        self, disk_and_moto: list[Target], tmp_path: Path
    ) -> None:
        """With the known heads, backup raises RollbackError and writes nothing anywhere."""
        vault = Vault.init(disk_and_moto, key=KEY, now=NOW, chunker=SMALL)
        two_backups(vault, tmp_path)
        known = vault.verify().heads
        delete_everywhere(vault, vault.snapshots("files")[0])
        before = listing(vault)
        later = NOW + timedelta(days=2)
        with pytest.raises(RollbackError, match="lineage files: a known head is missing"):
            vault.backup(stream(b"x"), lineage="files", host="h", now=later, known_heads=known)
        assert listing(vault) == before
        other = vault.backup(stream(b"y"), lineage="db", host="h", now=later, known_heads=known)
        assert vault.verify(known_heads=known.advance(other.head)).heads.get("db") == other.head

    def test_backup_head_advances_the_known_heads(self, tmp_path: Path) -> None:
        """info.head after each backup keeps the known heads current without a full verify."""
        vault = new_vault(2)
        known = vault.verify().heads
        assert len(known) == 0
        assert known.repo_id == vault.repo_id
        for day in range(3):
            info = vault.backup(
                stream(b"d" * (day + 1)),
                lineage="db",
                host="h",
                now=NOW + timedelta(days=day),
                known_heads=known,
            )
            known = known.advance(info.head)
        report = vault.verify(known_heads=known)
        assert report.ok, report.problems
        assert report.heads == known

    def test_prune_of_the_known_heads_ancestors_stays_clean(
        self, disk_and_moto: list[Target], tmp_path: Path
    ) -> None:
        """An authorised prune that forgets the snapshots before the known head is no problem."""
        vault = Vault.init(disk_and_moto, key=KEY, now=NOW, chunker=SMALL)
        two_backups(vault, tmp_path)
        known = vault.verify().heads
        report = vault.prune(Policy(last=1), now=NOW + timedelta(days=2), grace=timedelta(0))
        assert len(report.forgotten) == 1
        after = vault.verify(known_heads=known)
        assert after.ok, after.problems
        assert after.heads.get("files") != known.get("files")  # the prune record is the head now
        info = vault.backup(
            stream(b"z"), lineage="files", host="h", now=NOW + timedelta(days=3), known_heads=known
        )
        assert vault.verify(known_heads=after.heads.advance(info.head)).ok

    def test_prune_that_forgets_the_known_head_is_explained(
        self, disk_and_moto: list[Target], tmp_path: Path
    ) -> None:
        """A known head a prune record forgot (state older than the prune) is not reported."""
        vault = Vault.init(disk_and_moto, key=KEY, now=NOW, chunker=SMALL)
        two_backups(vault, tmp_path)
        stale = vault.verify().heads
        vault.backup(stream(b"newer"), lineage="db", host="h", now=NOW + timedelta(days=2))
        report = vault.prune(
            {"db": Policy(last=1)}, now=NOW + timedelta(days=3), grace=timedelta(0)
        )
        assert [s.name for s in report.forgotten] == [stale.get("db").name]  # type: ignore[union-attr]
        after = vault.verify(known_heads=stale)
        assert after.ok, after.problems
        delete_everywhere(vault, vault.snapshots("db")[0])
        assert not vault.verify(known_heads=stale).ok  # the record now names a missing snapshot

    def test_vanished_lineage_is_reported(self, tmp_path: Path) -> None:
        """Deleting every entry of a lineage verifies clean alone; with known heads it vanished."""
        vault = new_vault(2)
        two_backups(vault, tmp_path)
        known = vault.verify().heads
        for info in vault.snapshots("files"):
            delete_everywhere(vault, info)
        assert vault.verify().ok
        report = vault.verify(known_heads=known)
        assert chain_details(report) == [
            "lineage files: the lineage has vanished: no entry of it is left (known head "
            f"{known.get('files').name})"  # type: ignore[union-attr]
        ]

    def test_rollback_of_one_target_is_seen_without_known_heads(self, tmp_path: Path) -> None:
        """The newest snapshot deleted on one target only: the other holds it (lacking), heal fixes."""
        vault = new_vault(2)
        two_backups(vault, tmp_path)
        known = vault.verify().heads
        newest = vault.snapshots("files")[0]
        vault.targets[0].delete(f"snapshots/{newest.name}")
        report = vault.verify()
        assert kinds(report) == [("lacking", vault.targets[0].name, f"snapshots/{newest.name}")]
        assert vault.verify(known_heads=known).chain.ok
        vault.heal()
        assert vault.verify(known_heads=known).ok

    def test_known_heads_of_another_repository_are_refused(self) -> None:
        """Heads recorded for another repository are a ConfigurationError, not a rollback."""
        vault, other = new_vault(1), new_vault(1)
        with pytest.raises(ConfigurationError, match="known heads are of repository"):
            vault.verify(known_heads=other.verify().heads)
        with pytest.raises(ConfigurationError, match="known heads are of repository"):
            vault.backup(
                stream(b"x"), lineage="db", now=NOW, host="h", known_heads=other.verify().heads
            )
