"""Repositories for tests: a fresh vault, sample trees and streams, planting and corrupting objects."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

from ctfy_vault.crypto import RawKey, Sealer
from ctfy_vault.manifest import Manifest, seal_entry
from ctfy_vault.repository import unlock
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault
from ctfy_vault.writer import StreamSource
from tests.support.writer_strategies import NOW, SMALL, memory_target


def repo_sealer(vault: Vault) -> Sealer:
    """The repository's sealer, rebuilt from its key slot through the public crypto API."""
    keys = unlock(vault.targets[0], repo_id=vault.repo_id, credential=KEY)
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


KEY = RawKey(b"k" * 32)


def new_vault(count: int = 2, *, factory: Callable[[str], Target] = memory_target) -> Vault:
    """A fresh repository with small chunks on ``count`` targets."""
    return Vault.init([factory(f"t{n}") for n in range(count)], key=KEY, now=NOW, chunker=SMALL)


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
