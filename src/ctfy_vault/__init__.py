"""ctfy_vault: multi-cloud, retained, append-only, encrypted backups.

The public surface is re-exported here; everything in a module whose name starts with an underscore is
private and may change without notice.
"""

from ctfy_vault._version import __version__
from ctfy_vault.exceptions import VaultError
from ctfy_vault.retention import Duration, Policy, Reason, RetentionPlan, plan, unlimited
from ctfy_vault.storage import Capabilities, RetryPolicy, Target

__all__ = [
    "Capabilities",
    "Duration",
    "Policy",
    "Reason",
    "RetentionPlan",
    "RetryPolicy",
    "Target",
    "VaultError",
    "__version__",
    "plan",
    "unlimited",
]
