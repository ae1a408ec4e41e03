"""What a server needs besides content: owners, extended attributes, and which paths share an inode.

Read without following links (``lstat``, ``listxattr(follow_symlinks=False)``). POSIX ACLs are the
``system.posix_acl_access`` and ``system.posix_acl_default`` attributes, and file capabilities are
``security.capability``, so they come with the attributes. A filesystem without attributes gives
none, silently; an attribute that cannot be read is left out with a warning.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Final

import attrs

from ctfy_vault.manifest import FileEntry, FileType

if sys.platform != "win32":
    import grp
    import pwd

__all__ = ["NO_METADATA", "Inodes", "Metadata", "MetadataReader", "link_paths"]

#: Errors meaning "this filesystem or file has no extended attributes": nothing to record.
_NO_XATTRS: Final = frozenset(
    {errno.ENOTSUP, errno.EOPNOTSUPP, getattr(errno, "ENODATA", errno.ENOENT), errno.ENOENT}
)


@attrs.frozen(kw_only=True)
class Metadata:
    """The owner and extended attributes of one path, as a manifest entry records them.

    Attributes:
        uid: numeric owner (``None``: not recorded, e.g. a stream).
        gid: numeric group.
        user: the owner's name, when the system has one for ``uid``.
        group: the group's name, likewise.
        xattrs: ``(name, value)`` pairs, sorted by name.
    """

    uid: int | None = None
    gid: int | None = None
    user: str | None = None
    group: str | None = None
    xattrs: tuple[tuple[str, bytes], ...] = ()

    @classmethod
    def of(cls, entry: FileEntry) -> Metadata:
        """The metadata an entry records (to replay it onto a new entry)."""
        return cls(
            uid=entry.uid, gid=entry.gid, user=entry.user, group=entry.group, xattrs=entry.xattrs
        )

    def differs(self, entry: FileEntry) -> bool:
        """Whether ``entry`` records another owner or other attributes than these."""
        return (entry.uid, entry.gid, entry.user, entry.group, entry.xattrs) != (
            self.uid,
            self.gid,
            self.user,
            self.group,
            self.xattrs,
        )

    def onto(self, entry: FileEntry) -> FileEntry:
        """``entry`` with these owner and attributes."""
        if not self.differs(entry):
            return entry
        return attrs.evolve(
            entry,
            uid=self.uid,
            gid=self.gid,
            user=self.user,
            group=self.group,
            xattrs=self.xattrs,
        )


NO_METADATA: Final = Metadata()


def _utf8_name(name: str) -> str | None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return name if name and "\x00" not in name else None


@attrs.define
class MetadataReader:
    """Reads owners and attributes during one walk, naming each uid and gid once."""

    _users: dict[int, str | None] = attrs.field(factory=dict, init=False)
    _groups: dict[int, str | None] = attrs.field(factory=dict, init=False)

    def read(
        self, fs_path: str, info: os.stat_result, warn: list[tuple[str, str]], *, xattrs: bool
    ) -> Metadata:
        """The owner of ``info`` and (when ``xattrs``) the path's extended attributes.

        Args:
            fs_path: the path on the local filesystem.
            info: its ``lstat``.
            warn: receives ``(fs_path, reason)`` for each attribute that could not be read.
            xattrs: read the attributes (a hard link's belong to the path it links to).
        """
        return Metadata(
            uid=info.st_uid,
            gid=info.st_gid,
            user=self._user(info.st_uid),
            group=self._group(info.st_gid),
            xattrs=_read_xattrs(fs_path, warn) if xattrs else (),
        )

    def _user(self, uid: int) -> str | None:
        if sys.platform == "win32":  # pragma: no cover - no owners there
            return None
        if uid not in self._users:
            try:
                self._users[uid] = _utf8_name(pwd.getpwuid(uid).pw_name)
            except (KeyError, OverflowError):
                self._users[uid] = None
        return self._users[uid]

    def _group(self, gid: int) -> str | None:
        if sys.platform == "win32":  # pragma: no cover - no owners there
            return None
        if gid not in self._groups:
            try:
                self._groups[gid] = _utf8_name(grp.getgrgid(gid).gr_name)
            except (KeyError, OverflowError):
                self._groups[gid] = None
        return self._groups[gid]


def _read_xattrs(fs_path: str, warn: list[tuple[str, str]]) -> tuple[tuple[str, bytes], ...]:
    if not hasattr(os, "listxattr"):  # pragma: no cover - Linux has them
        return ()
    try:
        names = os.listxattr(fs_path, follow_symlinks=False)
    except OSError as err:
        if err.errno not in _NO_XATTRS:
            warn.append((fs_path, f"extended attributes unreadable ({_code(err)}); left out"))
        return ()
    found: list[tuple[str, bytes]] = []
    for name in sorted(names):
        if _utf8_name(name) is None:
            warn.append((fs_path, "an extended attribute name is not UTF-8; left out"))
            continue
        try:
            value = os.getxattr(fs_path, name, follow_symlinks=False)
        except OSError as err:
            if err.errno not in _NO_XATTRS:  # removed since it was listed: nothing to keep
                warn.append((fs_path, f"extended attribute {name} unreadable ({_code(err)})"))
            continue
        found.append((name, value))
    return tuple(found)


def _code(err: OSError) -> str:
    return errno.errorcode.get(err.errno, str(err.errno)) if err.errno else type(err).__name__


@attrs.define
class Inodes:
    """The inodes met so far in one walk: a second path to one of them is a hard link.

    Only inodes with more than one link are remembered, so a tree without hard links costs
    nothing here.
    """

    _first: dict[tuple[int, int], str] = attrs.field(factory=dict, init=False)

    def first_path(self, path: str, info: os.stat_result) -> str | None:
        """The path this inode was first met under in this walk, or ``None`` (and remember it)."""
        if info.st_nlink < 2:
            return None
        key = (info.st_dev, info.st_ino)
        first = self._first.get(key)
        if first is None:
            self._first[key] = path
        return first


def link_paths(entries: list[FileEntry]) -> tuple[list[FileEntry], list[str]]:
    """Make each group of hard-linked entries name its first path in manifest order.

    The walk goes depth first, which is not the manifest's path order (``a-b`` sorts between
    ``a`` and ``a/x``), so the path the walk recorded an inode's data under may sort after one of
    its hard links. The data then moves to the first path of the group in path order, and every
    other path links to it; they all share one inode, so the data is the same.

    Args:
        entries: every entry of the snapshot; hard links name the path their data was recorded
            under.

    Returns:
        The entries, and the paths of hard links dropped because the entry they name is not
        in the snapshot (it could not be read).
    """
    if not any(entry.type is FileType.HARDLINK for entry in entries):
        return entries, []
    by_path = {entry.path: entry for entry in entries}
    groups: dict[str, list[str]] = {}
    for entry in entries:
        if entry.type is FileType.HARDLINK:
            groups.setdefault(entry.link or "", []).append(entry.path)
    dropped: list[str] = []
    for holder, links in groups.items():
        data = by_path.get(holder)
        if data is None or data.type is FileType.HARDLINK:
            for path in links:
                del by_path[path]
            dropped.extend(links)
            continue
        first = min(holder, *links)
        for path in (holder, *links):
            if path == first:
                by_path[path] = attrs.evolve(data, path=path)
            else:
                old = by_path[path]
                by_path[path] = FileEntry(
                    path=path,
                    type=FileType.HARDLINK,
                    mode=old.mode,
                    mtime_ns=old.mtime_ns,
                    link=first,
                    uid=old.uid,
                    gid=old.gid,
                    user=old.user,
                    group=old.group,
                )
    return list(by_path.values()), dropped
