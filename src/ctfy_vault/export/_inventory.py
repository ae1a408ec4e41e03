"""The inventory (JSON and CSV) and the README that every export carries."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

from ctfy_vault._version import __version__
from ctfy_vault.export._sources import Skipped

INVENTORY_FORMAT = "ctfy-vault export inventory"
INVENTORY_VERSION = 1
README_NAME = "README.txt"
INVENTORY_JSON = "inventory.json"
INVENTORY_CSV = "inventory.csv"
CSV_COLUMNS = ("path", "size", "sha256", "modified", "source", "source_path")


@attrs.frozen(kw_only=True)
class InventoryEntry:
    """One archived file as the inventory lists it.

    Attributes:
        path: the member path, relative to the archive's top folder.
        size: bytes.
        sha256: hex SHA-256 of the file's content.
        modified: last modification time (UTC), when the source knows it.
        source: the archive folder of the source it came from.
        source_path: its key or path at the source, exactly as stored there.
    """

    path: str
    size: int
    sha256: str
    modified: datetime | None
    source: str
    source_path: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "modified": iso(self.modified),
            "source": self.source,
            "source_path": self.source_path,
        }


def iso(when: datetime | None) -> str | None:
    """Return an aware time as ISO 8601 UTC with a ``Z`` (seconds precision), or ``None``."""
    if when is None:
        return None
    return when.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def inventory_json(
    entries: Sequence[InventoryEntry],
    skipped: Sequence[Skipped],
    *,
    tenant: str,
    export_id: str,
    created: datetime,
) -> bytes:
    """Return the JSON inventory, UTF-8, one file per line for easy diffing."""
    document = {
        "format": INVENTORY_FORMAT,
        "version": INVENTORY_VERSION,
        "tenant": tenant,
        "export_id": export_id,
        "created": iso(created),
        "totals": {"files": len(entries), "bytes": sum(e.size for e in entries)},
        "files": [e.to_dict() for e in entries],
        "skipped": [
            {"source": s.folder, "source_path": s.source_path, "reason": s.reason} for s in skipped
        ],
    }
    return (json.dumps(document, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def inventory_csv(entries: Sequence[InventoryEntry]) -> bytes:
    """Return the CSV inventory: a header row, then one row per file; UTF-8 with a BOM for Excel."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        row = entry.to_dict()
        writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    return out.getvalue().encode("utf-8-sig")


def readme(
    *,
    root: str,
    tenant: str,
    export_id: str,
    created: datetime,
    requested_by: str | None,
    folders: Sequence[tuple[str, str]],
) -> bytes:
    """Return the README for the customer: what the archive holds and how to check it."""
    lines = [
        f"Export of your data: {tenant}",
        "=" * len(f"Export of your data: {tenant}"),
        "",
        f"Created:      {iso(created)} (UTC)",
        f"Export id:    {export_id}",
    ]
    if requested_by:
        lines.append(f"Requested by: {requested_by}")
    lines += [
        f"Made with:    ctfy-vault {__version__}",
        "",
        "This archive holds everything stored for you when it was made.",
        "",
        "What is where",
        "-------------",
    ]
    rows = [(f"{root}/{README_NAME}", "this file")]
    rows += [(f"{root}/{folder}/...", description) for folder, description in folders]
    rows += [
        (f"{root}/{INVENTORY_JSON}", "every file: path, size, SHA-256, modification time (UTC)"),
        (f"{root}/{INVENTORY_CSV}", "the same list as CSV (UTF-8, opens in a spreadsheet)"),
    ]
    width = max(len(path) for path, _ in rows)
    lines += [f"{path:<{width}}  {description}" for path, description in rows]
    lines += [
        "",
        "Files keep their names and folders as stored, non-Latin characters included.",
        "A character that could make a file land elsewhere when unpacked (a backslash, a control",
        'character) is replaced by "_"; two names that then collide get "~2", "~3" before the',
        'suffix. The inventory\'s "source_path" column always holds the name exactly as stored.',
        'Anything that could not be exported is listed under "skipped" in inventory.json, with',
        "the reason.",
        "",
        "Checking the files",
        "------------------",
        "Each file's SHA-256 is in the inventory. To check one:",
        "  Linux:   sha256sum 'documents/contract.pdf'",
        "  macOS:   shasum -a 256 'documents/contract.pdf'",
        "  Windows: Get-FileHash -Algorithm SHA256 'documents\\contract.pdf'",
        "The SHA-256 of the whole archive is in the export register we keep for you; ask us for",
        "it to check that the archive you downloaded is complete.",
        "",
    ]
    return "\n".join(lines).encode("utf-8")
