"""Local HMAC links: the application's own download endpoint, for targets with no signing service."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import attrs

from ctfy_vault.exceptions import ConfigurationError, IntegrityError, UnsupportedError
from ctfy_vault.links._policy import (
    CLOCK_SKEW,
    EPOCH,
    MAX_TTL,
    READ_METHODS,
    since,
    whole_seconds,
)

_TAG = b"ctfy-vault link v1\n"
_SIG = "&s="
_MIN_SECRET = 32


def _check_secret(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, bytes):
        raise ConfigurationError("the link secret must be bytes")
    if len(value) < _MIN_SECRET:
        raise ConfigurationError(f"the link secret must be at least {_MIN_SECRET} random bytes")


def _check_base(_instance: object, _attribute: object, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError("base_url must be an absolute http(s) URL")
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ConfigurationError("base_url may not carry a query or fragment")


@attrs.frozen
class LinkSigner:
    """Signs and checks links to the application's own download endpoint with HMAC-SHA-256.

    The signature covers the whole URL (scheme, host, path and every parameter), so changing any
    byte of it makes `verify` refuse the link. No link it signs expires more than `MAX_TTL` after
    the system clock, and `verify` refuses one that expires more than `MAX_TTL` plus
    `CLOCK_SKEW` after the verifier's clock, however it was signed.

    Attributes:
        secret: at least 32 random bytes, shared by the signing and the serving processes.
        base_url: the download endpoint, e.g. ``https://app.example/download``.
    """

    secret: bytes = attrs.field(repr=False, validator=_check_secret)
    base_url: str = attrs.field(validator=_check_base)

    def _mac(self, signed_part: str) -> str:
        return hmac.new(self.secret, _TAG + signed_part.encode("ascii"), hashlib.sha256).hexdigest()

    def sign(
        self,
        key: str,
        *,
        expires_at: datetime,
        method: str = "GET",
        client_ip: str | None = None,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """Return the signed URL, a secret until it expires.

        Links are read-only (``GET`` or ``HEAD``), as every signed link of the library; a lower
        cap belongs to the caller, e.g. `presign`.

        Args:
            key: the object key the link grants.
            expires_at: when the link stops working: an aware datetime at most `MAX_TTL` after
                the system clock, signed in whole seconds (rounded down).
            method: the HTTP method the link is for: ``GET`` or ``HEAD``.
            client_ip: the only address that may use the link, if any.
            filename: download name the endpoint should send, if any.
            content_type: ``Content-Type`` the endpoint should send, if any.

        Raises:
            ConfigurationError: ``expires_at`` is not an aware datetime, or is more than
                `MAX_TTL` after the system clock.
            UnsupportedError: ``method`` is not a read.
        """
        if method not in READ_METHODS:
            raise UnsupportedError(f"signed links are read-only (GET or HEAD), not {method!r}")
        # The system clock is the one the cap is measured from; the expiry is computed once, in
        # exact arithmetic (a datetime subclass's ``timestamp`` is not consulted), and signed.
        clock = datetime.now(UTC)
        remaining = since(expires_at, clock, "expires_at")
        if remaining > MAX_TTL:
            raise ConfigurationError(
                f"a signed link may live at most {MAX_TTL}; expires_at is {remaining} after "
                "the system clock"
            )
        expiry = whole_seconds(since(clock, EPOCH, "clock") + remaining)
        params = [("k", key), ("e", str(expiry))]
        if method != "GET":
            params.append(("m", method))
        if client_ip is not None:
            params.append(("ip", client_ip))
        if filename is not None:
            params.append(("fn", filename))
        if content_type is not None:
            params.append(("ct", content_type))
        signed_part = f"{self.base_url}?{urlencode(params, quote_via=quote, safe='')}"
        return f"{signed_part}{_SIG}{self._mac(signed_part)}"

    def verify(
        self, url: str, *, now: datetime, client_ip: str | None = None, method: str = "GET"
    ) -> VerifiedLink:
        """Check a link's signature, expiry, lifetime, method and bound address; see `verify_link`.

        Raises:
            ConfigurationError: ``now`` is not an aware datetime.
            IntegrityError: the link is not valid at ``now`` for this request.
        """
        clock = since(now, EPOCH, "now")
        refused = IntegrityError("signed link refused")
        signed_part, sep, mac = url.rpartition(_SIG)
        if not sep or not signed_part.isascii() or not mac.isascii():
            raise refused
        if not hmac.compare_digest(mac, self._mac(signed_part)):
            raise refused
        base, _, query = signed_part.partition("?")
        if base != self.base_url:
            raise refused
        try:
            fields = parse_qs(query, keep_blank_values=True, strict_parsing=True)
            one = {name: values[0] for name, values in fields.items() if len(values) == 1}
            key = one["k"]
            expiry = timedelta(seconds=int(one["e"]))
        except (ValueError, KeyError, OverflowError) as err:
            # Only reachable with a valid MAC over malformed fields: still one opaque refusal.
            raise refused from err
        if expiry <= clock:
            raise refused
        # Correctly signed is not enough: no link is honoured longer than the cap from now
        # (one from another signer, an older release, or a leaked secret).
        if expiry - clock > MAX_TTL + CLOCK_SKEW:
            raise refused
        # A write link is never honoured, even one correctly signed elsewhere.
        if one.get("m", "GET") != method or method not in READ_METHODS:
            raise refused
        bound = one.get("ip")
        if bound is not None and (client_ip is None or not _same_ip(bound, client_ip)):
            raise refused
        try:
            expires_at = EPOCH + expiry
        except OverflowError as err:  # a verifier clock at the very end of year 9999
            raise refused from err
        return VerifiedLink(
            key=key,
            expires_at=expires_at,
            method=one.get("m", "GET"),
            filename=one.get("fn"),
            content_type=one.get("ct"),
        )


def _same_ip(bound: str, client: str) -> bool:
    try:
        return ipaddress.ip_address(bound) == ipaddress.ip_address(client)
    except ValueError:
        return False


@attrs.frozen(kw_only=True)
class VerifiedLink:
    """What a valid local link grants: one object, until a time.

    Attributes:
        key: the object key to serve, relative to the target's root.
        expires_at: when the link stops working.
        method: ``GET`` or ``HEAD``.
        filename: download name to send in ``Content-Disposition``, if any.
        content_type: ``Content-Type`` to send, if any.
    """

    key: str
    expires_at: datetime
    method: str
    filename: str | None
    content_type: str | None


def verify_link(
    url: str,
    signer: LinkSigner,
    *,
    now: datetime | None = None,
    client_ip: str | None = None,
    method: str = "GET",
) -> VerifiedLink:
    """Check a local HMAC link as the download endpoint received it.

    The comparison runs in constant time. Every refusal is the same opaque `IntegrityError`,
    whether the link was altered, expired, used from another address or for another method, or
    expires more than `MAX_TTL` plus `CLOCK_SKEW` after ``now`` (even when correctly signed).

    Args:
        url: the full URL that was requested (scheme, host, path and query).
        signer: the same secret and base URL that signed it.
        now: the verifier's own clock, to check expiry and lifetime against (default: the
            system clock, UTC); never a time taken from the request.
        client_ip: the requesting address; required when the link is bound to one.
        method: the HTTP method of the request.

    Returns:
        The object and headers the link grants.

    Raises:
        ConfigurationError: ``now`` is not an aware datetime.
        IntegrityError: the link is not valid now for this request.
    """
    when = datetime.now(UTC) if now is None else now
    since(when, EPOCH, "now")  # a bad clock is the caller's error, not a refused link
    try:
        return signer.verify(url, now=when, client_ip=client_ip, method=method)
    except IntegrityError:
        raise
    except (ValueError, KeyError, OverflowError, OSError) as err:
        # Only reachable with a valid MAC over malformed fields: still one opaque refusal.
        raise IntegrityError("signed link refused") from err
