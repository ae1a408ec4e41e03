"""What a backup takes: exclude patterns, one filesystem, and the dry run that reads nothing."""

from __future__ import annotations

import fnmatch
import io
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctfy_vault.exceptions import ConfigurationError
from ctfy_vault.vault import Vault
from ctfy_vault.writer import Selection, StreamSource
from tests.support.vaults import KEY
from tests.support.writer_strategies import NOW, SMALL, memory_target


def _tree(root: Path) -> Path:
    for path, text in {
        "app/config.toml": "c",
        "app/cache/a.bin": "x" * 100,
        "app/cache/deep/b.bin": "y",
        "app/logs/today.log": "l",
        "app/main.py": "print()",
        "app/notes.tmp": "t",
    }.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root / "app"


def _paths(vault: Vault) -> set[str]:
    return {entry.path for entry in vault.ls(vault.snapshots()[0])}


def _vault() -> Vault:
    return Vault.init([memory_target("a")], key=KEY, now=NOW, chunker=SMALL)


def test_names_paths_and_whole_folders_are_excluded(tmp_path: Path) -> None:
    """``*.tmp`` anywhere, ``cache`` with everything under it, an absolute path pattern."""
    app = _tree(tmp_path)
    vault = _vault()
    vault.backup(
        [app],
        lineage="files",
        now=NOW,
        exclude=["*.tmp", "cache", f"{app}/logs/*.log"],
    )
    assert _paths(vault) == {"app", "app/config.toml", "app/logs", "app/main.py"}


def test_one_file_system_keeps_the_mount_point_and_leaves_its_content(tmp_path: Path) -> None:
    """A tmpfs mounted inside the source: its folder is recorded empty."""
    app = _tree(tmp_path)
    mount = app / "mnt"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "tmpfs", str(mount)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"this test mounts a tmpfs (needs root): {done.stderr}"
    try:
        (mount / "other.txt").write_text("on another filesystem")
        assert os.stat(mount).st_dev != os.stat(app).st_dev
        vault = _vault()
        vault.backup([app], lineage="files", now=NOW, one_file_system=True)
        taken = _paths(vault)
        assert "app/mnt" in taken
        assert "app/mnt/other.txt" not in taken
        vault.backup([app], lineage="all", now=NOW)
        everything = {e.path for e in vault.ls(vault.snapshots("all")[0])}
        assert "app/mnt/other.txt" in everything
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_dry_run_reads_nothing_and_says_what_would_be_read(tmp_path: Path) -> None:
    """New, changed and unchanged against the previous snapshot; nothing written."""
    app = _tree(tmp_path)
    vault = _vault()
    first = vault.preview_backup([app], lineage="files", exclude=["cache"])
    assert first.unchanged == 0
    assert set(first.new) == {
        "app/config.toml",
        "app/logs/today.log",
        "app/main.py",
        "app/notes.tmp",
    }
    assert first.bytes_to_read == first.bytes_total == 1 + 1 + 7 + 1
    assert vault.snapshots() == []
    vault.backup([app], lineage="files", now=NOW, exclude=["cache"])
    (app / "main.py").write_text("print('changed')")
    (app / "added.txt").write_text("new")
    later = vault.preview_backup([app], lineage="files", exclude=["cache"])
    assert later.new == ("app/added.txt",)
    assert later.changed == ("app/main.py",)
    assert later.unchanged == 3
    assert later.bytes_to_read == len("new") + len("print('changed')")
    assert len(vault.snapshots()) == 1
    streamed = vault.preview_backup(
        [StreamSource(name="dump.sql", stream=io.BytesIO(b"x"))], lineage="db"
    )
    assert streamed.streams == ("dump.sql",)


@pytest.mark.parametrize("bad", ["", "   ", "*.tmp"])
def test_bad_patterns_are_refused(bad: str) -> None:
    """An empty pattern, or one string instead of a list."""
    with pytest.raises(ConfigurationError, match="pattern"):
        Selection(exclude=bad if bad == "*.tmp" else [bad])


names = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=6)


@given(
    parts=st.lists(names, min_size=1, max_size=4),
    pattern=st.sampled_from(["*", "a*", "?", "[ab]*"]),
)
def test_a_pattern_without_a_slash_judges_the_name_only(parts: list[str], pattern: str) -> None:
    """Where the entry lies does not matter, only its name."""
    path = "/" + "/".join(parts)
    chosen = Selection(exclude=[pattern])
    assert chosen.excludes(path) == fnmatch.fnmatchcase(parts[-1], pattern)


def test_full_paths_keep_two_sources_of_one_name_apart(tmp_path: Path) -> None:
    """``a/config`` and ``b/config``: refused by name, both kept by full path, restored so."""
    for side in ("a", "b"):
        (tmp_path / side / "config").mkdir(parents=True)
        (tmp_path / side / "config" / "app.toml").write_text(side)
    sources = [tmp_path / "a" / "config", tmp_path / "b" / "config"]
    vault = _vault()
    with pytest.raises(ConfigurationError, match="full path"):
        vault.backup(sources, lineage="files", now=NOW)
    info = vault.backup(sources, lineage="files", now=NOW, full_paths=True)
    root = str(tmp_path).lstrip("/")
    stored = {entry.path for entry in vault.ls(info)}
    assert {f"{root}/a/config/app.toml", f"{root}/b/config/app.toml"} <= stored
    parents = root.split("/")
    assert {"/".join(parents[: n + 1]) for n in range(len(parents))} <= stored
    out = tmp_path / "out"
    vault.restore(info, out)
    assert (out / root / "a" / "config" / "app.toml").read_text() == "a"
    assert (out / root / "b" / "config" / "app.toml").read_text() == "b"
    again = vault.preview_backup(sources, lineage="files", full_paths=True)
    assert again.unchanged == 2  # the parent is recognised under the same paths


def test_a_source_inside_another_is_refused_with_full_paths(tmp_path: Path) -> None:
    """Its entries would be stored twice."""
    app = _tree(tmp_path)
    with pytest.raises(ConfigurationError, match="lies inside"):
        _vault().backup([app, app / "cache"], lineage="files", now=NOW, full_paths=True)
