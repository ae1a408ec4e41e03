"""Restoring a snapshot into a local folder: safe paths, links last, metadata restored.

Regular files are written first, then FIFOs and devices are created, then hard links to them,
then symbolic links (so nothing is ever written through a restored link), and folders get their
metadata last, deepest first, since filling them changed their times. Each entry gets its owner,
extended attributes, mode and times in that order (`Attributes`).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import posixpath
import stat
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import attrs

from ctfy_vault.exceptions import FormatError, ObjectExistsError
from ctfy_vault.manifest import FileEntry, FileType, Manifest
from ctfy_vault.repository import Reader
from ctfy_vault.vault._attributes import Attributes
from ctfy_vault.vault._model import RestoreReport

__all__ = ["check_tree", "restore_manifest", "safe_join", "select"]

log = logging.getLogger("ctfy_vault.vault")

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
#: Files restored at once: fetching, opening and decompressing overlap across files.
_RESTORE_WORKERS = 4

#: Told ``(bytes, files)`` written since the last call.
Progress = Callable[[int, int], None]


def select(files: Sequence[FileEntry], include: Iterable[str] | None) -> list[FileEntry]:
    """Pick the entries named by ``include``: a path, a folder (with its contents) or a glob.

    Args:
        files: the manifest's entries.
        include: paths or ``fnmatch`` patterns; ``None`` selects everything.

    Returns:
        The selected entries, in manifest (path) order.
    """
    if include is None:
        return list(files)
    patterns = [pattern.strip("/") for pattern in include]

    def chosen(path: str) -> bool:
        return any(
            path == pattern or path.startswith(pattern + "/") or fnmatch.fnmatchcase(path, pattern)
            for pattern in patterns
        )

    return [entry for entry in files if chosen(entry.path)]


def safe_join(dest: Path, path: str) -> Path:
    """Join a manifest path to the destination, refusing anything that could land outside it.

    Manifests are authenticated and their paths validated when opened; this check does not rely on
    that: a path must be relative, without ``.``, ``..``, empty segments or NUL.

    Args:
        dest: the restore folder.
        path: the manifest path.

    Returns:
        The local path.

    Raises:
        FormatError: the path is absolute or could escape the destination.
    """
    segments = path.split("/")
    if (
        not path
        or "\x00" in path
        or path.startswith("/")
        or "\\" in path
        or any(segment in ("", ".", "..") for segment in segments)
    ):
        raise FormatError(f"manifest path {path!r} would escape the restore destination")
    return dest.joinpath(*segments)


def _link_escapes(entry: FileEntry) -> bool:
    link = entry.link or ""
    if posixpath.isabs(link) or "\x00" in link:
        return True
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(entry.path), link))
    return resolved == ".." or resolved.startswith("../")


_KIND_NAMES = {
    FileType.FILE: "a file",
    FileType.SYMLINK: "a symbolic link",
    FileType.HARDLINK: "a hard link",
    FileType.FIFO: "a FIFO",
    FileType.CHARDEV: "a character device",
    FileType.BLOCKDEV: "a block device",
}
#: What `os.mknod` creates for each special type (a FIFO with `os.mkfifo`).
_NODES = {FileType.CHARDEV: stat.S_IFCHR, FileType.BLOCKDEV: stat.S_IFBLK}


def check_tree(files: Sequence[FileEntry]) -> None:
    """Refuse a manifest whose entries cannot all exist at once on a disk.

    Paths are unique and sorted when a manifest is built, but a hostile or damaged one is not
    trusted: a path listed twice, or an entry under another entry that is a file or a symbolic
    link (``a -> /elsewhere`` and ``a/b``: writing ``a/b`` would follow the link, or the link
    would replace the folder), is refused before anything is created.

    Raises:
        FormatError: names the entry and the conflicting one.
    """
    kinds: dict[str, FileType] = {}
    for entry in files:
        if entry.path in kinds:
            raise FormatError(f"manifest entry {entry.path!r} is listed twice")
        kinds[entry.path] = entry.type
    for entry in files:
        parent = posixpath.dirname(entry.path)
        while parent:
            kind = kinds.get(parent)
            if kind is not None and kind is not FileType.DIR:
                raise FormatError(
                    f"manifest entry {entry.path!r} lies under {parent!r}, which the manifest "
                    f"lists as {_KIND_NAMES[kind]}, not a folder"
                )
            parent = posixpath.dirname(parent)


def _check_destination(dest: Path, *, overwrite: bool) -> None:
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise ObjectExistsError(
            "the restore destination exists and is not a folder", target="restore", key=str(dest)
        )
    if dest.is_dir() and not overwrite and any(dest.iterdir()):
        raise ObjectExistsError(
            "the restore destination is not empty; pass overwrite=True to restore into it",
            target="restore",
            key=str(dest),
        )


def _found_at(path: Path) -> str | None:
    """What the destination holds at ``path``: ``folder``, ``link``, ``file`` or ``None``."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISLNK(mode):
        return "link"
    return "file" if stat.S_ISREG(mode) else "special file"


def _check_in_the_way(targets: Sequence[tuple[FileEntry, Path]], dest: Path) -> None:
    """Refuse, before anything is written, what overwriting cannot replace in place.

    Overwriting replaces files and links; it never removes a folder to put a file or a link there,
    nor a file to put a folder there. Links already in the destination are handled where they
    are met (replaced, or refused when they lead outside).

    Raises:
        ObjectExistsError: the destination holds a file where a folder of the snapshot goes, or
            a folder where one of its files or links goes; the message names both.
    """
    checked: set[Path] = set()  # folders shared by many entries are looked at once
    for entry, local in targets:
        for parent in reversed(local.parents):
            if parent in checked or parent == dest or not _inside(dest, parent):
                continue
            checked.add(parent)
            found = _found_at(parent)
            if found in ("file", "special file"):
                raise ObjectExistsError(
                    f"cannot restore {entry.path}: the destination holds a {found} where its "
                    "folder goes (overwrite replaces files, never a file by a folder)",
                    target="restore",
                    key=str(parent),
                )
        found = _found_at(local)
        wanted_folder = entry.type is FileType.DIR
        if (wanted_folder and found in ("file", "special file")) or (
            not wanted_folder and found == "folder"
        ):
            what = "folder" if wanted_folder else entry.type.value
            raise ObjectExistsError(
                f"cannot restore {what} {entry.path}: the destination holds a {found} there "
                "(overwrite replaces files, never a folder by a file or a file by a folder)",
                target="restore",
                key=str(local),
            )


def _inside(root: Path, path: Path) -> bool:
    return path == root or root in path.parents


class _Stopped(Exception):  # noqa: N818 - internal signal, never leaves this module
    """Raised in a worker writing a file when the restore is being stopped."""


def _write_file(
    reader: Reader,
    entry: FileEntry,
    local: Path,
    fallbacks: list[tuple[str, str]],
    progress: Progress | None = None,
    *,
    stop: threading.Event | None = None,
) -> int:
    _clear(local, keep_file=True)  # never write through a link, nor into a FIFO, found there
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW | getattr(os, "O_BINARY", 0)
    written = 0
    descriptor = os.open(local, flags, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        for piece in reader.content(entry, lambda key, target: fallbacks.append((key, target))):
            if stop is not None and stop.is_set():
                raise _Stopped
            out.write(piece)
            written += len(piece)
            if progress is not None:
                progress(len(piece), 0)
    return written


def _clear(local: Path, *, keep_file: bool = False) -> None:
    """Remove what overwriting replaces at ``local``: anything but a folder (checked before).

    ``keep_file`` leaves a regular file, to be truncated and written in place.
    """
    try:
        mode = os.lstat(local).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(mode) and not (keep_file and stat.S_ISREG(mode)):
        local.unlink()


def _write_files(
    reader: Reader,
    jobs: list[tuple[FileEntry, Path]],
    fallbacks: list[tuple[str, str]],
    progress: Progress | None,
    meta: Attributes | None = None,
) -> int:
    """Write the regular files, several at once (each fetches, opens and checks its own chunks).

    Their folders exist already and no link has been restored yet. The first failure (or a
    `KeyboardInterrupt` in the calling thread) stops the rest: files being written stop at their
    next piece, and it is raised.
    """
    lock = threading.Lock()
    stop = threading.Event()
    attributes = meta or Attributes()

    def report(nbytes: int, nfiles: int) -> None:
        if progress is not None:
            with lock:
                progress(nbytes, nfiles)

    def one(job: tuple[FileEntry, Path]) -> int:
        entry, local = job
        size = _write_file(reader, entry, local, fallbacks, report, stop=stop)
        attributes.apply(entry, local)
        report(0, 1)
        return size

    if len(jobs) <= 1:
        return sum(one(job) for job in jobs)
    with ThreadPoolExecutor(
        max_workers=_RESTORE_WORKERS, thread_name_prefix="ctfy-restore"
    ) as pool:
        futures: list[Future[int]] = []
        try:
            futures.extend(pool.submit(one, job) for job in jobs)
            return sum(future.result() for future in futures)
        except BaseException:
            # Ctrl-C or a failure: the files being written stop at their next piece, the rest
            # never start.
            stop.set()
            for future in futures:
                future.cancel()
            raise


def _restore_links(
    targets: list[tuple[FileEntry, Path]],
    root: Path,
    refused: list[tuple[str, str]],
    meta: Attributes,
) -> int:
    """Create the symbolic links, refusing those that point outside the destination."""
    created: list[tuple[FileEntry, Path]] = []
    for entry, local in targets:
        if entry.type is not FileType.SYMLINK:
            continue
        if _link_escapes(entry):
            refused.append((entry.path, "symbolic link points outside the destination"))
            log.warning("%s: not restored, its link points outside the destination", entry.path)
            continue
        if not _inside(root, local.parent.resolve()):
            raise FormatError(f"{entry.path}: its folder resolves outside the destination")
        local.parent.mkdir(parents=True, exist_ok=True)
        if local.is_symlink() or local.is_file():
            local.unlink()
        os.symlink(entry.link or "", local)
        meta.apply(entry, local, link=True)
        created.append((entry, local))
    return len(created) - _unlink_escaping(created, root, refused)


def _unlink_escaping(
    created: list[tuple[FileEntry, Path]], root: Path, refused: list[tuple[str, str]]
) -> int:
    """Remove links that lead outside once resolved through the other links; return how many.

    The text check alone is not enough: a link may climb out through another restored link
    (``a -> .`` then ``a/x -> ../z``), and a later link can change how an earlier one resolves,
    so every link is resolved again until none leads out.
    """
    removed = 0
    changed = True
    while changed:
        changed = False
        for entry, local in created:
            if local.is_symlink() and not _inside(root, Path(os.path.realpath(local))):
                local.unlink()
                refused.append((entry.path, "symbolic link leads outside the destination"))
                log.warning("%s: removed, its link leads outside the destination", entry.path)
                removed += 1
                changed = True
    return removed


def _make_special(
    entry: FileEntry, local: Path, refused: list[tuple[str, str]], meta: Attributes
) -> bool:
    """Create a FIFO or a device, then give it its metadata; a device only where permitted."""
    _clear(local)
    if entry.type is FileType.FIFO:
        os.mkfifo(local, 0o600)
    else:
        major, minor = entry.device or (0, 0)
        try:
            os.mknod(local, _NODES[entry.type] | 0o600, os.makedev(major, minor))
        except PermissionError:
            what = _KIND_NAMES[entry.type].removeprefix("a ")
            refused.append((entry.path, f"{what} not created: only root may create devices"))
            log.warning("%s: not restored, only root may create a %s", entry.path, what)
            return False
    meta.apply(entry, local)
    return True


@attrs.define
class _Plan:
    """What a restore creates, by kind, in the order it creates them."""

    dirs: list[tuple[FileEntry, Path]] = attrs.field(factory=list)
    files: list[tuple[FileEntry, Path]] = attrs.field(factory=list)
    specials: list[tuple[FileEntry, Path]] = attrs.field(factory=list)
    hardlinks: list[tuple[FileEntry, Path, Path]] = attrs.field(factory=list)

    def add(self, entry: FileEntry, local: Path) -> None:
        if entry.type is FileType.DIR:
            self.dirs.append((entry, local))
        elif entry.type is FileType.FILE:
            self.files.append((entry, local))
        else:
            self.specials.append((entry, local))


def _plan(manifest: Manifest, targets: list[tuple[FileEntry, Path]], dest: Path) -> _Plan:
    """Sort the selected entries by kind; a hard link whose inode is not selected becomes it.

    The first selected path of an inode whose data entry was not selected is restored as that
    entry (its content, owner and attributes); later paths to the inode link to it.
    """
    by_path = {entry.path: entry for entry in manifest.files}
    selected = {entry.path for entry, _local in targets}
    placed: dict[str, Path] = {}
    plan = _Plan()
    for entry, local in targets:
        if entry.type is FileType.SYMLINK:
            continue  # created by `_restore_links`
        if entry.type is not FileType.HARDLINK:
            plan.add(entry, local)
            continue
        first = entry.link or ""
        if first in selected:
            plan.hardlinks.append((entry, local, safe_join(dest, first)))
        elif first in placed:
            plan.hardlinks.append((entry, local, placed[first]))
        else:
            placed[first] = local
            plan.add(attrs.evolve(by_path[first], path=entry.path), local)
    return plan


def _link_all(links: list[tuple[FileEntry, Path, Path]], refused: list[tuple[str, str]]) -> int:
    """Create the hard links, each to its inode's path restored before it."""
    made = 0
    for entry, local, first in links:
        if not os.path.lexists(first) or os.path.islink(first):
            reason = f"hard link not created: {entry.link} was not restored"
            refused.append((entry.path, reason))
            log.warning("%s: %s", entry.path, reason)
            continue
        _clear(local)
        try:
            os.link(first, local, follow_symlinks=False)
        except PermissionError:  # protected_hardlinks: not the owner of the restored inode
            reason = f"hard link not created: linking to {entry.link} is not permitted"
            refused.append((entry.path, reason))
            log.warning("%s: %s", entry.path, reason)
            continue
        made += 1
    return made


def restore_manifest(
    reader: Reader,
    manifest: Manifest,
    dest: Path,
    *,
    include: Iterable[str] | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> RestoreReport:
    """Restore the selected entries of ``manifest`` under ``dest`` (see `Vault.restore`).

    ``progress``, when given, is told ``(bytes, files)`` as file contents are written.
    """
    check_tree(manifest.files)
    _check_destination(dest, overwrite=overwrite)
    entries = select(manifest.files, include)
    targets = [(entry, safe_join(dest, entry.path)) for entry in entries]  # all checked first
    if overwrite:
        _check_in_the_way(targets, dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    fallbacks: list[tuple[str, str]] = []
    refused: list[tuple[str, str]] = []
    meta = Attributes()
    plan = _plan(manifest, targets, dest)
    for entry, local in targets:
        if entry.type is FileType.SYMLINK:
            continue  # links last, so that nothing is ever written through a restored link
        # Checked before creating anything: a link already in the destination may lead out.
        if not _inside(root, local.parent.resolve()):
            raise FormatError(f"{entry.path}: its folder resolves outside the destination")
        local.parent.mkdir(parents=True, exist_ok=True)
        if entry.type is FileType.DIR:
            if local.is_symlink():
                local.unlink()
            local.mkdir(exist_ok=True)
    written = _write_files(reader, plan.files, fallbacks, progress, meta)
    specials = sum(_make_special(entry, local, refused, meta) for entry, local in plan.specials)
    hardlinks = _link_all(plan.hardlinks, refused)
    links = _restore_links(targets, root, refused, meta)
    # Folders last and deepest first: writing their contents changed their times.
    for entry, local in reversed(plan.dirs):
        meta.apply(entry, local)
    return RestoreReport(
        files=len(plan.files),
        dirs=len(plan.dirs),
        symlinks=links,
        bytes=written,
        refused=tuple(refused),
        fallbacks=tuple(fallbacks),
        hardlinks=hardlinks,
        specials=specials,
        warnings=meta.warnings(),
    )
