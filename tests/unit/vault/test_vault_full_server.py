"""A full-server backup: owners, xattrs, ACLs, hard links, FIFOs, devices and setuid bits come back.

The backup and restore tests build real trees (``chown`` to other users, ``mknod``), so they need
root: CI runs as root, and without it they fail (never skip to green), as the restic differential
test does.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import struct
import tempfile
from pathlib import Path
from typing import Any

import attrs
import pytest

from ctfy_vault.cli._browse import _KINDS
from ctfy_vault.manifest import FileEntry, FileType
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault
from tests.support.vaults import KEY, new_vault, stream
from tests.support.writer_strategies import FAST_RETRY, NOW, SMALL

OWNER = (1234, 2345)
NOBODY = 65534
MTIME = 1_700_000_000_123_456_789
#: ``setfacl -m u:1234:r-- file`` on a 0o640 file, in the kernel's binary form (version 2, then
#: tag, permissions, id for each entry; ``0xFFFFFFFF`` for the entries without an id).
_NO_ID = 0xFFFFFFFF
ACL = struct.pack("<I", 2) + b"".join(
    struct.pack("<HHI", tag, perm, ident)
    for tag, perm, ident in [
        (0x01, 6, _NO_ID),  # user::rw-
        (0x02, 4, 1234),  # user:1234:r--
        (0x04, 4, _NO_ID),  # group::r--
        (0x10, 4, _NO_ID),  # mask::r--
        (0x20, 0, _NO_ID),  # other::---
    ]
)


@pytest.fixture
def root() -> None:
    """Fail (not skip) without root: the trees need ``chown`` and ``mknod``."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.fail("full-server backup tests need root (CI runs them as root)")


def require_xattrs(folder: Path) -> None:
    """Fail with a message when the filesystem under ``folder`` keeps no user xattrs or ACLs."""
    probe = folder / ".xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
        os.chmod(probe, 0o640)
        os.setxattr(probe, "system.posix_acl_access", ACL)
    except OSError as err:
        pytest.fail(f"the filesystem under {folder} keeps no user xattrs or POSIX ACLs: {err}")
    finally:
        probe.unlink()


def folder_targets(root: Path) -> list[Target]:
    """Two local folder targets under ``root``."""
    return [Target.from_url(str(root / name), name=name, retry=FAST_RETRY) for name in ("t1", "t2")]


def server_tree(root: Path) -> Path:
    """A tree with what a server holds besides plain files; every time set to `MTIME`."""
    src = root / "server"
    (src / "etc").mkdir(parents=True)
    (src / "srv" / "shared").mkdir(parents=True)
    (src / "dev").mkdir()
    owned = src / "etc" / "owned.conf"
    owned.write_bytes(b"listen 443\n" * 50)
    os.chown(owned, *OWNER)
    os.chmod(owned, 0o640)
    tagged = src / "etc" / "tagged.txt"
    tagged.write_bytes(b"scanned")
    os.setxattr(tagged, "user.origin", b"\x00upload\xff")
    os.setxattr(tagged, "user.empty", b"")
    os.setxattr(tagged, "trusted.ctfy", b"root only")
    acl = src / "etc" / "acl.txt"
    acl.write_bytes(b"secret")
    os.chmod(acl, 0o640)
    os.setxattr(acl, "system.posix_acl_access", ACL)
    os.setxattr(src / "srv" / "shared", "system.posix_acl_default", ACL)
    os.chown(src / "srv" / "shared", *OWNER)
    os.chmod(src / "srv" / "shared", 0o2775)  # noqa: S103 - a setgid folder to restore
    one = src / "srv" / "one"
    one.write_bytes(os.urandom(5000))
    os.link(one, src / "srv" / "two")
    os.link(one, src / "srv" / "shared" / "three")
    # "a-z" sorts before "a/..." but is walked after it: the data moves to the first path.
    os.link(one, src / "etc" / "a-z")
    os.mkfifo(src / "dev" / "fifo", 0o620)
    os.chown(src / "dev" / "fifo", *OWNER)
    os.mknod(src / "dev" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(src / "dev" / "loop9", stat.S_IFBLK | 0o660, os.makedev(7, 9))
    setuid = src / "srv" / "tool"
    setuid.write_bytes(b"#!/bin/sh\necho hi\n")
    os.chown(setuid, *OWNER)
    os.chmod(setuid, 0o4755)  # noqa: S103 - after chown, which clears it
    os.symlink("etc/owned.conf", src / "config")
    os.chown(src / "config", *OWNER, follow_symlinks=False)
    for path in sorted(src.rglob("*"), reverse=True):
        os.utime(path, ns=(MTIME, MTIME), follow_symlinks=False)
    os.utime(src, ns=(MTIME, MTIME))
    return src


def attributes(path: Path) -> dict[str, Any]:
    """Everything a restore must reproduce about one path, read without following links."""
    info = os.lstat(path)
    found: dict[str, Any] = {
        "type": stat.S_IFMT(info.st_mode),
        "mode": stat.S_IMODE(info.st_mode),
        "uid": info.st_uid,
        "gid": info.st_gid,
        "mtime_ns": info.st_mtime_ns,
        "nlink": info.st_nlink,
        "xattrs": {
            name: os.getxattr(path, name, follow_symlinks=False)
            for name in sorted(os.listxattr(path, follow_symlinks=False))
        },
    }
    if stat.S_ISREG(info.st_mode):
        found["content"] = path.read_bytes()
    elif stat.S_ISLNK(info.st_mode):
        found["link"] = os.readlink(path)
    elif stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
        found["device"] = (os.major(info.st_rdev), os.minor(info.st_rdev))
    return found


def tree(root: Path) -> dict[str, dict[str, Any]]:
    """`attributes` of ``root`` and of everything under it, by relative path."""
    found = {".": attributes(root)}
    for path in sorted(root.rglob("*")):
        found[path.relative_to(root).as_posix()] = attributes(path)
    return found


def inodes(root: Path, *paths: str) -> set[int]:
    """The inode numbers of ``paths`` under ``root``."""
    return {os.lstat(root / path).st_ino for path in paths}


@pytest.fixture
def backed_up(root: None, tmp_path: Path) -> tuple[Vault, Path, str]:
    """A server tree and a vault on two local folders holding one snapshot of it (as root)."""
    require_xattrs(tmp_path)
    src = server_tree(tmp_path / "source")
    vault = Vault.init(folder_targets(tmp_path / "repo"), key=KEY, now=NOW, chunker=SMALL)
    info = vault.backup([src], lineage="full-server", host="h", now=NOW)
    return vault, src, info.name


LINKED = ("etc/a-z", "srv/one", "srv/two", "srv/shared/three")


@pytest.mark.usefixtures("root")
class TestRecord:
    def test_the_manifest_records_owners_xattrs_links_and_devices(
        self, backed_up: tuple[Vault, Path, str]
    ) -> None:
        """Owners (numbers and names), xattrs, ACLs, hard links and device numbers are recorded."""
        vault, _src, name = backed_up
        files = {entry.path.removeprefix("server/"): entry for entry in vault.manifest(name).files}
        assert (files["etc/owned.conf"].uid, files["etc/owned.conf"].gid) == OWNER
        assert (files["dev"].uid, files["dev"].user) == (0, "root")
        assert dict(files["etc/tagged.txt"].xattrs) == {
            "trusted.ctfy": b"root only",
            "user.empty": b"",
            "user.origin": b"\x00upload\xff",
        }
        assert dict(files["etc/acl.txt"].xattrs) == {"system.posix_acl_access": ACL}
        assert dict(files["srv/shared"].xattrs) == {"system.posix_acl_default": ACL}
        assert files["etc/a-z"].type is FileType.FILE  # first in path order holds the data
        assert files["etc/a-z"].size == 5000
        for path in LINKED[1:]:
            assert (files[path].type, files[path].link) == (FileType.HARDLINK, "server/etc/a-z")
        assert files["dev/fifo"].type is FileType.FIFO
        assert (files["dev/null"].type, files["dev/null"].device) == (FileType.CHARDEV, (1, 3))
        assert (files["dev/loop9"].type, files["dev/loop9"].device) == (FileType.BLOCKDEV, (7, 9))
        assert files["srv/tool"].mode == 0o4755
        assert (files["config"].type, files["config"].uid) == (FileType.SYMLINK, OWNER[0])

    def test_a_socket_is_skipped_with_a_warning(self, tmp_path: Path) -> None:
        """A socket has nothing to restore: it is left out and said, as tar does."""
        src = tmp_path / "src"
        src.mkdir()
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(src / "sock"))
        vault = new_vault()
        try:
            info = vault.backup([src], lineage="full-server", host="h", now=NOW)
        finally:
            server.close()
        assert [e.path for e in vault.manifest(info).files] == ["src"]
        assert [(w.path, w.reason) for w in info.warnings] == [
            (str(src / "sock"), "socket skipped")
        ]

    def test_an_owner_or_xattr_change_is_seen_without_an_mtime_change(
        self, backed_up: tuple[Vault, Path, str]
    ) -> None:
        """A chown, a setxattr or a broken hard link keeps the mtime; the next backup sees them."""
        vault, src, _name = backed_up
        os.chown(src / "srv" / "tool", 4321, 5432)
        os.chmod(src / "srv" / "tool", 0o4755)  # noqa: S103 - chown cleared it
        os.setxattr(src / "etc" / "owned.conf", "user.note", b"changed")
        two = src / "srv" / "two"
        two.unlink()
        shutil.copy2(src / "srv" / "one", two)  # same size and mtime, its own inode now
        for path in (src / "srv", src / "etc", src / "etc" / "owned.conf"):
            os.utime(path, ns=(MTIME, MTIME))
        later = vault.backup([src], lineage="full-server", host="h", now=NOW.replace(hour=3))
        files = {e.path.removeprefix("server/"): e for e in vault.manifest(later.name).files}
        assert (files["srv/tool"].uid, files["srv/tool"].gid) == (4321, 5432)
        assert dict(files["etc/owned.conf"].xattrs) == {"user.note": b"changed"}
        assert files["srv/two"].type is FileType.FILE
        assert files["srv/one"].type is FileType.HARDLINK


@pytest.mark.usefixtures("root")
class TestRestore:
    def test_restore_is_byte_and_attribute_identical(
        self, backed_up: tuple[Vault, Path, str], tmp_path: Path
    ) -> None:
        """Types, modes, owners, times, xattrs, ACLs, devices and hard links all come back."""
        vault, src, name = backed_up
        report = vault.restore(name, tmp_path / "out")
        restored = tmp_path / "out" / "server"
        assert tree(restored) == tree(src)
        assert len(inodes(restored, *LINKED)) == 1
        assert os.lstat(restored / "srv" / "one").st_nlink == len(LINKED)
        assert (report.hardlinks, report.specials, report.symlinks) == (3, 3, 1)
        assert report.refused == ()
        assert report.warnings == ()

    def test_restoring_over_a_restore_gives_the_same_tree(
        self, backed_up: tuple[Vault, Path, str], tmp_path: Path
    ) -> None:
        """With overwrite, FIFOs, devices, hard links and links already there are replaced."""
        vault, src, name = backed_up
        vault.restore(name, tmp_path / "out")
        (tmp_path / "out" / "server" / "srv" / "two").unlink()
        (tmp_path / "out" / "server" / "srv" / "two").write_bytes(b"stale")
        report = vault.restore(name, tmp_path / "out", overwrite=True)
        restored = tmp_path / "out" / "server"
        assert tree(restored) == tree(src)
        assert len(inodes(restored, *LINKED)) == 1
        assert (report.hardlinks, report.specials, report.refused) == (3, 3, ())

    def test_a_hard_link_restored_without_its_first_path_gets_the_content(
        self, backed_up: tuple[Vault, Path, str], tmp_path: Path
    ) -> None:
        """Selecting only some paths of an inode restores the first of them with the data."""
        vault, src, name = backed_up
        report = vault.restore(name, tmp_path / "out", include=["server/srv"])
        restored = tmp_path / "out" / "server" / "srv"
        assert (restored / "one").read_bytes() == (src / "srv" / "one").read_bytes()
        assert len(inodes(restored, "one", "two", "shared/three")) == 1
        assert os.lstat(restored / "one").st_nlink == 3
        assert attributes(restored / "one") == {**attributes(src / "srv" / "one"), "nlink": 3}
        assert report.hardlinks == 2

    def test_a_copy_keeps_every_entry_but_the_chunk_ids(
        self, backed_up: tuple[Vault, Path, str], tmp_path: Path
    ) -> None:
        """Copying to another repository keeps owners, xattrs, links and devices; restores alike."""
        vault, src, name = backed_up
        other = new_vault()
        other.copy(vault, now=NOW)
        (copied,) = other.snapshots()

        def unchunked(found: Vault, ref: str) -> list[FileEntry]:
            return [attrs.evolve(e, chunks=()) for e in found.manifest(ref).files]

        assert unchunked(other, copied.name) == unchunked(vault, name)
        other.restore(copied, tmp_path / "out")
        assert tree(tmp_path / "out" / "server") == tree(src)

    def test_a_hard_link_opens_as_its_file(self, backed_up: tuple[Vault, Path, str]) -> None:
        """``open_file`` on a hard link reads the file it shares an inode with."""
        vault, src, name = backed_up
        with vault.open_file(name, "server/srv/two") as stream:
            assert stream.read() == (src / "srv" / "one").read_bytes()

    def test_without_root_ownership_is_left_and_said_once(
        self, backed_up: tuple[Vault, Path, str]
    ) -> None:
        """As another user: owners are left (one warning), root-only parts are refused or said."""
        _vault, src, _name = backed_up
        # In memory: the other user may not read the folders under the test's tmp_path.
        vault = new_vault()
        name = vault.backup([src], lineage="full-server", host="h", now=NOW).name
        scratch = Path(tempfile.mkdtemp(prefix="ctfy-nonroot-"))
        try:
            os.chown(scratch, NOBODY, NOBODY)
            os.setegid(NOBODY)
            os.seteuid(NOBODY)
            try:
                report = vault.restore(name, scratch / "out")
            finally:
                os.seteuid(0)
                os.setegid(0)
            restored = scratch / "out" / "server"
            entries = len(vault.manifest(name).files)
            devices = {"server/dev/null", "server/dev/loop9"}
            owner_warnings = [w for w in report.warnings if w[1].startswith("ownership")]
            # Every entry but the hard links (they share an inode) and the devices not created.
            left = entries - 3 - len(devices)
            assert owner_warnings == [
                (
                    "server",
                    f"ownership not restored on {left} entries: only root (or the owner itself) "
                    "may give them their recorded owner and group; they keep the restoring "
                    "user's",
                )
            ]
            assert (
                "server/etc/tagged.txt",
                "xattr trusted.ctfy (not permitted) not restored on 1 entry",
            ) in report.warnings
            assert {path for path, _reason in report.refused} == devices
            assert os.lstat(restored / "etc" / "owned.conf").st_uid == NOBODY
            assert os.getxattr(restored / "etc" / "tagged.txt", "user.origin") == b"\x00upload\xff"
            assert stat.S_ISFIFO(os.lstat(restored / "dev" / "fifo").st_mode)
            assert len(inodes(restored, *LINKED)) == 1
            assert (restored / "srv" / "one").read_bytes() == (src / "srv" / "one").read_bytes()
        finally:
            shutil.rmtree(scratch)


def test_an_entry_of_a_stream_records_no_owner() -> None:
    """A stream has no owner or attributes: its entry keeps the older encoding's keys."""
    vault = new_vault()
    info = vault.backup([stream(b"dump")], lineage="db", host="h", now=NOW)
    (entry,) = vault.manifest(info).files
    assert (entry.type, entry.uid, entry.gid, entry.xattrs) == (FileType.FILE, None, None, ())


def test_ls_has_a_mode_letter_for_every_entry_type() -> None:
    """``ctfy-vault ls`` shows each type as ``ls -l`` and ``tar -tv`` do (``h`` a hard link)."""
    assert {kind: _KINDS[kind] for kind in FileType} == {
        FileType.FILE: "-",
        FileType.DIR: "d",
        FileType.SYMLINK: "l",
        FileType.HARDLINK: "h",
        FileType.FIFO: "p",
        FileType.CHARDEV: "c",
        FileType.BLOCKDEV: "b",
    }
