"""What an export reads: a tenant's objects on a target, and a tenant's folder in a vault snapshot."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

import attrs

from ctfy_vault.exceptions import (
    ConfigurationError,
    InvalidObjectKeyError,
    ObjectNotFoundError,
)
from ctfy_vault.manifest import FileEntry, FileType
from ctfy_vault.storage import Target, validate_key
from ctfy_vault.vault import SnapshotInfo, Vault

#: Bytes read from a source per request, and the most any one archive write step holds.
BLOCK_SIZE = 1 << 20


def _folder(_instance: object, _attribute: object, value: str) -> None:
    if "/" in value or value in ("", ".", ".."):
        raise ConfigurationError(
            f"an archive folder is one non-empty name without '/', got {value!r}"
        )
    validate_key(value, what="archive folder")


def _prefix(_instance: object, _attribute: object, value: str | None) -> None:
    if value not in (None, ""):
        validate_key(value, what="tenant prefix")


@attrs.frozen(kw_only=True)
class TargetSource:
    """A tenant's documents: every object under ``prefix`` on ``target``.

    Attributes:
        target: the documents bucket or folder.
        prefix: the folder key holding the tenant's objects; ``None`` means the tenant id itself,
            ``""`` the whole target.
        folder: the folder the objects go into inside the archive.
    """

    target: Target
    prefix: str | None = attrs.field(default=None, validator=_prefix)
    folder: str = attrs.field(default="documents", validator=_folder)

    @property
    def name(self) -> str:
        """What reports call this source."""
        return self.target.name


@attrs.frozen(kw_only=True)
class SnapshotSource:
    """A tenant's files in one vault snapshot: every regular file at and under ``prefix``.

    Attributes:
        vault: the open repository.
        snapshot: the snapshot (a `SnapshotInfo`, its name or its id).
        prefix: the snapshot path holding the tenant's files; ``None`` means the tenant id,
            ``""`` the whole snapshot.
        folder: the folder the files go into inside the archive.
    """

    vault: Vault
    snapshot: SnapshotInfo | str
    prefix: str | None = attrs.field(default=None, validator=_prefix)
    folder: str = attrs.field(default="backup", validator=_folder)

    @property
    def name(self) -> str:
        """What reports call this source."""
        ref = self.snapshot.name if isinstance(self.snapshot, SnapshotInfo) else self.snapshot
        return f"snapshot {ref}"


#: Where an export reads a tenant's documents: a storage prefix or a vault snapshot.
ExportSource = TargetSource | SnapshotSource


@attrs.frozen(kw_only=True)
class Item:
    """One file to archive: where it comes from, where it goes, and how to read it."""

    origin: str
    folder: str
    source_path: str
    relative: str
    size: int
    modified: datetime | None
    blocks: Callable[[], Iterator[bytes]] = attrs.field(repr=False, eq=False)


@attrs.frozen(kw_only=True)
class Skipped:
    """A source entry left out of the archive, and why.

    Attributes:
        folder: the archive folder of its source.
        source_path: its key or path at the source, exactly as stored.
        reason: why it was left out, in words.
    """

    folder: str
    source_path: str
    reason: str


@attrs.frozen(kw_only=True)
class Collected:
    """Everything the sources hold for a tenant."""

    items: tuple[Item, ...]
    unsafe: tuple[Skipped, ...]
    skipped: tuple[Skipped, ...]
    found: bool
    where: tuple[str, ...]


def _relative(path: str, prefix: str) -> str | None:
    if not prefix:
        return path
    if path.startswith(prefix + "/"):
        return path[len(prefix) + 1 :]
    if path == prefix:
        return path.rsplit("/", 1)[-1]
    return None


def _target_items(source: TargetSource, prefix: str) -> tuple[list[Item], list[Skipped]]:
    target = source.target
    items: list[Item] = []
    unsafe: list[Skipped] = []
    for entry in target.entries(prefix):
        key = entry.key
        relative = _relative(key, prefix)
        if relative is None:
            continue
        try:
            validate_key(key)
        except InvalidObjectKeyError as err:
            unsafe.append(Skipped(folder=source.folder, source_path=key, reason=str(err)))
            continue
        items.append(
            Item(
                origin=source.name,
                folder=source.folder,
                source_path=key,
                relative=relative,
                size=entry.size,
                modified=entry.modified,
                blocks=_object_reader(target, key, entry.size),
            )
        )
    return items, unsafe


def _object_reader(target: Target, key: str, size: int) -> Callable[[], Iterator[bytes]]:
    def blocks() -> Iterator[bytes]:
        if size <= BLOCK_SIZE:  # one GET, no HEAD, for the many small documents
            yield target.read(key)
            return
        yield from target.read_stream(key, block_size=BLOCK_SIZE)

    return blocks


#: Entries that are no regular file, and why an export leaves them out.
_SKIPPED = {
    FileType.SYMLINK: "symbolic link: links are not followed into an export",
    FileType.FIFO: "FIFO: not a regular file, no content to export",
    FileType.CHARDEV: "character device: not a regular file, no content to export",
    FileType.BLOCKDEV: "block device: not a regular file, no content to export",
}


def _snapshot_items(source: SnapshotSource, prefix: str) -> tuple[list[Item], list[Skipped], bool]:
    vault = source.vault
    try:
        entries = vault.ls(source.snapshot, prefix)
    except ObjectNotFoundError as err:
        if err.key == prefix and prefix:  # the snapshot exists, the tenant's folder does not
            return [], [], False
        raise
    items: list[Item] = []
    skipped: list[Skipped] = []
    inodes: dict[str, FileEntry] | None = None
    for entry in entries:
        relative = _relative(entry.path, prefix)
        if relative is None:
            continue
        if entry.type is FileType.DIR:
            continue
        if entry.type is FileType.HARDLINK:
            # A further path to a file: exported with that file's content, which may lie
            # outside the tenant's folder.
            if inodes is None:
                inodes = {e.path: e for e in vault.ls(source.snapshot)}
            entry = attrs.evolve(inodes[entry.link or ""], path=entry.path)  # noqa: PLW2901
        reason = _SKIPPED.get(entry.type)
        if reason is not None:
            skipped.append(Skipped(folder=source.folder, source_path=entry.path, reason=reason))
            continue
        items.append(
            Item(
                origin=source.name,
                folder=source.folder,
                source_path=entry.path,
                relative=relative,
                size=entry.size,
                modified=datetime.fromtimestamp(entry.mtime_ns / 1e9, UTC),
                blocks=_file_reader(vault, source.snapshot, entry.path),
            )
        )
    return items, skipped, True


def _file_reader(
    vault: Vault, snapshot: SnapshotInfo | str, path: str
) -> Callable[[], Iterator[bytes]]:
    def blocks() -> Iterator[bytes]:
        with vault.open_file(snapshot, path) as stream:
            while block := stream.read(BLOCK_SIZE):
                yield block

    return blocks


def collect(sources: Sequence[ExportSource], tenant: str) -> Collected:
    """List what every source holds for ``tenant``, sorted by archive folder then source path.

    Raises:
        StorageError: a listing failed.
        ObjectNotFoundError: a snapshot source names no snapshot.
    """
    items: list[Item] = []
    unsafe: list[Skipped] = []
    skipped: list[Skipped] = []
    found = False
    where: list[str] = []
    for source in sources:
        prefix = tenant if source.prefix is None else source.prefix
        if isinstance(source, TargetSource):
            got, bad = _target_items(source, prefix)
            found = found or bool(got or bad)
            where.append(f"objects under {prefix or '(everything)'}/ on {source.name}")
        else:
            got, bad, present = _snapshot_items(source, prefix)
            found = found or present
            where.append(f"path {prefix or '(everything)'} in {source.name}")
        items.extend(got)
        (unsafe if isinstance(source, TargetSource) else skipped).extend(bad)
    items.sort(key=lambda item: (item.folder, item.source_path))
    return Collected(
        items=tuple(items),
        unsafe=tuple(sorted(unsafe, key=lambda s: (s.folder, s.source_path))),
        skipped=tuple(skipped),
        found=found,
        where=tuple(where),
    )
