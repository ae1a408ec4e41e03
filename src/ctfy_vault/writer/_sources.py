"""Turning sources (paths, trees, streams, commands) into manifest entries and files to read, safely.

Nothing here follows a symbolic link: links are recorded as links, so a link loop is never walked.
FIFOs and devices are recorded as such (with their device numbers) and never opened; a FIFO
would block the backup. Sockets are skipped with a warning, as tar does. A second path to an
inode already met in the same walk is recorded as a hard link to the first. Every walked path
records its numeric owner and group (with their names) and its extended attributes. Names that are
not valid UTF-8 cannot be represented in format v1 manifests and are skipped with a warning that
shows the raw bytes as escapes.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO, Final

import attrs

from ctfy_vault.exceptions import ConfigurationError, SourceFailedError
from ctfy_vault.manifest import FileEntry, FileType
from ctfy_vault.writer._chunker import Readable
from ctfy_vault.writer._command import CommandSource
from ctfy_vault.writer._metadata import NO_METADATA, Inodes, Metadata, MetadataReader
from ctfy_vault.writer._outcome import SourceWarning

__all__ = [
    "BackupSource",
    "EntrySource",
    "FileItem",
    "Item",
    "Selection",
    "StreamSource",
    "check_complete",
    "check_unchanged",
    "display",
    "open_regular",
    "walk",
]

_SPECIAL: Final = {stat.S_IFSOCK: "socket"}
#: The special files recorded, by their ``S_IFMT`` bits.
_RECORDED: Final = {
    stat.S_IFIFO: FileType.FIFO,
    stat.S_IFCHR: FileType.CHARDEV,
    stat.S_IFBLK: FileType.BLOCKDEV,
}


@attrs.frozen(kw_only=True)
class StreamSource:
    """A stream of unknown length backed up as one file, e.g. ``pg_dump`` output on a pipe.

    The end of a stream looks the same whether its producer finished or died half way. Give
    ``check`` to tell them apart (e.g. wait for the producer and compare its exit status): it is
    called once the stream has reached its end and before anything is committed, and a check that
    raises or returns ``False`` makes the backup fail with nothing committed on any target. For a
    program's output, `CommandSource` does this itself.

    Attributes:
        name: the path recorded in the manifest (relative POSIX path, e.g. ``db/app.sql``).
        stream: the binary stream; read once, to its end, and not closed.
        mode: the permission bits recorded.
        mtime_ns: the modification time recorded; ``None`` records the backup's ``now``.
        check: the completion check, or ``None`` to take the end of the stream as its completion.
            Its exception propagates from the backup as raised; ``False`` raises
            `ctfy_vault.exceptions.SourceFailedError`. Any other return value accepts the stream.
    """

    name: str
    stream: Readable = attrs.field(repr=False, eq=False)
    mode: int = 0o600
    mtime_ns: int | None = None
    check: Callable[[], object] | None = attrs.field(default=None, repr=False, eq=False)


@attrs.frozen(kw_only=True)
class EntrySource:
    """An entry of another snapshot, replayed as it was recorded (how `Vault.copy` feeds the writer).

    A folder or link entry is recorded as it is. A regular file keeps its path, mode and mtime; its
    content is read from ``content`` and chunked like a stream, unless ``chunks`` (this
    repository's chunk ids for the same content, from an earlier snapshot) are all already on every
    target, in which case nothing is read. The content read must match the entry's size and
    SHA-256, or the backup commits nothing.

    Attributes:
        entry: the entry as the other snapshot records it (its chunk ids are not used).
        content: opens the file's content (regular files only); read once, to its end.
        chunks: this repository's chunk ids for the file's content, when known.
    """

    entry: FileEntry
    content: Callable[[], Readable] | None = attrs.field(default=None, repr=False, eq=False)
    chunks: tuple[bytes, ...] | None = attrs.field(default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.entry.type is FileType.FILE and self.content is None and self.chunks is None:
            raise ConfigurationError(f"{self.entry.path}: a file entry needs its content")


@attrs.frozen
class FileItem:
    """A regular file found by the walk, to be opened and chunked.

    Attributes:
        fs_path: where it is on the local filesystem.
        path: the path recorded in the manifest.
        before: its ``lstat`` when found.
        meta: its owner and extended attributes when found.
    """

    fs_path: str
    path: str
    before: os.stat_result = attrs.field(eq=False)
    meta: Metadata = NO_METADATA


Item = FileEntry | FileItem | StreamSource | CommandSource | EntrySource
#: What a backup reads: a file or folder path, a stream, or a program's output.
BackupSource = str | os.PathLike[str] | StreamSource | CommandSource


def check_complete(source: StreamSource) -> None:
    """Run a stream's completion check after its end was read.

    Raises:
        SourceFailedError: the check returned ``False``.
        Exception: whatever the check raised.
    """
    if source.check is not None and source.check() is False:
        raise SourceFailedError(
            f"stream {source.name}: its completion check failed; nothing was committed"
        )


def display(path: str) -> str:
    r"""Render a filesystem path for messages, showing undecodable bytes as ``\\xNN`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _top_name(source: str, *, full_paths: bool = False) -> str:
    """The path a source is stored under: its name, or (``full_paths``) its absolute path."""
    absolute = os.path.normpath(os.path.abspath(source))
    name = absolute.lstrip("/") if full_paths else os.path.basename(absolute)
    if not name:
        raise ConfigurationError("a source must have a name (the filesystem root cannot be one)")
    return name


def _patterns(values: Iterable[object]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise ConfigurationError("exclude takes a collection of patterns, not one string")
    found: list[str] = []
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError("an exclude pattern is a non-empty string")
        pattern = value.strip()
        found.append(pattern.rstrip("/") or "/")
    return tuple(found)


@attrs.frozen
class Selection:
    """Which entries under path sources a backup takes (restic's ``--exclude`` and friends).

    Attributes:
        exclude: ``fnmatch`` patterns (``*``, ``?``, ``[...]``). A pattern without ``/``
            matches an entry's name anywhere (``*.tmp``, ``node_modules``); one with ``/``
            matches its whole absolute path (``/srv/app/cache/*``). An excluded folder is left
            out with everything under it. A trailing ``/`` is ignored.
        one_file_system: do not descend into folders on another filesystem than their source
            (a mount point is recorded as an empty folder, as restic does).
    """

    exclude: tuple[str, ...] = attrs.field(default=(), converter=_patterns)
    one_file_system: bool = False

    def excludes(self, fs_path: str) -> bool:
        """Whether the entry at this absolute path is left out."""
        name = os.path.basename(fs_path)
        for pattern in self.exclude:
            subject = fs_path if "/" in pattern else name
            if fnmatch.fnmatchcase(subject, pattern):
                return True
        return False


def walk(
    sources: Iterable[BackupSource | EntrySource],
    warnings: list[SourceWarning],
    selection: Selection | None = None,
    *,
    full_paths: bool = False,
) -> Iterator[Item]:
    """Yield what to record for each source, depth first, in name order, never following links.

    Args:
        sources: paths (files, links or directory trees), streams, commands and replayed
            entries (yielded as they are).
        warnings: receives one entry per skipped or unreadable entry.
        selection: which entries under path sources are taken (everything by default).
        full_paths: store each path source under its absolute path (``srv/app/config``, with
            its parent folders recorded as folders), as restic does, instead of its name:
            two sources of the same name then do not clash.

    Yields:
        Finished entries (directories, links), regular files to read, streams and commands.

    Raises:
        ConfigurationError: a source path does not exist, two sources share a top-level name,
            or (``full_paths``) one source lies inside another.
    """
    given = list(sources)
    seen: set[str] = set()
    for source in given:
        path: str | None = None
        if isinstance(source, EntrySource):
            top = source.entry.path
        elif isinstance(source, (StreamSource, CommandSource)):
            top = source.name
        else:
            path = os.fspath(source)
            top = _top_name(path, full_paths=full_paths)
        if top in seen:
            hint = "" if full_paths else " (store sources by their full path to keep both)"
            raise ConfigurationError(f"two sources would both be stored as {display(top)!r}{hint}")
        seen.add(top)
        if path is not None and not os.path.lexists(path):
            raise ConfigurationError(f"source does not exist: {display(path)}")
    if full_paths:
        _check_not_nested(seen)
    state = _Walk(warnings, selection=selection or Selection())
    for source in given:
        if isinstance(source, (StreamSource, CommandSource, EntrySource)):
            yield source
            continue
        fs_path = os.path.abspath(os.fspath(source))
        try:
            state.device = os.lstat(fs_path).st_dev
        except OSError:
            state.device = None
        top = _top_name(fs_path, full_paths=full_paths)
        if full_paths:
            yield from state.parents(top)
        yield from state.one(fs_path, top)


def _check_not_nested(tops: Iterable[str]) -> None:
    """Refuse a source inside another: its entries would be stored twice."""
    given = set(tops)
    for inner in sorted(given):
        parts = inner.split("/")
        for depth in range(1, len(parts)):
            outer = "/".join(parts[:depth])
            if outer in given:
                raise ConfigurationError(
                    f"source /{display(inner)} lies inside source /{display(outer)}: give only "
                    "the outer one (or exclude the inner one)"
                )


@attrs.define
class _Walk:
    """One walk's state: its warnings, the owner names met, the inodes with several links."""

    warnings: list[SourceWarning]
    reader: MetadataReader = attrs.field(factory=MetadataReader)
    inodes: Inodes = attrs.field(factory=Inodes)
    selection: Selection = attrs.field(factory=Selection)
    device: int | None = None  # the current source's filesystem (``one_file_system``)
    parent_paths: set[str] = attrs.field(factory=set)  # folders above full-path sources

    def one(self, fs_path: str, path: str) -> Iterator[Item]:
        warnings = self.warnings
        if self.selection.excludes(fs_path):
            return
        if not _utf8(path):
            warnings.append(
                SourceWarning(path=display(fs_path), reason="name is not UTF-8; skipped")
            )
            return
        try:
            info = os.lstat(fs_path)
        except OSError as err:
            warnings.append(SourceWarning(path=display(fs_path), reason=_reason(err)))
            return
        kind = stat.S_IFMT(info.st_mode)
        if kind not in _RECORDED and kind not in (stat.S_IFDIR, stat.S_IFLNK, stat.S_IFREG):
            what = _SPECIAL.get(kind, "special file")
            warnings.append(SourceWarning(path=display(fs_path), reason=f"{what} skipped"))
            return
        # A folder has no hard links; a symbolic link's are recorded as links, each time.
        linkable = kind not in (stat.S_IFDIR, stat.S_IFLNK)
        first = self.inodes.first_path(path, info) if linkable else None
        meta = self._meta(fs_path, info, xattrs=first is None)
        if first is not None:
            yield _entry(FileType.HARDLINK, meta, path, info, link=first)
        elif kind == stat.S_IFREG:
            yield FileItem(fs_path, path, info, meta)
        elif kind == stat.S_IFLNK:
            target = _readlink(fs_path, warnings)
            if target is not None:
                yield _entry(FileType.SYMLINK, meta, path, info, link=target)
        elif kind == stat.S_IFDIR:
            yield _entry(FileType.DIR, meta, path, info)
            mounted = self.device is not None and info.st_dev != self.device
            if not (self.selection.one_file_system and mounted):
                yield from self._folder(fs_path, path)
        else:
            device = None
            if kind != stat.S_IFIFO:
                device = (os.major(info.st_rdev), os.minor(info.st_rdev))
            yield _entry(_RECORDED[kind], meta, path, info, device=device)

    def parents(self, top: str) -> Iterator[Item]:
        """The folders above a source stored by its full path, each once per walk."""
        parts = top.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            path = "/".join(parts[:depth])
            if path in self.parent_paths:
                continue
            self.parent_paths.add(path)
            folder = "/" + path
            try:
                info = os.lstat(folder)
            except OSError as err:
                self.warnings.append(SourceWarning(path=display(folder), reason=_reason(err)))
                continue
            yield _entry(FileType.DIR, self._meta(folder, info, xattrs=True), path, info)

    def _folder(self, fs_path: str, path: str) -> Iterator[Item]:
        try:
            with os.scandir(fs_path) as entries:
                names = sorted(entry.name for entry in entries)
        except OSError as err:
            self.warnings.append(SourceWarning(path=display(fs_path), reason=_reason(err)))
            return
        for name in names:
            yield from self.one(os.path.join(fs_path, name), f"{path}/{name}")

    def _meta(self, fs_path: str, info: os.stat_result, *, xattrs: bool) -> Metadata:
        left: list[tuple[str, str]] = []
        meta = self.reader.read(fs_path, info, left, xattrs=xattrs)
        self.warnings.extend(SourceWarning(path=display(p), reason=r) for p, r in left)
        return meta


def _entry(
    kind: FileType,
    meta: Metadata,
    path: str,
    info: os.stat_result,
    *,
    link: str | None = None,
    device: tuple[int, int] | None = None,
) -> FileEntry:
    return FileEntry(
        path=path,
        type=kind,
        mode=stat.S_IMODE(info.st_mode),
        mtime_ns=info.st_mtime_ns,
        link=link,
        uid=meta.uid,
        gid=meta.gid,
        user=meta.user,
        group=meta.group,
        xattrs=meta.xattrs,
        device=device,
    )


def _readlink(fs_path: str, warnings: list[SourceWarning]) -> str | None:
    try:
        target = os.readlink(fs_path)
    except OSError as err:
        warnings.append(SourceWarning(path=display(fs_path), reason=_reason(err)))
        return None
    if not target or not _utf8(target) or "\x00" in target:
        warnings.append(
            SourceWarning(path=display(fs_path), reason="link target is not UTF-8; skipped")
        )
        return None
    return target


def _reason(err: OSError) -> str:
    if isinstance(err, PermissionError):
        return "permission denied; skipped"
    if isinstance(err, FileNotFoundError):
        return "vanished before it was read; skipped"
    if err.errno == errno.ELOOP:
        return "replaced by a symbolic link; skipped"
    code = errno.errorcode.get(err.errno, str(err.errno)) if err.errno else type(err).__name__
    return f"unreadable ({code}); skipped"


def open_regular(item: FileItem, warnings: list[SourceWarning]) -> BinaryIO | None:
    """Open a file found by the walk for reading, refusing anything that is no longer a plain file.

    ``O_NOFOLLOW`` refuses a file swapped for a link; ``O_NONBLOCK`` keeps a file swapped for a FIFO
    from blocking the open, and the ``fstat`` after it refuses the FIFO.

    Args:
        item: the file.
        warnings: receives the reason when the file cannot be read.

    Returns:
        The open file, or ``None`` (with a warning) when it cannot be read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(item.fs_path, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        warnings.append(SourceWarning(path=display(item.fs_path), reason=_reason(err)))
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        warnings.append(
            SourceWarning(path=display(item.fs_path), reason="no longer a regular file; skipped")
        )
        return None
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def check_unchanged(
    item: FileItem, handle: BinaryIO, read: int, warnings: list[SourceWarning]
) -> None:
    """Warn when a file's size or mtime differs after reading from what it was before.

    The snapshot keeps the bytes that were read; the warning says they may mix two versions.

    Args:
        item: the file, with its ``lstat`` from before reading.
        handle: the still open file.
        read: bytes read.
        warnings: receives a ``changed while read`` warning when the file changed.
    """
    after = os.fstat(handle.fileno())
    before = item.before
    if (
        read != before.st_size
        or after.st_size != before.st_size
        or after.st_mtime_ns != before.st_mtime_ns
        or after.st_ino != before.st_ino
    ):
        warnings.append(
            SourceWarning(path=display(item.fs_path), reason="changed while read; stored as read")
        )
