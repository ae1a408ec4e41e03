"""Build the frozen format v2 repository in ``tests/data/format-v2/`` (run once; commit the output).

``python -m tests.support.format_v2_golden`` writes ``tests/data/format-v2/repository/`` (every
object of a one-target repository, as a local-disk target stores it) and
``tests/data/format-v2/repository.json`` (what a reader must find in it). The master keys, the
repository id, the key slot's salt and nonce, the file contents and every time are fixed; the
nonces of the backups are the operating system's (`Vault.open` takes no random source), so a new
run gives other bytes. The committed bytes are the vector: never regenerate them for a passing
change, since a change that makes the frozen repository unreadable is a format change.

The repository is small on purpose: a tiny chunker (64 B to 1 KiB chunks) and the smallest pack
size (4 KiB), so two backups give several packs and one index object each.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from ctfy_vault.crypto import MasterKeys, Passphrase, ScryptParams, Sealer, derive_chunker_key
from ctfy_vault.manifest import FileType
from ctfy_vault.repository import (
    CONFIG_KEY,
    ChunkerParams,
    RepoConfig,
    create_key_slot,
    list_index_ids,
    list_pack_ids,
    load_packed,
)
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault
from tests.support.paths import DATA

#: Where the repository and its description are written.
OUT: Final = DATA / "format-v2"
PASSPHRASE: Final = "correct horse battery staple"
#: Tests only: real slots use the default cost.
CHEAP: Final = ScryptParams(n=2**8, r=8, p=1)
CHUNKER: Final = ChunkerParams(min_size=64, avg_size=256, max_size=1024)
PACK_SIZE: Final = 4096
LINEAGE: Final = "files"
HOST: Final = "golden.example"
INIT: Final = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
FIRST: Final = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
SECOND: Final = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
#: File times: 2026-10-31T12:00:00Z and a day later for what the second backup changes.
MTIME_NS: Final = 1_793_448_000 * 10**9
LATER_NS: Final = MTIME_NS + 86_400 * 10**9


def stream(label: str, size: int) -> bytes:
    """``size`` pseudo-random bytes: SHA-256 of ``label`` and a counter (stable everywhere)."""
    blocks = (
        hashlib.sha256(label.encode() + n.to_bytes(4, "big")).digest()
        for n in range(size // 32 + 1)
    )
    return b"".join(blocks)[:size]


def _randbytes(label: str) -> Callable[[int], bytes]:
    """A deterministic ``randbytes`` for the key slot's salt and nonce."""
    drawn = 0

    def randbytes(n: int) -> bytes:
        nonlocal drawn
        out = stream(f"{label}/{drawn}", n)
        drawn += 1
        return out

    return randbytes


def _big() -> bytes:
    """About 10 KiB: random, a run of zeros (cut at the maximum size) and text."""
    text = b"".join(b"INSERT INTO contracts (id) VALUES (%d);\n" % n for n in range(80))
    return stream("big", 6000) + bytes(2500) + text


def _tree(root: Path, *, second: bool) -> Path:
    """The source tree of the first (or second) backup."""
    src = root / "src"
    (src / "sub").mkdir(parents=True, exist_ok=True)
    files = {
        "notes.txt": (b"ctfy_vault format v2 golden repository\n" * 3, MTIME_NS),
        "empty": (b"", MTIME_NS),
        "sub/big.bin": (_big(), MTIME_NS),
    }
    if second:
        big = bytearray(_big())
        big[3000:3016] = b"changed in day 2"
        files["sub/big.bin"] = (bytes(big), LATER_NS)
        files["sub/added.txt"] = (b"added by the second backup\n", LATER_NS)
    for name, (content, mtime_ns) in files.items():
        path = src / name
        path.write_bytes(content)
        path.chmod(0o644)
        os.utime(path, ns=(mtime_ns, mtime_ns))
    link = src / "link"
    if not link.is_symlink():
        os.symlink("notes.txt", link)
    os.utime(link, ns=(MTIME_NS, MTIME_NS), follow_symlinks=False)
    for folder in (src / "sub", src):
        folder.chmod(0o755)
        os.utime(folder, ns=(MTIME_NS, MTIME_NS))
    return src


def _init(target: Target, keys: MasterKeys, repo_id: bytes) -> None:
    """What `Vault.init` writes, with fixed keys, id, salt and nonce."""
    config = RepoConfig(repo_id=repo_id, chunker=CHUNKER, format=2, pack_size=PACK_SIZE)
    target.write(CONFIG_KEY, config.to_json())
    create_key_slot(
        target,
        repo_id=repo_id,
        keys=keys,
        credential=Passphrase(PASSPHRASE, scrypt=CHEAP),
        now=INIT,
        key_id="golden",
        randbytes=_randbytes("slot"),
    )


def _describe(vault: Vault, keys: MasterKeys, target: Target) -> dict[str, Any]:
    """What a reader must find in the repository."""
    sealer = Sealer(repo_id=vault.repo_id, keys=keys)
    packed = load_packed(target, sealer)
    chunker_key = derive_chunker_key(keys)
    snapshots = []
    for info in sorted(vault.snapshots(), key=lambda s: s.created):
        files = []
        for entry in vault.manifest(info).files:
            described: dict[str, Any] = {
                "path": entry.path,
                "type": entry.type.value,
                "mode": entry.mode,
                "mtime_ns": entry.mtime_ns,
                "size": entry.size,
            }
            if entry.type is FileType.FILE:
                assert entry.sha256 is not None
                described["sha256"] = entry.sha256.hex()
                described["chunks"] = [chunk.hex() for chunk in entry.chunks]
            if entry.link is not None:
                described["link"] = entry.link
            files.append(described)
        snapshots.append(
            {
                "name": info.name,
                "id": info.snapshot_id,
                "lineage": info.lineage,
                "host": info.host,
                "created": info.created.isoformat(),
                "hash": info.hash.hex(),
                "previous": None if info.previous is None else info.previous.hex(),
                "files": files,
            }
        )
    return {
        "format": 2,
        "description": (
            "A frozen format v2 repository (tests/data/format-v2/repository/, one local-disk "
            "target) and what a reader must find in it. Built once by "
            "tests/support/format_v2_golden.py; never regenerate or edit: a change that makes it "
            "unreadable is a format change."
        ),
        "passphrase": PASSPHRASE,
        "key_id": "golden",
        "repo_id": vault.repo_id.hex(),
        "data_key": keys.data_key.hex(),
        "chunk_id_key": keys.chunk_id_key.hex(),
        "config": target.read(CONFIG_KEY).decode(),
        "chunker_key": {
            "seed": chunker_key.seed,
            "permutation": chunker_key.permutation.hex(),
        },
        "packs": sorted(pack_id.hex() for pack_id in list_pack_ids(target)),
        "index": sorted(index_id.hex() for index_id in list_index_ids(target)),
        "chunks": len(list(packed.chunk_ids())),
        "snapshots": snapshots,
    }


def build(out: Path) -> None:
    """Write the repository under ``out/repository`` and its description to ``out/repository.json``."""
    repo = out / "repository"
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    keys = MasterKeys(data_key=stream("data key", 32), chunk_id_key=stream("chunk-id key", 32))
    repo_id = stream("repository id", 16)
    target = Target.from_url(str(repo), name="golden")
    _init(target, keys, repo_id)
    vault = Vault.open([target], key=Passphrase(PASSPHRASE))
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        vault.backup(_tree(root, second=False), lineage=LINEAGE, host=HOST, now=FIRST)
        vault.backup(_tree(root, second=True), lineage=LINEAGE, host=HOST, now=SECOND)
    description = _describe(vault, keys, target)
    (out / "repository.json").write_text(json.dumps(description, indent=1) + "\n")


def main() -> None:
    """Build the frozen repository (into ``tests/data/format-v2`` unless told otherwise)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out", nargs="?", type=Path, default=OUT)
    build(parser.parse_args().out)


if __name__ == "__main__":
    main()
