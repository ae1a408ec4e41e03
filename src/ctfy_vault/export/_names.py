"""Names: the tenant, the export's object keys, and safe member names inside the archive."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime

from ctfy_vault.exceptions import ConfigurationError

#: A tenant is one key segment: letters, digits, ``.``, ``_``, ``-``; it starts with a letter or
#: digit, so it can never be ``.`` or ``..`` nor a hidden folder.
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_EXPORT_ID = re.compile(r"^[0-9a-f]{8,32}$")
#: What stands in for a character that could move or break an extracted file.
REPLACEMENT = "_"


def check_tenant(tenant: object) -> str:
    """Return ``tenant`` if it is a safe tenant id, else raise.

    Raises:
        ConfigurationError: not 1-128 characters of ``A-Z a-z 0-9 . _ -`` starting with a letter
            or digit.
    """
    if not isinstance(tenant, str) or not _TENANT.match(tenant):
        raise ConfigurationError(
            "a tenant id is 1-128 characters of letters, digits, '.', '_' and '-', starting with "
            f"a letter or digit; got {tenant!r}"
        )
    return tenant


def check_export_id(export_id: object) -> str:
    """Return ``export_id`` if it is 8-32 lowercase hex digits, else raise.

    Raises:
        ConfigurationError: anything else.
    """
    if not isinstance(export_id, str) or not _EXPORT_ID.match(export_id):
        raise ConfigurationError("an export id is 8 to 32 lowercase hexadecimal digits")
    return export_id


def stamp(when: datetime) -> str:
    """Return ``when`` as a sortable UTC stamp, ``20261126T220810Z``.

    Raises:
        ConfigurationError: ``when`` is naive.
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise ConfigurationError("now must be an aware datetime")
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _safe_char(ch: str) -> str:
    if ch == "\\" or unicodedata.category(ch) == "Cc":
        return REPLACEMENT
    return ch


def member_path(relative: str) -> str:
    """Map a source path to a member path that extracts inside the archive's folder everywhere.

    Backslashes (a separator on Windows) and control characters become ``_``; every other
    character, non-ASCII included, is kept. Empty, ``.`` and ``..`` segments and absolute paths
    cannot be mapped without guessing and are refused (the storage layer and the manifest never
    hand them out as readable names).

    Raises:
        ConfigurationError: an absolute path or an empty, ``.`` or ``..`` segment.
    """
    if relative.startswith("/"):
        raise ConfigurationError("an absolute path cannot go into an export")
    segments = relative.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise ConfigurationError("a path with an empty, '.' or '..' segment cannot be exported")
    return "/".join("".join(_safe_char(ch) for ch in segment) for segment in segments)


def deduplicate(path: str, taken: set[str]) -> str:
    r"""Return ``path``, or ``path`` with ``~2``, ``~3``... before its suffix if already taken.

    Two source names can map to one member name (``a\b`` and ``a_b``); neither may overwrite the
    other when the archive is unpacked. ``taken`` is updated.
    """
    if path not in taken:
        taken.add(path)
        return path
    folder, _, name = path.rpartition("/")
    stem, dot, suffix = name.rpartition(".")
    if not stem:  # no suffix, or a dot file such as ".env"
        stem, dot, suffix = name, "", ""
    number = 2
    while True:
        candidate = f"{stem}~{number}{dot}{suffix}"
        full = f"{folder}/{candidate}" if folder else candidate
        if full not in taken:
            taken.add(full)
            return full
        number += 1
