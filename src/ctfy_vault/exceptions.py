"""Every error `ctfy_vault` raises, and nothing else.

Callers catch `VaultError` for anything the library raises on purpose. Leaves also inherit the builtin a
caller already catches, so ``except FileExistsError`` or ``except ValueError`` keeps working::

    VaultError
    ├── ConfigurationError (ValueError)          bad URL, option, policy or config value
    │   ├── InvalidURLError                      a target URL that cannot be used
    │   ├── InvalidObjectKeyError                an object key that could escape or break a target
    │   ├── PolicyError                          a retention policy that cannot be applied
    │   └── AmbiguousSnapshotError (LookupError)  an id prefix that several snapshots share
    ├── UnsupportedError (NotImplementedError)   the backend cannot do what was asked
    ├── StorageError (OSError)                   a target failed; names the target (and key)
    │   ├── ObjectExistsError (FileExistsError)  create-only write refused: the object is there
    │   ├── ObjectNotFoundError (FileNotFoundError)
    │   │   └── SnapshotNotFoundError (LookupError)  no snapshot matches a reference
    │   ├── NotAFolderError (NotADirectoryError)  a key's parent is an object (a local file)
    │   ├── AccessDeniedError (PermissionError)  the credentials may not do this
    │   ├── DegradedTargetError                  holds no repository config or key slot (run heal)
    │   └── TransientStorageError                retried and still failing (5xx, SlowDown, resets)
    │       └── TargetUnreachableError (ConnectionError)  no connection to the endpoint at all
    ├── SourceFailedError (OSError)              a backup source's producer failed: nothing committed
    ├── IntegrityError                           authentication failed: wrong key or altered bytes
    ├── FormatError (ValueError)                 data in a format or version this release cannot read
    ├── LockError                                the repository is locked by someone else
    ├── RollbackError                            a lineage lost a head seen before (deleted, rolled back)
    ├── ChainOrderError (ValueError)             a copy would chain a snapshot after a newer head
    └── TargetsFailedError                       a multi-target operation missed required targets

No message ever contains a key, a passphrase or a signed URL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = [
    "AccessDeniedError",
    "AmbiguousSnapshotError",
    "ChainOrderError",
    "ConfigurationError",
    "DegradedTargetError",
    "FormatError",
    "IntegrityError",
    "InvalidObjectKeyError",
    "InvalidURLError",
    "LockError",
    "NotAFolderError",
    "ObjectExistsError",
    "ObjectNotFoundError",
    "PolicyError",
    "RollbackError",
    "SnapshotNotFoundError",
    "SourceFailedError",
    "StorageError",
    "TargetUnreachableError",
    "TargetsFailedError",
    "TransientStorageError",
    "UnsupportedError",
    "VaultError",
]


class VaultError(Exception):
    """Root of every error the library raises on purpose."""


class ConfigurationError(VaultError, ValueError):
    """A value given to the library cannot be used (URL, option, policy, config file)."""


class InvalidURLError(ConfigurationError):
    """A target URL has an unknown scheme, a missing bucket, or options that do not fit it."""


class InvalidObjectKeyError(ConfigurationError):
    """An object key is empty, absolute, has ``..``/empty segments, control characters or is too long."""


class PolicyError(ConfigurationError):
    """A retention policy is invalid (negative counts, unknown keys, bad durations, unknown zones)."""


class AmbiguousSnapshotError(ConfigurationError, LookupError):
    """A snapshot reference is a prefix of several snapshot ids; nothing was chosen.

    A `ConfigurationError` (a reference the caller must make longer, exit code 2 in the CLI) and a
    `LookupError`, like `SnapshotNotFoundError`. The message lists the first five ids.

    Attributes:
        ref: the reference given.
        matches: the ids it is a prefix of.
    """

    def __init__(self, ref: str, matches: Iterable[str]) -> None:
        self.ref = ref
        self.matches = tuple(matches)
        listed = ", ".join(self.matches[:5])
        super().__init__(f"snapshot prefix {ref!r} is ambiguous: {listed}")

    def __reduce__(self) -> tuple[object, ...]:  # keep the arguments through pickling
        return (type(self), (self.ref, self.matches))


class UnsupportedError(VaultError, NotImplementedError):
    """The backend or this release cannot do what was asked."""


class StorageError(VaultError, OSError):
    """A storage target failed an operation.

    Attributes:
        target: display name of the target (its URL without credentials).
        key: the object key involved, relative to the target's root, or ``None``.
    """

    def __init__(self, message: str, *, target: str, key: str | None = None) -> None:
        where = f"{target}" if key is None else f"{target}: {key}"
        super().__init__(f"{message} [{where}]")
        self.target = target
        self.key = key

    def __reduce__(self) -> tuple[object, ...]:  # keep keyword-only args through pickling
        return (_rebuild, (type(self), self.args[0], self.target, self.key))

    def __str__(self) -> str:
        return str(self.args[0])


def _rebuild(cls: type[StorageError], text: str, target: str, key: str | None) -> StorageError:
    err = cls.__new__(cls)
    Exception.__init__(err, text)
    err.target = target
    err.key = key
    return err


class ObjectExistsError(StorageError, FileExistsError):
    """A create-only write found the object already there; the stored bytes were not changed."""


class ObjectNotFoundError(StorageError, FileNotFoundError):
    """The object (or the bucket/container holding it) does not exist."""


class SnapshotNotFoundError(ObjectNotFoundError, LookupError):
    """No snapshot matches a reference (a name, an id, an id prefix, ``latest[:LINEAGE]``).

    An `ObjectNotFoundError` whose ``target`` is ``repository`` (every target was listed) and
    whose ``key`` is the reference; also a `LookupError`, as a missing mapping key is.
    """


class NotAFolderError(StorageError, NotADirectoryError):
    """A key cannot be stored: a parent of it is an object (on a local folder target, a file).

    ``a/b`` cannot be created on a folder target holding an object ``a``; nothing was changed.
    """


class AccessDeniedError(StorageError, PermissionError):
    """The target refused the operation for these credentials."""


class DegradedTargetError(StorageError):
    """A target does not hold this repository in full (no readable config, or no key slot).

    Wiped, emptied, a mistyped prefix, or unreachable when checked: writing operations leave it
    alone (nothing is written there, it never counts toward a quorum) until ``heal`` restores the
    config and key slots, then the data. The error that showed it is chained as ``__cause__``.
    """


class TransientStorageError(StorageError):
    """A failure that may pass (5xx, 503 SlowDown, timeout, reset) persisted through every retry."""


class TargetUnreachableError(TransientStorageError, ConnectionError):
    """No connection could be made to the target's endpoint."""


class SourceFailedError(VaultError, OSError):
    """A backup source did not complete, so the backup committed nothing on any target.

    The program producing a stream exited non-zero, was killed by a signal or could not be started,
    or a stream's completion check refused it. The text names the program (its ``argv[0]``) and
    its exit status or signal, never its other arguments or its environment, which may hold a
    password (a ``pg_dump`` connection URI).

    Attributes:
        program: the program's ``argv[0]``, or ``None`` for a stream's completion check.
        returncode: the exit status; negative for a signal (``-9`` is ``SIGKILL``); ``None`` when
            the program could not be started or for a completion check.
    """

    def __init__(
        self, message: str, *, program: str | None = None, returncode: int | None = None
    ) -> None:
        super().__init__(message)
        self.program = program
        self.returncode = returncode


class IntegrityError(VaultError):
    """Authentication failed: a wrong key or passphrase, or bytes altered after they were sealed.

    Deliberately opaque: it never says which of the two, nor anything about the key.
    """


class FormatError(VaultError, ValueError):
    """Stored data uses a format or version this release cannot read."""


class LockError(VaultError):
    """The repository is locked by another process (only ``prune`` takes the lock)."""


class RollbackError(VaultError):
    """A lineage no longer holds, or no longer descends from, a head seen before.

    Its newest entries were deleted (on every target) or the storage was rolled back; chaining a
    new snapshot onto the older head would hide that. The message names the lineage and the head.
    """


class ChainOrderError(VaultError, ValueError):
    """A copy would chain a snapshot onto a lineage head newer than itself; nothing was copied.

    A lineage's chain runs oldest first (``verify`` reports an entry older than its predecessor
    as a rollback), so `Vault.copy` refuses, before writing anything, to copy a snapshot older
    than the destination lineage's head. The message names the lineage, the snapshot and the head.

    Attributes:
        lineage: the destination lineage.
        snapshot: the name of the snapshot that would go after a newer head.
        head: the name of the destination lineage's head.
    """

    def __init__(self, message: str, *, lineage: str, snapshot: str, head: str) -> None:
        super().__init__(message)
        self.lineage = lineage
        self.snapshot = snapshot
        self.head = head

    def __reduce__(self) -> tuple[object, ...]:  # keep keyword-only args through pickling
        return (_rebuild_order, (self.args[0], self.lineage, self.snapshot, self.head))


def _rebuild_order(text: str, lineage: str, snapshot: str, head: str) -> ChainOrderError:
    return ChainOrderError(text, lineage=lineage, snapshot=snapshot, head=head)


class TargetsFailedError(VaultError):
    """A multi-target operation did not reach the targets it required.

    Attributes:
        outcomes: for each target name, ``None`` when it succeeded, or the error that stopped it.
    """

    def __init__(self, message: str, outcomes: Mapping[str, BaseException | None]) -> None:
        failed = ", ".join(f"{name}: {err}" for name, err in outcomes.items() if err is not None)
        super().__init__(f"{message} ({failed})" if failed else message)
        self.outcomes = dict(outcomes)
