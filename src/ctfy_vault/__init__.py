"""ctfy_vault: multi-cloud, retained, append-only, encrypted backups.

The top level is the front door: the names most code needs, loaded on first use (PEP 562), so
``import ctfy_vault.retention`` does not pull in cryptography or the storage libraries. The engine
(`ctfy_vault.writer.Writer`, `ctfy_vault.crypto.Sealer`, manifests, heal, ...) lives in its
subpackages. Everything in a module whose name starts with an underscore is private and may change
without notice.

    >>> import ctfy_vault
    >>> ctfy_vault.plan  # doctest: +ELLIPSIS
    <function plan at ...>
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from ctfy_vault._compat import forward
from ctfy_vault._version import __version__

if TYPE_CHECKING:
    from ctfy_vault.crypto import Passphrase, RawKey
    from ctfy_vault.exceptions import VaultError
    from ctfy_vault.links import presign
    from ctfy_vault.mirror import MirrorReport, mirror
    from ctfy_vault.retention import Duration, Policy, RetentionPlan, plan
    from ctfy_vault.storage import Capabilities, RetryPolicy, Target
    from ctfy_vault.vault import (
        BackupInfo,
        CopyReport,
        PruneReport,
        RestoreReport,
        SnapshotInfo,
        Vault,
        VerifyReport,
    )
    from ctfy_vault.writer import CommandSource, StreamSource

#: The front door: each name and the subpackage that defines it.
_FRONT: dict[str, str] = {
    "BackupInfo": "ctfy_vault.vault",
    "Capabilities": "ctfy_vault.storage",
    "CommandSource": "ctfy_vault.writer",
    "CopyReport": "ctfy_vault.vault",
    "Duration": "ctfy_vault.retention",
    "MirrorReport": "ctfy_vault.mirror",
    "Passphrase": "ctfy_vault.crypto",
    "Policy": "ctfy_vault.retention",
    "PruneReport": "ctfy_vault.vault",
    "RawKey": "ctfy_vault.crypto",
    "RestoreReport": "ctfy_vault.vault",
    "RetentionPlan": "ctfy_vault.retention",
    "RetryPolicy": "ctfy_vault.storage",
    "SnapshotInfo": "ctfy_vault.vault",
    "StreamSource": "ctfy_vault.writer",
    "Target": "ctfy_vault.storage",
    "Vault": "ctfy_vault.vault",
    "VaultError": "ctfy_vault.exceptions",
    "VerifyReport": "ctfy_vault.vault",
    "mirror": "ctfy_vault.mirror",
    "plan": "ctfy_vault.retention",
    "presign": "ctfy_vault.links",
}

#: Names the top level exported before it became the front door: still importable, with a
#: `DeprecationWarning` naming the subpackage to import them from.
_MOVED: dict[str, str] = {
    "BackupResult": "ctfy_vault.writer",
    "ChunkerParams": "ctfy_vault.writer",
    "Cipher": "ctfy_vault.crypto",
    "FileEntry": "ctfy_vault.manifest",
    "HealReport": "ctfy_vault.writer",
    "KnownHeads": "ctfy_vault.vault",
    "LineageHead": "ctfy_vault.vault",
    "LinkPolicy": "ctfy_vault.links",
    "LinkSigner": "ctfy_vault.links",
    "Manifest": "ctfy_vault.manifest",
    "MasterKeys": "ctfy_vault.crypto",
    "MirrorState": "ctfy_vault.mirror",
    "PruneRecord": "ctfy_vault.manifest",
    "Reason": "ctfy_vault.retention",
    "Sealer": "ctfy_vault.crypto",
    "SignedLink": "ctfy_vault.links",
    "TargetOutcome": "ctfy_vault.writer",
    "Writer": "ctfy_vault.writer",
    "check_not_public": "ctfy_vault.links",
    "heal": "ctfy_vault.writer",
    "unlimited": "ctfy_vault.retention",
    "verify_chain": "ctfy_vault.manifest",
    "verify_link": "ctfy_vault.links",
}

__all__ = [
    "BackupInfo",
    "Capabilities",
    "CommandSource",
    "CopyReport",
    "Duration",
    "MirrorReport",
    "Passphrase",
    "Policy",
    "PruneReport",
    "RawKey",
    "RestoreReport",
    "RetentionPlan",
    "RetryPolicy",
    "SnapshotInfo",
    "StreamSource",
    "Target",
    "Vault",
    "VaultError",
    "VerifyReport",
    "__version__",
    "mirror",
    "plan",
    "presign",
]


_forward_moved = forward(__name__, _MOVED)


def __getattr__(name: str) -> Any:
    """Load a front-door name from its subpackage on first use (and the moved names, warning)."""
    module = _FRONT.get(name)
    if module is None:
        return _forward_moved(name)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_FRONT})


class _FrontDoor(types.ModuleType):
    """The package's module type: importing ``ctfy_vault.mirror`` keeps ``ctfy_vault.mirror`` the function.

    The import system binds each loaded subpackage as an attribute of its parent; for a front-door
    name that is also a subpackage's name, the function stays and the subpackage is reached by
    importing it (``from ctfy_vault.mirror import Mirror``).
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FRONT and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _FrontDoor
