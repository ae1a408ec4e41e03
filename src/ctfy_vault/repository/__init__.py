"""The repository layer: layout, config, key slots, locks, catalog, verify, heal and replicas.

Everything that knows how a repository sits on its targets lives here, between the writer and
the vault above and `ctfy_vault.storage` below: which keys exist and how they are named and
parsed (`kind_of`, one strictness for every caller), the config, key-slot storage, the prune
lock, the catalog reader, verify, heal and repair, and `Replicas` (read with fallback, do on
each target, write everywhere with a quorum). ``docs/repository.md`` describes the layer.
"""

from ctfy_vault.repository._catalog import ChunkStream, Reader, index_chunks, snapshot_names
from ctfy_vault.repository._config import (
    DEFAULT_CHUNKER,
    REPOSITORY_FORMAT,
    ChunkerParams,
    RepoConfig,
    read_config,
    read_configs,
    same_repository,
)
from ctfy_vault.repository._heads import HEADS_FORMAT, KnownHeads, LineageHead
from ctfy_vault.repository._heal import heal, judge_copies, well_formed
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
from ctfy_vault.repository._lock import LockInfo, acquire, new_lock, read_lock, release
from ctfy_vault.repository._replicas import Failures, Outcome, Replicas, put
from ctfy_vault.repository._reports import HealOutcome, HealReport, Problem, VerifyReport
from ctfy_vault.repository._slots import (
    add_key_slot,
    create_key_slot,
    has_key_slots,
    list_key_slots,
    remove_key_slot,
    rotate_key_slot,
    unlock,
)
from ctfy_vault.repository._verify import ReadData, verify_targets

__all__ = [
    "CONFIG_KEY",
    "DEFAULT_CHUNKER",
    "DELETE_CHECK_KEY",
    "HEADS_FORMAT",
    "KEYS_PREFIX",
    "LOCKS_PREFIX",
    "LOCK_KEY",
    "OBJECTS_PREFIX",
    "QUARANTINE_PREFIX",
    "REPOSITORY_FORMAT",
    "SNAPSHOTS_PREFIX",
    "SWEEP_PREFIX",
    "ChunkStream",
    "ChunkerParams",
    "Failures",
    "HealOutcome",
    "HealReport",
    "KeyKind",
    "KnownHeads",
    "LineageHead",
    "LockInfo",
    "Outcome",
    "Problem",
    "ReadData",
    "Reader",
    "Replicas",
    "RepoConfig",
    "VerifyReport",
    "acquire",
    "add_key_slot",
    "chunk_id_of",
    "chunk_key",
    "create_key_slot",
    "has_key_slots",
    "heal",
    "in_lock_area",
    "index_chunks",
    "judge_copies",
    "kind_of",
    "list_key_slots",
    "new_lock",
    "put",
    "quarantine_key",
    "quarantined_of",
    "read_config",
    "read_configs",
    "read_lock",
    "release",
    "remove_key_slot",
    "rotate_key_slot",
    "same_repository",
    "slot_id_of",
    "slot_key",
    "snapshot_key",
    "snapshot_name_of",
    "snapshot_names",
    "sweep_mark_key",
    "unexpected_key",
    "unlock",
    "verify_targets",
    "well_formed",
]
