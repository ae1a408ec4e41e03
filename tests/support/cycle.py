"""The backup, forget, prune (repack), damage and heal cycle of a format 2 repository.

Shared by the state machine (memory and local folders) and the cycle tests on moto, Ceph RGW and
Azurite: `Cycle` drives one repository and keeps the model, the content every kept snapshot must
restore to; its checks compare the repository with the model.
"""

from __future__ import annotations

import io
import random
from datetime import datetime, timedelta

import attrs

from ctfy_vault.repository import PACKS_PREFIX, load_packed
from ctfy_vault.retention import Policy
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault
from ctfy_vault.writer import ChunkerParams, StreamSource
from tests.support.copies import sealer_of
from tests.support.vaults import KEY
from tests.support.writer_strategies import NOW

#: Small chunks and packs, so a few KiB make several packs and repacking has work.
CHUNKS = ChunkerParams(min_size=256, avg_size=1024, max_size=4096)
PACK_SIZE = 8 * 1024
LINEAGE = "db"
#: The pieces files are made of: shared pieces make snapshots share chunks, so forgetting one
#: leaves packs half live.
PIECES = tuple(random.Random(n).randbytes(3000) for n in range(8))  # noqa: S311 - test data


def files_of(seed: int) -> dict[str, bytes]:
    """The files a backup with ``seed`` stores: pieces in a seeded order, and one file its own."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    shared = b"".join(rng.choice(PIECES) for _ in range(3))
    own = rng.randbytes(rng.randrange(100, 9000))
    return {"shared.bin": shared, "own.bin": own}


@attrs.define
class Cycle:
    """One format 2 repository and the content each of its kept snapshots must restore to."""

    targets: list[Target]
    vault: Vault = attrs.field(init=False)
    model: dict[str, dict[str, bytes]] = attrs.field(factory=dict)  # snapshot name -> files
    clock: int = 0
    seed: int = 0
    damaged: set[str] = attrs.field(factory=set)  # targets with damage heal has not repaired

    def __attrs_post_init__(self) -> None:
        self.vault = Vault.init(self.targets, key=KEY, now=NOW, chunker=CHUNKS, pack_size=PACK_SIZE)

    def now(self) -> datetime:
        """The next hour of the cycle's clock."""
        self.clock += 1
        return NOW + timedelta(hours=self.clock)

    def backup(self) -> str:
        """Back up the next seed's files; the model records them."""
        self.seed += 1
        files = files_of(self.seed)
        sources = [StreamSource(name=n, stream=io.BytesIO(d)) for n, d in files.items()]
        info = self.vault.backup(sources, lineage=LINEAGE, host="h", now=self.now())
        self.model[info.name] = files
        return info.name

    def prune(self, keep: int, repack_below: float) -> None:
        """Forget all but the newest ``keep`` snapshots, prune with grace 0, repacking."""
        report = self.vault.prune(
            Policy(last=keep), now=self.now(), grace=timedelta(0), repack_below=repack_below
        )
        assert report.ok, report.errors
        gone = {info.name for info in report.forgotten}
        assert gone <= set(self.model)
        for name in gone:
            del self.model[name]
        assert len(self.model) == min(keep, len(self.model) + len(gone))

    def damage(self, index: int, rng: random.Random, *, delete: bool) -> None:
        """Delete a pack of one target, or flip one byte in it."""
        target = self.targets[index]
        packs = sorted(target.list(PACKS_PREFIX))
        if not packs:
            return
        key = rng.choice(packs)
        if delete:
            target.delete(key)
        else:
            blob = bytearray(target.read(key))
            blob[rng.randrange(len(blob))] ^= 0x40
            target.delete(key)
            target.write(key, bytes(blob))
        self.damaged.add(target.name)

    def heal(self) -> None:
        """Repair every damaged copy from the other target, then expect a clean repository."""
        self.vault = Vault.open(self.targets, key=KEY)
        self.vault.heal(repair=True, now=self.now())
        self.damaged.clear()

    def check_restores(self) -> None:
        """Every kept snapshot restores to its content (falling back past a damaged target)."""
        vault = Vault.open(self.targets, key=KEY)
        listed = {info.name: info for info in vault.snapshots(LINEAGE)}
        assert set(listed) == set(self.model)
        for name, files in self.model.items():
            for path, data in files.items():
                with vault.open_file(listed[name], path) as stream:
                    assert stream.read() == data, f"{name}:{path}"

    def check_clean(self) -> None:
        """Verify with read_data finds nothing; the targets hold the same packs; no dead pack."""
        report = Vault.open(self.targets, key=KEY).verify(read_data=True)
        assert report.ok, report.problems
        assert not report.problems, report.problems
        names = [set(t.list(PACKS_PREFIX)) for t in self.targets]
        assert all(found == names[0] for found in names)
        referenced = {
            chunk
            for name in self.model
            for entry in self.vault.manifest(self.vault.find(name)).files
            for chunk in entry.chunks
        }
        sealer = sealer_of(self.vault, KEY)
        for target in self.targets:
            held = load_packed(target, sealer)
            assert not held.loose_packs()
            for pack_id in held.index.pack_ids:
                chunks = {
                    location.chunk_id
                    for location in (held.locate(c) for c in held.chunk_ids())
                    if location is not None and location.pack_id == pack_id
                }
                # After a prune with grace 0, no pack is left holding no live chunk.
                assert chunks & referenced or not self.model, f"dead pack {pack_id.hex()}"
