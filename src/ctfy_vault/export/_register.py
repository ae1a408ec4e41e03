"""The export register: one create-only record per completed export, per tenant, never rewritten."""

from __future__ import annotations

import builtins
import json
from datetime import datetime
from typing import Any

import attrs

from ctfy_vault.exceptions import FormatError
from ctfy_vault.export._inventory import iso
from ctfy_vault.export._names import check_tenant
from ctfy_vault.storage import Target, validate_key

REGISTER_FORMAT = "ctfy-vault export register"
REGISTER_VERSION = 1
#: Where exports and their register go on the destination, unless told otherwise.
DEFAULT_PREFIX = "exports"


@attrs.frozen(kw_only=True)
class RegisterEntry:
    """One completed export, as the register records it.

    Attributes:
        tenant: whose data it holds.
        export_id: the random id in its names.
        key: the archive's object key on the destination.
        created: when the export was started (UTC).
        format: ``zip`` or ``tar.gz``.
        files: files archived.
        bytes: bytes of file content archived.
        size: the archive's size in bytes.
        sha256: hex SHA-256 of the whole archive.
        requested_by: who asked for it (free text from the application), if given.
        link_expires_at: when the signed link handed out with it stops working, if one was.
    """

    tenant: str
    export_id: str
    key: str
    created: datetime
    format: str
    files: int
    bytes: int
    size: int
    sha256: str
    requested_by: str | None = None
    link_expires_at: datetime | None = None

    def to_json(self) -> builtins.bytes:
        """Return the record as canonical UTF-8 JSON."""
        document = {
            "format": REGISTER_FORMAT,
            "version": REGISTER_VERSION,
            "tenant": self.tenant,
            "export_id": self.export_id,
            "key": self.key,
            "created": iso(self.created),
            "archive_format": self.format,
            "files": self.files,
            "bytes": self.bytes,
            "size": self.size,
            "sha256": self.sha256,
            "requested_by": self.requested_by,
            "link_expires_at": iso(self.link_expires_at),
        }
        return (json.dumps(document, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: builtins.bytes) -> RegisterEntry:
        """Parse a record.

        Raises:
            FormatError: not a register record of a version this release reads.
        """
        try:
            doc: dict[str, Any] = json.loads(data.decode("utf-8"))
            if doc.get("format") != REGISTER_FORMAT or doc.get("version") != REGISTER_VERSION:
                raise FormatError("not an export register record of version 1")
            expires = doc.get("link_expires_at")
            return cls(
                tenant=str(doc["tenant"]),
                export_id=str(doc["export_id"]),
                key=str(doc["key"]),
                created=_parse_time(doc["created"]),
                format=str(doc["archive_format"]),
                files=int(doc["files"]),
                bytes=int(doc["bytes"]),
                size=int(doc["size"]),
                sha256=str(doc["sha256"]),
                requested_by=doc.get("requested_by"),
                link_expires_at=_parse_time(expires) if expires else None,
            )
        except FormatError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise FormatError(f"unreadable export register record: {err}") from err

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        out: dict[str, Any] = json.loads(self.to_json())
        for field in ("format", "version"):
            out.pop(field)
        return out


def _parse_time(value: str) -> datetime:
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError("a register time must carry a zone")
    return when


def register_folder(tenant: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Return the folder key holding ``tenant``'s register records."""
    return f"{validate_key(prefix, what='export prefix')}/{check_tenant(tenant)}/register"


def history(
    dest: Target, tenant: str, *, prefix: str = DEFAULT_PREFIX
) -> tuple[RegisterEntry, ...]:
    """Return every export recorded for ``tenant``, oldest first.

    The register is append-only: each completed export wrote one record, create-only, after its
    archive was complete; an export that failed wrote none. An application's "one free export per
    year" rule is a filter on the result::

        recent = [e for e in history(dest, "acme") if e.created > now - timedelta(days=365)]

    Args:
        dest: the export destination.
        tenant: the tenant id.
        prefix: the folder exports were written under.

    Returns:
        The records, sorted by creation time then id; empty for a tenant never exported.

    Raises:
        FormatError: a record cannot be read (the register was altered).
        StorageError: the destination could not be listed or read.
    """
    folder = register_folder(tenant, prefix)
    entries = [RegisterEntry.from_json(dest.read(key)) for key in dest.list(folder)]
    return tuple(sorted(entries, key=lambda e: (e.created, e.export_id)))
