"""``check --read-data-subset n/t`` in a subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import local_cli, sample_tree

pytestmark = pytest.mark.slow  # subprocesses; the whole suite runs them


def test_the_groups_together_read_what_read_data_reads(tmp_path: Path) -> None:
    """Groups 1/3, 2/3 and 3/3 read the chunks one --read-data does; bad values exit 2."""
    cli = local_cli(tmp_path)
    sample_tree(cli.home / "data")
    cli.json("init", "--pack-size", "4KiB")
    cli.json("backup", "files")
    whole = cli.json("check", "--read-data")
    parts = [cli.json("check", "--read-data-subset", f"{n}/3") for n in (1, 2, 3)]
    assert all(part["ok"] for part in parts)
    assert sum(part["chunks_read"] for part in parts) == whole["chunks_read"] > 0
    for bad in ("0/3", "4/3", "1/257", "half", "1/"):
        done = cli("check", "--read-data-subset", bad)
        assert done.returncode == 2, bad
        assert "--read-data-subset" in done.stderr
    both = cli("check", "--read-data", "--read-data-subset", "1/2")
    assert both.returncode == 2
    assert "cannot be used together" in both.stderr
