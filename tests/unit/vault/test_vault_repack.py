"""Vault.prune on format 2: dead packs deleted, sparse packs repacked, in a crash-safe order.

The repository: three days each store a pack of their own content (P0..P2), a fourth day stores
content no later snapshot shares (Q), and three later days back up the first half of P0..P2.
Keeping the newest three leaves P0..P2's packs about half live (repacked below 0.8) and Q's
pack wholly dead (deleted).
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable
from datetime import timedelta

import pytest

from ctfy_vault.exceptions import ConfigurationError, TargetsFailedError
from ctfy_vault.retention import Policy
from ctfy_vault.storage import Target
from ctfy_vault.vault import LOCK_KEY, PruneReport, Vault
from ctfy_vault.writer import StreamSource
from tests.support.packed import held_chunks, names, problems
from tests.support.vaults import KEY
from tests.support.writer_strategies import NOW, SMALL, memory_target

HOUR = timedelta(hours=1)
GRACE = HOUR
PACK_SIZE = 16 * 2**10
POLICY = Policy(last=3)
START = NOW + timedelta(days=8)


def noise(seed: int, size: int) -> bytes:
    """Incompressible, reproducible bytes."""
    return random.Random(seed).randbytes(size)  # noqa: S311 - test data


def backup(vault: Vault, day: int, data: bytes, name: str = "db.dump") -> str:
    """Back up ``data`` on day ``day``; return the snapshot id."""
    source = StreamSource(name=name, stream=io.BytesIO(data))
    return vault.backup(source, lineage="db", host="h", now=NOW + timedelta(days=day)).snapshot_id


def populated(count: int = 3) -> tuple[Vault, dict[str, bytes], bytes]:
    """The repository of the module docstring; the kept snapshots' contents; Q."""
    vault = Vault.init(
        [memory_target(f"t{n}") for n in range(count)],
        key=KEY,
        now=NOW,
        chunker=SMALL,
        pack_size=PACK_SIZE,
    )
    firsts = [noise(day, 8000) for day in range(3)]
    for day, data in enumerate(firsts):
        backup(vault, day, data)
    forgotten = noise(99, 6000)
    backup(vault, 3, forgotten)
    kept = {backup(vault, 4 + day, data[:4000]): data[:4000] for day, data in enumerate(firsts)}
    return vault, kept, forgotten


def referenced(vault: Vault) -> set[bytes]:
    """Every chunk a remaining snapshot names."""
    return {
        chunk
        for info in vault.snapshots()
        for entry in vault.manifest(info.snapshot_id).files
        for chunk in entry.chunks
    }


def stored(vault: Vault) -> list[set[str]]:
    """Every key on every target (the lock area aside)."""
    return [{k for k in t.list("") if not k.startswith("locks/")} for t in vault.targets]


def assert_restores(vault: Vault, kept: dict[str, bytes]) -> None:
    """Every kept snapshot reads back byte for byte, also through a freshly opened vault."""
    fresh = Vault.open(vault.targets, key=KEY)
    for opened in (vault, fresh):
        assert {s.snapshot_id for s in opened.snapshots()} == set(kept)
        for snapshot_id, data in kept.items():
            assert opened.open_file(snapshot_id, "db.dump").read() == data


def prune(vault: Vault, at: timedelta, **options: object) -> PruneReport:
    """Prune to the newest three at ``START + at`` with the module's grace period."""
    return vault.prune(POLICY, now=START + at, grace=GRACE, **options)  # type: ignore[arg-type]


class TestRepack:
    def test_sparse_packs_are_repacked_and_dead_ones_deleted(self) -> None:
        """Past the grace period, half-live packs are rewritten and the dead pack goes.

        Afterwards every target holds exactly the chunks the kept snapshots name, the same pack
        and index names, every pack and index object checks, and every kept snapshot restores.
        """
        vault, kept, _forgotten = populated()
        packs_before = names(vault.targets[0], "packs")
        first = prune(vault, timedelta(0))
        assert first.ok, first.errors
        assert len(first.forgotten) == 4
        assert (first.packs_deleted, first.packs_repacked, first.packs_written) == (0, 0, 0)
        assert first.chunks_pending > 0
        assert names(vault.targets[0], "packs") == packs_before
        second = prune(vault, 2 * HOUR)
        assert second.ok, second.errors
        assert second.packs_repacked == 3
        assert second.packs_deleted == 1
        assert second.packs_written >= 1
        assert second.chunks_deleted == first.chunks_pending
        assert second.chunks_pending == 0
        assert second.bytes_deleted > second.bytes_repacked > 0
        packs_after = names(vault.targets[0], "packs")
        assert len(packs_before - packs_after) == 4  # P0..P2's packs and Q's are gone
        assert len(packs_after - packs_before) == second.packs_written
        needed = referenced(vault)
        assert all(held_chunks(vault, t) == needed for t in vault.targets)
        assert problems(vault) == []
        assert not any(names(t, "locks/sweep") for t in vault.targets)
        assert_restores(vault, kept)

    def test_grace_period_is_honoured(self) -> None:
        """The first prune and one within the grace period only mark: no pack or index changes."""
        vault, kept, _forgotten = populated()
        before = [(names(t, "packs"), names(t, "index")) for t in vault.targets]
        prune(vault, timedelta(0))
        assert all(names(t, "locks/sweep") for t in vault.targets)
        within = prune(vault, GRACE / 2)
        assert (within.packs_deleted, within.packs_repacked, within.chunks_deleted) == (0, 0, 0)
        assert [(names(t, "packs"), names(t, "index")) for t in vault.targets] == before
        assert_restores(vault, kept)

    def test_threshold_zero_only_deletes_dead_packs(self) -> None:
        """``repack_below=0`` repacks nothing; the dead pack still goes, the rest stays unused."""
        vault, kept, _forgotten = populated()
        prune(vault, timedelta(0))
        report = prune(vault, 2 * HOUR, repack_below=0)
        assert (report.packs_repacked, report.packs_written, report.packs_deleted) == (0, 0, 1)
        assert report.chunks_unused > 0
        assert problems(vault) == []
        assert_restores(vault, kept)
        again = prune(vault, 3 * HOUR)  # the default threshold then repacks them
        assert again.packs_repacked == 3
        assert again.chunks_unused == 0
        assert all(held_chunks(vault, t) == referenced(vault) for t in vault.targets)
        assert problems(vault) == []

    def test_dry_run_changes_nothing_and_predicts_the_prune(self) -> None:
        """A dry run past the grace period changes no object and reports what the prune does."""
        vault, _kept, _forgotten = populated()
        prune(vault, timedelta(0))
        before = stored(vault)
        dry = prune(vault, 2 * HOUR, dry_run=True)
        assert dry.dry_run
        assert stored(vault) == before
        assert not any(t.exists(LOCK_KEY) for t in vault.targets)
        real = prune(vault, 2 * HOUR)
        assert (dry.packs_repacked, dry.packs_deleted) == (3, 1)
        for field in ("packs_repacked", "packs_deleted", "chunks_deleted", "packs_written"):
            assert getattr(dry, field) == getattr(real, field), field
        assert dry.bytes_repacked == real.bytes_repacked

    @pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan, math.inf, True, "0.5", None])
    def test_a_bad_threshold_is_refused_naming_it(self, bad: object) -> None:
        """A threshold that is no number from 0 to 1 is refused, named, before anything changes."""
        vault, _kept, _forgotten = populated(2)
        before = stored(vault)
        with pytest.raises(ConfigurationError, match=r"repack_below .*" + repr(bad)):
            prune(vault, timedelta(0), repack_below=bad)
        assert stored(vault) == before
        assert not any(t.exists(LOCK_KEY) for t in vault.targets)


class _ReusingStream(io.RawIOBase):
    """A stream that, once half read, runs a prune as another process would."""

    def __init__(self, data: bytes, on_half: Callable[[], None]) -> None:
        super().__init__()
        self._data = io.BytesIO(data)
        self._half = len(data) // 2
        self._on_half: Callable[[], None] | None = on_half

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._on_half is not None and self._data.tell() >= self._half:
            self._on_half()
            self._on_half = None
        return self._data.readinto(buffer)


class TestConcurrentBackup:
    def test_backup_reusing_a_marked_chunk_of_a_deleted_pack_does_not_commit(self) -> None:
        """A backup reusing marked chunks whose pack a prune deletes meanwhile commits nowhere.

        The writer checks the packs that held the marked chunks before committing; a re-run
        stores them again, and the repository stays sound throughout.
        """
        vault, kept, forgotten = populated(2)
        prune(vault, timedelta(0))
        other = Vault.open(vault.targets, key=KEY)

        def concurrent_prune() -> None:
            report = prune(other, 2 * HOUR)
            assert report.packs_deleted == 1  # Q's pack, whose chunks this backup reuses

        source = StreamSource(name="db.dump", stream=_ReusingStream(forgotten, concurrent_prune))
        with pytest.raises(TargetsFailedError, match="deleted by a prune"):
            vault.backup(source, lineage="db", host="h", now=START + 2 * HOUR)
        assert {s.snapshot_id for s in vault.snapshots()} == set(kept)
        assert problems(vault) == []
        again = backup(vault, 9, forgotten)
        assert vault.open_file(again, "db.dump").read() == forgotten
        assert problems(vault) == []

    def test_backup_reusing_a_marked_chunk_that_a_repack_moves_commits(self) -> None:
        """A backup reusing marked chunks still in grace commits when a repack moves them meanwhile.

        The concurrent prune copies those chunks (in their grace period) into a new pack and
        deletes the old one; the writer finds them in the new pack, commits, and the next
        prunes keep them because the new snapshot names them.
        """
        vault, kept, _forgotten = populated(2)
        prune(vault, timedelta(0))  # marks the dead halves and Q: ripe one hour later
        day_four = next(iter(kept))  # kept in the order backed up: days 4, 5, 6
        reused = kept.pop(day_four)
        fresh = noise(7, 4000)
        kept[backup(vault, 7, fresh)] = fresh
        marked = prune(vault, GRACE / 2)  # forgets day 4: its chunks are marked, not yet ripe
        assert day_four in {info.snapshot_id for info in marked.forgotten}
        other = Vault.open(vault.targets, key=KEY)
        before = names(vault.targets[0], "packs")

        def concurrent_prune() -> None:
            report = prune(other, GRACE * 1.2)  # the halves are ripe, day 4's chunks are not
            assert report.packs_repacked >= 1

        source = StreamSource(name="db.dump", stream=_ReusingStream(reused, concurrent_prune))
        result = vault.backup(source, lineage="db", host="h", now=START + GRACE * 1.2)
        assert before - names(vault.targets[0], "packs")  # the pack it reused from went
        assert all(outcome.committed for outcome in result.outcomes)
        kept[result.snapshot_id] = reused
        assert problems(vault) == []
        for later in (3 * HOUR, 6 * HOUR):
            report = prune(vault, later)
            assert report.ok, report.errors
            assert problems(vault) == []
        remaining = {info.snapshot_id for info in vault.snapshots()}
        assert result.snapshot_id in remaining
        assert_restores(vault, {s: data for s, data in kept.items() if s in remaining})


# -- crashes between the ordered steps -------------------------------------------------------


class _CrashError(Exception):
    """The process died here."""


@pytest.fixture
def crash_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str, int], None]:
    """Make the ``nth`` ``write``/``delete`` of a key under ``prefix`` raise `_CrashError` once."""
    armed: dict[str, object] = {}

    def arm(method: str, prefix: str, nth: int) -> None:
        original = getattr(Target, method)
        seen = [0]

        def crashing(self: Target, key: str, *args: object) -> object:
            if armed and key.startswith(prefix):
                seen[0] += 1
                if seen[0] == nth:
                    armed.clear()
                    raise _CrashError(f"{method} {key}")
            return original(self, key, *args)

        armed["on"] = True
        monkeypatch.setattr(Target, method, crashing)

    return arm


# Each target replaces 4 index objects (days 0-3) and deletes 4 packs: the 5th delete is the
# second target's first. Writes go to the first target, then the second.
STEPS = [
    pytest.param("write", "packs/", 1, id="1-first-new-pack"),
    pytest.param("write", "packs/", 2, id="1-new-pack-on-second-target"),
    pytest.param("write", "index/", 1, id="2-first-new-index"),
    pytest.param("write", "index/", 2, id="2-new-index-on-second-target"),
    pytest.param("delete", "index/", 1, id="3-first-index-delete"),
    pytest.param("delete", "index/", 5, id="3-index-delete-on-second-target"),
    pytest.param("delete", "packs/", 1, id="4-first-pack-delete"),
    pytest.param("delete", "packs/", 5, id="4-pack-delete-on-second-target"),
]


class TestCrash:
    @pytest.mark.parametrize(("method", "prefix", "nth"), STEPS)
    def test_a_crash_between_steps_loses_nothing_and_a_rerun_finishes(
        self,
        crash_at: Callable[[str, str, int], None],
        monkeypatch: pytest.MonkeyPatch,
        method: str,
        prefix: str,
        nth: int,
    ) -> None:
        """A crash at any step leaves every kept snapshot restorable; prune again finishes.

        The re-run completes the repack (every target holds exactly the needed chunks); what a
        crash left loose is deleted a grace period later, and the repository is then sound.
        """
        vault, kept, _forgotten = populated(2)
        prune(vault, timedelta(0))
        crash_at(method, prefix, nth)
        with pytest.raises(_CrashError):
            prune(vault, 2 * HOUR)
        monkeypatch.undo()
        assert_restores(vault, kept)
        assert vault.lock_info() is None  # released on the way out
        rerun = prune(vault, 2 * HOUR + timedelta(minutes=1))
        assert rerun.ok, rerun.errors
        assert_restores(vault, kept)
        needed = referenced(vault)
        assert all(held_chunks(vault, t) == needed for t in vault.targets)
        later = prune(vault, 4 * HOUR)
        assert later.ok, later.errors
        assert problems(vault) == []
        assert not any(names(t, "locks/sweep") for t in vault.targets)
        assert_restores(vault, kept)


class TestReaderSeesChanges:
    def test_one_vault_reads_after_its_own_backup_and_repack(self) -> None:
        """A vault that read chunks before a backup and a repack still reads every snapshot."""
        vault, kept, _forgotten = populated(2)
        for snapshot_id, data in kept.items():  # loads the index objects
            assert vault.open_file(snapshot_id, "db.dump").read() == data
        newer = noise(5, 3000)
        sid = backup(vault, 8, newer)
        assert vault.open_file(sid, "db.dump").read() == newer
        vault.prune(Policy(last=4), now=START, grace=GRACE)
        assert vault.prune(Policy(last=4), now=START + 2 * HOUR, grace=GRACE).packs_repacked > 0
        expected = {**kept, sid: newer}
        assert {s.snapshot_id for s in vault.snapshots()} == set(expected)
        for snapshot_id, data in expected.items():
            assert vault.open_file(snapshot_id, "db.dump").read() == data

    @pytest.mark.parametrize("count", [1, 2])
    def test_a_restore_beside_another_process_repacking_reads_every_chunk(
        self, count: int, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A vault that loaded the index before another process repacked still restores.

        Its index names the old packs; reading one that went makes it load the index objects
        again, which name the chunk's new pack (written before the old pack was deleted), on
        the same target: no read falls back to another.
        """
        vault, kept, _forgotten = populated(count)
        for snapshot_id, data in kept.items():  # loads the index objects
            assert vault.open_file(snapshot_id, "db.dump").read() == data
        other = Vault.open(vault.targets, key=KEY)
        prune(other, timedelta(0))
        before = names(vault.targets[0], "packs")
        assert prune(other, 2 * HOUR).packs_repacked == 3
        assert before - names(vault.targets[0], "packs")
        caplog.clear()
        for snapshot_id, data in kept.items():
            assert vault.open_file(snapshot_id, "db.dump").read() == data
        assert "trying the next target" not in caplog.text
