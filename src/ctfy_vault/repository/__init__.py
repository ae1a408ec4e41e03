"""The repository layer: layout, config, key slots, locks, catalog, verify, heal and replicas.

Everything that knows how a repository sits on its targets lives here, between the writer and
the vault above and `ctfy_vault.storage` below: which keys exist and how they are named and
parsed (`kind_of`, one strictness for every caller), the config, key-slot storage, the prune
lock, the catalog reader, verify, heal and repair, and `Replicas` (read with fallback, do on
each target, write everywhere with a quorum). ``docs/repository.md`` describes the layer.
"""

from ctfy_vault.repository._layout import (
    CONFIG_KEY,
    DELETE_CHECK_KEY,
    KEYS_PREFIX,
    LOCK_KEY,
    LOCKS_PREFIX,
    OBJECTS_PREFIX,
    QUARANTINE_PREFIX,
    SNAPSHOTS_PREFIX,
    SWEEP_PREFIX,
    KeyKind,
    chunk_id_of,
    chunk_key,
    in_lock_area,
    kind_of,
    quarantine_key,
    quarantined_of,
    slot_id_of,
    slot_key,
    snapshot_key,
    snapshot_name_of,
    sweep_mark_key,
    unexpected_key,
)

__all__ = [
    "CONFIG_KEY",
    "DELETE_CHECK_KEY",
    "KEYS_PREFIX",
    "LOCKS_PREFIX",
    "LOCK_KEY",
    "OBJECTS_PREFIX",
    "QUARANTINE_PREFIX",
    "SNAPSHOTS_PREFIX",
    "SWEEP_PREFIX",
    "KeyKind",
    "chunk_id_of",
    "chunk_key",
    "in_lock_area",
    "kind_of",
    "quarantine_key",
    "quarantined_of",
    "slot_id_of",
    "slot_key",
    "snapshot_key",
    "snapshot_name_of",
    "sweep_mark_key",
    "unexpected_key",
]
