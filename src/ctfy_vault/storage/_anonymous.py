"""The "files are never public" probe: try to read an object and list the bucket with no credentials."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import attrs

from ctfy_vault.exceptions import TargetUnreachableError, UnsupportedError
from ctfy_vault.storage._sign import backend_kind, object_path, presign_azure, presign_s3
from ctfy_vault.storage._target import Target

_TIMEOUT = 10.0


@attrs.frozen(kw_only=True)
class AnonymousProbe:
    """What an unauthenticated client got back from a target.

    Attributes:
        object_status: HTTP status of an unsigned GET of the object (``None``: not tried).
        listing_status: HTTP status of an unsigned listing of the bucket/container.
        object_url: the object's address without any signature (not a secret).
    """

    object_status: int | None
    listing_status: int | None
    object_url: str | None


def _status(url: str, target: str) -> int:
    request = urllib.request.Request(url, method="GET")  # noqa: S310 - http(s) from the target
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError("only http(s) endpoints can be probed")
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:  # noqa: S310
            response.read(1)
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        raise TargetUnreachableError(
            f"anonymous probe could not connect ({type(err).__name__})", target=target
        ) from err


def _unsigned(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def anonymous_access(target: Target, key: str | None, *, internal: bool = False) -> AnonymousProbe:
    """Send an unsigned GET of ``key`` and an unsigned listing request to the target's endpoint.

    The object's plain address is taken from a signed link with the signature stripped, so it
    follows the target's endpoint and addressing style exactly. Two requests in all.

    Args:
        target: an S3 or Azure target.
        key: an existing object to try, or ``None`` to try only the listing.
        internal: ``key`` is one of the library's own probe objects (reserved prefix).

    Returns:
        The statuses; any 2xx means anonymous readers were served.

    Raises:
        UnsupportedError: the backend has no public endpoint to probe.
        TargetUnreachableError: the endpoint did not answer.
    """
    kind = backend_kind(target)
    probe_key = key if key is not None else "ctfy-anonymous-probe"
    if kind == "s3":
        signed = presign_s3(target, probe_key, expires_in=60, internal=internal)
    else:
        if kind != "azure":
            raise UnsupportedError(f"{target.name}: no network endpoint to probe")
        signed = presign_azure(
            target,
            probe_key,
            start=datetime.now(UTC).replace(microsecond=0),
            expires_in=60,
            internal=internal,
        )
    object_url = _unsigned(signed)
    _container, name = object_path(target, probe_key, internal=internal)
    parts = urlsplit(object_url)
    base_path = parts.path[: len(parts.path) - len(_quoted_tail(parts.path, name))].rstrip("/")
    if kind == "s3":
        listing = urlunsplit((parts.scheme, parts.netloc, base_path + "/", "list-type=2", ""))
    else:
        listing = urlunsplit(
            (parts.scheme, parts.netloc, base_path, "restype=container&comp=list", "")
        )
    object_status = _status(object_url, target.name) if key is not None else None
    return AnonymousProbe(
        object_status=object_status,
        listing_status=_status(listing, target.name),
        object_url=object_url if key is not None else None,
    )


def _quoted_tail(path: str, name: str) -> str:
    """Return the part of the URL path that encodes the object name (its last segments)."""
    segments = name.count("/") + 1
    return "/" + "/".join(path.rsplit("/", segments)[1:])
