"""ctfy_vault: multi-cloud, retained, append-only, encrypted backups.

The public surface is re-exported here; everything in a module whose name starts with an underscore is
private and may change without notice.
"""

from ctfy_vault._version import __version__
from ctfy_vault.crypto import Cipher, MasterKeys, Passphrase, RawKey, Sealer
from ctfy_vault.exceptions import VaultError
from ctfy_vault.manifest import FileEntry, Manifest, PruneRecord, verify_chain
from ctfy_vault.retention import Duration, Policy, Reason, RetentionPlan, plan, unlimited
from ctfy_vault.storage import Capabilities, RetryPolicy, Target

__all__ = [
    "Capabilities",
    "Cipher",
    "Duration",
    "FileEntry",
    "Manifest",
    "MasterKeys",
    "Passphrase",
    "Policy",
    "PruneRecord",
    "RawKey",
    "Reason",
    "RetentionPlan",
    "RetryPolicy",
    "Sealer",
    "Target",
    "VaultError",
    "__version__",
    "plan",
    "unlimited",
    "verify_chain",
]
