"""Restore: byte-identical trees, metadata, selection, refusals, and fallback between targets."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from ctfy_vault.exceptions import (
    FormatError,
    ObjectExistsError,
    TargetsFailedError,
)
from ctfy_vault.manifest import FileEntry, FileType, Manifest
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault
from ctfy_vault.vault._restore import check_tree, safe_join
from ctfy_vault.writer import chunk_key
from tests.support.vaults import KEY, corrupt, corrupt_in_pack, new_vault, plant, sample_tree
from tests.support.writer_strategies import NOW


def tree(root: Path) -> dict[str, bytes | str]:
    """Every file's bytes and every link's target under ``root``, by relative path."""
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = os.readlink(path)
        elif path.is_file():
            found[rel] = path.read_bytes()
    return found


def escaping_entry(path: str) -> FileEntry:
    """A file entry whose path was forced past the model's own check, as a hostile writer could."""
    entry = FileEntry(
        path="placeholder", type=FileType.FILE, mode=0o644, mtime_ns=0, sha256=bytes(32)
    )
    object.__setattr__(entry, "path", path)
    return entry


class TestRoundTrip:
    def test_restore_is_byte_identical_with_links(self, tmp_path: Path) -> None:
        """A restored tree has the same file bytes and link targets as the source."""
        vault = new_vault()
        src = sample_tree(tmp_path)
        info = vault.backup([src], lineage="files", host="h", now=NOW)
        report = vault.restore(info, tmp_path / "out")
        assert tree(tmp_path / "out" / "src") == tree(src)
        assert (report.files, report.dirs, report.symlinks) == (2, 2, 1)
        assert report.bytes == 3000 + 3000
        assert report.fallbacks == ()

    def test_restore_sets_mode_and_mtime(self, tmp_path: Path) -> None:
        """Files and folders get their recorded permission bits and modification times."""
        vault = new_vault()
        src = sample_tree(tmp_path)
        os.chmod(src / "a.txt", 0o640)
        os.utime(src / "a.txt", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
        os.chmod(src / "sub", 0o750)  # noqa: S103 - a folder mode to restore, in a temp dir
        os.utime(src / "sub", ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
        info = vault.backup([src], lineage="files", host="h", now=NOW)
        vault.restore(info, tmp_path / "out")
        restored = tmp_path / "out" / "src"
        assert stat.S_IMODE((restored / "a.txt").stat().st_mode) == 0o640
        assert (restored / "a.txt").stat().st_mtime_ns == 1_600_000_000_123_456_789
        assert stat.S_IMODE((restored / "sub").stat().st_mode) == 0o750
        assert (restored / "sub").stat().st_mtime_ns == 1_500_000_000_000_000_000

    def test_include_selects_paths_folders_and_globs(self, tmp_path: Path) -> None:
        """An include list restores only the named file, folder contents or glob matches."""
        vault = new_vault()
        info = vault.backup([sample_tree(tmp_path)], lineage="files", host="h", now=NOW)
        vault.restore(info, tmp_path / "one", include=["src/sub"])
        assert set(tree(tmp_path / "one")) == {"src/sub/b.bin"}
        vault.restore(info, tmp_path / "two", include=["*.txt"])
        assert set(tree(tmp_path / "two")) == {"src/a.txt"}

    def test_restore_an_older_snapshot(self, tmp_path: Path) -> None:
        """An older snapshot restores its own content, not the newer one's."""
        vault = new_vault()
        src = sample_tree(tmp_path)
        first = vault.backup([src], lineage="files", host="h", now=NOW)
        (src / "a.txt").write_bytes(b"new")
        vault.backup([src], lineage="files", host="h", now=NOW + timedelta(days=1))
        vault.restore(first.snapshot_id, tmp_path / "out", include=["src/a.txt"])
        assert (tmp_path / "out" / "src" / "a.txt").read_bytes() == b"alpha " * 500


class TestRefusals:
    def test_non_empty_destination_is_refused_unless_overwrite(self, tmp_path: Path) -> None:
        """A destination holding anything is refused; overwrite=True restores into it."""
        vault = new_vault()
        info = vault.backup([sample_tree(tmp_path)], lineage="files", host="h", now=NOW)
        dest = tmp_path / "out"
        (dest / "src").mkdir(parents=True)
        (dest / "src" / "a.txt").write_bytes(b"local edit")
        with pytest.raises(ObjectExistsError) as caught:
            vault.restore(info, dest)
        assert isinstance(caught.value, FileExistsError)
        assert (dest / "src" / "a.txt").read_bytes() == b"local edit"
        vault.restore(info, dest, overwrite=True)
        assert (dest / "src" / "a.txt").read_bytes() == b"alpha " * 500

    @pytest.mark.parametrize(
        ("in_the_way", "include", "named"),
        [
            ("src/sub", None, "folder src/sub: the destination holds a file there"),
            ("src", None, "folder src: the destination holds a file there"),
            ("src", ["src/sub/b.bin"], "src/sub/b.bin: the destination holds a file where its"),
            ("src/a.txt/", None, "file src/a.txt: the destination holds a folder there"),
            ("src/link/", None, "symlink src/link: the destination holds a folder there"),
        ],
    )
    def test_overwrite_refuses_a_file_for_a_folder_or_a_folder_for_a_file(
        self, tmp_path: Path, in_the_way: str, include: list[str] | None, named: str
    ) -> None:
        """With overwrite, a file where a folder goes (or the reverse) is named; nothing changes."""
        vault = new_vault()
        info = vault.backup([sample_tree(tmp_path)], lineage="files", host="h", now=NOW)
        dest = tmp_path / "out"
        blocker = dest / in_the_way
        blocker.parent.mkdir(parents=True, exist_ok=True)
        if in_the_way.endswith("/"):
            blocker.mkdir()
            (blocker / "keep.txt").write_bytes(b"mine")
        else:
            blocker.write_bytes(b"mine")
        before = tree(dest)
        with pytest.raises(ObjectExistsError, match=re.escape(named)) as caught:
            vault.restore(info, dest, include=include, overwrite=True)
        assert isinstance(caught.value, FileExistsError)
        assert tree(dest) == before  # refused before anything was written

    def test_destination_that_is_a_file_is_refused(self, tmp_path: Path) -> None:
        """A destination that is a file is refused even with overwrite."""
        vault = new_vault()
        info = vault.backup([sample_tree(tmp_path)], lineage="files", host="h", now=NOW)
        (tmp_path / "file").write_bytes(b"x")
        with pytest.raises(ObjectExistsError):
            vault.restore(info, tmp_path / "file", overwrite=True)

    @pytest.mark.parametrize("path", ["../x", "/etc/evil", "a/../../x"])
    def test_crafted_manifest_with_escaping_path_is_refused(
        self, tmp_path: Path, path: str
    ) -> None:
        """A sealed manifest naming ``../`` or an absolute path restores nothing anywhere."""
        vault = new_vault()
        manifest = Manifest(
            snapshot_id="evil", lineage="files", created=NOW, host="h", files=[escaping_entry(path)]
        )
        name = plant(vault, manifest)
        dest = tmp_path / "deep" / "out"
        with pytest.raises(FormatError):
            vault.restore(name, dest)
        with pytest.raises(FormatError):
            vault.restore("evil", dest)
        assert not (tmp_path / "deep" / "x").exists()
        assert not dest.exists()

    @pytest.mark.parametrize("path", ["../x", "/abs", "a/../../x", "a//b", "./a", "a\\..\\b", ""])
    def test_safe_join_refuses_escapes(self, tmp_path: Path, path: str) -> None:
        """The restore path check refuses every escaping form on its own, without the manifest's."""
        with pytest.raises(FormatError):
            safe_join(tmp_path, path)

    def test_symlinks_pointing_outside_are_not_created(self, tmp_path: Path) -> None:
        """Links to absolute paths or above the destination are refused and reported."""
        vault = new_vault()
        src = tmp_path / "src"
        src.mkdir()
        os.symlink("/etc/passwd", src / "abs")
        os.symlink("../../outside", src / "up")
        os.symlink("up", src / "chained")
        (src / "f").write_bytes(b"data")
        info = vault.backup([src], lineage="files", host="h", now=NOW)
        report = vault.restore(info, tmp_path / "out")
        assert sorted(path for path, _ in report.refused) == ["src/abs", "src/up"]
        assert not (tmp_path / "out" / "src" / "abs").is_symlink()
        assert not (tmp_path / "out" / "src" / "up").is_symlink()
        assert os.readlink(tmp_path / "out" / "src" / "chained") == "up"

    def test_links_climbing_out_through_other_links_are_removed(self, tmp_path: Path) -> None:
        """A link that escapes only when resolved through another restored link is refused."""
        vault = new_vault()
        src = tmp_path / "src"
        (src / "d").mkdir(parents=True)
        os.symlink(".", src / "here")  # the restored folder itself
        os.symlink("../../../escape", src / "d" / "x")  # outside by its text alone
        os.symlink("here/../../z", src / "y")  # lexically src/z; through `here` it climbs out
        info = vault.backup([src], lineage="files", host="h", now=NOW)
        dest = tmp_path / "out" / "deep"
        report = vault.restore(info, dest)
        refused = dict(report.refused)
        assert set(refused) == {"src/d/x", "src/y"}
        assert not (dest / "src" / "y").is_symlink()
        assert (dest / "src" / "here").is_symlink()
        for link in (dest / "src").rglob("*"):
            if link.is_symlink():
                assert dest.resolve() in Path(os.path.realpath(link)).parents

    def test_preexisting_link_does_not_lead_writes_outside(self, tmp_path: Path) -> None:
        """With overwrite, a folder link already in the destination never carries files out."""
        vault = new_vault()
        info = vault.backup([sample_tree(tmp_path)], lineage="files", host="h", now=NOW)
        outside = tmp_path / "outside"
        outside.mkdir()
        dest = tmp_path / "out"
        dest.mkdir()
        os.symlink(outside, dest / "src")
        with pytest.raises(FormatError):
            vault.restore(info, dest, include=["src/a.txt"], overwrite=True)
        assert list(outside.iterdir()) == []
        vault.restore(info, dest, overwrite=True)  # the folder entry replaces the link
        assert list(outside.iterdir()) == []
        assert not (dest / "src").is_symlink()
        assert (dest / "src" / "a.txt").read_bytes() == b"alpha " * 500


def _damage_chunk(vault: Vault, target: Target, chunk_id: bytes, format: int) -> str:
    """Alter one chunk on a target (its object, or its range in its pack); its fallback name."""
    if format == 1:
        corrupt(target, chunk_key(chunk_id))
        return chunk_key(chunk_id)
    corrupt_in_pack(vault, target, chunk_id)
    return chunk_id.hex()


@pytest.mark.parametrize("format", [1, 2])
class TestFallback:
    def test_corrupt_chunk_on_first_target_falls_back(self, tmp_path: Path, format: int) -> None:
        """A chunk altered on the first target is read from the next; the tree is still exact."""
        vault = new_vault(3, format=format)
        src = sample_tree(tmp_path)
        info = vault.backup([src], lineage="files", host="h", now=NOW)
        entry = next(e for e in vault.ls(info) if e.path == "src/sub/b.bin")
        key = _damage_chunk(vault, vault.targets[0], entry.chunks[0], format)
        report = vault.restore(info, tmp_path / "out")
        assert tree(tmp_path / "out" / "src") == tree(src)
        assert report.fallbacks == ((key, vault.targets[0].name),)

    def test_missing_chunk_falls_back_and_open_file_too(self, tmp_path: Path, format: int) -> None:
        """A chunk missing on the first two targets comes from the third, in restore and open_file."""
        vault = new_vault(3, format=format)
        data = os.urandom(5000)
        src = tmp_path / "src"
        src.mkdir()
        (src / "d").write_bytes(data)
        info = vault.backup([src], lineage="files", host="h", now=NOW)
        entry = vault.ls(info, "src/d")[0]
        chunk_id = entry.chunks[-1]
        if format == 1:
            vault.targets[0].delete(chunk_key(chunk_id))
        else:  # the first target's packs stay; its index objects no longer list the chunk
            for key in list(vault.targets[0].list("index")):
                vault.targets[0].delete(key)
        _damage_chunk(vault, vault.targets[1], chunk_id, format)
        with vault.open_file(info, "src/d") as handle:
            assert handle.read() == data
        report = vault.restore(info, tmp_path / "out")
        assert (tmp_path / "out" / "src" / "d").read_bytes() == data
        if format == 1:
            assert [target for _, target in report.fallbacks] == [t.name for t in vault.targets[:2]]
            return
        # Every chunk falls back from the first target; the damaged one from the second too.
        first, second = (t.name for t in vault.targets[:2])
        assert {key for key, target in report.fallbacks if target == first} == {
            chunk.hex() for chunk in entry.chunks
        }
        assert [key for key, target in report.fallbacks if target == second] == [chunk_id.hex()]
        assert {target for _, target in report.fallbacks} == {first, second}

    def test_chunk_intact_nowhere_fails_with_every_target_named(
        self, tmp_path: Path, format: int
    ) -> None:
        """When no target holds a chunk intact, restore fails naming each target's error."""
        vault = new_vault(2, format=format)
        src = tmp_path / "src"
        src.mkdir()
        (src / "d").write_bytes(os.urandom(2000))
        info = vault.backup([src], lineage="files", host="h", now=NOW)
        chunk_id = vault.ls(info, "src/d")[0].chunks[0]
        for target in vault.targets:
            _damage_chunk(vault, target, chunk_id, format)
        with pytest.raises(TargetsFailedError) as caught:
            vault.restore(info, tmp_path / "out")
        assert set(caught.value.outcomes) == {t.name for t in vault.targets}

    def test_restore_from_a_reopened_vault_on_local_targets(
        self, tmp_path: Path, format: int
    ) -> None:
        """Local-disk targets: a reopened vault restores exactly and verifies clean."""
        targets = [Target.from_url(str(tmp_path / name), name=name) for name in ("ams", "dub")]
        vault = Vault.init(targets, key=KEY, now=NOW, format=format)
        src = sample_tree(tmp_path)
        info = vault.backup([src], lineage="files", host="h", now=NOW)
        reopened = Vault.open(targets, key=KEY)
        reopened.restore(info.name, tmp_path / "out")
        assert tree(tmp_path / "out" / "src") == tree(src)
        assert reopened.verify(read_data=True).ok


def crafted_entry(path: str, kind: FileType, link: str | None = None) -> FileEntry:
    """An empty file, a folder or a link entry, as a hostile writer could list it."""
    if kind is FileType.SYMLINK:
        return FileEntry(path=path, type=kind, mode=0o777, mtime_ns=0, link=link or "x")
    if kind is FileType.DIR:
        return FileEntry(path=path, type=kind, mode=0o755, mtime_ns=0)
    return FileEntry(path=path, type=kind, mode=0o644, mtime_ns=0, sha256=hashlib.sha256().digest())


def crafted_manifest(files: list[FileEntry]) -> Manifest:
    """A manifest holding ``files`` (unique paths: the model and the codec refuse repeats)."""
    return Manifest(snapshot_id="conflict", lineage="files", created=NOW, host="h", files=files)


class TestConflictingEntries:
    @pytest.mark.parametrize(
        ("files", "named"),
        [
            # a link a (out of the destination) and a file a/b: never written through the link
            (
                [
                    crafted_entry("a", FileType.SYMLINK, link="../outside"),
                    crafted_entry("a/b", FileType.FILE),
                ],
                "'a/b' lies under 'a', which the manifest lists as a symbolic link",
            ),
            (
                [crafted_entry("a", FileType.FILE), crafted_entry("a/b", FileType.FILE)],
                "'a/b' lies under 'a', which the manifest lists as a file",
            ),
            (
                [crafted_entry("a", FileType.SYMLINK), crafted_entry("a/b/c", FileType.DIR)],
                "'a/b/c' lies under 'a'",
            ),
        ],
    )
    def test_conflicting_entries_are_a_format_error_naming_them(
        self, tmp_path: Path, files: list[FileEntry], named: str
    ) -> None:
        """Entries that cannot coexist on disk: a FormatError naming them, nothing created."""
        vault = new_vault()
        name = plant(vault, crafted_manifest(files))
        (tmp_path / "outside").mkdir()
        dest = tmp_path / "out"
        with pytest.raises(FormatError, match=re.escape(named)):
            vault.restore(name, dest)
        assert not dest.exists()
        assert list((tmp_path / "outside").iterdir()) == []

    @pytest.mark.parametrize("second", [FileType.FILE, FileType.DIR, FileType.SYMLINK])
    def test_a_path_listed_twice_is_a_format_error(self, second: FileType) -> None:
        """The restore's own check refuses a repeated path, whatever the model let through."""
        files = [crafted_entry("a", FileType.DIR), crafted_entry("a", second)]
        with pytest.raises(FormatError, match="'a' is listed twice"):
            check_tree(files)

    def test_a_link_beside_its_own_folder_entries_restores(self, tmp_path: Path) -> None:
        """A folder ``a``, its file ``a/b`` and a link ``c -> a`` are no conflict."""
        vault = new_vault()
        files = [
            crafted_entry("a", FileType.DIR),
            crafted_entry("a/b", FileType.FILE),
            crafted_entry("c", FileType.SYMLINK, link="a"),
        ]
        report = vault.restore(plant(vault, crafted_manifest(files)), tmp_path / "out")
        assert (report.files, report.dirs, report.symlinks) == (1, 1, 1)
