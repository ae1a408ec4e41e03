"""Verify: a report of structure, chain, agreement between targets and, on request, data."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from ctfy_vault.exceptions import TargetsFailedError
from ctfy_vault.vault import Problem, Vault, VerifyReport
from ctfy_vault.writer import chunk_key
from tests.test_vault import KEY, new_vault, sample_tree, stream
from tests.test_vault_restore import corrupt
from tests.writer_strategies import NOW, SMALL, Faults, faulty_target, memory_target


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


class TestVerify:
    def test_clean_repository_verifies_ok(self, tmp_path: Path) -> None:
        """A healthy repository gives an ok report with counts, reading every chunk on request."""
        vault = new_vault(3)
        two_backups(vault, tmp_path)
        report = vault.verify(read_data=True)
        assert report.ok, report.problems
        assert report.targets == tuple(t.name for t in vault.targets)
        assert report.snapshots == 3
        chunks = len(list(vault.targets[0].list("objects")))
        assert report.chunks_read == 3 * chunks
        assert vault.verify().chunks_read == 0

    def test_corrupt_chunk_is_reported_exactly(self, tmp_path: Path) -> None:
        """With read_data the one altered chunk is the only problem, on the one target."""
        vault = new_vault(2)
        two_backups(vault, tmp_path)
        key = sorted(vault.targets[1].list("objects"))[3]
        corrupt(vault.targets[1], key)
        assert vault.verify().ok  # structure alone cannot see altered bytes
        report = vault.verify(read_data=True)
        assert kinds(report) == [("corrupt-chunk", vault.targets[1].name, key)]
        assert not report.ok

    def test_fraction_reads_a_share_of_chunks(self, tmp_path: Path) -> None:
        """A fraction re-reads about that share of the chunks on every target."""
        vault = new_vault(2)
        two_backups(vault, tmp_path)
        chunks = len(list(vault.targets[0].list("objects")))
        report = vault.verify(read_data=0.25, rng=random.Random(7))  # noqa: S311 - sampling
        assert report.chunks_read == 2 * -(-chunks // 4)
        assert report.ok

    def test_out_of_range_fraction_is_refused(self) -> None:
        """read_data outside 0..1 is a ValueError."""
        vault = new_vault(1)
        with pytest.raises(ValueError, match="fraction"):
            vault.verify(read_data=1.5)

    def test_missing_chunk_and_disagreement_are_reported(self, tmp_path: Path) -> None:
        """A chunk deleted from one target shows as missing there and lacking versus the other."""
        vault = new_vault(2)
        two_backups(vault, tmp_path)
        entry = next(e for e in vault.ls(vault.snapshots("db")[0]) if e.chunks)
        key = chunk_key(entry.chunks[0])
        vault.targets[0].delete(key)
        report = vault.verify()
        assert kinds(report) == [
            ("lacking", vault.targets[0].name, key),
            ("missing-chunk", vault.targets[0].name, key),
        ]
        vault.heal()
        assert vault.verify(read_data=True).ok

    def test_deleted_snapshot_is_a_chain_gap(self, tmp_path: Path) -> None:
        """A snapshot deleted from every target (no prune record) is a gap in its lineage."""
        vault = new_vault(2)
        two_backups(vault, tmp_path)
        first = vault.snapshots("files")[-1]
        for target in vault.targets:
            target.delete(f"snapshots/{first.name}")
        report = vault.verify()
        assert not report.chain.ok
        assert len(report.chain.gaps) == 1
        assert [p.kind for p in report.problems] == ["chain"]
        assert "files" in report.problems[0].detail

    def test_altered_manifest_is_reported(self, tmp_path: Path) -> None:
        """A manifest altered on one target is reported there; the other copy keeps the chain."""
        vault = new_vault(2)
        two_backups(vault, tmp_path)
        name = vault.snapshots()[0].name
        corrupt(vault.targets[0], f"snapshots/{name}")
        report = vault.verify()
        assert kinds(report) == [("manifest", vault.targets[0].name, f"snapshots/{name}")]
        assert report.chain.ok

    def test_report_is_frozen_and_printable(self, tmp_path: Path) -> None:
        """The report and its problems are immutable values with readable reprs."""
        vault = new_vault(2)
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
