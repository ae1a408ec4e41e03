"""Which snapshot a reference names: ``latest``, ``latest:LINEAGE``, a name, an id or an id prefix.

Pure: `find_snapshot` looks through a list of `SnapshotInfo` the caller already has (`Vault.find`
lists the repository first), so the rules are checked without storage. In order:

1. ``latest`` is the newest snapshot; ``latest:LINEAGE`` the newest of that lineage (newest by
   creation time, then by name, whatever order the list is in).
2. A snapshot whose name or id is exactly the reference (the first such in the list).
3. The one snapshot whose id starts with the reference; several are `AmbiguousSnapshotError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from ctfy_vault.exceptions import (
    AmbiguousSnapshotError,
    ConfigurationError,
    SnapshotNotFoundError,
)
from ctfy_vault.manifest import IDENTIFIER
from ctfy_vault.vault._model import SnapshotInfo

__all__ = ["LATEST", "check_reference", "find_snapshot"]

#: The reference naming the newest snapshot; ``latest:LINEAGE`` the newest of one lineage.
LATEST: Final = "latest"
#: A snapshot name (``20261126T000300.000000Z-abc123``), an id or a prefix of one.
_REFERENCE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: Where a reference that matches nothing was looked for (every target's listing).
_WHERE: Final = "repository"


def check_reference(ref: str) -> str:
    """Check the form of a snapshot reference before any snapshot is listed.

    Args:
        ref: ``latest``, ``latest:LINEAGE``, a snapshot name, an id or an id prefix.

    Returns:
        ``ref``, unchanged.

    Raises:
        ConfigurationError: the reference is empty, has blanks or other characters no name or
            id has, or is ``latest:`` with no (or no valid) lineage; the message quotes it.
    """
    if ref.startswith(f"{LATEST}:"):
        lineage = ref.removeprefix(f"{LATEST}:")
        if not lineage:
            raise ConfigurationError(
                f"snapshot reference {ref!r} names no lineage: write latest or latest:LINEAGE"
            )
        if not IDENTIFIER.fullmatch(lineage):
            raise ConfigurationError(
                f"snapshot reference {ref!r}: {lineage!r} is not a lineage name"
            )
        return ref
    if not _REFERENCE.fullmatch(ref):
        raise ConfigurationError(
            f"snapshot reference {ref!r} is not latest, latest:LINEAGE, a snapshot name, an id "
            "or an id prefix"
        )
    return ref


def find_snapshot(snapshots: Iterable[SnapshotInfo], ref: str) -> SnapshotInfo:
    """Find the one snapshot ``ref`` names among ``snapshots``.

    Args:
        snapshots: the snapshots to choose from (`Vault.snapshots` lists them newest first).
        ref: ``latest``, ``latest:LINEAGE``, a snapshot name, a snapshot id, or a prefix of
            exactly one snapshot's id.

    Returns:
        The snapshot.

    Raises:
        ConfigurationError: the reference is malformed (see `check_reference`).
        AmbiguousSnapshotError: a prefix of several ids and the whole of none (the message lists
            them); also a `ConfigurationError` and a `LookupError`.
        SnapshotNotFoundError: nothing matches (``key`` is the reference); also an
            `ObjectNotFoundError` and a `LookupError`.
    """
    check_reference(ref)
    listed = list(snapshots)
    if ref == LATEST or ref.startswith(f"{LATEST}:"):
        lineage = ref.partition(":")[2] or None
        found = [s for s in listed if lineage is None or s.lineage == lineage]
        if not found:
            where = f" of lineage {lineage}" if lineage else ""
            raise SnapshotNotFoundError(f"no snapshot{where}", target=_WHERE, key=ref)
        return max(found, key=lambda s: (s.created, s.name))
    exact = next((s for s in listed if ref in (s.name, s.snapshot_id)), None)
    if exact is not None:
        return exact
    matches = [s for s in listed if s.snapshot_id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise AmbiguousSnapshotError(ref, [s.snapshot_id for s in matches])
    raise SnapshotNotFoundError("no such snapshot", target=_WHERE, key=ref)
