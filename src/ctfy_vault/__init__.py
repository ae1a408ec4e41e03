"""ctfy_vault: multi-cloud, retained, append-only, encrypted backups.

The public surface is re-exported here; everything in a module whose name starts with an underscore is
private and may change without notice.
"""

from ctfy_vault._version import __version__
from ctfy_vault.crypto import Cipher, MasterKeys, Passphrase, RawKey, Sealer
from ctfy_vault.exceptions import VaultError
from ctfy_vault.links import (
    LinkPolicy,
    LinkSigner,
    SignedLink,
    check_not_public,
    presign,
    verify_link,
)
from ctfy_vault.manifest import FileEntry, Manifest, PruneRecord, verify_chain
from ctfy_vault.mirror import MirrorReport, MirrorState, mirror
from ctfy_vault.retention import Duration, Policy, Reason, RetentionPlan, plan, unlimited
from ctfy_vault.storage import Capabilities, RetryPolicy, Target
from ctfy_vault.vault import (
    KnownHeads,
    LineageHead,
    RestoreReport,
    SnapshotInfo,
    Vault,
    VerifyReport,
)
from ctfy_vault.writer import (
    BackupResult,
    ChunkerParams,
    CommandSource,
    HealReport,
    StreamSource,
    TargetOutcome,
    Writer,
    heal,
)

__all__ = [
    "BackupResult",
    "Capabilities",
    "ChunkerParams",
    "Cipher",
    "CommandSource",
    "Duration",
    "FileEntry",
    "HealReport",
    "KnownHeads",
    "LineageHead",
    "LinkPolicy",
    "LinkSigner",
    "Manifest",
    "MasterKeys",
    "MirrorReport",
    "MirrorState",
    "Passphrase",
    "Policy",
    "PruneRecord",
    "RawKey",
    "Reason",
    "RestoreReport",
    "RetentionPlan",
    "RetryPolicy",
    "Sealer",
    "SignedLink",
    "SnapshotInfo",
    "StreamSource",
    "Target",
    "TargetOutcome",
    "Vault",
    "VaultError",
    "VerifyReport",
    "Writer",
    "__version__",
    "check_not_public",
    "heal",
    "mirror",
    "plan",
    "presign",
    "unlimited",
    "verify_chain",
    "verify_link",
]
