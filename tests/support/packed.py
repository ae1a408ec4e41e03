"""Format 2 repositories in tests: what a target holds, and a full check of packs and indexes.

`problems` checks a repository of either format: format 1 by `Vault.verify` with every chunk
read; format 2 by reading every pack and index object on every target (`Vault.verify` learns
format 2 separately, and this check stays an independent second opinion).
"""

from __future__ import annotations

from ctfy_vault.crypto import Sealer
from ctfy_vault.exceptions import FormatError, IntegrityError, StorageError
from ctfy_vault.repository import (
    INDEX_PREFIX,
    PACKS_PREFIX,
    check_pack,
    index_chunks,
    load_packed,
    pack_key,
)
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault

__all__ = ["held_chunks", "names", "problems"]


def _sealer(vault: Vault) -> Sealer:
    """The open vault's sealer (whatever key opened it)."""
    return vault._sealer  # noqa: SLF001 - tests read what the vault stored


def held_chunks(vault: Vault, target: Target) -> set[bytes]:
    """The chunk ids a target holds: chunk objects (format 1), or indexed in held packs (2)."""
    if not vault.config.packed:
        return set(index_chunks(target))
    return set(load_packed(target, _sealer(vault)).chunk_ids())


def names(target: Target, prefix: str) -> set[str]:
    """The keys under ``prefix`` (``packs``, ``index``, ...)."""
    return set(target.list(prefix))


def problems(vault: Vault) -> list[str]:
    """Everything wrong with the repository; empty when it is sound, every chunk read.

    Format 2: on every target each index object opens, each pack it lists is held and passes
    `check_pack` with exactly the record's chunks, no pack is loose, every chunk each snapshot
    names is there and opens, and every target holds the same pack and index names.
    """
    if not vault.config.packed:
        report = vault.verify(read_data=True)
        return [] if report.ok else [repr(p) for p in report.problems]
    sealer = _sealer(vault)
    found: list[str] = []
    needed = {
        chunk
        for info in vault.snapshots()
        for entry in vault.manifest(info.snapshot_id).files
        for chunk in entry.chunks
    }
    for target in vault.targets:
        found += _target_problems(target, sealer, needed)
    first = vault.targets[0]
    for other in vault.targets[1:]:
        for prefix in (PACKS_PREFIX, INDEX_PREFIX):
            if names(other, prefix) != names(first, prefix):
                found.append(f"{other.name} and {first.name} hold different {prefix}/ names")
    return found


def _target_problems(target: Target, sealer: Sealer, needed: set[bytes]) -> list[str]:
    packed = load_packed(target, sealer)
    found = [f"{target.name}: index {i.hex()} does not open" for i in packed.damaged]
    found += [f"{target.name}: pack {p.hex()} listed but missing" for p in packed.missing_packs()]
    found += [f"{target.name}: pack {p.hex()} is loose" for p in packed.loose_packs()]
    for pack_id in sorted(packed.packs & set(packed.index.pack_ids)):
        try:
            header = check_pack(sealer, pack_id, target.read(pack_key(pack_id)))
        except (StorageError, IntegrityError, FormatError) as err:
            found.append(f"{target.name}: pack {pack_id.hex()}: {err}")
            continue
        for entry in header.entries:
            if not any(
                where.pack_id == pack_id and where.entry == entry
                for where in packed.index.locations(entry.chunk_id)
            ):
                found.append(f"{target.name}: pack {pack_id.hex()} differs from its record")
    for chunk in sorted(needed):
        try:
            packed.read(target, sealer, chunk)
        except (StorageError, IntegrityError, FormatError) as err:
            found.append(f"{target.name}: chunk {chunk.hex()}: {err}")
    return found
