"""The never-deleting document mirror: a bucket copied continuously to replicas.

`mirror` copies new and changed objects, keeps every previous version on each replica (bucket
versioning, or the ``.ctfy-versions/`` folder), verifies every copy and never deletes; `watch`
repeats it on an interval.
"""

from ctfy_vault.mirror._state import MirrorState
from ctfy_vault.mirror._sync import (
    VERSIONS_PREFIX,
    MirrorReport,
    ObjectOutcome,
    mirror,
    watch,
)

__all__ = [
    "VERSIONS_PREFIX",
    "MirrorReport",
    "MirrorState",
    "ObjectOutcome",
    "mirror",
    "watch",
]
