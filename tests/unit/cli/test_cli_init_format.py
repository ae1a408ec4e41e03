"""``ctfy-vault init --format`` and ``--pack-size``: the layout a new repository gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import local_cli, sample_tree

# Subprocesses or a whole demo run per test: the whole suite runs them, the fast tier does not.
pytestmark = pytest.mark.slow


def test_init_creates_format_2_with_the_pack_size_given(tmp_path: Path) -> None:
    """--pack-size 64KiB is recorded in every target's format 2 config; backups write packs."""
    cli = local_cli(tmp_path)
    created = cli.json("init", "--pack-size", "64KiB")
    assert created["format"] == 2
    for target in cli.targets:
        config = json.loads((Path(target.url) / "config").read_text())
        assert config["format"] == 2
        assert config["packs"] == {"target_size": 64 * 1024}
    sample_tree(cli.home / "data")
    cli.json("backup", "files")
    for target in cli.targets:
        root = Path(target.url)
        assert list((root / "packs").rglob("*"))
        assert list((root / "index").iterdir())
        assert not (root / "objects").exists()


def test_init_format_1_writes_the_old_layout(tmp_path: Path) -> None:
    """--format 1 creates a format 1 repository whose backups store one object per chunk."""
    cli = local_cli(tmp_path)
    assert "(format 1)" in cli.ok("init", "--format", "1")
    sample_tree(cli.home / "data")
    cli.json("backup", "files")
    for target in cli.targets:
        root = Path(target.url)
        assert json.loads((root / "config").read_text())["format"] == 1
        assert list((root / "objects").rglob("*"))
        assert not (root / "packs").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--pack-size", "12XB"), "is not a --pack-size size"),
        (("--pack-size", "1KiB"), "is out of range"),
        (("--pack-size", "2GiB"), "is out of range"),
        (("--format", "3"), "invalid choice"),
    ],
)
def test_bad_init_options_are_usage_errors_and_create_nothing(
    tmp_path: Path, argv: tuple[str, ...], message: str
) -> None:
    """A bad --format or --pack-size exits 2 naming the problem, and no target gets a config."""
    cli = local_cli(tmp_path)
    done = cli("init", *argv)
    assert done.returncode == 2
    assert message in done.stderr
    assert not any((Path(t.url) / "config").exists() for t in cli.targets)


def test_a_pack_size_for_format_1_is_refused(tmp_path: Path) -> None:
    """--format 1 with --pack-size is refused with a clear error; nothing is created."""
    cli = local_cli(tmp_path)
    done = cli("init", "--format", "1", "--pack-size", "1MiB")
    assert done.returncode != 0
    assert "pack_size is a format 2 setting" in done.stderr
    assert not any((Path(t.url) / "config").exists() for t in cli.targets)
