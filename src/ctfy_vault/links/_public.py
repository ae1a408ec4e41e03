"""The "files are never public" check: an unsigned request must be refused."""

from __future__ import annotations

import attrs

from ctfy_vault.storage import Target


@attrs.frozen(kw_only=True)
class PublicAccessCheck:
    """Whether a target keeps the promise that its files are never public.

    Attributes:
        target: the target's display name.
        kept: ``True`` when every anonymous request was refused (or the backend has no public
            endpoint at all); ``False`` is a failed promise.
        object_status: HTTP status of the unsigned GET of an object (``None``: not tried).
        listing_status: HTTP status of the unsigned listing (``None``: not tried).
        problems: what anonymous readers could do, in words.
    """

    target: str
    kept: bool
    object_status: int | None
    listing_status: int | None
    problems: tuple[str, ...] = ()


def check_not_public(target: Target, key: str | None = None) -> PublicAccessCheck:
    """Send unsigned requests to the target's endpoint; report whether all were refused.

    Tries an unsigned GET of ``key`` (or of the first object listed, if any) and an unsigned listing
    of the bucket or container. A 2xx answer to either is a failed promise. Local-disk and memory
    targets have no endpoint of their own (``target.supports.anonymous_probe`` is false), so the
    promise holds there by construction (their files are reached only through the application's
    HMAC endpoint).

    Args:
        target: the documents bucket (S3) or container (Azure).
        key: an existing object to try; default: the first object the target lists.

    Returns:
        The verdict with the statuses seen.

    Raises:
        StorageError: the target could not be listed or reached.
    """
    if not target.supports.anonymous_probe:
        return PublicAccessCheck(
            target=target.name, kept=True, object_status=None, listing_status=None
        )
    if key is None:
        key = next(iter(target.list()), None)
    probe = target.anonymous_access(key)
    problems = []
    if probe.object_status is not None and 200 <= probe.object_status < 300:
        problems.append(f"an unsigned GET of an object was served (HTTP {probe.object_status})")
    if probe.listing_status is not None and 200 <= probe.listing_status < 300:
        problems.append(f"an unsigned listing was served (HTTP {probe.listing_status})")
    return PublicAccessCheck(
        target=target.name,
        kept=not problems,
        object_status=probe.object_status,
        listing_status=probe.listing_status,
        problems=tuple(problems),
    )
