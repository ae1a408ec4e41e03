"""Repositories for tests: a fresh vault, sample trees and streams, planting and corrupting objects."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

from ctfy_vault.crypto import Credential, RawKey, Sealer
from ctfy_vault.manifest import Manifest, seal_entry
from ctfy_vault.repository import (
    DEFAULT_PACK_SIZE,
    Location,
    PackedTarget,
    load_packed,
    pack_key,
    unlock,
)
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault
from ctfy_vault.writer import StreamSource
from tests.support.writer_strategies import NOW, SMALL, memory_target

KEY = RawKey(b"k" * 32)


def repo_sealer(vault: Vault, credential: Credential = KEY) -> Sealer:
    """The repository's sealer, rebuilt from its key slot through the public crypto API."""
    keys = unlock(vault.targets[0], repo_id=vault.repo_id, credential=credential)
    return Sealer(repo_id=vault.repo_id, keys=keys)


def plant(vault: Vault, manifest: Manifest) -> str:
    """Seal a crafted manifest with the repository's keys and store it on every target."""
    sealed = seal_entry(repo_sealer(vault), manifest)
    for target in vault.targets:
        target.write(f"snapshots/{sealed.name}", bytes(sealed.blob))
    return sealed.name


def corrupt(target: Target, key: str) -> None:
    """Flip one byte of a stored object (test-only delete then rewrite)."""
    blob = bytearray(target.read(key))
    blob[-1] ^= 0x01
    target.delete(key)
    target.write(key, bytes(blob))


def new_vault(
    count: int = 2,
    *,
    factory: Callable[[str], Target] = memory_target,
    format: int = 2,
    pack_size: int = DEFAULT_PACK_SIZE,
) -> Vault:
    """A fresh repository with small chunks on ``count`` targets (format 2 unless told)."""
    return Vault.init(
        [factory(f"t{n}") for n in range(count)],
        key=KEY,
        now=NOW,
        chunker=SMALL,
        format=format,
        pack_size=pack_size,
    )


def holdings(vault: Vault, target: Target, credential: Credential = KEY) -> PackedTarget:
    """Format 2: what one target holds, by its index objects and packs."""
    return load_packed(target, repo_sealer(vault, credential))


def pack_of(vault: Vault, target: Target, chunk_id: bytes, credential: Credential = KEY) -> str:
    """Format 2: the key of the pack the target's index objects place a chunk in."""
    return pack_key(locate(vault, target, chunk_id, credential).pack_id)


def locate(vault: Vault, target: Target, chunk_id: bytes, credential: Credential = KEY) -> Location:
    """Format 2: where a target holds a chunk (it must hold it)."""
    location = holdings(vault, target, credential).locate(chunk_id)
    assert location is not None, chunk_id.hex()
    return location


def corrupt_in_pack(
    vault: Vault, target: Target, chunk_id: bytes, credential: Credential = KEY
) -> str:
    """Format 2: flip one byte inside a chunk's range in its pack (test-only rewrite); the key."""
    location = locate(vault, target, chunk_id, credential)
    key = pack_key(location.pack_id)
    blob = bytearray(target.read(key))
    blob[location.offset + location.length // 2] ^= 0x01
    target.delete(key)
    target.write(key, bytes(blob))
    return key


def sample_tree(root: Path) -> Path:
    """A small source tree: two files, a subfolder and a link."""
    src = root / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"alpha " * 500)
    (src / "sub" / "b.bin").write_bytes(os.urandom(3000))
    os.symlink("a.txt", src / "link")
    return src


def stream(data: bytes, name: str = "db.sql") -> StreamSource:
    """A stream source over ``data``."""
    return StreamSource(name=name, stream=io.BytesIO(data))
