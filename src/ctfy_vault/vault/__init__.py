"""The repository facade: init/open, backup, snapshots, restore, prune, verify and keys.

A `Vault` is one encrypted, append-only repository mirrored on several targets. Writes go to
every target create-only; reads take each object from the first target that gives it intact.
``docs/vault.md`` describes the behaviour and the ``config`` document.

    >>> from datetime import datetime, timezone
    >>> from io import BytesIO
    >>> from ctfy_vault.crypto import RawKey
    >>> from ctfy_vault.testing import memory_target
    >>> from ctfy_vault.vault import Vault
    >>> from ctfy_vault.writer import StreamSource
    >>> targets = [memory_target(), memory_target()]
    >>> now = datetime(2026, 11, 1, tzinfo=timezone.utc)
    >>> vault = Vault.init(targets, key=RawKey(bytes(32)), now=now)
    >>> dump = StreamSource(name="db.sql", stream=BytesIO(b"INSERT 1;"))
    >>> info = vault.backup(dump, lineage="db", host="h", now=now)
    >>> [s.snapshot_id == info.snapshot_id for s in vault.snapshots()]
    [True]
    >>> vault.find("latest:db") == vault.find(info.snapshot_id[:8])
    True
    >>> vault.open_file(info, "db.sql").read()
    b'INSERT 1;'
    >>> report = vault.verify(read_data=True)
    >>> report.ok
    True
    >>> report.heads.get("db") == info.head
    True
    >>> vault.verify(known_heads=report.heads).ok
    True
"""

from ctfy_vault._compat import forward
from ctfy_vault.repository import (
    CONFIG_KEY,
    HEADS_FORMAT,
    LOCK_KEY,
    REPOSITORY_FORMAT,
    KnownHeads,
    LineageHead,
    LockInfo,
    Problem,
    RepoConfig,
    VerifyReport,
)
from ctfy_vault.vault._copy import ORIGIN_TAG, origin_tag
from ctfy_vault.vault._find import LATEST, check_reference, find_snapshot
from ctfy_vault.vault._locks import LockReport
from ctfy_vault.vault._model import BackupInfo, CopyReport, RestoreReport, SnapshotInfo
from ctfy_vault.vault._prune import (
    DEFAULT_GRACE,
    DEFAULT_LOCK_TTL,
    DEFAULT_REPACK_BELOW,
    PruneReport,
)
from ctfy_vault.vault._status import LineageStatus, Status
from ctfy_vault.vault._vault import Vault
from ctfy_vault.writer import BackupSource

__all__ = [
    "CONFIG_KEY",
    "DEFAULT_GRACE",
    "DEFAULT_LOCK_TTL",
    "DEFAULT_REPACK_BELOW",
    "HEADS_FORMAT",
    "LATEST",
    "LOCK_KEY",
    "ORIGIN_TAG",
    "REPOSITORY_FORMAT",
    "BackupInfo",
    "BackupSource",
    "CopyReport",
    "KnownHeads",
    "LineageHead",
    "LineageStatus",
    "LockInfo",
    "LockReport",
    "Problem",
    "PruneReport",
    "RepoConfig",
    "RestoreReport",
    "SnapshotInfo",
    "Status",
    "Vault",
    "VerifyReport",
    "check_reference",
    "find_snapshot",
    "origin_tag",
]


#: ``Source`` is the old name of `BackupSource`.
__getattr__ = forward(__name__, {"Source": "ctfy_vault.writer:BackupSource"})
