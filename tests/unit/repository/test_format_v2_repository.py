"""The frozen format v2 repository: opened, listed, restored and read object by object as specified.

``tests/data/format-v2/repository/`` is a whole one-target repository (config, key slot, packs,
index objects, two snapshots of one lineage) and ``repository.json`` what a reader must find in
it. Both were built once by ``tests/support/format_v2_golden.py`` and must never change: a
release that cannot read them has changed the format.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from ctfy_vault.crypto import ChunkerKey, MasterKeys, Passphrase, Sealer, derive_chunker_key
from ctfy_vault.manifest import FileType, verify_chain
from ctfy_vault.repository import (
    CONFIG_KEY,
    INDEX_PREFIX,
    PACKS_PREFIX,
    IndexedPack,
    MergedIndex,
    PackHeader,
    RepoConfig,
    check_pack,
    decode_index,
    index_key,
    kind_of,
    list_index_ids,
    list_pack_ids,
    load_packed,
    pack_key,
    padme,
    read_config,
    unlock,
)
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault
from ctfy_vault.writer import iter_chunks
from tests.support.format_v2_golden import build
from tests.support.paths import DATA

FROZEN = DATA / "format-v2" / "repository"
VECTOR: dict[str, Any] = json.loads((DATA / "format-v2" / "repository.json").read_text())
REPO_ID = bytes.fromhex(VECTOR["repo_id"])
KEYS = MasterKeys(
    data_key=bytes.fromhex(VECTOR["data_key"]),
    chunk_id_key=bytes.fromhex(VECTOR["chunk_id_key"]),
)
SNAPSHOTS: list[dict[str, Any]] = VECTOR["snapshots"]
#: The frozen repository's one large file: longer than the chunker's maximum, cut many times.
BIG = "src/sub/big.bin"


@pytest.fixture
def repository(tmp_path: Path) -> Target:
    """A copy of the frozen repository on local disk (the committed files are never opened)."""
    copy = tmp_path / "repository"
    shutil.copytree(FROZEN, copy)
    return Target.from_url(str(copy), name="golden")


@pytest.fixture
def vault(repository: Target) -> Vault:
    """The frozen repository, opened with its passphrase."""
    return Vault.open([repository], key=Passphrase(VECTOR["passphrase"]))


def _sealer() -> Sealer:
    return Sealer(repo_id=REPO_ID, keys=KEYS)


def _files(snapshot: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["path"]: entry for entry in snapshot["files"]}


def _checked_packs(target: Target) -> dict[bytes, PackHeader]:
    """Every pack, read whole and checked (name, trailer, header, padding, every chunk)."""
    sealer = _sealer()
    return {
        pack_id: check_pack(sealer, pack_id, target.read(pack_key(pack_id)))
        for pack_id in sorted(list_pack_ids(target))
    }


def _records(target: Target) -> dict[bytes, tuple[IndexedPack, ...]]:
    """Every index object, decoded (name, envelope, records, fill)."""
    sealer = _sealer()
    return {
        index_id: decode_index(sealer, index_id, target.read(index_key(index_id)))
        for index_id in sorted(list_index_ids(target))
    }


def test_the_config_is_the_documented_format_2_document(repository: Target) -> None:
    """``config`` is the canonical v2 JSON: format 2, the id, size bounds, cipher, pack size."""
    stored = repository.read(CONFIG_KEY)
    assert stored.decode() == VECTOR["config"]
    config = read_config(repository)
    assert (config.format, config.packed, config.pack_size) == (2, True, 4096)
    assert config.repo_id == REPO_ID
    assert (config.chunker.min_size, config.chunker.avg_size, config.chunker.max_size) == (
        64,
        256,
        1024,
    )
    assert config.to_json() == stored
    assert RepoConfig.from_json(stored) == config
    document = json.loads(stored)
    assert set(document) == {"chunker", "cipher", "format", "packs", "repo_id"}
    assert document["packs"] == {"target_size": 4096}
    assert stored == json.dumps(document, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def test_the_passphrase_unwraps_the_frozen_master_keys(repository: Target) -> None:
    """The key slot opens with the passphrase (cheap scrypt recorded in it) to the frozen keys."""
    keys = unlock(repository, repo_id=REPO_ID, credential=Passphrase(VECTOR["passphrase"]))
    assert keys == KEYS


def test_the_chunker_key_of_the_frozen_keys_is_known() -> None:
    """A known answer: the frozen master keys derive the recorded gear seed and permutation."""
    key = derive_chunker_key(KEYS)
    recorded = VECTOR["chunker_key"]
    assert key == ChunkerKey(
        seed=recorded["seed"], permutation=bytes.fromhex(recorded["permutation"])
    )


def test_the_snapshots_are_listed_and_chained(vault: Vault) -> None:
    """Both snapshots of the one lineage are listed, newest first, the second chained to the first."""
    listed = vault.snapshots()
    assert [info.name for info in listed] == [s["name"] for s in reversed(SNAPSHOTS)]
    for info, frozen in zip(reversed(listed), SNAPSHOTS, strict=True):
        assert (info.snapshot_id, info.lineage, info.host) == (
            frozen["id"],
            frozen["lineage"],
            frozen["host"],
        )
        assert info.created.isoformat() == frozen["created"]
        assert info.hash.hex() == frozen["hash"]
        assert info.previous == (
            None if frozen["previous"] is None else bytes.fromhex(frozen["previous"])
        )
    assert SNAPSHOTS[1]["previous"] == SNAPSHOTS[0]["hash"]
    manifests = [vault.manifest(s["name"]) for s in SNAPSHOTS]
    report = verify_chain(manifests)
    assert report.ok
    assert report.heads == (("files", bytes.fromhex(SNAPSHOTS[1]["hash"])),)


@pytest.mark.parametrize("which", [0, 1])
def test_every_file_restores_byte_identical(vault: Vault, tmp_path: Path, which: int) -> None:
    """Restoring a snapshot gives every file with its recorded SHA-256, mode and mtime, and the link."""
    frozen = SNAPSHOTS[which]
    dest = tmp_path / "restored"
    report = vault.restore(frozen["name"], dest)
    assert report.refused == ()
    assert report.fallbacks == ()
    files = _files(frozen)
    assert {e.path for e in vault.manifest(frozen["name"]).files} == set(files)
    for path, entry in files.items():
        restored = dest / path
        if entry["type"] == FileType.FILE.value:
            content = restored.read_bytes()
            assert len(content) == entry["size"]
            assert hashlib.sha256(content).hexdigest() == entry["sha256"]
            assert restored.stat().st_mode & 0o7777 == entry["mode"]
            assert restored.stat().st_mtime_ns == entry["mtime_ns"]
            with vault.open_file(frozen["name"], path) as stream:
                assert stream.read() == content
        elif entry["type"] == FileType.SYMLINK.value:
            assert os.readlink(restored) == entry["link"]
        else:
            assert restored.is_dir()
    assert files["src/empty"]["size"] == 0
    assert files["src/empty"]["chunks"] == []
    assert files["src/link"]["type"] == FileType.SYMLINK.value
    assert files[BIG]["size"] > 1024


def test_the_keyed_chunker_reproduces_the_big_files_chunk_ids(vault: Vault, tmp_path: Path) -> None:
    """Cutting the big file with the key derived from the repository's keys gives its manifest's ids."""
    keys = unlock(vault.targets[0], repo_id=REPO_ID, credential=Passphrase(VECTOR["passphrase"]))
    sealer = Sealer(repo_id=REPO_ID, keys=keys)
    for frozen in SNAPSHOTS:
        entry = _files(frozen)[BIG]
        with vault.open_file(frozen["name"], BIG) as stream:
            content = stream.read()
        assert hashlib.sha256(content).hexdigest() == entry["sha256"]
        keyed = list(
            iter_chunks(io.BytesIO(content), vault.config.chunker, derive_chunker_key(keys))
        )
        assert b"".join(keyed) == content
        assert [sealer.chunk_id(chunk).hex() for chunk in keyed] == entry["chunks"]
        (listed,) = (e for e in vault.manifest(frozen["name"]).files if e.path == BIG)
        assert [chunk_id.hex() for chunk_id in listed.chunks] == entry["chunks"]
        assert max(len(chunk) for chunk in keyed) == vault.config.chunker.max_size
        unkeyed = list(iter_chunks(io.BytesIO(content), vault.config.chunker))
        assert [sealer.chunk_id(chunk).hex() for chunk in unkeyed] != entry["chunks"]
    first, second = (set(_files(s)[BIG]["chunks"]) for s in SNAPSHOTS)
    assert first & second  # the edit on day 2 left most chunks as they were
    assert second - first


def test_the_objects_are_exactly_the_recorded_ones(repository: Target) -> None:
    """The repository holds config, one key slot, the recorded packs, index objects and snapshots."""
    keys = sorted(repository.list(""))
    assert {kind_of(key).name for key in keys} == {
        "CONFIG",
        "KEY_SLOT",
        "PACK",
        "INDEX",
        "SNAPSHOT",
    }
    assert sorted(p.hex() for p in list_pack_ids(repository)) == VECTOR["packs"]
    assert sorted(i.hex() for i in list_index_ids(repository)) == VECTOR["index"]
    assert len(VECTOR["packs"]) >= 3
    assert len(VECTOR["index"]) == 2  # one per backup: each writes its index objects at its end
    assert [k for k in keys if k.startswith("snapshots/")] == [
        f"snapshots/{s['name']}" for s in SNAPSHOTS
    ]
    assert not any(k.startswith("objects/") for k in keys)  # format 2 stores no loose chunk


def test_every_pack_and_index_object_is_as_specified(repository: Target) -> None:
    """Packs hash to their names and are Padmé-padded; the index records match the packs exactly."""
    # Read without `verify`, which checks format 1 objects only so far: every pack whole with
    # `check_pack` and every index object with `decode_index`, as docs/format.md says.
    packs = _checked_packs(repository)
    for pack_id, header in packs.items():
        size = repository.size(pack_key(pack_id))
        assert header.size == size == padme(size)
        assert size == padme(header.header_offset + header.header_length + 48)
        assert pack_key(pack_id).startswith(f"{PACKS_PREFIX}/{pack_id.hex()[:2]}/")
    records = _records(repository)
    listed: dict[bytes, IndexedPack] = {}
    for index_id, index in records.items():
        assert repository.size(index_key(index_id)) == padme(repository.size(index_key(index_id)))
        assert index_key(index_id) == f"{INDEX_PREFIX}/{index_id.hex()}"
        assert [r.pack_id for r in index] == sorted(r.pack_id for r in index)
        for record in index:
            assert record.pack_id not in listed  # each pack is indexed once
            listed[record.pack_id] = record
    assert set(listed) == set(packs)  # no loose pack, no record of an absent pack
    for pack_id, record in listed.items():
        assert record.size == packs[pack_id].size
        assert record.entries == packs[pack_id].entries
    merged = MergedIndex.merge(records.values())
    assert len(list(merged.chunk_ids())) == VECTOR["chunks"]
    packed = load_packed(repository, _sealer())
    assert packed.loose_packs() == packed.missing_packs() == frozenset()
    assert packed.damaged == {}
    for frozen in SNAPSHOTS:
        for entry in frozen["files"]:
            for chunk in entry.get("chunks", []):
                location = packed.locate(bytes.fromhex(chunk))
                assert location is not None
                assert location.pack_id in packs


def test_the_generator_rebuilds_all_but_the_random_parts(tmp_path: Path) -> None:
    """Rebuilding gives the same config, keys, files and chunk ids; only nonces and ids differ."""
    build(tmp_path)
    rebuilt: dict[str, Any] = json.loads((tmp_path / "repository.json").read_text())
    fixed = ("config", "repo_id", "data_key", "chunk_id_key", "chunker_key", "chunks", "passphrase")
    assert {name: rebuilt[name] for name in fixed} == {name: VECTOR[name] for name in fixed}
    assert len(rebuilt["index"]) == len(VECTOR["index"])
    assert set(rebuilt["packs"]).isdisjoint(VECTOR["packs"])  # fresh nonces: other pack bytes
    for again, frozen in zip(rebuilt["snapshots"], SNAPSHOTS, strict=True):
        assert again["files"] == frozen["files"]
        assert (again["created"], again["lineage"]) == (frozen["created"], frozen["lineage"])
