"""S3 Object Lock: give a stored object a retain-until date, so nobody can delete it before then.

Used by the writer after each create-only write, on targets whose probe reports Object Lock. The
date can only be extended on an object under COMPLIANCE mode; S3 refuses to shorten it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from ctfy_vault.exceptions import ConfigurationError, UnsupportedError
from ctfy_vault.storage._errors import call_with_retry
from ctfy_vault.storage._sign import backend_kind, object_path
from ctfy_vault.storage._target import Target

__all__ = ["LockMode", "set_retain_until"]

LockMode = Literal["COMPLIANCE", "GOVERNANCE"]


def set_retain_until(
    target: Target, key: str, until: datetime, *, mode: LockMode = "COMPLIANCE"
) -> None:
    """Set an Object Lock retention on one stored object (one ``PutObjectRetention`` request).

    Atomicity: the retention applies to the object's current version as a whole, or not at all.
    In COMPLIANCE mode no credentials can delete the version or shorten the date before ``until``;
    GOVERNANCE mode can be bypassed by a user holding ``s3:BypassGovernanceRetention``.

    Args:
        target: an S3 target on a bucket created with Object Lock enabled.
        key: the object's key.
        until: the retain-until time (aware).
        mode: ``COMPLIANCE`` (default) or ``GOVERNANCE``.

    Raises:
        ConfigurationError: ``until`` is naive, or ``mode`` is unknown.
        UnsupportedError: the target is not on S3.
        StorageError: the request failed (e.g. the bucket has no Object Lock, or a shorter date
            was asked for a COMPLIANCE-locked object), after retries for transient failures.
    """
    if until.utcoffset() is None:
        raise ConfigurationError("until must be an aware datetime")
    if mode not in ("COMPLIANCE", "GOVERNANCE"):
        raise ConfigurationError("mode must be 'COMPLIANCE' or 'GOVERNANCE'")
    if backend_kind(target) != "s3":
        raise UnsupportedError(f"Object Lock retention needs an S3 target, not {target.name}")
    bucket, name = object_path(target, key)
    retention = {"Mode": mode, "RetainUntilDate": until.astimezone(UTC)}
    call_with_retry(
        lambda: target.fs.call_s3(
            "put_object_retention", Bucket=bucket, Key=name, Retention=retention
        ),
        policy=target.retry,
        op="retain",
        target=target.name,
        key=key,
    )
