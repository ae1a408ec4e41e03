"""Giving restored entries their recorded owner, extended attributes, mode and times, in that order.

The order matters: ``chown`` clears the setuid and setgid bits and file capabilities, so the owner
comes first, then the extended attributes (ACLs and capabilities among them), then the mode
(which keeps an ACL's mask in step with the group bits), then the times, which nothing after
them changes. What the process may not do is left as it is and said once per kind, with the
first path (in path order) it concerns and how many entries share it.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from pathlib import Path
from typing import Final

import attrs

from ctfy_vault.manifest import FileEntry

__all__ = ["Attributes"]

log = logging.getLogger("ctfy_vault.vault")

_CHOWN_NOFOLLOW: Final = os.chown in os.supports_follow_symlinks
_UTIME_NOFOLLOW: Final = os.utime in os.supports_follow_symlinks
_HAS_XATTRS: Final = hasattr(os, "setxattr")


def _euid() -> int | None:
    return os.geteuid() if hasattr(os, "geteuid") else None


def _groups() -> frozenset[int]:
    if not hasattr(os, "getgroups"):  # pragma: no cover - POSIX has them
        return frozenset()
    return frozenset({os.getegid(), *os.getgroups()})


@attrs.define
class _Left:
    """One kind of metadata left alone: the first path (in path order) it concerns, and how many."""

    first: str
    count: int = 0


@attrs.define
class Attributes:
    """Applies entries' metadata during one restore (thread-safe) and collects what was left.

    Ownership is given where the process may: as root, or to an entry whose recorded owner is
    the restoring user and whose group is one of the user's. Elsewhere it is left (the entry
    keeps the restoring user's) and one warning says how many entries that concerns.
    """

    _euid: int | None = attrs.field(factory=_euid, init=False)
    _groups: frozenset[int] = attrs.field(factory=_groups, init=False)
    _left: dict[str, _Left] = attrs.field(factory=dict, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)

    def apply(self, entry: FileEntry, local: Path, *, link: bool = False) -> None:
        """Give ``local`` the owner, attributes, mode and times ``entry`` records.

        Args:
            entry: the manifest entry.
            local: the restored path.
            link: ``local`` is a symbolic link: it is never followed, and has no mode of its own.
        """
        self.own(entry, local)
        self.attributes(entry, local)
        if not link:
            os.chmod(local, entry.mode)
            os.utime(local, ns=(entry.mtime_ns, entry.mtime_ns))
        elif _UTIME_NOFOLLOW:
            os.utime(local, ns=(entry.mtime_ns, entry.mtime_ns), follow_symlinks=False)

    def own(self, entry: FileEntry, local: Path) -> None:
        """Give ``local`` its recorded owner and group, where the process may."""
        if entry.uid is None and entry.gid is None:
            return
        uid = -1 if entry.uid is None else entry.uid
        gid = -1 if entry.gid is None else entry.gid
        if self._euid is None:  # pragma: no cover - no owners on this system
            return
        if self._euid != 0 and (
            uid not in (-1, self._euid) or (gid != -1 and gid not in self._groups)
        ):
            self._leave("owner", entry.path)
            return
        try:
            if _CHOWN_NOFOLLOW:
                os.chown(local, uid, gid, follow_symlinks=False)
            else:  # pragma: no cover - Linux and the BSDs have lchown
                os.chown(local, uid, gid)
        except PermissionError:
            self._leave("owner", entry.path)

    def attributes(self, entry: FileEntry, local: Path) -> None:
        """Set ``local``'s recorded extended attributes; each refused one is said once."""
        if not entry.xattrs:
            return
        if not _HAS_XATTRS:  # pragma: no cover - Linux has them
            self._leave("xattrs", entry.path)
            return
        for name, value in entry.xattrs:
            try:
                os.setxattr(local, name, value, follow_symlinks=False)
            except OSError as err:
                self._leave(f"xattr {name} ({_reason(err)})", entry.path)

    def _leave(self, what: str, path: str) -> None:
        with self._lock:
            left = self._left.get(what)
            if left is None:
                left = self._left[what] = _Left(first=path)
            # Files are restored in parallel: the first in path order, not in time, is named.
            left.first = min(left.first, path)
            left.count += 1

    def warnings(self) -> tuple[tuple[str, str], ...]:
        """``(first path, reason)`` for each kind of metadata left alone, logged once each."""
        found: list[tuple[str, str]] = []
        for what, left in sorted(self._left.items()):
            many = f"{left.count} entries" if left.count > 1 else "1 entry"
            if what == "owner":
                reason = (
                    f"ownership not restored on {many}: only root (or the owner itself) may "
                    "give them their recorded owner and group; they keep the restoring user's"
                )
            else:
                reason = f"{what} not restored on {many}"
            log.warning("%s: %s", left.first, reason)
            found.append((left.first, reason))
        return tuple(found)


def _reason(err: OSError) -> str:
    if err.errno in (errno.EPERM, errno.EACCES):
        return "not permitted"
    if err.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
        return "not supported here"
    return errno.errorcode.get(err.errno, str(err.errno)) if err.errno else type(err).__name__
