"""The "files are never public" probe: read an object and list its bucket with no credentials.

Backends say where to ask (`Backend.anonymous_urls`, built with `unsigned_urls` from a signed link
with the signature stripped, so the addresses follow the target's endpoint and addressing style);
this module asks, with plain HTTP and no credentials.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

import attrs

from ctfy_vault.exceptions import TargetUnreachableError

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


def unsigned_urls(
    signed: str, name: str, *, listing_query: str, trailing_slash: bool
) -> tuple[str, str]:
    """Return (the object's unsigned URL, its bucket's listing URL) from a signed link.

    Args:
        signed: a signed link to the object.
        name: the object's name inside its bucket or container.
        listing_query: the query string of a listing request.
        trailing_slash: whether the listing path ends with ``/``.
    """
    parts = urlsplit(signed)
    object_url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    segments = name.count("/") + 1
    tail = "/" + "/".join(parts.path.rsplit("/", segments)[1:])  # the encoded object name
    base_path = parts.path[: len(parts.path) - len(tail)].rstrip("/")
    listing = urlunsplit(
        (
            parts.scheme,
            parts.netloc,
            base_path + ("/" if trailing_slash else ""),
            listing_query,
            "",
        )
    )
    return object_url, listing


def ask_anonymously(
    object_url: str, listing_url: str, *, try_object: bool, target: str
) -> AnonymousProbe:
    """Send the unsigned requests (the object's only if ``try_object``) and collect the statuses.

    Raises:
        TargetUnreachableError: the endpoint did not answer.
    """
    object_status = _status(object_url, target) if try_object else None
    return AnonymousProbe(
        object_status=object_status,
        listing_status=_status(listing_url, target),
        object_url=object_url if try_object else None,
    )
