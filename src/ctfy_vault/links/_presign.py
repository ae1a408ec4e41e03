"""`presign`: one expiring, read-only link to one object, whatever the target's backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs

from ctfy_vault.exceptions import ConfigurationError, ObjectNotFoundError, UnsupportedError
from ctfy_vault.links._hmac import LinkSigner
from ctfy_vault.links._policy import (
    DEFAULT_TTL,
    MAX_TTL,
    READ_METHODS,
    LinkPolicy,
    content_disposition,
    signing_time,
    whole_seconds,
)
from ctfy_vault.storage import Target, validate_key

_DEFAULT_POLICY = LinkPolicy()


@attrs.frozen(kw_only=True)
class SignedLink:
    """An expiring, read-only link to one object.

    The URL is a bearer secret until ``expires_at``: it is left out of ``repr`` and ``str`` and must
    not be logged.

    Attributes:
        url: the link itself (hidden from ``repr``).
        expires_at: aware UTC time after which the link is refused.
        method: ``GET`` or ``HEAD``.
        key: the object key, relative to the target's root.
        target: the target's display name.
        scheme: how it is signed: ``sigv4`` (S3), ``sas`` (Azure) or ``hmac`` (local endpoint).
        filename: the download name the link asks for, if any.
        content_type: the ``Content-Type`` the link asks for, if any.
        client_ip: the only address allowed to use it, if bound.
    """

    url: str = attrs.field(repr=False)
    expires_at: datetime
    method: str
    key: str
    target: str
    scheme: str
    filename: str | None = None
    content_type: str | None = None
    client_ip: str | None = None

    def __str__(self) -> str:
        return repr(self)


def _check_request(
    policy: LinkPolicy, ttl: timedelta, method: str, content_type: str | None
) -> int:
    seconds = policy.check_ttl(ttl)
    # The product's cap holds whatever a policy object (or a subclass of it) answers.
    if type(seconds) is not int or not 1 <= seconds <= whole_seconds(MAX_TTL):
        raise ConfigurationError(f"a signed link may live at most {MAX_TTL}")
    if method not in READ_METHODS:
        raise ConfigurationError(
            f"signed links are read-only: method must be GET or HEAD, not {method!r}"
        )
    if content_type is not None and any(ord(ch) < 32 or ord(ch) > 126 for ch in content_type):
        raise ConfigurationError("content_type must be printable ASCII")
    return seconds


def presign(
    target: Target,
    key: str,
    *,
    ttl: timedelta = DEFAULT_TTL,
    filename: str | None = None,
    content_type: str | None = None,
    method: str = "GET",
    client_ip: str | None = None,
    policy: LinkPolicy = _DEFAULT_POLICY,
    signer: LinkSigner | None = None,
    check_exists: bool = False,
    now: datetime | None = None,
) -> SignedLink:
    """Sign a read-only link to one object that dies after ``ttl`` (never more than one hour).

    The target's `Support` flags choose the way, never its backend's name:

    * backends that sign (``supports.presign``): the backend's own link, `Target.presign_url`.
      S3 and S3-compatibles (Spaces, Ceph): a SigV4 query signature in the target's addressing
      style; no request is made. ``client_ip`` is refused: a SigV4 link cannot carry it (use a
      bucket policy). Azure Blob: a blob-scoped SAS with read permission only, optionally bound
      to ``client_ip``.
    * backends without an endpoint (``supports.hmac_links``: local disk, memory): an HMAC link to
      the application's own endpoint (``signer``), checked there with `verify_link`. This part
      has nothing of the backend in it, so it lives here rather than in storage.

    Args:
        target: where the object is.
        key: the object key, relative to the target's root; keys that could leave the root
            (``..``, absolute paths) are refused before anything is signed.
        ttl: how long the link works; at least one second, at most ``policy.max_ttl``.
        filename: download name, sent as an RFC 6266 ``Content-Disposition`` with an RFC 5987
            ``filename*`` for non-ASCII names.
        content_type: ``Content-Type`` the server should send.
        method: ``GET`` or ``HEAD``.
        client_ip: bind the link to one client address (Azure SAS and local links).
        policy: the limits; it may lower the one-hour cap, never raise it.
        signer: the secret and endpoint for local links (required for local and memory targets).
        check_exists: first check that the object exists (one request).
        now: the current time for SAS and local links (default: the system clock). It must
            be aware, not ahead of the system clock and at most `CLOCK_SKEW` behind it: the
            link is valid from ``now`` (the SAS start time) to ``now + ttl``, so it never
            outlives ``ttl`` measured from the real time. S3 signatures always carry the
            system clock, so ``now`` is refused for S3 targets.

    Returns:
        The link, with its expiry time: never more than ``ttl`` (at most one hour) after the
        system clock at the call.

    Raises:
        ConfigurationError: bad TTL, method, name or time (``now`` ahead of the system clock or
            more than `CLOCK_SKEW` behind it), or a local target without ``signer``.
        InvalidObjectKeyError: ``key`` is unsafe.
        ObjectNotFoundError: ``check_exists`` and nothing is stored under ``key``.
        UnsupportedError: the backend cannot sign this kind of link.
    """
    # The one clock a link's lifetime is measured from, read once: ``now`` is checked against it.
    clock = datetime.now(UTC)
    seconds = _check_request(policy, ttl, method, content_type)
    support = target.supports
    if support.presign and not support.presign_start and now is not None:
        raise ConfigurationError(
            f"{target.name}: links are signed with the system clock; do not pass now"
        )
    start = signing_time(now, clock)
    validate_key(key)  # before any request; the backend's signing checks its own limits too
    disposition = content_disposition(filename) if filename is not None else None
    if check_exists and not target.exists(key):
        raise ObjectNotFoundError("presign: no such object", target=target.name, key=key)
    if support.presign:
        # SigV4 carries its own start (X-Amz-Date, botocore's reading of the system clock) and
        # the lifetime in whole seconds (X-Amz-Expires), checked against the cap above; a SAS
        # signs ``start`` itself.
        url = target.presign_url(
            key,
            expires_in=seconds,
            method=method,
            start=start if support.presign_start else None,
            client_ip=client_ip,
            content_disposition=disposition,
            content_type=content_type,
        )
        # Taken after signing where the system clock dates the signature: its own date is no
        # later, so the link is surely dead by ``expires_at``.
        signed_at = start if support.presign_start else datetime.now(UTC).replace(microsecond=0)
        scheme = support.signed_links or "signed"
    elif support.hmac_links:
        if signer is None:
            raise ConfigurationError(
                f"{target.name} has no signing service: pass signer=LinkSigner(...) for the "
                "application's download endpoint"
            )
        signed_at = start
        url = signer.sign(
            key,
            expires_at=start + timedelta(seconds=seconds),
            method=method,
            client_ip=client_ip,
            filename=filename,
            content_type=content_type,
        )
        scheme = "hmac"
    else:
        raise UnsupportedError(f"{target.name}: this backend cannot sign links")
    return SignedLink(
        url=url,
        expires_at=signed_at + timedelta(seconds=seconds),
        method=method,
        key=key,
        target=target.name,
        scheme=scheme,
        filename=filename,
        content_type=content_type,
        client_ip=client_ip,
    )
