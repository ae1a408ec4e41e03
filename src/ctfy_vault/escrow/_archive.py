"""Deterministic tar archives of a folder or of a git commit's tree (escrow archive format v1).

The same tree always gives the same bytes: entries sorted by their UTF-8 path, POSIX pax headers, owner
0:0 with empty names, modes normalised (0644, 0755 for executables and directories, 0777 for
symlinks) and one fixed modification time (the commit's committer time for git, 0 for a folder).
File contents are streamed, never held whole in memory.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Final, Literal

import attrs

from ctfy_vault.exceptions import ConfigurationError

ARCHIVE_FORMAT: Final = "tar-pax-v1"
_BLOCK: Final = 1 << 20
_RECORD: Final = 20 * tarfile.BLOCKSIZE
_GIT: Final = "git"

SourceKind = Literal["folder", "git"]


@attrs.frozen
class _Entry:
    path: str
    type: Literal["file", "dir", "symlink"]
    executable: bool = False
    size: int = 0
    target: str = ""
    ref: str = ""  # a local path, or a git blob id


@attrs.frozen(kw_only=True)
class SourceTree:
    """What a deposit archives: a folder as it is, or a git commit's tree (never the working files).

    Build it with `source_tree`.

    Attributes:
        kind: ``"folder"`` or ``"git"``.
        path: the folder or repository, absolute.
        ref: the git ref asked for (``None`` for a folder).
        commit: the commit id the ref resolved to (``None`` for a folder).
        mtime: the modification time every archive entry gets.
    """

    kind: SourceKind
    path: Path
    ref: str | None = None
    commit: str | None = None
    mtime: int = 0

    @property
    def description(self) -> str:
        """A one-line description for the receipt (the folder's name, not its full path)."""
        # Only the folder's own name: the depositor's absolute paths are none of the notary's business.
        if self.kind == "git":
            return f"git repository {self.path.name} at {self.ref}"
        return f"folder {self.path.name}"

    def archive(self) -> ArchiveStream:
        """List the tree now and return its deterministic tar archive as a stream of blocks.

        Returns:
            An iterable of blocks (at most 1 MiB each) that also knows its entry count.

        Raises:
            ConfigurationError: git failed; while iterating, a file changed size as it was read.
        """
        if self.kind == "git":
            entries = _git_entries(self.path, _commit(self))
            return ArchiveStream(len(entries), _git_archive(self, entries))
        entries = _folder_entries(self.path)
        return ArchiveStream(len(entries), _tar(entries, self.mtime, _read_file))


class ArchiveStream:
    """A deterministic tar archive as an iterable of byte blocks; read it once.

    Attributes:
        entries: how many files, directories and symlinks it holds.
    """

    def __init__(self, entries: int, blocks: Iterator[bytes]) -> None:
        self.entries = entries
        self._blocks = blocks

    def __iter__(self) -> Iterator[bytes]:
        return self._blocks


def _commit(tree: SourceTree) -> str:
    assert tree.commit is not None  # noqa: S101 - set for every git tree
    return tree.commit


def source_tree(
    path: str | os.PathLike[str], *, ref: str | None = None, kind: SourceKind | None = None
) -> SourceTree:
    """Describe what to archive: a folder, or the committed tree of a git repository at ``ref``.

    Args:
        path: a folder, or a git repository's top folder.
        ref: the git ref (branch, tag, commit id); ``HEAD`` by default. Only for git sources.
        kind: ``"folder"`` or ``"git"``; by default a folder holding ``.git`` is a git repository.

    Returns:
        The source, with the ref resolved to a commit id.

    Raises:
        ConfigurationError: not a folder, not a git repository, or an unknown ref.
    """
    root = Path(path).resolve()
    if not root.is_dir():
        raise ConfigurationError(f"escrow source {root} is not a folder")
    if kind is None:
        kind = "git" if (root / ".git").exists() else "folder"
    if kind == "folder":
        if ref is not None:
            raise ConfigurationError("a ref only applies to a git repository")
        return SourceTree(kind="folder", path=root)
    if kind != "git":
        raise ConfigurationError(f"escrow source kind must be 'folder' or 'git', not {kind!r}")
    ref = ref or "HEAD"
    if ref.startswith("-"):
        raise ConfigurationError(f"git ref {ref!r} must not start with '-'")
    commit = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    mtime = int(_git(root, "show", "-s", "--format=%ct", commit).strip())
    return SourceTree(kind="git", path=root, ref=ref, commit=commit, mtime=mtime)


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - fixed git arguments, no shell
            [_GIT, "-C", str(root), *args], capture_output=True, check=False
        )
    except OSError as err:
        raise ConfigurationError(f"cannot run git: {err.strerror}") from err
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip() or "no such ref"
        raise ConfigurationError(f"git {args[0]} failed in {root}: {message}")
    return done.stdout.decode("utf-8", "surrogateescape")


# -- entries ---------------------------------------------------------------------------------


def _sort_key(entry: _Entry) -> bytes:
    return entry.path.encode("utf-8", "surrogateescape")


def _folder_entries(root: Path) -> list[_Entry]:
    entries: list[_Entry] = []
    pending = [("", root)]
    while pending:
        prefix, folder = pending.pop()
        with os.scandir(folder) as listing:
            for item in listing:
                name = prefix + item.name
                info = item.stat(follow_symlinks=False)
                if stat.S_ISLNK(info.st_mode):
                    entries.append(_Entry(name, "symlink", target=os.readlink(item.path)))
                elif stat.S_ISDIR(info.st_mode):
                    entries.append(_Entry(name, "dir"))
                    pending.append((name + "/", Path(item.path)))
                elif stat.S_ISREG(info.st_mode):
                    executable = bool(info.st_mode & 0o111)
                    entries.append(_Entry(name, "file", executable, info.st_size, ref=item.path))
                # Sockets, fifos and devices are not source code: left out.
    return sorted(entries, key=_sort_key)


def _git_entries(root: Path, commit: str) -> list[_Entry]:
    listing = _git(root, "ls-tree", "-r", "-t", "-l", "-z", "--full-tree", commit)
    entries: list[_Entry] = []
    for record in listing.split("\0"):
        if not record:
            continue
        meta, _, name = record.partition("\t")
        mode, kind, oid, size = meta.split()
        if kind == "tree":
            entries.append(_Entry(name, "dir"))
        elif kind == "blob" and mode == "120000":
            entries.append(_Entry(name, "symlink", size=int(size), ref=oid))
        elif kind == "blob":
            entries.append(_Entry(name, "file", mode == "100755", int(size), ref=oid))
        # kind "commit" is a submodule: its code lives in another repository, deposited on its own.
    return sorted(entries, key=_sort_key)


# -- tar -------------------------------------------------------------------------------------


def _header(entry: _Entry, mtime: int, target: str) -> bytes:
    info = tarfile.TarInfo(entry.path)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry.type == "dir":
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    elif entry.type == "symlink":
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, target
    else:
        info.type, info.size = tarfile.REGTYPE, entry.size
        info.mode = 0o755 if entry.executable else 0o644
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


Opener = Callable[[_Entry], Iterator[bytes]]


def _read_file(entry: _Entry) -> Iterator[bytes]:
    left = entry.size
    with open(entry.ref, "rb") as handle:
        while left:
            block = handle.read(min(_BLOCK, left))
            if not block:
                break
            left -= len(block)
            yield block
        if left or handle.read(1):
            raise ConfigurationError(f"{entry.path} changed while it was archived; run again")


def _tar(entries: list[_Entry], mtime: int, opener: Opener) -> Iterator[bytes]:
    total = 0
    for entry in entries:
        target = entry.target
        if entry.type == "symlink" and entry.ref and not target:
            target = b"".join(opener(entry)).decode("utf-8", "surrogateescape")
        header = _header(entry, mtime, target)
        total += len(header)
        yield header
        if entry.type == "file":
            for block in opener(entry):
                total += len(block)
                yield block
            padding = -entry.size % tarfile.BLOCKSIZE
            total += padding
            yield bytes(padding)
    end = 2 * tarfile.BLOCKSIZE
    end += -(total + end) % _RECORD
    yield bytes(end)


def _git_archive(tree: SourceTree, entries: list[_Entry]) -> Iterator[bytes]:
    with subprocess.Popen(  # noqa: S603 - fixed git arguments, no shell
        [_GIT, "-C", str(tree.path), "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as batch:
        assert batch.stdin is not None  # noqa: S101 - both pipes were asked for
        assert batch.stdout is not None  # noqa: S101
        stdin, stdout = batch.stdin, batch.stdout

        def blob(entry: _Entry) -> Iterator[bytes]:
            return _read_blob(stdin, stdout, entry)

        try:
            yield from _tar(entries, tree.mtime, blob)
        finally:
            stdin.close()


def _read_blob(stdin: IO[bytes], stdout: IO[bytes], entry: _Entry) -> Iterator[bytes]:
    stdin.write(entry.ref.encode("ascii") + b"\n")
    stdin.flush()
    answer = stdout.readline().split()
    if len(answer) != 3 or answer[1] != b"blob" or int(answer[2]) != entry.size:
        raise ConfigurationError(f"git could not read {entry.path} ({entry.ref})")
    left = entry.size
    while left:
        block = stdout.read(min(_BLOCK, left))
        if not block:
            raise ConfigurationError(f"git stopped while reading {entry.path}")
        left -= len(block)
        yield block
    stdout.read(1)  # the newline after each object
