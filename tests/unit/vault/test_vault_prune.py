"""Vault.prune: records before deletions, lineages apart, the grace period, the lock, keys.

The tests that look at stored chunks run on both repository formats (``fmt``): format 1 stores
chunk objects, format 2 packs listed by index objects.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta

import pytest

from ctfy_vault.crypto import Passphrase, RawKey, ScryptParams, Sealer
from ctfy_vault.exceptions import (
    ConfigurationError,
    IntegrityError,
    LockError,
    ObjectNotFoundError,
    TargetsFailedError,
)
from ctfy_vault.manifest import PruneRecord, verify_chain
from ctfy_vault.repository import SWEEP_PREFIX, decode_index, index_key, load_packed, pack_key
from ctfy_vault.retention import Policy
from ctfy_vault.storage import Target
from ctfy_vault.vault import LOCK_KEY, LockInfo, Vault
from ctfy_vault.writer import (
    OBJECTS_PREFIX,
    SNAPSHOTS_PREFIX,
    StreamSource,
    chunk_key,
)
from tests.support.packed import held_chunks, problems
from tests.support.writer_strategies import FAST_RETRY, NOW, SMALL, memory_target

KEY = RawKey(bytes(range(32)))
HOUR = timedelta(hours=1)


FORMATS = pytest.mark.parametrize("fmt", [1, 2])


def new_vault(count: int = 2, fmt: int = 2) -> Vault:
    """A fresh repository of format ``fmt`` with small chunks on ``count`` memory targets."""
    return Vault.init(
        [memory_target(f"t{n}") for n in range(count)],
        key=KEY,
        now=NOW,
        chunker=SMALL,
        format=fmt,
    )


def payload(day: int, lineage: str) -> bytes:
    """Distinct, incompressible content per day and lineage (so chunks are not shared)."""
    seed = f"{lineage}-{day}".encode()
    return b"".join(seed + n.to_bytes(4, "big") + os.urandom(8) for n in range(200))


def backup(vault: Vault, lineage: str, day: int, data: bytes) -> str:
    """Back up ``data`` as ``<lineage>.dump`` on day ``day``; return the snapshot id."""
    source = StreamSource(name=f"{lineage}.dump", stream=io.BytesIO(data))
    info = vault.backup(source, lineage=lineage, host="h", now=NOW + timedelta(days=day))
    return info.snapshot_id


def SEALER(vault: Vault) -> Sealer:  # noqa: N802 - reads like the constructor it stands for
    """The open vault's sealer (to build a vault over other targets)."""
    return vault._sealer  # noqa: SLF001


def objects(target: Target, prefix: str) -> set[str]:
    """The keys under ``prefix``."""
    return set(target.list(prefix))


def orphan_object(vault: Vault) -> str:
    """The key of an object a crashed backup left: a chunk object, or a loose pack (format 2)."""
    if not vault.config.packed:
        return f"{OBJECTS_PREFIX}/ab/{'ab' * 32}"
    return f"packs/ab/{'ab' * 32}"


def doomed_keys(vault: Vault, chunks: set[bytes]) -> list[str]:
    """What a prune deletes to remove ``chunks``: their objects, or their packs and indexes.

    Format 2: every pack holding one of them, which must hold nothing else, and every index
    object listing only those packs.
    """
    if not vault.config.packed:
        return [chunk_key(chunk) for chunk in sorted(chunks)]
    packed = load_packed(vault.targets[0], SEALER(vault))
    packs = {where.pack_id for c in chunks for where in packed.index.locations(c)}
    assert all(
        set(packed.index.pack_ids) >= packs and c in chunks
        for c in packed.index.chunk_ids()
        for where in packed.index.locations(c)
        if where.pack_id in packs
    )
    indexes = [i for i in sorted(packed.index_ids) if _lists_only(vault, i, packs)]
    assert indexes
    return [pack_key(p) for p in sorted(packs)] + [index_key(i) for i in indexes]


def _lists_only(vault: Vault, index_id: bytes, packs: set[bytes]) -> bool:
    """Whether an index object lists no pack outside ``packs``."""
    blob = vault.targets[0].read(index_key(index_id))
    return {r.pack_id for r in decode_index(SEALER(vault), index_id, blob)} <= packs


class TestForgetAndRecord:
    @FORMATS
    def test_prune_deletes_forgotten_keeps_the_rest_and_verifies(self, fmt: int) -> None:
        """Forgotten manifests go from every target after a record names them; kept ones restore."""
        vault = new_vault(fmt=fmt)
        data = {(lin, d): payload(d, lin) for lin in ("db", "files") for d in range(5)}
        ids = {key: backup(vault, key[0], key[1], blob) for key, blob in data.items()}
        report = vault.prune({"db": Policy(last=2)}, now=NOW + timedelta(days=5), grace=HOUR * 0)
        assert report.ok
        assert not report.dry_run
        assert [s.snapshot_id for s in report.forgotten] == [ids["db", d] for d in (2, 1, 0)]
        assert len(report.records) == 1
        kept = {s.snapshot_id for s in vault.snapshots()}
        assert kept == {ids["db", 3], ids["db", 4]} | {ids["files", d] for d in range(5)}
        for target in vault.targets:
            names = {k.rsplit("/", 1)[1] for k in objects(target, SNAPSHOTS_PREFIX)}
            assert report.records[0] in names
            assert not any(ids["db", d] in n for n in names for d in range(3))
        for (lineage, day), blob in data.items():
            if ids[lineage, day] in kept:
                assert vault.open_file(ids[lineage, day], f"{lineage}.dump").read() == blob
        assert report.chunks_deleted > 0
        assert report.bytes_deleted > 0
        assert problems(vault) == []

    def test_record_explains_the_gap_and_names_the_head(self) -> None:
        """The record follows the lineage's head and lists the forgotten hashes."""
        vault = new_vault()
        for day in range(4):
            backup(vault, "db", day, payload(day, "db"))
        before = {s.snapshot_id: s.hash for s in vault.snapshots()}
        head = vault.snapshots()[0]
        report = vault.prune(Policy(last=1), now=NOW + timedelta(days=4), grace=HOUR * 0)
        entries = vault._reader.catalog().values()  # noqa: SLF001 - the chain as stored
        records = [o.entry for o in entries if isinstance(o.entry, PruneRecord)]
        assert len(records) == 1
        assert records[0].previous == head.hash
        assert {(f.snapshot_id, f.hash) for f in records[0].forgotten} == {
            (s.snapshot_id, before[s.snapshot_id]) for s in report.forgotten
        }
        assert verify_chain(entries).ok

    def test_other_lineages_untouched_even_by_a_strict_policy(self) -> None:
        """Pruning one lineage never forgets another's snapshots."""
        vault = new_vault()
        for day in range(3):
            backup(vault, "db", day, payload(day, "db"))
            backup(vault, "full-server", day, payload(day, "fs"))
        servers = {s.snapshot_id for s in vault.snapshots("full-server")}
        vault.prune(Policy(last=1), lineage="db", now=NOW + timedelta(days=3), grace=HOUR * 0)
        assert {s.snapshot_id for s in vault.snapshots("full-server")} == servers
        assert len(vault.snapshots("db")) == 1

    @FORMATS
    def test_dry_run_changes_nothing(self, fmt: int) -> None:
        """A dry run reports the plan and counts but writes and deletes nothing, takes no lock."""
        vault = new_vault(fmt=fmt)
        for day in range(3):
            backup(vault, "db", day, payload(day, "db"))
        before = [sorted(t.list("")) for t in vault.targets]
        report = vault.prune(Policy(last=1), now=NOW + timedelta(days=3), dry_run=True)
        assert report.dry_run
        assert len(report.forgotten) == 2
        assert report.records == ()
        assert [sorted(t.list("")) for t in vault.targets] == before

    def test_unknown_lineage_in_mapping_is_refused(self) -> None:
        vault = new_vault()
        backup(vault, "db", 0, payload(0, "db"))
        with pytest.raises(ConfigurationError, match="nope"):
            vault.prune({"db": Policy(last=1)}, lineage="nope", now=NOW)
        assert not any(t.exists(LOCK_KEY) for t in vault.targets)


@FORMATS
class TestGrace:
    def test_unreferenced_chunks_wait_out_the_grace_period(self, fmt: int) -> None:
        """The first prune only marks; a prune within the grace keeps; one after it deletes."""
        vault = new_vault(fmt=fmt)
        for day in range(3):
            backup(vault, "db", day, payload(day, "db"))
        start = NOW + timedelta(days=3)
        chunks_before = held_chunks(vault, vault.targets[0])
        first = vault.prune(Policy(last=1), now=start, grace=HOUR)
        assert first.chunks_deleted == 0
        assert first.chunks_pending > 0
        assert held_chunks(vault, vault.targets[0]) == chunks_before
        assert all(objects(t, SWEEP_PREFIX) for t in vault.targets)
        within = vault.prune(Policy(last=1), now=start + HOUR / 2, grace=HOUR)
        assert within.chunks_deleted == 0
        assert within.chunks_pending == first.chunks_pending
        after = vault.prune(Policy(last=1), now=start + 2 * HOUR, grace=HOUR)
        assert after.chunks_deleted == first.chunks_pending
        assert after.chunks_pending == 0
        held = held_chunks(vault, vault.targets[0])
        assert len(held) == len(chunks_before) - after.chunks_deleted
        assert not any(objects(t, SWEEP_PREFIX) for t in vault.targets)
        assert problems(vault) == []

    def test_a_marked_chunk_referenced_again_is_kept(self, fmt: int) -> None:
        """A backup that reuses a marked chunk within the grace period keeps it alive."""
        vault = new_vault(fmt=fmt)
        old = payload(0, "db")
        backup(vault, "db", 0, old)
        backup(vault, "db", 1, payload(1, "db"))
        start = NOW + timedelta(days=2)
        first = vault.prune(Policy(last=1), now=start, grace=HOUR)
        assert first.chunks_pending > 0
        again = backup(vault, "db", 3, old)  # same content as the forgotten snapshot
        later = vault.prune(Policy(last=2), now=start + timedelta(days=1, hours=2), grace=HOUR)
        assert later.chunks_deleted == 0
        assert vault.open_file(again, "db.dump").read() == old
        assert problems(vault) == []

    def test_orphans_of_a_crashed_backup_are_swept(self, fmt: int) -> None:
        """What a backup stored and never committed or indexed is deleted by prune (grace 0).

        Format 1: an orphan chunk object; format 2: a loose pack (in no index object).
        """
        vault = new_vault(fmt=fmt)
        backup(vault, "db", 0, payload(0, "db"))
        kept = held_chunks(vault, vault.targets[0])
        before = [objects(t, "") for t in vault.targets]
        orphan = orphan_object(vault)
        for target in vault.targets:
            target.write(orphan, b"orphan")
        report = vault.prune(Policy(last=5), now=NOW + timedelta(days=1), grace=HOUR * 0)
        assert (report.chunks_deleted, report.packs_deleted) == ((1, 0) if fmt == 1 else (0, 1))
        assert all(held_chunks(vault, t) == kept for t in vault.targets)
        assert [objects(t, "") for t in vault.targets] == before

    def test_negative_grace_is_refused(self, fmt: int) -> None:
        """A negative grace period is refused before anything is done."""
        vault = new_vault(fmt=fmt)
        with pytest.raises(ValueError, match="grace"):
            vault.prune(Policy(last=1), now=NOW, grace=-HOUR)


class TestDegraded:
    @FORMATS
    def test_unreachable_target_skips_the_sweep_and_is_reported(self, fmt: int) -> None:
        """With a target down, manifests go where the record landed; no chunk is deleted."""
        vault = new_vault(2, fmt=fmt)
        for day in range(3):
            backup(vault, "db", day, payload(day, "db"))
        chunks = held_chunks(vault, vault.targets[0])
        stored = objects(vault.targets[0], "packs")
        broken = Target.from_url(
            "s3://no-such-bucket/x", endpoint_url="http://127.0.0.1:9", retry=FAST_RETRY
        )
        partial = Vault(targets=(*vault.targets, broken), config=vault.config, sealer=SEALER(vault))
        report = partial.prune(Policy(last=1), now=NOW + timedelta(days=3), grace=HOUR * 0)
        assert broken.name in report.errors
        assert report.sweep_skipped is not None
        assert held_chunks(vault, vault.targets[0]) == chunks
        assert objects(vault.targets[0], "packs") == stored
        assert len(partial.snapshots()) == 1


class TestLock:
    def test_a_held_lock_refuses_a_second_prune_naming_the_holder(self) -> None:
        vault = new_vault()
        backup(vault, "db", 0, payload(0, "db"))
        holder = LockInfo(
            lock_id="feedc0de", host="other-host", pid=4242, created=NOW, expires=NOW + HOUR
        )
        vault.targets[1].write(LOCK_KEY, holder.to_json())
        with pytest.raises(LockError, match="other-host"):
            vault.prune(Policy(last=1), now=NOW)
        assert not vault.targets[0].exists(LOCK_KEY)  # released what it had taken
        assert vault.lock_info() == holder
        with pytest.raises(LockError, match="not stale"):
            vault.break_lock(now=NOW + HOUR / 2)
        assert vault.break_lock(now=NOW + 2 * HOUR) == holder
        assert vault.lock_info() is None
        assert vault.prune(Policy(last=1), now=NOW + 2 * HOUR).ok

    def test_a_live_local_holder_is_not_stale_even_when_expired(self) -> None:
        vault = new_vault()
        mine = LockInfo(
            lock_id="1", host=socket.gethostname(), pid=os.getpid(), created=NOW, expires=NOW
        )
        vault.targets[0].write(LOCK_KEY, mine.to_json())
        with pytest.raises(LockError, match="not stale"):
            vault.break_lock(now=NOW + HOUR)
        assert vault.break_lock(now=NOW + HOUR, force=True) == mine
        assert not any(t.exists(LOCK_KEY) for t in vault.targets)

    def test_a_dead_local_holder_past_expiry_is_stale(self) -> None:
        dead = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        )
        pid = int(dead.stdout)
        lock = LockInfo(
            lock_id="2", host=socket.gethostname(), pid=pid, created=NOW, expires=NOW + HOUR
        )
        assert lock.holder_alive() is False
        assert not lock.stale(NOW)
        assert lock.stale(NOW + HOUR)

    def test_no_lock_to_break(self) -> None:
        vault = new_vault()
        with pytest.raises(LockError, match="not locked"):
            vault.break_lock(now=NOW)

    def test_lock_is_released_after_prune(self) -> None:
        vault = new_vault()
        backup(vault, "db", 0, payload(0, "db"))
        vault.prune(Policy(last=1), now=NOW)
        assert vault.lock_info() is None


class TestKeys:
    def test_add_list_remove_on_every_target(self) -> None:
        vault = new_vault()
        fast = ScryptParams(n=2**10, r=8, p=1)
        second = Passphrase("correct horse battery staple", scrypt=fast)
        slot = vault.add_key(second, now=NOW)
        slots = vault.keys()
        assert slot.key_id in {s.key_id for s in slots}
        for target in vault.targets:
            assert Vault.open([target], key=second).repo_id == vault.repo_id
        first = next(s.key_id for s in slots if s.key_id != slot.key_id)
        vault.remove_key(first)
        with pytest.raises(IntegrityError):
            Vault.open(vault.targets, key=KEY)
        with pytest.raises(ConfigurationError, match="last key slot"):
            vault.remove_key(slot.key_id)
        with pytest.raises(ObjectNotFoundError):
            vault.remove_key("0123456789abcdef")
        assert repr(second).count("horse") == 0


class _DeletingStream(io.RawIOBase):
    """A stream that, once half read, deletes chunks as a concurrent prune would."""

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


class TestConcurrentSweep:
    @FORMATS
    def test_backup_reusing_a_chunk_deleted_meanwhile_does_not_commit(self, fmt: int) -> None:
        """A prune deleting marked chunks while a backup reuses them fails that backup loudly.

        No manifest naming a missing chunk is committed; a re-run stores the chunks again.
        Format 2: the prune deletes the packs holding them (and the index objects listing them).
        """
        vault = new_vault(fmt=fmt)
        old = payload(0, "db")
        backup(vault, "db", 0, old)
        backup(vault, "db", 1, payload(1, "db"))
        start = NOW + timedelta(days=2)
        assert vault.prune(Policy(last=1), now=start, grace=HOUR).chunks_pending > 0
        marked = held_chunks(vault, vault.targets[0]) - {
            c for e in vault.manifest(vault.snapshots()[0]).files for c in e.chunks
        }
        doomed = doomed_keys(vault, marked)

        def concurrent_prune() -> None:
            for target in vault.targets:
                for key in doomed:
                    target.delete(key)

        source = StreamSource(name="db.dump", stream=_DeletingStream(old, concurrent_prune))
        with pytest.raises(TargetsFailedError, match="deleted by a prune"):
            vault.backup(source, lineage="db", host="h", now=start + HOUR)
        assert len(vault.snapshots()) == 1
        assert problems(vault) == []
        again = backup(vault, "db", 3, old)
        assert vault.open_file(again, "db.dump").read() == old
        assert problems(vault) == []
