"""Reading a repository mirrored on several targets: snapshots from all, chunks with fallback."""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

import attrs

from ctfy_vault.crypto import Sealer
from ctfy_vault.exceptions import (
    FormatError,
    IntegrityError,
    ObjectNotFoundError,
    StorageError,
    TransientStorageError,
)
from ctfy_vault.manifest import FileEntry, OpenedEntry, open_entry
from ctfy_vault.repository._layout import (
    OBJECTS_PREFIX,
    SNAPSHOTS_PREFIX,
    chunk_id_of,
    chunk_key,
    snapshot_key,
    snapshot_name_of,
)
from ctfy_vault.repository._replicas import Outcome, Replicas
from ctfy_vault.repository._store import PackedTarget, ids_under, load_packed
from ctfy_vault.storage import Target

__all__ = ["ChunkStream", "Reader", "index_chunks", "snapshot_names"]

log = logging.getLogger("ctfy_vault.repository")

#: Called with ``(chunk key, target name)`` when a target could not give a chunk intact.
OnFallback = Callable[[str, str], None]


def snapshot_names(target: Target) -> set[str]:
    """List the snapshot object names under ``snapshots/`` of one target.

    A name that does not parse as an entry's (`ctfy_vault.manifest.parse_entry_name`) is not a
    snapshot object and is left out: ``snapshots/zzz`` cannot stop a backup or a prune.
    ``verify`` reports such objects.

    Raises:
        StorageError: the listing failed.
    """
    names = (snapshot_name_of(key) for key in target.list(SNAPSHOTS_PREFIX))
    return {name for name in names if name is not None}


def index_chunks(target: Target) -> set[bytes]:
    """List the chunk ids a target holds (one listing of ``objects/``; other names are ignored).

    Args:
        target: the target.

    Returns:
        The ids found.

    Raises:
        StorageError: the listing failed.
    """
    return ids_under(target, OBJECTS_PREFIX, chunk_id_of)


@attrs.define
class Reader:
    """Reads one repository's objects from its targets, in order, falling back on failure.

    Opened manifests are remembered by name: a name is written once and never rewritten, so
    what it held when first read is what it holds for as long as it exists.

    A snapshot object counts only when some target gives it intact (it authenticates under the
    repository's keys and decodes). One that every target holding it gives damaged, or refuses
    to give for a reason that will not pass, is *broken*: it is no entry of any lineage (nobody
    without the keys can make one that opens, so it proves nothing), `verify` reports it and
    ``heal(repair=True)`` moves it to quarantine. One that some target could not give reliably
    (a transient failure, or two reads that differ: a flip in transit), and no target gave
    intact, is also *undecided*: it may be a real entry.
    """

    _targets: tuple[Target, ...] = attrs.field(alias="targets")
    _sealer: Sealer = attrs.field(alias="sealer", repr=False)
    _packed: bool = attrs.field(default=False, alias="packed", kw_only=True)
    _holdings: dict[str, PackedTarget] = attrs.field(factory=dict, init=False, repr=False)
    _holdings_lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)
    _opened: dict[str, OpenedEntry] = attrs.field(factory=dict, init=False, repr=False)
    _broken: dict[str, BaseException] = attrs.field(factory=dict, init=False, repr=False)
    _undecided: set[str] = attrs.field(factory=set, init=False, repr=False)

    def broken(self, name_or_id: str) -> BaseException | None:
        """Return why a snapshot object (by name or id) opened on no target at the last listing."""
        for name, err in self._broken.items():
            if name_or_id in (name, name.rsplit("-", 1)[-1]):
                return err
        return None

    def broken_names(self) -> set[str]:
        """The snapshot objects that opened on no target at the last listing."""
        return set(self._broken)

    def undecided_names(self) -> set[str]:
        """The broken snapshot objects some target could not give reliably.

        A transient failure, or two reads of one copy that differ (a flip in transit): such an
        object may be a real entry that a retry would read. The others in `broken_names` read
        the same, damaged, twice on every target (or were refused for good).
        """
        return set(self._undecided)

    def forget_names(self, names: Iterable[str]) -> None:
        """Drop remembered entries (after prune deleted their objects)."""
        for name in names:
            self._opened.pop(name, None)

    def forget_packs(self) -> None:
        """Drop what was loaded of the targets' index objects (after a backup, prune or heal).

        The next chunk read from a target lists and merges its index objects again.
        """
        with self._holdings_lock:
            self._holdings.clear()

    def holdings(self, target: Target) -> PackedTarget:
        """Format 2: what ``target`` holds, loaded at the first chunk read from it.

        Raises:
            StorageError: the target could not be listed, or an index object not read.
            IntegrityError: two of its index objects disagree.
        """
        with self._holdings_lock:
            found = self._holdings.get(target.name)
            if found is None:
                found = self._holdings[target.name] = load_packed(target, self._sealer)
            return found

    def _reload(self, target: Target, stale: PackedTarget) -> PackedTarget:
        """Load ``target``'s index objects again, unless another thread did since ``stale``."""
        with self._holdings_lock:
            found = self._holdings.get(target.name)
            if found is None or found is stale:
                found = self._holdings[target.name] = load_packed(target, self._sealer)
            return found

    def catalog(self) -> dict[str, OpenedEntry]:
        """Open every snapshot object any healthy target holds, by name.

        Each name is read from the first target that lists it and gives it intact; a name that
        no target gives intact is left out (``verify`` reports it).

        Returns:
            The opened entries, by name.

        Raises:
            TargetsFailedError: no target could be listed.
        """
        listed = Replicas(self._targets).each(snapshot_names)
        for name, err in listed.failed.items():
            log.warning("cannot list snapshots on %s: %s", name, err)
        listed.require_any("no target could list the repository's snapshots")
        holders: dict[str, list[Target]] = {}
        for target in self._targets:
            for name in listed.results.get(target.name, ()):
                holders.setdefault(name, []).append(target)
        found: dict[str, OpenedEntry] = {}
        self._broken.clear()
        self._undecided.clear()
        for name, targets in holders.items():
            opened = self._opened.get(name) or self._open(name, targets)
            if opened is not None:
                self._broken.pop(name, None)
                self._opened[name] = opened
                found[name] = opened
        return found

    def _open(self, name: str, targets: Sequence[Target]) -> OpenedEntry | None:
        """Open a snapshot object from the first target giving it intact (each tried twice).

        A target's copy is *settled* as damaged only when two reads return the same bytes and
        they do not open, or the target refuses it for a reason that will not pass; reads that
        differ (a flip in transit) or transient failures leave the object undecided.
        """
        errors: dict[str, BaseException | None] = {}
        unsettled = False
        for target in targets:
            failed: bytes | None = None
            settled = False
            for _attempt in range(2):  # a second read gets past a flip in transit
                try:
                    blob = target.read(snapshot_key(name))
                    return open_entry(self._sealer, name, blob)
                except (StorageError, IntegrityError, FormatError) as err:
                    log.warning("snapshot %s on %s cannot be opened: %s", name, target.name, err)
                    errors[target.name] = err
                    if isinstance(err, StorageError):
                        settled = not isinstance(err, TransientStorageError)
                        if settled:
                            break
                        continue
                settled = failed == blob  # the same bytes twice: damaged where stored
                failed = blob
            unsettled = unsettled or not settled
        found = list(errors.values())
        if found and all(isinstance(err, ObjectNotFoundError) for err in found):
            return None  # deleted since it was listed (a prune): there is nothing to judge
        if unsettled:
            self._undecided.add(name)
        if found and all(isinstance(err, FormatError) for err in found):
            # The same format error on every target (often content that is no sealed object at
            # all): that is the error to give.
            self._broken[name] = found[0]  # type: ignore[assignment]
        else:
            self._broken[name] = Outcome[OpenedEntry](outcomes=errors).error(
                f"snapshot {name} cannot be read intact from any target"
            )
        return None

    def chunk(self, chunk_id: bytes, on_fallback: OnFallback | None = None) -> bytes:
        """Read and authenticate one chunk from the first target that gives it intact.

        Args:
            chunk_id: the chunk's id.
            on_fallback: told ``(chunk key, target name)`` about each target that lacked the
                chunk or gave altered bytes (format 2: the chunk id in hex for the key).

        Format 2 reads the chunk's range from the pack the target's index objects name; a
        target whose index does not list it in a pack it holds, or whose range does not open,
        is passed over for the next.

        Returns:
            The chunk's plaintext (its id checked by the sealer).

        Raises:
            TargetsFailedError: no target holds the chunk intact; holds each target's error.
        """
        # Format 2 names the chunk by its id: it has no key of its own.
        key = chunk_id.hex() if self._packed else chunk_key(chunk_id)

        def fell_back(target: Target, err: BaseException) -> None:
            log.warning("chunk %s on %s: %s; trying the next target", key, target.name, err)
            if on_fallback is not None:
                on_fallback(key, target.name)

        def read(target: Target) -> bytes:
            if not self._packed:
                return self._sealer.open_chunk(chunk_id, target.read(key))
            held = self.holdings(target)
            try:
                return held.read(target, self._sealer, chunk_id)
            except ObjectNotFoundError:
                if held.locate(chunk_id) is None:
                    raise
                # The pack went since the index was loaded: a prune may have repacked it, and
                # then an index object it wrote first names the chunk's new pack.
                return self._reload(target, held).read(target, self._sealer, chunk_id)

        return Replicas(self._targets).first(
            read,
            what=f"no target holds chunk {key} intact",
            catch=(StorageError, IntegrityError, FormatError),
            on_fallback=fell_back,
        )

    def content(self, entry: FileEntry, on_fallback: OnFallback | None = None) -> Iterator[bytes]:
        """Yield a file's plaintext chunk by chunk, then check its SHA-256.

        Raises:
            TargetsFailedError: a chunk is intact on no target.
            IntegrityError: the chunks do not add up to the file the manifest describes.
        """
        digest = hashlib.sha256()
        size = 0
        for chunk_id in entry.chunks:
            data = self.chunk(chunk_id, on_fallback)
            digest.update(data)
            size += len(data)
            yield data
        if size != entry.size or digest.digest() != entry.sha256:
            raise IntegrityError(f"{entry.path}: restored content does not match its manifest")


class ChunkStream(io.RawIOBase):
    """A read-only stream over a file's chunks, fetched one at a time as they are read."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        """Wrap an iterator of byte strings (consumed lazily)."""
        super().__init__()
        self._pieces = pieces
        self._buffer = memoryview(b"")

    def readable(self) -> bool:
        """Return ``True``: this stream is for reading."""
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        """Fill ``buffer`` with the next bytes; 0 at the end of the file."""
        while not self._buffer:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._buffer = memoryview(piece)
        count = min(len(buffer), len(self._buffer))
        buffer[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count
