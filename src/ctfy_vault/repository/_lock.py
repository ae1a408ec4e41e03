"""The exclusive prune lock: one create-only ``locks/prune`` object on every target.

Backups take no lock (they only add objects); prune is the one operation that deletes, so it alone
is exclusive. The lock is a small plaintext JSON document (who, where, until when; nothing secret)
written create-only, so of two prunes racing for it exactly one wins on each target. Targets are
locked in order and a prune that loses anywhere releases what it took.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from ctfy_vault.exceptions import (
    LockError,
    ObjectExistsError,
    ObjectNotFoundError,
    StorageError,
)
from ctfy_vault.repository._layout import LOCK_KEY
from ctfy_vault.storage import Target

__all__ = ["LOCK_KEY", "LockInfo", "acquire", "read_lock", "release"]

_VERSION = 1


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("lock times must be timezone-aware")
    return value.astimezone(UTC)


@attrs.frozen(kw_only=True)
class LockInfo:
    """Who holds (or held) the prune lock.

    Attributes:
        lock_id: a random id, unique per acquisition.
        host: the machine that took it.
        pid: its process id there.
        created: when it was taken (UTC).
        expires: when it stops protecting its holder (UTC); a prune checks it has not passed
            before each deletion step and stops if it has.
    """

    lock_id: str
    host: str
    pid: int
    created: datetime = attrs.field(converter=_utc)
    expires: datetime = attrs.field(converter=_utc)

    def holder_alive(self) -> bool | None:
        """Whether the holding process still runs: ``None`` when it runs on another host."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def stale(self, now: datetime) -> bool:
        """Whether the lock may be broken: past its expiry and its holder not known to be alive.

        A holder on this host is checked by process id; one on another host cannot be, so there
        expiry alone decides.
        """
        return _utc(now) >= self.expires and self.holder_alive() is not True

    def describe(self) -> str:
        """One line naming the holder, for messages."""
        return (
            f"host {self.host} pid {self.pid} since {self.created.isoformat()} "
            f"(expires {self.expires.isoformat()})"
        )

    def to_json(self) -> bytes:
        """The stored document."""
        document = {
            "version": _VERSION,
            "lock_id": self.lock_id,
            "host": self.host,
            "pid": self.pid,
            "created": self.created.isoformat(),
            "expires": self.expires.isoformat(),
        }
        return json.dumps(document, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> LockInfo:
        """Parse a stored lock document.

        Raises:
            ValueError: it is not a lock document of a known version.
        """
        try:
            document: Any = json.loads(data)
            if not isinstance(document, dict) or document.get("version") != _VERSION:
                raise ValueError("not a version 1 lock document")
            return cls(
                lock_id=str(document["lock_id"]),
                host=str(document["host"]),
                pid=int(document["pid"]),
                created=datetime.fromisoformat(document["created"]),
                expires=datetime.fromisoformat(document["expires"]),
            )
        except (KeyError, TypeError, ValueError, UnicodeDecodeError) as err:
            raise ValueError(f"malformed lock document: {err}") from err


def new_lock(now: datetime, ttl: timedelta) -> LockInfo:
    """Describe a lock taken by this process at ``now`` for ``ttl``."""
    return LockInfo(
        lock_id=secrets.token_hex(8),
        host=socket.gethostname(),
        pid=os.getpid(),
        created=now,
        expires=_utc(now) + ttl,
    )


def read_lock(target: Target) -> LockInfo | None:
    """Return the lock held on ``target``, or ``None``.

    Raises:
        StorageError: the target could not be read.
        LockError: an unreadable document holds the lock key (break it with ``force``).
    """
    try:
        data = target.read(LOCK_KEY)
    except ObjectNotFoundError:
        return None
    try:
        return LockInfo.from_json(data)
    except ValueError as err:
        raise LockError(f"the lock on {target.name} is unreadable: {err}") from err


def acquire(targets: Sequence[Target], lock: LockInfo) -> None:
    """Take ``lock`` on every target, in order; on any refusal release what was taken.

    Raises:
        LockError: another holder has the lock on a target (the message names it).
        StorageError: a target could not be written (nothing stays locked).
    """
    taken: list[Target] = []
    try:
        for target in targets:
            try:
                target.write(LOCK_KEY, lock.to_json())
            except ObjectExistsError:
                holder = _holder(target)
                raise LockError(
                    f"the repository is locked on {target.name} by {holder}; if that prune is "
                    "dead, break the lock once it has expired"
                ) from None
            taken.append(target)
    except BaseException:
        release(taken, lock)
        raise


def _holder(target: Target) -> str:
    try:
        found = read_lock(target)
    except (StorageError, LockError) as err:
        return f"an unknown holder ({err})"
    return "an unknown holder (just released)" if found is None else found.describe()


def release(targets: Sequence[Target], lock: LockInfo) -> dict[str, BaseException]:
    """Remove ``lock`` from every target that still holds it (never another holder's lock).

    Returns:
        The targets where it could not be removed, with the error.
    """
    errors: dict[str, BaseException] = {}
    for target in targets:
        try:
            held = read_lock(target)
            if held is not None and held.lock_id == lock.lock_id:
                target.delete(LOCK_KEY)
        except (StorageError, LockError) as err:
            errors[target.name] = err
    return errors
