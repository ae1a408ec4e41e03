"""Object-key validation: every key is checked here before any I/O touches a target."""

from __future__ import annotations

import re

from ctfy_vault.exceptions import InvalidObjectKeyError

#: S3 and Azure Blob both cap an object name at 1024 bytes of UTF-8; the root prefix counts too.
MAX_KEY_BYTES = 1024

#: Top-level folders the library keeps for itself inside a target's root (temporary files, probes).
RESERVED_PREFIXES = (".ctfy-tmp", ".ctfy-probe")

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def validate_key(key: object, *, what: str = "object key", allow_reserved: bool = False) -> str:
    """Return ``key`` unchanged if it is a safe relative object key, else raise.

    A safe key is a non-empty ``/``-separated relative path without empty, ``.`` or ``..`` segments,
    backslashes or control characters, whose first segment is not reserved for the library, and whose
    UTF-8 form fits S3's 1024-byte limit. ``allow_reserved`` is for the library's own probes.

    Raises:
        InvalidObjectKeyError: naming the first problem found.
    """
    if not isinstance(key, str):
        raise InvalidObjectKeyError(f"{what} must be a str, not {type(key).__name__}")
    if not key:
        raise InvalidObjectKeyError(f"{what} is empty")
    _check_text(key, what)
    segments = key.split("/")
    _check_segments(key, segments, what)
    if segments[0] in RESERVED_PREFIXES and not allow_reserved:
        raise InvalidObjectKeyError(
            f"{what} {key!r} starts with {segments[0]!r}, which is reserved for the library's own use"
        )
    return key


def validate_prefix(prefix: object) -> str:
    """Return a listing prefix (``""`` for everything, else a folder key without slashes at the ends).

    Raises:
        InvalidObjectKeyError: if the prefix is not ``""`` and not a valid key.
    """
    if prefix == "":
        return ""
    return validate_key(prefix, what="listing prefix")


def _check_text(key: str, what: str) -> None:
    bad = _CONTROL.search(key)
    if bad is not None:
        raise InvalidObjectKeyError(
            f"{what} contains control character {bad.group()!r} at position {bad.start()}"
        )
    if "\\" in key:
        raise InvalidObjectKeyError(
            f"{what} {key!r} contains a backslash; use '/' between segments"
        )
    if key.startswith("/"):
        raise InvalidObjectKeyError(
            f"{what} {key!r} is absolute; keys are relative to the target root"
        )
    size = len(key.encode("utf-8", errors="surrogatepass"))
    if size > MAX_KEY_BYTES:
        raise InvalidObjectKeyError(f"{what} is {size} bytes long; the limit is {MAX_KEY_BYTES}")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InvalidObjectKeyError(f"{what} is not valid Unicode text (lone surrogate)") from err


def _check_segments(key: str, segments: list[str], what: str) -> None:
    for segment in segments:
        if segment == "":
            raise InvalidObjectKeyError(
                f"{what} {key!r} has an empty segment ('//' or a '/' at an end)"
            )
        if segment in (".", ".."):
            raise InvalidObjectKeyError(
                f"{what} {key!r} has a {segment!r} segment (path traversal)"
            )
