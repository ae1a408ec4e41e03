"""Sweep marks: what a prune found unreferenced (chunks) or unindexed (packs), and since when.

A mark is a plaintext JSON document under ``locks/sweep/<time>-<8 hex>``, written to every target
by a prune and deleted by a later one once none of what it names still waits on it::

    {"version": 1, "created": "<ISO time>", "chunks": ["<chunk id hex>", ...],
     "packs": ["<pack id hex>", ...]}

``packs`` (format 2: loose packs, listed under ``packs/`` but in no index object) is optional, so
a mark written before it existed still parses, and a reader that knows only ``chunks`` still
reads a mark that has it.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import attrs

from ctfy_vault.exceptions import StorageError
from ctfy_vault.repository import Failures, Replicas
from ctfy_vault.repository._layout import SWEEP_PREFIX, KeyKind, kind_of, sweep_mark_key
from ctfy_vault.storage import Target

__all__ = [
    "Mark",
    "Marks",
    "delete_marks",
    "iter_marks",
    "mark_document",
    "marked_chunks",
    "parse_mark",
    "read_marks",
    "write_mark",
]

log = logging.getLogger("ctfy_vault.vault")

_MARK_VERSION = 1


@attrs.frozen
class Mark:
    """One sweep mark: when it was made, the chunks and the packs it names."""

    created: datetime
    chunks: tuple[bytes, ...]
    packs: tuple[bytes, ...] = ()


@attrs.frozen
class Marks:
    """Every mark read: each chunk and pack with its earliest mark's time and key; every key."""

    chunks: dict[bytes, tuple[datetime, str]]
    packs: dict[bytes, tuple[datetime, str]]
    keys: frozenset[str]

    def spent(self, pending_chunks: Iterable[bytes], pending_packs: Iterable[bytes]) -> set[str]:
        """The marks none of whose chunks or packs still wait on them.

        A mark is spent when each of its entries was deleted, is referenced (or indexed) again,
        or is covered by an earlier mark.
        """
        live = {self.chunks[c][1] for c in pending_chunks if c in self.chunks}
        live |= {self.packs[p][1] for p in pending_packs if p in self.packs}
        return set(self.keys - live)


def iter_marks(
    targets: Sequence[Target], on_list_error: Callable[[Target, StorageError], object]
) -> Iterator[tuple[str, Mark]]:
    """Yield each sweep mark once (the first target listing it gives it): its key and content.

    An unreadable or malformed mark is skipped with a warning.
    """
    seen: set[str] = set()
    for target in targets:
        try:
            listed = target.list(SWEEP_PREFIX)
            keys = sorted(k for k in listed if kind_of(k) is KeyKind.SWEEP_MARK)
        except StorageError as err:
            on_list_error(target, err)
            continue
        for key in keys:
            if key in seen:
                continue
            seen.add(key)
            try:
                mark = parse_mark(target.read(key))
            except (StorageError, ValueError) as err:
                log.warning("sweep mark %s on %s ignored: %s", key, target.name, err)
                continue
            yield key, mark


def read_marks(targets: Sequence[Target], failures: Failures) -> Marks:
    """Read every mark; a target that cannot be listed is failed in ``failures``."""
    chunks: dict[bytes, tuple[datetime, str]] = {}
    packs: dict[bytes, tuple[datetime, str]] = {}
    keys: set[str] = set()
    for key, mark in iter_marks(targets, failures.fail):
        keys.add(key)
        for found, ids in ((chunks, mark.chunks), (packs, mark.packs)):
            for item in ids:
                if item not in found or mark.created < found[item][0]:
                    found[item] = (mark.created, key)
    return Marks(chunks=chunks, packs=packs, keys=frozenset(keys))


def marked_chunks(targets: Sequence[Target]) -> frozenset[bytes]:
    """Every chunk id some sweep mark names, on any target (unreadable marks are skipped).

    A backup reusing one of these must check it still exists right before it commits (see
    `ctfy_vault.writer.Writer.backup`'s ``recheck``).
    """
    return frozenset(chunk for _key, mark in iter_marks(targets, _ignore) for chunk in mark.chunks)


def _ignore(_target: Target, _err: StorageError) -> None:
    """A backup goes on without the marks of a target it cannot list."""


def parse_mark(data: bytes) -> Mark:
    """Parse a sweep mark document.

    Raises:
        ValueError: not a version 1 mark, a naive time, or an id that is not hex.
    """
    try:
        document: Any = json.loads(data)
        if not isinstance(document, dict) or document.get("version") != _MARK_VERSION:
            raise ValueError("not a version 1 sweep mark")
        created = datetime.fromisoformat(document["created"])
        if created.tzinfo is None:
            raise ValueError("naive time in a sweep mark")
        chunks = tuple(bytes.fromhex(item) for item in document["chunks"])
        packs = tuple(bytes.fromhex(item) for item in document.get("packs", []))
    except (KeyError, TypeError, ValueError, UnicodeDecodeError, AttributeError) as err:
        raise ValueError(f"malformed sweep mark: {err}") from err
    return Mark(created=created, chunks=chunks, packs=packs)


def mark_document(now: datetime, chunks: Iterable[bytes], packs: Iterable[bytes] = ()) -> bytes:
    """Encode a mark made at ``now`` (``packs`` is left out when empty, as before it existed)."""
    document: dict[str, object] = {
        "version": _MARK_VERSION,
        "created": now.isoformat(),
        "chunks": [chunk.hex() for chunk in chunks],
    }
    pack_names = [pack.hex() for pack in packs]
    if pack_names:
        document["packs"] = pack_names
    return json.dumps(document).encode()


def write_mark(
    targets: Sequence[Target],
    failures: Failures,
    now: datetime,
    chunks: Iterable[bytes],
    packs: Iterable[bytes] = (),
) -> None:
    """Write one new mark (a unique name) create-only to every target."""
    key = sweep_mark_key(now, secrets.token_hex(4))
    outcome = Replicas(targets).write(key, mark_document(now, chunks, packs), exists_ok=False)
    for name, err in outcome.failed.items():
        failures.fail(name, err)


def delete_marks(targets: Sequence[Target], failures: Failures, keys: Iterable[str]) -> None:
    """Delete marks from every target (a missing one is no error)."""
    ordered = sorted(keys)
    for target in targets:
        for key in ordered:
            try:
                target.delete(key)
            except StorageError as err:
                failures.fail(target, err)
