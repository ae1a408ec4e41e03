"""Storage targets: one fsspec filesystem + a root path, with create-only writes and probed capabilities.

The only package that imports fsspec, s3fs, boto3/botocore or adlfs. Backend quirks (conditional
writes, checksum settings, addressing styles, error shapes) are handled here and nowhere else.
"""

from ctfy_vault.storage._backends import DEFAULT_PART_SIZE, read_full
from ctfy_vault.storage._errors import RetryPolicy
from ctfy_vault.storage._keys import MAX_KEY_BYTES, validate_key
from ctfy_vault.storage._probe import Capabilities
from ctfy_vault.storage._retention_lock import LockMode, set_retain_until
from ctfy_vault.storage._target import Target

__all__ = [
    "DEFAULT_PART_SIZE",
    "MAX_KEY_BYTES",
    "Capabilities",
    "LockMode",
    "RetryPolicy",
    "Target",
    "read_full",
    "set_retain_until",
    "validate_key",
]
