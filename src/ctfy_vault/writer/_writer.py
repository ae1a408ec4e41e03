"""The append-only multi-target writer: read once, chunk, seal once, fan out create-only."""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
import uuid
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Final, Literal

import attrs

from ctfy_vault.crypto import ChunkerKey, Kind, SealedChunk, Sealer, derive_chunker_key
from ctfy_vault.exceptions import (
    ConfigurationError,
    FormatError,
    IntegrityError,
    ObjectExistsError,
    StorageError,
)
from ctfy_vault.manifest import FileEntry, FileType, Manifest, seal_entry
from ctfy_vault.repository._catalog import index_chunks
from ctfy_vault.repository._index import IndexedPack, IndexObject, encode_index
from ctfy_vault.repository._layout import chunk_key, index_key, pack_key, snapshot_key
from ctfy_vault.repository._packs import DEFAULT_PACK_SIZE, Pack
from ctfy_vault.repository._replicas import Failures, Outcome, put
from ctfy_vault.repository._store import PackedTarget, load_packed
from ctfy_vault.storage import LockMode, Target, set_retain_until
from ctfy_vault.writer._chunker import DEFAULT_CHUNKER, ChunkerParams, Readable, iter_chunks
from ctfy_vault.writer._command import CommandSource, running
from ctfy_vault.writer._metadata import NO_METADATA, Metadata, link_paths
from ctfy_vault.writer._outcome import BackupResult, SourceWarning, TargetOutcome
from ctfy_vault.writer._packer import PACK_WRITERS, Packer
from ctfy_vault.writer._sources import (
    BackupSource,
    EntrySource,
    FileItem,
    Item,
    Selection,
    StreamSource,
    check_complete,
    check_unchanged,
    display,
    open_regular,
    walk,
)

# index_chunks is the repository's; the writer calls it by this module's name (tests replace it).
__all__ = ["COMMIT_INTERRUPTED", "Require", "Writer", "index_chunks"]

log = logging.getLogger("ctfy_vault.writer")

#: The note a `KeyboardInterrupt` carries when it stopped a backup after the manifest writes (the
#: commit point) had started; without it, an interrupted backup committed nothing.
COMMIT_INTERRUPTED: Final = "interrupted at the commit point: the snapshot may be committed"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

Require = Literal["all"] | int
#: A repository layout the writer writes: 1 (one object per chunk) or 2 (packs and an index).
Format = Literal[1, 2]
#: Format 2: chunks shorter than this are sealed by the thread reading them. Hashing, compressing
#: and encrypting a few KiB holds the interpreter lock throughout, so a hand-off to a sealing
#: thread adds its cost (a future, a wake-up, the lock passed back and forth) and no parallelism.
INLINE_BELOW: Final = 64 * 1024
#: Format 2: an index object is written once a target has stored this many packs of one run
#: (1 GiB at the default pack size), so an interrupted backup's packs are known to the next run.
INDEX_EVERY: Final = 64
#: Told ``(bytes, files)`` done since the last call: plaintext bytes read and files finished.
Progress = Callable[[int, int], None]


def _to_targets(value: Iterable[Target]) -> tuple[Target, ...]:
    return tuple(value)


def _check_targets(_instance: object, _attribute: object, value: tuple[Target, ...]) -> None:
    if not value:
        raise ConfigurationError("a writer needs at least one target")
    names = [target.name for target in value]
    if len(set(names)) != len(names):
        raise ConfigurationError("target names must be unique")


def _positive(_instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    if type(value) is not int or value < 1:
        raise ConfigurationError(f"{attribute.name.lstrip('_')} must be a positive integer")


@attrs.define
class _Known:
    """The chunks one target holds: what it held when the run started, and what the run added."""

    base: Container[bytes] = attrs.field(factory=set)
    added: set[bytes] = attrs.field(factory=set)

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self.added or chunk_id in self.base

    def add(self, chunk_id: bytes) -> None:
        self.added.add(chunk_id)


@attrs.define
class _Batch:
    """Packs handed to the same targets, listed by one index object once each target has them.

    A batch closes at `INDEX_EVERY` packs; its index object is then written to each target as
    soon as that target has stored all of them. The batches still open when the packs are closed
    are indexed at the end of the run.
    """

    group: frozenset[str]
    records: list[IndexedPack] = attrs.field(factory=list)
    waiting: dict[str, int] = attrs.field(factory=dict)  # packs each target has still to store
    closed: bool = False
    index: IndexObject | None = None


@attrs.define
class _Run:
    """The mutable state of one backup, shared by the worker threads under one lock."""

    targets: tuple[Target, ...]
    known: dict[str, _Known]
    failed: Failures = attrs.field(factory=lambda: Failures("backup"))
    uploaded: dict[str, int] = attrs.field(factory=dict)
    present: dict[str, int] = attrs.field(factory=dict)
    bytes_up: dict[str, int] = attrs.field(factory=dict)
    sealed: int = 0
    inflight: dict[bytes, threading.Event] = attrs.field(factory=dict)
    retain_until: datetime | Mapping[str, datetime] | None = None
    locked: frozenset[str] = frozenset()
    lock: threading.Lock = attrs.field(factory=threading.Lock)
    limiter: threading.BoundedSemaphore = attrs.field(factory=lambda: threading.BoundedSemaphore(1))
    seal_pool: ThreadPoolExecutor | None = None
    io_pool: ThreadPoolExecutor | None = None
    progress: Progress | None = None
    recheck: frozenset[bytes] = frozenset()
    written: dict[str, set[bytes]] = attrs.field(factory=dict)
    committing: bool = False
    # Format 2: chunks handed to a pack for a target this run (stored or not yet), the packs each
    # target stored and not yet indexed, the pipeline's first error, and the chunks in flight.
    placed: dict[str, set[bytes]] = attrs.field(factory=dict)
    open_batches: dict[frozenset[str], _Batch] = attrs.field(factory=dict)
    batch_of: dict[bytes, _Batch] = attrs.field(factory=dict)
    packed: dict[str, PackedTarget] = attrs.field(factory=dict)
    packer: Packer | None = None
    hasher: _Hasher | None = None
    error: BaseException | None = None
    outstanding: int = 0
    settled: threading.Condition = attrs.field(factory=threading.Condition)

    def submitted(self) -> None:
        with self.settled:
            self.outstanding += 1

    def settle(self, slots: list[bytes | None], at: int, future: Future[bytes]) -> None:
        """Record a chunk's id in its file's slot (or the pipeline's error), and free its slot."""
        self.limiter.release()
        error = future.exception() if not future.cancelled() else None
        with self.settled:
            if future.cancelled():
                pass
            elif error is not None:
                if self.error is None:
                    self.error = error
            else:
                slots[at] = future.result()
            self.outstanding -= 1
            self.settled.notify_all()

    def drain(self) -> None:
        """Wait until every chunk submitted is settled; raise the first error one of them had."""
        with self.settled:
            while self.outstanding:
                self.settled.wait()
            if self.error is not None:
                raise self.error

    def pools(self) -> tuple[ThreadPoolExecutor, ThreadPoolExecutor]:
        if self.seal_pool is None or self.io_pool is None:  # pragma: no cover - set in backup
            raise RuntimeError("the pipeline is not running")
        return self.seal_pool, self.io_pool

    def until(self, target: Target) -> datetime | None:
        """The retain-until date of what this run stores on ``target``; ``None``: no lock."""
        if target.name not in self.locked or self.retain_until is None:
            return None
        if isinstance(self.retain_until, datetime):
            return self.retain_until
        return self.retain_until.get(target.name)

    def live(self) -> list[Target]:
        return self.failed.live(self.targets)

    def missing(self, chunk_id: bytes) -> tuple[list[Target], list[Target]]:
        with self.lock:
            live = self.failed.live(self.targets)
            need = [target for target in live if chunk_id not in self.known[target.name]]
            have = [target for target in live if chunk_id in self.known[target.name]]
        return need, have

    def stored(self, target: Target, chunk_id: bytes | None, size: int, *, new: bool) -> None:
        name = target.name
        with self.lock:
            if chunk_id is None:  # a manifest or an index object
                self.bytes_up[name] = self.bytes_up.get(name, 0) + size
                return
            self.known[name].add(chunk_id)
            if new:
                self.written.setdefault(name, set()).add(chunk_id)
                self.uploaded[name] = self.uploaded.get(name, 0) + 1
                self.bytes_up[name] = self.bytes_up.get(name, 0) + size
            else:
                self.present[name] = self.present.get(name, 0) + 1

    def count_present(self, targets: Iterable[Target], references: int = 1) -> None:
        with self.lock:
            for target in targets:
                self.present[target.name] = self.present.get(target.name, 0) + references


class _FileDigest:
    """A file's SHA-256, computed where the reader hands its chunks (see `_Hasher`)."""

    __slots__ = ("_done", "_hash", "_value")

    def __init__(self) -> None:
        self._hash: Any = hashlib.sha256()
        self._value: bytes | None = None
        self._done: threading.Event | None = None

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def finish(self) -> None:
        self._value = self._hash.digest()
        self._hash = None  # kept per file until the manifest is built: only the digest stays
        if self._done is not None:
            self._done.set()
            self._done = None

    def later(self) -> None:
        """Mark the digest as being computed by another thread (`value` then waits for it)."""
        self._done = threading.Event()

    @property
    def value(self) -> bytes:
        if self._value is None and self._done is not None:
            self._done.wait()
        if self._value is None:  # pragma: no cover - every path finishes its digest
            raise RuntimeError("a file's digest was not finished")
        return self._value


class _Hasher:
    """One thread hashing large files' chunks in the order the reader read them.

    SHA-256 releases the interpreter lock on large buffers, so the reader goes on cutting the
    next bytes while this thread hashes the last. The queue is bounded: it holds at most a few
    chunks the reader has let go of.
    """

    def __init__(self, depth: int) -> None:
        self._queue: queue.Queue[tuple[_FileDigest, bytes | None] | None] = queue.Queue(depth)
        self._thread = threading.Thread(target=self._run, name="ctfy-hash", daemon=True)
        self._thread.start()

    def update(self, digest: _FileDigest, data: bytes) -> None:
        self._queue.put((digest, data))

    def finish(self, digest: _FileDigest) -> None:
        self._queue.put((digest, None))

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            work = self._queue.get()
            if work is None:
                return
            digest, data = work
            if data is None:
                digest.finish()
            else:
                digest.update(data)


@attrs.frozen
class _Pending:
    """A file whose chunks are still in the pipeline; each slot gets its chunk's id once sealed.

    Memory per file is what its entry needs: one id per chunk (no future or buffer is kept).
    """

    path: str
    mode: int
    mtime_ns: int
    size: int
    digest: _FileDigest
    chunks: list[bytes | None]
    meta: Metadata = NO_METADATA

    @property
    def sha256(self) -> bytes:
        """The file's SHA-256 (waits for the hashing thread when it has the file's last bytes)."""
        return self.digest.value


@attrs.define
class Writer:
    """Writes snapshots to several targets at once, append-only, and reports each target's outcome.

    Each source is read once. Every chunk is named, compressed and sealed once, and the same bytes
    go to every target concurrently with create-only writes: an object already there is a
    deduplication hit, never an overwrite. Chunks every target already holds are not sealed or
    sent again. Nothing here deletes.

    Args:
        targets: where to write; names must be unique.
        sealer: the repository's sealer (keys and cipher).
        chunker: the FastCDC parameters recorded in the repository's config.
        require: ``"all"`` (default), or how many targets must commit for the backup to succeed.
        depth: chunks in flight at once; memory is about ``depth * 2 * chunker.max_size`` at worst.
        connections: concurrent writes per target.
        seal_workers: threads naming, compressing and sealing chunks.
        retries: extra attempts per object after a target's own `RetryPolicy` gave up on a
            transient error (a target's retries cover one request; these cover a longer outage).
        compress: try zstd on each chunk (kept only when smaller); ``False`` for data known not
            to compress (already compressed dumps, media), which saves the attempt.
        lock_mode: the Object Lock mode used with ``retain_until``; by default each target's
            own (`Target.lock_mode`, ``COMPLIANCE`` unless its config says ``GOVERNANCE``).
        format: the repository layout: 1, one object per chunk (the default, for format 1
            repositories), or 2, chunks in packs listed by index objects, cut by the keyed
            chunker. `ctfy_vault.Vault` passes its repository's.
        pack_size: format 2: the size at which a pack is closed.
    """

    _targets: tuple[Target, ...] = attrs.field(
        alias="targets", converter=_to_targets, validator=_check_targets
    )
    _sealer: Sealer = attrs.field(alias="sealer", repr=False)
    _chunker: ChunkerParams = attrs.field(default=DEFAULT_CHUNKER, alias="chunker", kw_only=True)
    _require: Require = attrs.field(default="all", alias="require", kw_only=True)
    _depth: int = attrs.field(default=4, alias="depth", kw_only=True, validator=_positive)
    _connections: int = attrs.field(
        default=4, alias="connections", kw_only=True, validator=_positive
    )
    _seal_workers: int = attrs.field(
        factory=lambda: max(2, os.cpu_count() or 2),
        alias="seal_workers",
        kw_only=True,
        validator=_positive,
    )
    _retries: int = attrs.field(
        default=1, alias="retries", kw_only=True, validator=attrs.validators.ge(0)
    )
    _compress: bool = attrs.field(default=True, alias="compress", kw_only=True)
    _lock_mode: LockMode | None = attrs.field(default=None, alias="lock_mode", kw_only=True)
    _format: Format = attrs.field(default=1, alias="format", kw_only=True)
    _pack_size: int = attrs.field(default=DEFAULT_PACK_SIZE, alias="pack_size", kw_only=True)
    _chunker_key: ChunkerKey | None = attrs.field(init=False, default=None, repr=False)

    @_format.validator
    def _check_format(self, _attribute: object, value: object) -> None:
        if value not in (1, 2) or type(value) is not int:
            raise ConfigurationError(f"format must be 1 or 2, not {value!r}")

    def __attrs_post_init__(self) -> None:
        if self._format == 2 and self._sealer.keys is not None:
            self._chunker_key = derive_chunker_key(self._sealer.keys)
        if self._format == 2:
            Packer.check_size(self._pack_size)

    @_require.validator
    def _check_require(self, _attribute: object, value: object) -> None:
        if value == "all" and isinstance(value, str):
            return
        if type(value) is not int or not 1 <= value <= len(self._targets):
            raise ConfigurationError(
                f"require must be 'all' or a count from 1 to {len(self._targets)}"
            )

    @property
    def targets(self) -> tuple[Target, ...]:
        """The targets, in the order outcomes are reported."""
        return self._targets

    @property
    def format(self) -> Format:
        """The repository layout written: 1 (one object per chunk) or 2 (packs)."""
        return self._format

    @property
    def required(self) -> int:
        """How many targets must commit for a backup to succeed."""
        return len(self._targets) if self._require == "all" else int(self._require)

    # -- the backup --------------------------------------------------------------------------

    def backup(
        self,
        sources: Iterable[BackupSource | EntrySource],
        *,
        lineage: str,
        host: str,
        now: datetime,
        snapshot_id: str | None = None,
        previous: bytes | None = None,
        parent: Manifest | None = None,
        tags: Sequence[str] = (),
        labels: dict[str, str] | None = None,
        retain_until: datetime | Mapping[str, datetime] | None = None,
        progress: Progress | None = None,
        recheck: frozenset[bytes] = frozenset(),
        degraded: Mapping[str, BaseException] | None = None,
        guard: Callable[[Target], BaseException | None] | None = None,
        recorded_sources: Sequence[str] | None = None,
        selection: Selection | None = None,
        full_paths: bool = False,
    ) -> BackupResult:
        """Back up paths, streams and commands' output as one snapshot on every target.

        Commit guarantee, per target: the manifest ``snapshots/<name>`` is written only after every
        chunk it names is stored on that target, so a crash or failure at any point leaves at most
        unreferenced chunks, never a manifest naming missing data. Re-running after an
        interruption stores only what is missing (the targets are listed first). A stream or
        command that fails (a read error, a completion check refusing it, a program exiting
        non-zero or killed) raises before any manifest is written: no target commits.

        Args:
            sources: paths (files, links, directory trees; stored under their base names),
                streams (`StreamSource`), commands (`CommandSource`, run in turn when reached)
                and entries of another snapshot (`EntrySource`, recorded under their own paths);
                each is read once.
            lineage: the snapshot's lineage (``db``, ``server-files``...).
            host: the machine the data comes from.
            now: the snapshot's creation time (aware).
            snapshot_id: the id; a random one by default.
            previous: hash of the lineage's previous entry, for the chain.
            parent: an earlier manifest of the same sources; files whose size, mtime and mode are
                unchanged, and whose chunks every target holds, are taken from it without reading
                (with the owner and extended attributes read now).
            tags: free tags.
            labels: free key/value labels.
            retain_until: on targets whose probe reports S3 Object Lock, every object this run
                stores gets this retain-until date (the horizon the retention policy implies);
                other targets are written as usual. A failure to set it fails that target. A
                mapping gives each target's date by target name (per-target retention); a
                target it does not name gets no lock.
            progress: told ``(bytes, files)`` as sources are read (unchanged files taken from
                the parent count too), from the calling thread; ``None`` for no reports.
            recheck: chunk ids that may vanish while this run goes on (those a prune has marked
                for deletion). Right before a target's manifest is written, each of them the
                manifest names and this run did not store on that target is checked to still be
                there; if one is gone that target fails instead of committing a manifest that
                names a missing chunk.
            degraded: targets to leave alone, by name, each with the error to report: nothing
                is listed, read or written there, and each fails with that error (so it never
                counts toward ``require``). `ctfy_vault.Vault` names the targets that do not
                hold the repository's config here.
            guard: asked about each target right before its manifest is written; an error
                returned (or raised) fails that target instead of committing there (the chunks
                already stored stay, unreferenced).
            recorded_sources: the manifest's ``sources``; by default the name of each source
                given (a copied snapshot keeps the sources its original recorded).
            selection: which entries under path sources are taken (`Selection`: exclude
                patterns, one filesystem); everything by default.
            full_paths: store path sources under their absolute paths (with the folders above
                them), as restic does, instead of their names (see `ctfy_vault.writer.walk`).

        Returns:
            The manifest written and one outcome per target.

        Raises:
            TargetsFailedError: fewer targets committed than required; raised after committing on
                every target that could, and holding every target's outcome (``None`` = committed).
            ConfigurationError: a source does not exist, two sources share a name, bad metadata.
            SourceFailedError: a command exited non-zero, was killed or could not be started, or
                a stream's completion check returned ``False`` (nothing is committed).
            OSError: a stream source failed while being read (nothing is committed).
            IntegrityError: an `EntrySource`'s content does not match its entry (nothing is
                committed).
            KeyboardInterrupt: passed on once the worker threads stopped (queued work is
                dropped); nothing is committed unless it carries the `COMMIT_INTERRUPTED` note.
        """
        dates = (
            [retain_until]
            if isinstance(retain_until, datetime)
            else list((retain_until or {}).values())
        )
        if any(date.utcoffset() is None for date in dates):
            raise ConfigurationError("retain_until must be an aware datetime")
        given = list(sources)
        warnings: list[SourceWarning] = []
        run = self._start(degraded or {})
        run.progress = progress
        run.recheck = recheck
        if retain_until is not None:
            run.retain_until = retain_until
            run.locked = frozenset(t.name for t in run.live() if _has_object_lock(run, t))
        entries: list[FileEntry] = []
        pending: list[_Pending] = []
        bytes_read = 0
        reusable = {entry.path: entry for entry in parent.files} if parent else {}
        seal_pool, io_pool = self._pipeline(run)
        try:
            for item in walk(given, warnings, selection, full_paths=full_paths):
                done = self._take(item, reusable, now, run, warnings)
                if isinstance(done, FileEntry):
                    entries.append(done)
                elif done is not None:
                    pending.append(done)
                    bytes_read += done.size
            self._settle_chunks(run, io_pool)
            entries.extend(_entries(pending))
            entries, unlinked = link_paths(entries)
            warnings.extend(
                SourceWarning(path=path, reason="its inode's first path was not stored; skipped")
                for path in unlinked
            )
            manifest = Manifest(
                snapshot_id=snapshot_id or uuid.uuid4().hex,
                lineage=lineage,
                created=now,
                host=host,
                tags=tuple(tags),
                labels=labels or {},
                sources=tuple(
                    recorded_sources
                    if recorded_sources is not None
                    else (_source_name(source) for source in given)
                ),
                files=entries,
                previous=previous,
            )
            sealed = seal_entry(self._sealer, manifest)
            key = snapshot_key(sealed.name)
            committed = self._commit(run, manifest, key, bytes(sealed.blob), io_pool, guard=guard)
        except KeyboardInterrupt as err:
            # Before the manifest writes start nothing is committed (queued work is cancelled
            # below, running chunk writes finish); once they are submitted they complete.
            if run.committing:
                err.add_note(COMMIT_INTERRUPTED)
            raise
        finally:
            if run.hasher is not None:
                run.hasher.stop()
            seal_pool.shutdown(wait=True, cancel_futures=True)
            if run.packer is not None:  # stopped before the packs were closed: drop the rest
                run.packer.abort()
            io_pool.shutdown(wait=True, cancel_futures=True)
        outcomes = self._outcomes(run, committed)
        for warning in warnings:
            log.warning("%s: %s", warning.path, warning.reason)
        if len(committed) < self.required:
            raise Outcome[None](outcomes={o.target: o.error for o in outcomes}).error(
                f"snapshot {sealed.name} committed on {len(committed)} of "
                f"{len(self._targets)} targets, {self.required} required"
            )
        return BackupResult(
            name=sealed.name,
            hash=sealed.hash,
            manifest=manifest,
            outcomes=outcomes,
            warnings=tuple(warnings),
            bytes_read=bytes_read,
            chunks=manifest.totals.chunks,
            chunks_sealed=run.sealed,
        )

    # -- steps -------------------------------------------------------------------------------

    def _pipeline(self, run: _Run) -> tuple[ThreadPoolExecutor, ThreadPoolExecutor]:
        """Start the sealing and writing threads (and, for format 2, the packer)."""
        run.limiter = threading.BoundedSemaphore(self._depth)
        run.io_pool = ThreadPoolExecutor(
            max_workers=len(self._targets) * self._connections, thread_name_prefix="ctfy-write"
        )
        run.seal_pool = ThreadPoolExecutor(
            max_workers=self._seal_workers, thread_name_prefix="ctfy-seal"
        )
        if self._format == 2:
            run.hasher = _Hasher(self._depth)
            run.packer = Packer(
                sealer=self._sealer,
                targets=run.live(),
                store=partial(self._store_pack, run),
                shipped=partial(self._shipped, run),
                pack_size=self._pack_size,
                writers=min(self._connections, PACK_WRITERS),
            )
        return run.seal_pool, run.io_pool

    def _settle_chunks(self, run: _Run, io_pool: ThreadPoolExecutor) -> None:
        """Wait for every chunk; for format 2, close the packs and write the index objects."""
        run.drain()
        if run.packer is not None:
            run.packer.close()
            run.packer = None
            self._write_indexes(run, io_pool)

    def _start(self, degraded: Mapping[str, BaseException]) -> _Run:
        """List every target's chunks concurrently; a target that cannot be listed has failed.

        A target in ``degraded`` has failed from the start with its error and is not listed.
        """
        run = _Run(targets=self._targets, known={t.name: _Known() for t in self._targets})
        listed = [target for target in self._targets if target.name not in degraded]
        list_target: Callable[[Target], Container[bytes]] = (
            index_chunks if self._format == 1 else partial(load_packed, sealer=self._sealer)
        )
        with ThreadPoolExecutor(max_workers=len(self._targets)) as pool:
            listings = {target.name: pool.submit(list_target, target) for target in listed}
        for target in self._targets:
            if target.name in degraded:  # the caller has said why; no second warning
                run.failed.fail(target, degraded[target.name], quiet=True)
                continue
            try:
                held = listings[target.name].result()
            except Exception as err:  # noqa: BLE001 - any failure of one target is its outcome
                run.failed.fail(target, err)
                continue
            run.known[target.name] = _Known(base=held)
            if isinstance(held, PackedTarget):
                run.packed[target.name] = held
        return run

    def _reuse(self, run: _Run, old: FileEntry | None, item: FileItem) -> FileEntry | None:
        """Take an unchanged file's entry from the parent when every live target has its chunks.

        Unchanged means the same size, mtime and mode: the content is then taken as it was. The
        owner and extended attributes are the ones just read, so a change of either (which
        leaves the mtime alone) is recorded without reading the content again.
        """
        before = item.before
        if (
            old is None
            or old.type is not FileType.FILE
            or old.size != before.st_size
            or old.mtime_ns != before.st_mtime_ns
            or old.mode != (before.st_mode & 0o7777)
        ):
            return None
        live = run.live()
        with run.lock:
            if not all(c in run.known[t.name] for t in live for c in old.chunks):
                return None
        run.count_present(live, len(old.chunks))
        if run.progress is not None:
            run.progress(old.size, 1)
        return item.meta.onto(old)

    def _take(
        self,
        item: Item,
        reusable: Mapping[str, FileEntry],
        now: datetime,
        run: _Run,
        warnings: list[SourceWarning],
    ) -> FileEntry | _Pending | None:
        """One item of the walk: its finished entry, its chunks in the pipeline, or ``None``."""
        if isinstance(item, FileEntry):
            return item
        if isinstance(item, EntrySource):
            return self._replay(run, item)
        if isinstance(item, FileItem):
            reused = self._reuse(run, reusable.get(item.path), item)
            if reused is not None:
                return reused
        return self._read_item(item, now, run, warnings)

    def _replay(self, run: _Run, item: EntrySource) -> FileEntry | _Pending:
        """Record an entry of another snapshot: as it is, from known chunks, or read and chunked.

        Raises:
            IntegrityError: the content read does not match the entry's size and SHA-256.
        """
        entry = item.entry
        if entry.type is not FileType.FILE:
            return entry
        if item.chunks is not None:
            live = run.live()
            with run.lock:
                known = all(c in run.known[t.name] for t in live for c in item.chunks)
            if known or item.content is None:
                # Without content the chunks must be everywhere; the commit check fails a
                # target that lacks one.
                run.count_present(live, len(item.chunks))
                if run.progress is not None:
                    run.progress(entry.size, 1)
                return attrs.evolve(entry, chunks=item.chunks)
        if item.content is None:  # pragma: no cover - EntrySource refuses this
            raise ConfigurationError(f"{entry.path}: a file entry needs its content")
        done = self._chunk_all(
            item.content(), entry.path, entry.mode, entry.mtime_ns, run, meta=Metadata.of(entry)
        )
        if done.size != entry.size or done.sha256 != entry.sha256:
            raise IntegrityError(f"{entry.path}: the content read does not match its entry")
        return done

    def _read_item(
        self,
        item: FileItem | StreamSource | CommandSource,
        now: datetime,
        run: _Run,
        warnings: list[SourceWarning],
    ) -> _Pending | None:
        """Chunk one file, stream or command's output into the pipeline (bounded by ``depth``).

        A stream or command counts only once it is complete (its check passed, its program
        exited 0); otherwise this raises, and the backup commits nothing.
        """
        if isinstance(item, (StreamSource, CommandSource)):
            mtime_ns = item.mtime_ns
            if mtime_ns is None:
                mtime_ns = (now - _EPOCH) // timedelta(microseconds=1) * 1000
            if isinstance(item, StreamSource):
                done = self._chunk_all(item.stream, item.name, item.mode, mtime_ns, run)
                check_complete(item)
                return done
            with running(item) as producer:
                done = self._chunk_all(producer.stdout, item.name, item.mode, mtime_ns, run)
                producer.finish()
            return done
        opened = open_regular(item, warnings)
        if opened is None:
            return None
        with opened:
            try:
                done = self._chunk_all(
                    opened,
                    item.path,
                    item.before.st_mode & 0o7777,
                    item.before.st_mtime_ns,
                    run,
                    meta=item.meta,
                )
            except OSError as err:
                reason = f"read failed ({type(err).__name__}); skipped"
                warnings.append(SourceWarning(path=display(item.fs_path), reason=reason))
                return None
            check_unchanged(item, opened, done.size, warnings)
        return done

    def _chunk_all(
        self,
        handle: Readable,
        path: str,
        mode: int,
        mtime_ns: int,
        run: _Run,
        *,
        meta: Metadata = NO_METADATA,
    ) -> _Pending:
        seal_pool, io_pool = run.pools()
        limiter = run.limiter
        digest = _FileDigest()
        hasher = run.hasher
        handed = False  # once a chunk of the file went to the hasher, all the rest go too
        slots: list[bytes | None] = []
        size = 0
        store = self._store_chunk if self._format == 1 else self._pack_chunk
        inline = self._format == 2
        for data in iter_chunks(handle, self._chunker, self._chunker_key):
            if hasher is not None and (handed or len(data) >= INLINE_BELOW):
                if not handed:
                    digest.later()
                    handed = True
                hasher.update(digest, data)
            else:
                digest.update(data)
            size += len(data)
            if run.error is not None:  # a chunk failed: stop reading, the backup will raise
                run.drain()
            if inline and len(data) < INLINE_BELOW:
                slots.append(self._pack_chunk(run, data, io_pool))
                if run.progress is not None:
                    run.progress(len(data), 0)
                continue
            limiter.acquire()
            run.submitted()
            slots.append(None)
            future = seal_pool.submit(store, run, data, io_pool)
            future.add_done_callback(partial(run.settle, slots, len(slots) - 1))
            if run.progress is not None:
                run.progress(len(data), 0)
        if run.progress is not None:
            run.progress(0, 1)
        if handed and hasher is not None:
            hasher.finish(digest)
        else:
            digest.finish()
        return _Pending(path, mode, mtime_ns, size, digest, slots, meta)

    def _store_chunk(self, run: _Run, data: bytes, io_pool: ThreadPoolExecutor) -> bytes:
        """Name a chunk; seal it once and write it to each live target that lacks it.

        A chunk id is handled once per run (a repeat waits for the first), so every target gets
        the same sealed bytes. When some targets already hold the chunk, their copy is read,
        verified and sent to the others instead of a fresh seal, for the same reason.
        """
        chunk_id = self._sealer.chunk_id(data)
        with run.lock:
            first = run.inflight.get(chunk_id)
            if first is None:
                run.inflight[chunk_id] = done = threading.Event()
        if first is not None:
            first.wait()
            run.count_present(run.missing(chunk_id)[1])
            return chunk_id
        try:
            need, have = run.missing(chunk_id)
            run.count_present(have)
            if need:
                key = chunk_key(chunk_id)
                blob = self._existing(have, key, chunk_id) or self._seal(run, chunk_id, data)
                writes = [
                    io_pool.submit(self._put, run, target, key, blob, chunk_id) for target in need
                ]
                wait(writes)
        finally:
            with run.lock:
                # Later repeats find the id in the targets' known sets; the map stays small.
                del run.inflight[chunk_id]
            done.set()
        return chunk_id

    def _pack_chunk(self, run: _Run, data: bytes, _io_pool: ThreadPoolExecutor) -> bytes:
        """Format 2: name a chunk; seal it once into the pack for the live targets lacking it.

        Never waits for a storage write: only for a full pack's hand-off to a target whose queue
        is full (the back-pressure). A chunk already placed for a target this run is not placed
        again; whether it reached the target is settled when the packs are closed.
        """
        chunk_id = self._sealer.chunk_id(data)
        with run.lock:
            live = run.failed.live(self.targets)
            need: list[str] = []
            have: list[Target] = []
            for target in live:
                placed = run.placed.setdefault(target.name, set())
                if chunk_id in placed:
                    continue
                if chunk_id in run.known[target.name]:
                    have.append(target)
                else:
                    placed.add(chunk_id)
                    need.append(target.name)
        run.count_present(have)
        packer = run.packer
        if need and packer is not None:
            blob = self._seal(run, chunk_id, data)
            packer.add(frozenset(need), SealedChunk(id=chunk_id, blob=blob))
        return chunk_id

    def _store_pack(self, run: _Run, target: Target, pack: Pack) -> bool:
        """Write one pack to one target create-only; index it once `INDEX_EVERY` are stored.

        Never raises: a failure fails the target (its outcome says why).
        """
        if target.name in run.failed:
            return False
        key = pack_key(pack.id)
        try:
            new = put(target, key, pack.blob, exists_ok=True, retries=self._retries)
        except Exception as err:  # noqa: BLE001 - any failure of one target is its outcome
            run.failed.fail(target, err)
            return False
        if not self._lock_and_count(run, target, key, pack.size, None, existed=not new):
            return False
        index = self._account_pack(run, target, pack)
        if index is None:
            return target.name not in run.failed
        return self._put(
            run, target, index_key(index.id), index.blob, None, exists_ok=True, lock=False
        )

    def _account_pack(self, run: _Run, target: Target, pack: Pack) -> IndexObject | None:
        """Count a pack stored on ``target``; the batch index object it completes there, if any."""
        with run.lock:
            known = run.known[target.name]
            written = run.written.setdefault(target.name, set())
            for entry in pack.entries:
                known.add(entry.chunk_id)
                written.add(entry.chunk_id)
            run.uploaded[target.name] = run.uploaded.get(target.name, 0) + len(pack.entries)
            batch = run.batch_of[pack.id]
            batch.waiting[target.name] -= 1
            if batch.waiting[target.name] or not batch.closed:
                return None
            if batch.index is None:
                try:
                    batch.index = encode_index(self._sealer, batch.records)
                except Exception as err:  # noqa: BLE001 - any failure of one target is its outcome
                    run.failed.fail(target, err)
                    return None
            return batch.index

    def _shipped(self, run: _Run, group: frozenset[str], pack: Pack) -> None:
        """Add a pack handed to the targets of ``group`` to their open batch (before it is queued).

        Every pack is in exactly one batch, and a batch's index object is sealed once, so targets
        that share packs share index objects too (one name everywhere), and an interrupted
        backup leaves the packs of its closed batches indexed.
        """
        with run.lock:
            batch = run.open_batches.get(group)
            if batch is None:
                batch = run.open_batches[group] = _Batch(group=group)
            batch.records.append(IndexedPack.of(pack))
            for name in group:
                batch.waiting[name] = batch.waiting.get(name, 0) + 1
            run.batch_of[pack.id] = batch
            if len(batch.records) >= INDEX_EVERY:
                batch.closed = True
                del run.open_batches[group]

    def _write_indexes(self, run: _Run, io_pool: ThreadPoolExecutor) -> None:
        """Index the batches still open: one object each, to every live target of its group.

        The packs are closed and every queued one written (or its target failed) by now.
        """
        writes: list[Future[bool]] = []
        for batch in run.open_batches.values():
            batch.closed = True
            targets = [t for t in run.live() if t.name in batch.group]
            if not targets:
                continue
            try:
                index = encode_index(self._sealer, batch.records)
            except Exception as err:  # noqa: BLE001 - any failure of one target is its outcome
                for target in targets:
                    run.failed.fail(target, err)
                continue
            key = index_key(index.id)
            writes.extend(
                io_pool.submit(
                    self._put, run, target, key, index.blob, None, exists_ok=True, lock=False
                )
                for target in targets
            )
        wait(writes)
        run.open_batches.clear()

    def _seal(self, run: _Run, chunk_id: bytes, data: bytes) -> bytearray:
        with run.lock:
            run.sealed += 1
        return self._sealer.seal(Kind.CHUNK, chunk_id.hex(), data, compress=self._compress)

    def _existing(self, holders: list[Target], key: str, chunk_id: bytes) -> bytes | None:
        """Read a chunk another target already holds, if it opens under its id; else ``None``."""
        for holder in holders:
            try:
                blob = holder.read(key)
                self._sealer.open_chunk(chunk_id, blob)
            except (StorageError, IntegrityError, FormatError):
                continue
            return blob
        return None

    def _put(
        self,
        run: _Run,
        target: Target,
        key: str,
        blob: bytes | bytearray,
        chunk_id: bytes | None,
        *,
        exists_ok: bool | None = None,
        lock: bool = True,
    ) -> bool:
        """Write one object create-only; "already there" counts as stored. Never raises.

        ``lock=False`` leaves the object unlocked where the target locks: index objects, which
        prune must be able to replace, and which heal rebuilds from the (locked) packs.

        ``exists_ok`` defaults to whether the object is a chunk: a manifest name is unique per
        snapshot, so one already there is not ours; an object named by its content's hash (a
        chunk, a pack, an index object) already there is the same object.
        """
        if target.name in run.failed:
            return False
        if exists_ok is None:
            exists_ok = chunk_id is not None
        try:
            new = put(target, key, blob, exists_ok=exists_ok, retries=self._retries)
        except ObjectExistsError:
            run.failed.fail(target, _exists_error(target, key))
            return False
        except Exception as err:  # noqa: BLE001 - any failure of one target is its outcome
            run.failed.fail(target, err)
            return False
        if not new and chunk_id is not None:
            # A chunk already there: its lock is extended before the manifest commits.
            run.stored(target, chunk_id, len(blob), new=False)
            return True
        if not lock:
            run.stored(target, chunk_id, len(blob), new=new)
            return True
        return self._lock_and_count(run, target, key, len(blob), chunk_id, existed=not new)

    def _lock_and_count(
        self,
        run: _Run,
        target: Target,
        key: str,
        size: int,
        chunk_id: bytes | None,
        *,
        existed: bool = False,
    ) -> bool:
        """Lock a stored object until the run's date where the target locks, then count it.

        An object that was already there (the same bytes from an earlier run) may hold a longer
        lock: it is extended, never shortened.
        """
        until = run.until(target)
        if until is not None:
            try:
                if existed:
                    target.extend_retention(key, until, mode=self._mode(target))
                else:
                    set_retain_until(target, key, until, mode=self._mode(target))
            except Exception as err:  # noqa: BLE001 - a target that cannot lock has failed
                run.failed.fail(target, err)
                return False
        run.stored(target, chunk_id, size, new=not existed)
        return True

    def _commit(
        self,
        run: _Run,
        manifest: Manifest,
        key: str,
        blob: bytes,
        io_pool: ThreadPoolExecutor,
        *,
        guard: Callable[[Target], BaseException | None] | None,
    ) -> list[str]:
        """Write the manifest to each target that holds every chunk it names (the commit point).

        ``guard`` is asked first, per target, concurrently; a target it refuses fails.
        """
        needed = {chunk for entry in manifest.files for chunk in entry.chunks}
        ready: list[Target] = []
        for target in run.live():
            with run.lock:
                known = run.known[target.name]
                lacking = sum(1 for chunk in needed if chunk not in known)
                reused = needed - run.written.get(target.name, set())
                suspects = reused & run.recheck
            if lacking:
                run.failed.fail(target, _incomplete_error(target, lacking))
            elif self._vanished(run, target, suspects):
                continue
            else:
                ready.append(target)
                if run.until(target) is not None:
                    # Shared data follows its longest holder: what this snapshot reuses is
                    # locked at least as long as the snapshot before it commits.
                    self._extend_reused(run, target, reused, io_pool)
        ready = [target for target in ready if target.name not in run.failed]
        run.committing = True
        writes = {
            target.name: io_pool.submit(self._guarded_put, run, target, key, blob, guard)
            for target in ready
        }
        return [name for name, future in writes.items() if future.result()]

    def _mode(self, target: Target) -> LockMode:
        """The lock mode for ``target``: the writer's if it was given one, else the target's."""
        return self._lock_mode or target.lock_mode

    def _extend_reused(
        self, run: _Run, target: Target, reused: set[bytes], io_pool: ThreadPoolExecutor
    ) -> None:
        """Extend the locks of the objects holding ``reused`` chunks on ``target`` to the run's date.

        Format 1: the chunk objects; format 2: their packs (index objects are never locked).
        A failure fails the target (nothing is committed there).
        """
        until = run.until(target)
        assert until is not None  # noqa: S101 - checked by the caller
        packed = run.packed.get(target.name)
        if packed is None:
            keys = sorted(chunk_key(chunk) for chunk in reused)
        else:
            packs = {where.pack_id for c in reused if (where := packed.locate(c)) is not None}
            keys = sorted(pack_key(p) for p in packs)

        def extend(key: str) -> None:
            target.extend_retention(key, until, mode=self._mode(target))

        try:
            for future in [io_pool.submit(extend, key) for key in keys]:
                future.result()
        except Exception as err:  # noqa: BLE001 - a target that cannot lock has failed
            run.failed.fail(target, err)

    def _guarded_put(
        self,
        run: _Run,
        target: Target,
        key: str,
        blob: bytes,
        guard: Callable[[Target], BaseException | None] | None,
    ) -> bool:
        """Write a manifest once ``guard`` (if any) lets the target commit. Never raises."""
        if guard is not None:
            try:
                refused = guard(target)
            except Exception as err:  # noqa: BLE001 - any failure of one target is its outcome
                refused = err
            if refused is not None:
                run.failed.fail(target, refused)
                return False
        return self._put(run, target, key, blob, None)

    def _vanished(self, run: _Run, target: Target, suspects: set[bytes]) -> bool:
        """Check that chunks a prune marked are still on ``target``; fail it if one is gone.

        Format 2 checks the packs that held them when the run started. A chunk whose pack went
        may have been repacked (a chunk still in its grace period is copied into a new pack,
        indexed before the old pack is deleted): the target's index is then read again, and
        only a chunk that no listed pack holds any more counts as gone.
        """
        try:
            packed = run.packed.get(target.name)
            if packed is None:
                gone = sum(1 for chunk in suspects if not target.exists(chunk_key(chunk)))
            else:
                located = {chunk: packed.locate(chunk) for chunk in suspects}
                packs = {where.pack_id for where in located.values() if where is not None}
                missing = {p for p in packs if not target.exists(pack_key(p))}
                moved = [
                    chunk
                    for chunk, where in located.items()
                    if where is None or where.pack_id in missing
                ]
                if moved:
                    now = load_packed(target, self._sealer)
                    gone = sum(1 for chunk in moved if now.locate(chunk) is None)
                else:
                    gone = 0
        except Exception as err:  # noqa: BLE001 - any failure of one target is its outcome
            run.failed.fail(target, err)
            return True
        if gone:
            run.failed.fail(
                target,
                StorageError(
                    f"{gone} chunks this backup reuses were deleted by a prune meanwhile; "
                    "nothing was committed here, run the backup again",
                    target=target.name,
                ),
            )
        return bool(gone)

    def _outcomes(self, run: _Run, committed: list[str]) -> tuple[TargetOutcome, ...]:
        return tuple(
            TargetOutcome(
                target=target.name,
                committed=target.name in committed,
                error=run.failed.get(target.name),
                chunks_uploaded=run.uploaded.get(target.name, 0),
                chunks_present=run.present.get(target.name, 0),
                bytes_uploaded=run.bytes_up.get(target.name, 0),
            )
            for target in self._targets
        )


def _has_object_lock(run: _Run, target: Target) -> bool:
    # Azure reports container immutability as Object Lock, but has no per-object retain-until:
    # `Target.object_lock` is only true where objects take a retain-until date.
    try:
        return target.object_lock()
    except Exception as err:  # noqa: BLE001 - any failure of one target is its outcome
        run.failed.fail(target, err)
        return False


def _exists_error(target: Target, key: str) -> ObjectExistsError:
    return ObjectExistsError(
        "a different snapshot already has this name", target=target.name, key=key
    )


def _incomplete_error(target: Target, lacking: int) -> BaseException:
    return StorageError(f"{lacking} chunks the manifest names are not stored", target=target.name)


def _entries(pending: list[_Pending]) -> Iterator[FileEntry]:
    """Each pending file's entry, in order; each file's pipeline state goes as its entry is made."""
    pending.reverse()
    while pending:
        yield _entry(pending.pop())


def _entry(item: _Pending) -> FileEntry:
    chunks = tuple(chunk for chunk in item.chunks if chunk is not None)
    if len(chunks) != len(item.chunks):  # pragma: no cover - drain raised before this
        raise RuntimeError(f"{item.path}: a chunk was not settled")
    return FileEntry(
        path=item.path,
        type=FileType.FILE,
        mode=item.mode,
        mtime_ns=item.mtime_ns,
        size=item.size,
        chunks=chunks,
        sha256=item.sha256,
        uid=item.meta.uid,
        gid=item.meta.gid,
        user=item.meta.user,
        group=item.meta.group,
        xattrs=item.meta.xattrs,
    )


def _source_name(source: BackupSource | EntrySource) -> str:
    if isinstance(source, EntrySource):
        return source.entry.path
    if isinstance(source, (StreamSource, CommandSource)):
        return source.name
    return os.fsencode(os.fspath(source)).decode("utf-8", "backslashreplace")
