"""What a backup would read and store, without reading a file or writing anything (``--dry-run``)."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from ctfy_vault.manifest import FileEntry, FileType, Manifest
from ctfy_vault.writer._command import CommandSource
from ctfy_vault.writer._outcome import SourceWarning
from ctfy_vault.writer._sources import (
    BackupSource,
    EntrySource,
    FileItem,
    Selection,
    StreamSource,
    walk,
)

__all__ = ["BackupPreview", "preview"]


@attrs.frozen(kw_only=True)
class BackupPreview:
    """What `preview` found: the entries a backup would record and the files it would read.

    Attributes:
        entries: entries the snapshot would hold (files, folders, links, special files).
        files: regular files among them.
        new: paths of files the previous snapshot does not have (read in full).
        changed: paths of files whose size, mtime or mode differ from the previous snapshot's
            (read again).
        unchanged: files taken from the previous snapshot without reading.
        bytes_to_read: the size of the new and changed files: what the backup would read.
        bytes_total: the size of every file.
        streams: names of the streams and commands, read (or run) in full by a backup.
        warnings: entries that would be skipped, as the backup would report them.
    """

    entries: int
    files: int
    new: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: int
    bytes_to_read: int
    bytes_total: int
    streams: tuple[str, ...] = ()
    warnings: tuple[SourceWarning, ...] = ()


def preview(
    sources: Iterable[BackupSource],
    *,
    parent: Manifest | None = None,
    selection: Selection | None = None,
    full_paths: bool = False,
) -> BackupPreview:
    """Walk the sources as a backup would and say what it would read; read and write nothing.

    A file counts as unchanged, as in a backup, when the previous snapshot (``parent``) has it
    with the same size, mtime and mode. Whether its chunks are still stored, and how much of
    what is read is already stored (deduplication), is only known by reading: a backup may
    store less than ``bytes_to_read``, never more (plus sealing and padding).

    Args:
        sources: paths, streams and commands, as `ctfy_vault.writer.Writer.backup` takes them
            (commands are not run).
        parent: the lineage's previous snapshot, or ``None``.
        selection: exclude patterns and one filesystem, as the backup would apply them.
        full_paths: name path sources by their absolute paths, as the backup would.
    """
    known = {entry.path: entry for entry in parent.files} if parent is not None else {}
    warnings: list[SourceWarning] = []
    entries = files = unchanged = to_read = total = 0
    new: list[str] = []
    changed: list[str] = []
    streams: list[str] = []
    for item in walk(list(sources), warnings, selection, full_paths=full_paths):
        entries += 1
        if isinstance(item, (StreamSource, CommandSource)):
            streams.append(item.name)
            continue
        if isinstance(item, (FileEntry, EntrySource)):
            continue
        assert isinstance(item, FileItem)  # noqa: S101 - the walk's last kind
        files += 1
        size = item.before.st_size
        total += size
        old = known.get(item.path)
        if old is None or old.type is not FileType.FILE:
            new.append(item.path)
        elif _same(old, item):
            unchanged += 1
            continue
        else:
            changed.append(item.path)
        to_read += size
    return BackupPreview(
        entries=entries,
        files=files,
        new=tuple(new),
        changed=tuple(changed),
        unchanged=unchanged,
        bytes_to_read=to_read,
        bytes_total=total,
        streams=tuple(streams),
        warnings=tuple(warnings),
    )


def _same(old: FileEntry, item: FileItem) -> bool:
    before = item.before
    return (
        old.size == before.st_size
        and old.mtime_ns == before.st_mtime_ns
        and old.mode == (before.st_mode & 0o7777)
    )
