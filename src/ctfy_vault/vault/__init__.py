"""The repository facade: init/open, backup, snapshots, restore and verify over several targets.

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
    >>> vault.open_file(info, "db.sql").read()
    b'INSERT 1;'
    >>> vault.verify(read_data=True).ok
    True
"""

from ctfy_vault.vault._config import CONFIG_KEY, REPOSITORY_FORMAT, RepoConfig
from ctfy_vault.vault._model import BackupInfo, Problem, RestoreReport, SnapshotInfo, VerifyReport
from ctfy_vault.vault._vault import Source, Vault

__all__ = [
    "CONFIG_KEY",
    "REPOSITORY_FORMAT",
    "BackupInfo",
    "Problem",
    "RepoConfig",
    "RestoreReport",
    "SnapshotInfo",
    "Source",
    "Vault",
    "VerifyReport",
]
