"""What copy tests compare (restored trees, catalogs without chunk ids, chains), and shared sources."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

import attrs

from ctfy_vault.crypto import Credential, Sealer
from ctfy_vault.repository import unlock
from ctfy_vault.storage import Target
from ctfy_vault.vault import SnapshotInfo, Vault
from tests.support.writer_strategies import memory_target

#: One path of a restored tree: kind, permission bits, mtime and content (or link target).
PathState = tuple[str, int, int, bytes | str | None]
#: One snapshot without anything that depends on the repository's keys (hashes, chunk ids).
SnapshotState = tuple[object, ...]


def tree_state(root: Path, only: Iterable[str] | None = None) -> dict[str, PathState]:
    """Every path under ``root`` (or those in ``only``), not following links, with its state.

    Folders a restore creates for entries whose folder the snapshot does not list get the time
    of the restore: pass the snapshot's paths as ``only`` to leave them out.
    """
    wanted = None if only is None else set(only)
    found: dict[str, PathState] = {}
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            info = os.lstat(path)
            relative = path.relative_to(root).as_posix()
            if wanted is not None and relative not in wanted:
                continue
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                found[relative] = ("link", 0, info.st_mtime_ns, os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[relative] = ("dir", mode, info.st_mtime_ns, None)
            else:
                found[relative] = ("file", mode, info.st_mtime_ns, path.read_bytes())
    return found


def snapshot_state(vault: Vault, info: SnapshotInfo, *, drop_tags: frozenset[str]) -> SnapshotState:
    """A snapshot's lineage, id, name, time, host, tags, labels, sources and entries (no chunks)."""
    manifest = vault.manifest(info)
    files = tuple(
        (e.path, e.type.value, e.mode, e.mtime_ns, e.size, e.sha256, e.link) for e in manifest.files
    )
    tags = tuple(tag for tag in manifest.tags if tag not in drop_tags)
    return (
        manifest.lineage,
        manifest.snapshot_id,
        manifest.name,
        manifest.created,
        manifest.host,
        tags,
        manifest.labels,
        manifest.sources,
        files,
    )


def catalog(vault: Vault, *, drop_tags: frozenset[str] = frozenset()) -> dict[str, SnapshotState]:
    """Every snapshot of ``vault`` by name, as `snapshot_state` describes it."""
    return {
        info.name: snapshot_state(vault, info, drop_tags=drop_tags) for info in vault.snapshots()
    }


def chains(vault: Vault) -> dict[str, list[str]]:
    """Each lineage's snapshots in chain order, oldest first, following ``previous`` from the head.

    Every snapshot must be on its lineage's chain and every link must lead to a snapshot (a
    repository whose lineages hold prune records is not for this helper).
    """
    found: dict[str, list[str]] = {}
    listed = vault.snapshots()
    for lineage in sorted({info.lineage for info in listed}):
        mine = {info.hash: info for info in listed if info.lineage == lineage}
        named = {info.previous for info in mine.values()}
        heads = [info for info in mine.values() if info.hash not in named]
        assert len(heads) == 1, f"lineage {lineage} has {len(heads)} heads"
        order: list[str] = []
        current: SnapshotInfo | None = heads[0]
        while current is not None:
            order.append(current.name)
            current = None if current.previous is None else mine[current.previous]
        assert len(order) == len(mine), f"lineage {lineage} has snapshots off its chain"
        found[lineage] = order[::-1]
    return found


def sealer_of(vault: Vault, credential: Credential) -> Sealer:
    """The repository's sealer, rebuilt from a key slot (to open its objects by hand)."""
    keys = unlock(vault.targets[0], repo_id=vault.repo_id, credential=credential)
    return Sealer(repo_id=vault.repo_id, keys=keys)


@attrs.frozen
class Stored:
    """A repository's objects, target by target: built once, written to fresh targets per test.

    fsspec's memory store is emptied around every test, so a repository shared by a module's
    tests is kept as bytes and `reopened` on new targets by each test, which may then change it.
    """

    objects: tuple[dict[str, bytes], ...] = attrs.field(repr=False)
    credential: Credential = attrs.field(repr=False)

    @classmethod
    def of(cls, vault: Vault, credential: Credential) -> Stored:
        """Every object of every target of ``vault`` (a key slot ``credential`` opens)."""
        return cls(
            objects=tuple(
                {key: target.read(key) for key in target.list("")} for target in vault.targets
            ),
            credential=credential,
        )

    def reopened(
        self, label: str = "stored", factory: Callable[[str], Target] = memory_target
    ) -> Vault:
        """The repository on fresh targets ``factory`` makes (labelled ``label0``, ``label1`` ...)."""
        targets = []
        for n, objects in enumerate(self.objects):
            target = factory(f"{label}{n}")
            for key, data in objects.items():
                target.write(key, data)
            targets.append(target)
        return Vault.open(targets, key=self.credential)
