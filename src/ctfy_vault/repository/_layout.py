"""The repository layout: every object key built and parsed here, with one strictness.

=====================================  ===============  =================================
key                                    kind             written / deleted by
=====================================  ===============  =================================
``config``                             config           init (heal copies) / heal repair
``keys/<key-id>``                      key slot         init, key add / key remove, rotate
``objects/<ab>/<chunk id in hex>``     chunk            backup (heal copies) / prune sweep
``snapshots/<UTC time>-<id>``          snapshot         backup, prune record / prune
``packs/<ab>/<pack id in hex>``        pack (v2)        backup, prune repack / prune
``index/<index id in hex>``            index (v2)       backup, prune repack / prune
``locks/prune``                        lock             prune / prune, break-lock
``locks/sweep/<time>-<8 hex>``         sweep mark       prune / prune
``quarantine/<time>/<key>``            quarantined      heal repair / you, by hand
=====================================  ===============  =================================

A parser accepts exactly what its builder writes: lower-case hex, the right fan-out folder, no
extra segment. A pack's id and an index object's id are the SHA-256 of the stored object (see
`ctfy_vault.repository._packs`). Anything else is a *stray*: no object of the repository, ignored by backup,
prune, restore and heal, reported by verify, quarantined by ``heal(repair=True)``.
"""

from __future__ import annotations

import enum
import re
from datetime import UTC, datetime
from typing import Final

from ctfy_vault.crypto import CHUNK_ID_SIZE
from ctfy_vault.crypto._slots import is_key_id
from ctfy_vault.manifest import parse_entry_name

__all__ = [
    "CONFIG_KEY",
    "DELETE_CHECK_KEY",
    "INDEX_PREFIX",
    "KEYS_PREFIX",
    "LOCKS_PREFIX",
    "LOCK_KEY",
    "OBJECTS_PREFIX",
    "PACKS_PREFIX",
    "QUARANTINE_PREFIX",
    "SNAPSHOTS_PREFIX",
    "SWEEP_PREFIX",
    "KeyKind",
    "chunk_id_of",
    "chunk_key",
    "in_lock_area",
    "index_id_of",
    "index_key",
    "kind_of",
    "pack_id_of",
    "pack_key",
    "quarantine_key",
    "quarantined_of",
    "slot_id_of",
    "slot_key",
    "snapshot_key",
    "snapshot_name_of",
    "sweep_mark_key",
    "unexpected_key",
]

#: The object key of the config document, at the repository's root.
CONFIG_KEY: Final = "config"
#: The folder of the key slots, one object per key: ``keys/<key-id>``.
KEYS_PREFIX: Final = "keys"
#: The folder of the chunk objects, fanned out by the first byte of the id.
OBJECTS_PREFIX: Final = "objects"
#: Format v2: the folder of the pack objects, fanned out by the first byte of the pack id.
PACKS_PREFIX: Final = "packs"
#: Format v2: the folder of the index objects (few per repository, so not fanned out).
INDEX_PREFIX: Final = "index"
#: The folder of the sealed chain entries (manifests and prune records).
SNAPSHOTS_PREFIX: Final = "snapshots"
#: The folder of short-lived bookkeeping: the prune lock and the sweep marks.
LOCKS_PREFIX: Final = "locks"
#: The object key of the exclusive prune lock, on every target.
LOCK_KEY: Final = f"{LOCKS_PREFIX}/prune"
#: Where sweep marks live (beside the lock; ``verify`` and ``heal`` ignore ``locks/``).
SWEEP_PREFIX: Final = f"{LOCKS_PREFIX}/sweep"
#: A key that never exists: deleting it checks that a credential may delete at all.
DELETE_CHECK_KEY: Final = f"{LOCKS_PREFIX}/delete-check"
#: Where ``heal(repair=True)`` moves objects it may not delete.
QUARANTINE_PREFIX: Final = "quarantine"

_HEX_ID: Final = re.compile(rf"[0-9a-f]{{{2 * CHUNK_ID_SIZE}}}")
_MARK_TIME: Final = "%Y%m%dT%H%M%S%fZ"
# The C library writes years before 1000 without padding: the year has 1 to 4 digits.
_MARK: Final = re.compile(r"[0-9]{5,8}T[0-9]{12}Z-[0-9a-f]{8}")
_QUARANTINE_TIME: Final = "%Y%m%dT%H%M%SZ"
_QUARANTINE_STAMP: Final = re.compile(r"[0-9]{5,8}T[0-9]{6}Z")


class KeyKind(enum.Enum):
    """What an object key names in a repository (see the table in this module's docstring)."""

    CONFIG = "config"
    KEY_SLOT = "key slot"
    CHUNK = "chunk"
    SNAPSHOT = "snapshot"
    PACK = "pack"
    INDEX = "index"
    LOCK = "lock"
    SWEEP_MARK = "sweep mark"
    QUARANTINED = "quarantined"
    STRAY = "stray"


# -- builders ------------------------------------------------------------------------------------


def slot_key(key_id: str) -> str:
    """Return the object key of a key slot: ``keys/<key-id>``."""
    return f"{KEYS_PREFIX}/{key_id}"


def chunk_key(chunk_id: bytes) -> str:
    """Return the object key of a chunk: ``objects/<first two hex digits>/<id in hex>``."""
    name = chunk_id.hex()
    return f"{OBJECTS_PREFIX}/{name[:2]}/{name}"


def pack_key(pack_id: bytes) -> str:
    """Return the object key of a pack (format v2): ``packs/<first two hex digits>/<id in hex>``."""
    name = pack_id.hex()
    return f"{PACKS_PREFIX}/{name[:2]}/{name}"


def index_key(index_id: bytes) -> str:
    """Return the object key of an index object (format v2): ``index/<id in hex>``."""
    return f"{INDEX_PREFIX}/{index_id.hex()}"


def snapshot_key(name: str) -> str:
    """Return the object key of a chain entry (manifest or prune record): ``snapshots/<name>``."""
    return f"{SNAPSHOTS_PREFIX}/{name}"


def sweep_mark_key(now: datetime, token: str) -> str:
    """Return the key of a sweep mark made at ``now`` (aware): ``locks/sweep/<time>-<token>``.

    Args:
        now: when the mark is made.
        token: 8 lower-case hex digits that keep two marks of one instant apart.
    """
    return f"{SWEEP_PREFIX}/{now.astimezone(UTC).strftime(_MARK_TIME)}-{token}"


def quarantine_key(now: datetime, key: str) -> str:
    """Return where ``heal(repair=True)`` at ``now`` (aware) moves ``key``.

    The result is ``quarantine/<UTC time to the second>/<key>``.
    """
    return f"{QUARANTINE_PREFIX}/{now.astimezone(UTC).strftime(_QUARANTINE_TIME)}/{key}"


# -- parsers -------------------------------------------------------------------------------------


def slot_id_of(key: str) -> str | None:
    """Return the key id a ``keys/`` key names, or ``None`` when it is not a key slot's key."""
    folder, slash, key_id = key.partition("/")
    if folder != KEYS_PREFIX or not slash or not is_key_id(key_id):
        return None
    return key_id


def _fanned_out_id(key: str, prefix: str) -> bytes | None:
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != prefix or not _HEX_ID.fullmatch(parts[2]):
        return None
    if parts[1] != parts[2][:2]:
        return None
    return bytes.fromhex(parts[2])


def chunk_id_of(key: str) -> bytes | None:
    """Return the chunk id an ``objects/`` key names, or ``None`` when it is not a chunk's key.

    Only the exact form `chunk_key` writes parses (lower-case hex, the right folder).
    """
    return _fanned_out_id(key, OBJECTS_PREFIX)


def pack_id_of(key: str) -> bytes | None:
    """Return the pack id a ``packs/`` key names, or ``None`` when it is not a pack's key.

    Only the exact form `pack_key` writes parses (lower-case hex, the right folder).
    """
    return _fanned_out_id(key, PACKS_PREFIX)


def index_id_of(key: str) -> bytes | None:
    """Return the id an ``index/`` key names, or ``None`` when it is not an index object's key.

    Only the exact form `index_key` writes parses (lower-case hex, no extra segment).
    """
    folder, slash, name = key.partition("/")
    if folder != INDEX_PREFIX or not slash or not _HEX_ID.fullmatch(name):
        return None
    return bytes.fromhex(name)


def snapshot_name_of(key: str) -> str | None:
    """Return the entry name a ``snapshots/`` key names, or ``None`` when it names no entry.

    The name must be one an entry is stored under (`ctfy_vault.manifest.parse_entry_name`).
    """
    folder, slash, name = key.partition("/")
    if folder != SNAPSHOTS_PREFIX or not slash or parse_entry_name(name) is None:
        return None
    return name


def quarantined_of(key: str) -> tuple[str, str] | None:
    """Return ``(time stamp, original key)`` of a key under ``quarantine/``, or ``None``."""
    parts = key.split("/", 2)
    if len(parts) != 3 or parts[0] != QUARANTINE_PREFIX or not parts[2]:
        return None
    if not _QUARANTINE_STAMP.fullmatch(parts[1]):
        return None
    return parts[1], parts[2]


def _is_sweep_mark(key: str) -> bool:
    folder, slash, name = key.rpartition("/")
    return folder == SWEEP_PREFIX and bool(slash) and _MARK.fullmatch(name) is not None


def kind_of(key: str) -> KeyKind:
    """Classify an object key of a repository target; `KeyKind.STRAY` when it is no object.

    Args:
        key: a key relative to the target's root.

    Returns:
        What the key names.
    """
    if key == CONFIG_KEY:
        return KeyKind.CONFIG
    if key == LOCK_KEY:
        return KeyKind.LOCK
    parsed = (
        (KeyKind.KEY_SLOT, slot_id_of(key)),
        (KeyKind.CHUNK, chunk_id_of(key)),
        (KeyKind.SNAPSHOT, snapshot_name_of(key)),
        (KeyKind.PACK, pack_id_of(key)),
        (KeyKind.INDEX, index_id_of(key)),
        (KeyKind.QUARANTINED, quarantined_of(key)),
    )
    for kind, value in parsed:
        if value is not None:
            return kind
    if _is_sweep_mark(key):
        return KeyKind.SWEEP_MARK
    return KeyKind.STRAY


def unexpected_key(key: str) -> bool:
    """Whether a key is no object this library writes (`kind_of` says `KeyKind.STRAY`).

    Such an object (``snapshots/zzz``, a stray file among the chunks or the key slots, junk at
    the top level) is no part of the repository: backup, prune, restore and heal ignore it,
    ``verify`` reports it, and ``heal(repair=True)`` moves it to ``quarantine/``.
    """
    return kind_of(key) is KeyKind.STRAY


def in_lock_area(key: str) -> bool:
    """Whether a key lies under ``locks/`` (short-lived bookkeeping: never copied or verified)."""
    return key.startswith(f"{LOCKS_PREFIX}/")
