"""Key slots on a target: storing, listing, opening, adding, rotating and removing them.

The slot format and the wrapping are `ctfy_vault.crypto`'s; this module reads and writes the
``keys/<key-id>`` objects. Names under ``keys/`` that are no key slot's (see `kind_of`) are
strays and are not read.
"""

from __future__ import annotations

import os
from datetime import datetime

from ctfy_vault.crypto import Credential, KeySlot, MasterKeys
from ctfy_vault.crypto._sealer import RandomBytes
from ctfy_vault.crypto._slots import NO_SLOT_OPENS, check_key_id, decode_slot, new_slot, open_slot
from ctfy_vault.exceptions import (
    ConfigurationError,
    FormatError,
    IntegrityError,
    ObjectNotFoundError,
)
from ctfy_vault.repository._layout import KEYS_PREFIX, KeyKind, kind_of, slot_key
from ctfy_vault.storage import Target

__all__ = [
    "add_key_slot",
    "create_key_slot",
    "has_key_slots",
    "list_key_slots",
    "remove_key_slot",
    "rotate_key_slot",
    "unlock",
    "unlock_slot",
]


def create_key_slot(
    target: Target,
    *,
    repo_id: bytes,
    keys: MasterKeys,
    credential: Credential,
    now: datetime,
    key_id: str | None = None,
    randbytes: RandomBytes = os.urandom,
) -> KeySlot:
    """Wrap the master keys under ``credential`` and store the slot, create-only.

    Used at init, and by `add_key_slot` and `rotate_key_slot` once they hold the keys.

    Args:
        target: where ``keys/<key-id>`` is written.
        repo_id: the 16-byte repository id.
        keys: the master keys.
        credential: the passphrase (with its scrypt parameters) or raw key that will open it.
        now: the creation time recorded in the slot (aware).
        key_id: the slot id; a random 16-hex-digit id by default.
        randbytes: the source of salts, nonces and ids.

    Returns:
        The new slot's public part.

    Raises:
        ObjectExistsError: a slot with this id exists (slots are never rewritten).
        ConfigurationError: a bad key id or a naive ``now``.
    """
    slot, document = new_slot(
        repo_id=repo_id,
        keys=keys,
        credential=credential,
        now=now,
        key_id=key_id,
        randbytes=randbytes,
    )
    target.write(slot_key(slot.key_id), document)
    return slot


def _slot_keys(target: Target) -> list[str]:
    return [key for key in target.list(KEYS_PREFIX) if kind_of(key) is KeyKind.KEY_SLOT]


def has_key_slots(target: Target) -> bool:
    """Whether ``keys/`` holds a key slot's name (strays there are no slot).

    Raises:
        StorageError: the listing failed.
    """
    return bool(_slot_keys(target))


def _read_slots(target: Target) -> list[tuple[KeySlot, bytes]]:
    slots = []
    for object_key in _slot_keys(target):
        slot, blob = decode_slot(target.read(object_key))
        if slot_key(slot.key_id) != object_key:
            raise FormatError(f"key slot {object_key} names another id")
        slots.append((slot, blob))
    return sorted(slots, key=lambda pair: pair[0].key_id)


def list_key_slots(target: Target) -> list[KeySlot]:
    """List the key slots stored in ``target``, sorted by id, without opening any.

    Args:
        target: the repository target.

    Returns:
        The slots' public parts.

    Raises:
        FormatError: a stored slot is malformed.
    """
    return [slot for slot, _blob in _read_slots(target)]


def _unlock(
    target: Target, *, repo_id: bytes, credential: Credential, key_id: str | None
) -> tuple[MasterKeys, KeySlot]:
    for slot, blob in _read_slots(target):
        if key_id not in (None, slot.key_id):
            continue
        try:  # a slot of the other type is refused before any key derivation
            return open_slot(slot, blob, credential, repo_id=repo_id), slot
        except IntegrityError:
            continue
    raise IntegrityError(NO_SLOT_OPENS)


def unlock(
    target: Target, *, repo_id: bytes, credential: Credential, key_id: str | None = None
) -> MasterKeys:
    """Open the master keys with a passphrase or raw key.

    Every slot of the credential's type is tried (each passphrase attempt costs one scrypt run);
    name ``key_id`` to try only that slot.

    Args:
        target: the repository target.
        repo_id: the 16-byte repository id.
        credential: the passphrase or raw key.
        key_id: the slot to try, or ``None`` for all of the credential's type.

    Returns:
        The master keys.

    Raises:
        IntegrityError: no slot opens with this credential (one opaque error, whatever the cause).
        FormatError: a stored slot is malformed.
    """
    keys, _slot = _unlock(target, repo_id=repo_id, credential=credential, key_id=key_id)
    return keys


def unlock_slot(
    target: Target, *, repo_id: bytes, credential: Credential
) -> tuple[MasterKeys, KeySlot]:
    """Open the master keys like `unlock`, and say which slot opened them.

    Raises:
        IntegrityError: no slot opens with this credential (one opaque error).
        FormatError: a stored slot is malformed.
    """
    return _unlock(target, repo_id=repo_id, credential=credential, key_id=None)


def _rewrap(
    target: Target,
    *,
    repo_id: bytes,
    existing: Credential,
    new: Credential,
    now: datetime,
    key_id: str | None,
    randbytes: RandomBytes,
) -> tuple[KeySlot, KeySlot]:
    """Open the keys with ``existing`` and store them in a new slot for ``new``: (new, opened)."""
    keys, opened = _unlock(target, repo_id=repo_id, credential=existing, key_id=None)
    slot = create_key_slot(
        target,
        repo_id=repo_id,
        keys=keys,
        credential=new,
        now=now,
        key_id=key_id,
        randbytes=randbytes,
    )
    return slot, opened


def add_key_slot(
    target: Target,
    *,
    repo_id: bytes,
    existing: Credential,
    new: Credential,
    now: datetime,
    key_id: str | None = None,
    randbytes: RandomBytes = os.urandom,
) -> KeySlot:
    """Add a slot for ``new``, proving access with ``existing``.

    Args:
        target: the repository target.
        repo_id: the 16-byte repository id.
        existing: a credential that opens a current slot.
        new: the credential for the new slot.
        now: the creation time recorded (aware).
        key_id: the new slot's id; random by default.
        randbytes: the source of salts, nonces and ids.

    Returns:
        The new slot's public part.

    Raises:
        IntegrityError: ``existing`` opens no slot.
        ObjectExistsError: a slot with this id exists.
    """
    slot, _opened = _rewrap(
        target,
        repo_id=repo_id,
        existing=existing,
        new=new,
        now=now,
        key_id=key_id,
        randbytes=randbytes,
    )
    return slot


def remove_key_slot(target: Target, key_id: str) -> None:
    """Remove one key slot; privileged (it deletes), and never the last slot.

    Args:
        target: the repository target.
        key_id: the slot to remove.

    Raises:
        ObjectNotFoundError: there is no such slot.
        ConfigurationError: it is the only slot left (the repository would become unreadable).
    """
    check_key_id(key_id)
    ids = [slot.key_id for slot in list_key_slots(target)]
    if key_id not in ids:
        raise ObjectNotFoundError("no such key slot", target=target.name, key=slot_key(key_id))
    if len(ids) == 1:
        raise ConfigurationError("refusing to remove the last key slot")
    target.delete(slot_key(key_id))


def rotate_key_slot(
    target: Target,
    *,
    repo_id: bytes,
    old: Credential,
    new: Credential,
    now: datetime,
    key_id: str | None = None,
    randbytes: RandomBytes = os.urandom,
) -> KeySlot:
    """Replace the slot ``old`` opens with a new slot for ``new``; data is not re-encrypted.

    A new slot is written first (slots are never rewritten, so this works under Object Lock), then
    the old one is removed; a crash in between leaves both slots working.

    Args:
        target: the repository target.
        repo_id: the 16-byte repository id.
        old: the credential being retired.
        new: its replacement.
        now: the creation time recorded (aware).
        key_id: the new slot's id; random by default.
        randbytes: the source of salts, nonces and ids.

    Returns:
        The new slot's public part.

    Raises:
        IntegrityError: ``old`` opens no slot.
    """
    slot, opened = _rewrap(
        target,
        repo_id=repo_id,
        existing=old,
        new=new,
        now=now,
        key_id=key_id,
        randbytes=randbytes,
    )
    target.delete(slot_key(opened.key_id))
    return slot
