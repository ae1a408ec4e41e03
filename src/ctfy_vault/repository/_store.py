"""What a format v2 target holds: its index objects merged, checked against the packs it lists.

A chunk counts as held by a target when an index object on that target lists it in a pack the
target also lists under ``packs/``: an index entry whose pack is gone (deleted by a prune, or
never written because a backup stopped) holds nothing, and a pack no index object lists (a
backup that stopped before its index was written, or a pack a prune repacked) is a *loose* pack
whose chunks are not known until a heal indexes it.

An index object that does not open under its name is left out (with a warning) and reported in
`PackedTarget.damaged`; the chunks only it listed then count as missing, which a backup answers
by storing them again and ``verify`` reports.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor

import attrs

from ctfy_vault.crypto import Sealer
from ctfy_vault.exceptions import FormatError, IntegrityError, ObjectNotFoundError
from ctfy_vault.repository._index import IndexedPack, Location, MergedIndex, decode_index
from ctfy_vault.repository._layout import (
    INDEX_PREFIX,
    PACKS_PREFIX,
    index_id_of,
    index_key,
    pack_id_of,
    pack_key,
)
from ctfy_vault.repository._packs import TargetRanges, read_chunk
from ctfy_vault.storage import Target

__all__ = ["PackedTarget", "list_index_ids", "list_pack_ids", "load_packed"]

log = logging.getLogger("ctfy_vault.repository")

#: Index objects read at once when a target is loaded.
_READERS = 8


def ids_under(target: Target, prefix: str, parse: Callable[[str], bytes | None]) -> set[bytes]:
    """The ids ``parse`` reads from the keys under ``prefix`` (keys it refuses are ignored).

    Raises:
        StorageError: the listing failed.
    """
    return {found for key in target.list(prefix) if (found := parse(key)) is not None}


def list_pack_ids(target: Target) -> set[bytes]:
    """List the pack ids under ``packs/`` (names that are no pack's key are ignored).

    Raises:
        StorageError: the listing failed.
    """
    return ids_under(target, PACKS_PREFIX, pack_id_of)


def list_index_ids(target: Target) -> set[bytes]:
    """List the index object ids under ``index/`` (other names are ignored).

    Raises:
        StorageError: the listing failed.
    """
    return ids_under(target, INDEX_PREFIX, index_id_of)


@attrs.frozen
class PackedTarget:
    """One v2 target's chunks: where each is, by its index objects and the packs it lists.

    Read-only once loaded (`load_packed`) and safe to share between threads.

    Attributes:
        target: the target's name.
        index: every index object that opened, merged.
        packs: the packs listed under ``packs/``.
        index_ids: the index objects that opened.
        damaged: index objects that did not open under their name, with the error.
    """

    target: str
    index: MergedIndex = attrs.field(repr=False)
    packs: frozenset[bytes] = attrs.field(repr=False)
    index_ids: frozenset[bytes] = attrs.field(repr=False)
    damaged: Mapping[bytes, BaseException] = attrs.field(factory=dict, repr=False)

    def __contains__(self, chunk_id: object) -> bool:
        """Whether an index object lists the chunk in a pack the target holds."""
        return isinstance(chunk_id, bytes) and self.locate(chunk_id) is not None

    def locate(self, chunk_id: bytes) -> Location | None:
        """The first location of a chunk in a pack the target holds, or ``None``."""
        for location in self.index.locations(chunk_id):
            if location.pack_id in self.packs:
                return location
        return None

    def chunk_ids(self) -> Iterator[bytes]:
        """Yield every chunk id the target holds (indexed, in a listed pack), ascending."""
        for chunk_id in self.index.chunk_ids():
            if self.locate(chunk_id) is not None:
                yield chunk_id

    def loose_packs(self) -> frozenset[bytes]:
        """Listed packs no index object that opened lists."""
        return self.packs - set(self.index.pack_ids)

    def missing_packs(self) -> frozenset[bytes]:
        """Packs an index object lists that the target does not hold."""
        return frozenset(set(self.index.pack_ids) - self.packs)

    def read(self, target: Target, sealer: Sealer, chunk_id: bytes) -> bytes:
        """Read and open one chunk from its pack on ``target`` (one ranged read).

        Raises:
            ObjectNotFoundError: no pack on the target holds the chunk (as the index says).
            IntegrityError: the range does not hold the chunk intact.
            FormatError: the chunk authenticated but does not decode.
            StorageError: the target failed.
        """
        location = self.locate(chunk_id)
        if location is None:
            raise ObjectNotFoundError(f"no pack holds chunk {chunk_id.hex()}", target=target.name)
        ranges = TargetRanges(target, pack_key(location.pack_id), location.pack_size)
        return read_chunk(sealer, ranges, location.entry)


def _decode(target: Target, sealer: Sealer, index_id: bytes) -> tuple[IndexedPack, ...]:
    return decode_index(sealer, index_id, target.read(index_key(index_id)))


def load_packed(target: Target, sealer: Sealer) -> PackedTarget:
    """List a v2 target's packs and index objects and merge the index objects that open.

    Args:
        target: the target.
        sealer: the repository's sealer (index objects are sealed).

    Returns:
        What the target holds.

    Raises:
        StorageError: a listing failed, or an index object could not be read for a reason other
            than damage (a transient failure that outlived its retries, access denied).
        IntegrityError: two index objects that open give one pack two different sizes.
    """
    packs = list_pack_ids(target)
    index_ids = sorted(list_index_ids(target))
    opened: dict[bytes, tuple[IndexedPack, ...]] = {}
    damaged: dict[bytes, BaseException] = {}
    with ThreadPoolExecutor(max_workers=_READERS, thread_name_prefix="ctfy-index") as pool:
        futures = {
            index_id: pool.submit(_decode, target, sealer, index_id) for index_id in index_ids
        }
        for index_id, future in futures.items():
            try:
                opened[index_id] = future.result()
            except ObjectNotFoundError:
                # Deleted since it was listed: a prune replaced it (its records are in an index
                # object written before the delete, or their chunks count as missing, which a
                # backup answers by storing them again).
                continue
            except (IntegrityError, FormatError) as err:
                log.warning("index object %s on %s ignored: %s", index_id.hex(), target.name, err)
                damaged[index_id] = err
    try:
        merged = MergedIndex.merge(opened.values())
    except FormatError as err:
        # Two index objects disagree on a pack's size: one of them lies (it could only be
        # written with the keys) or is damaged; neither is trusted over the other.
        raise IntegrityError(f"{target.name}: index objects disagree: {err}") from err
    return PackedTarget(
        target=target.name,
        index=merged,
        packs=frozenset(packs),
        index_ids=frozenset(opened),
        damaged=damaged,
    )
