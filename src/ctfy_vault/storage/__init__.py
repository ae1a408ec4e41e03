"""Storage targets: one fsspec filesystem + a root path, with create-only writes and probed capabilities.

The only package that imports fsspec, s3fs, boto3/botocore or adlfs. Backend quirks (conditional
writes, checksum settings, addressing styles, error shapes) are handled here and nowhere else;
callers ask `Target.supports` (static `Support` flags) or `Target.probe` (`Capabilities`), never a
backend's name.
"""

from ctfy_vault.storage._anonymous import AnonymousProbe
from ctfy_vault.storage._backends import (
    DEFAULT_PART_SIZE,
    MAX_EXPIRES_IN,
    Entry,
    LockMode,
    Support,
    read_full,
)
from ctfy_vault.storage._errors import RetryPolicy
from ctfy_vault.storage._keys import MAX_KEY_BYTES, validate_key
from ctfy_vault.storage._probe import Capabilities
from ctfy_vault.storage._target import Target, set_retain_until, whole_second

__all__ = [
    "DEFAULT_PART_SIZE",
    "MAX_EXPIRES_IN",
    "MAX_KEY_BYTES",
    "AnonymousProbe",
    "Capabilities",
    "Entry",
    "LockMode",
    "RetryPolicy",
    "Support",
    "Target",
    "read_full",
    "set_retain_until",
    "validate_key",
    "whole_second",
]
