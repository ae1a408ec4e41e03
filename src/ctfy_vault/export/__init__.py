"""A tenant's full export: one archive streamed into a target, with an inventory and a register.

`export` reads everything stored for one tenant (objects under its prefix on a documents target,
and/or its folder in a vault snapshot) and streams one zip (or tar.gz) archive, create-only, into
a destination target, with a README and an inventory (path, size, SHA-256, modification time) as
JSON and CSV. It returns an `ExportSummary` with a signed link (at most one hour). Each completed
export appends one record to the tenant's register; `history` reads it back, so an application
can apply its "one free export per year" rule. ``docs/export.md`` describes the archive layout,
the naming rules and the guarantees.
"""

from ctfy_vault.export._export import ExportProgress, ExportSummary, export
from ctfy_vault.export._inventory import INVENTORY_VERSION, InventoryEntry
from ctfy_vault.export._register import DEFAULT_PREFIX, RegisterEntry, history
from ctfy_vault.export._sources import ExportSource, Skipped, SnapshotSource, TargetSource

__all__ = [
    "DEFAULT_PREFIX",
    "INVENTORY_VERSION",
    "ExportProgress",
    "ExportSource",
    "ExportSummary",
    "InventoryEntry",
    "RegisterEntry",
    "Skipped",
    "SnapshotSource",
    "TargetSource",
    "export",
    "history",
]
