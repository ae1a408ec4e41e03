"""``backup --exclude/--exclude-file/--files-from/--one-file-system/--dry-run`` in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import Cli, local_cli, sample_tree

pytestmark = pytest.mark.slow  # subprocesses; the whole suite runs them


def _stored(cli: Cli, snapshot: str) -> set[str]:
    return {row["path"] for row in cli.json("ls", snapshot)}


def test_exclude_patterns_files_and_lists_of_paths(tmp_path: Path) -> None:
    """Patterns from the flag and a file; paths from a file; what is stored follows them."""
    cli = local_cli(tmp_path)
    data = sample_tree(cli.home / "data")
    (data / "junk.tmp").write_text("scratch")
    cli.json("init")
    patterns = tmp_path / "exclude.txt"
    patterns.write_text("# scratch files\n*.tmp\n\n")
    first = cli.json("backup", "files", "--exclude", "contracts", "--exclude-file", str(patterns))
    stored = _stored(cli, first["id"])
    assert "data" in stored
    assert not any("contracts" in path or path.endswith(".tmp") for path in stored)
    listed = tmp_path / "paths.txt"
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "one.txt").write_text("1")
    listed.write_text(f"# what to back up\n{data}\n{extra}\n")
    both = cli.json("backup", "files", "--files-from", str(listed), "--exclude", "*.tmp")
    stored = _stored(cli, both["id"])
    assert {"data", "extra", "extra/one.txt"} <= stored
    assert any("contracts" in path for path in stored)
    missing = cli("backup", "files", "--exclude-file", str(tmp_path / "nope.txt"))
    assert missing.returncode == 2
    assert "--exclude-file" in missing.stderr
    assert cli("backup", "--files-from", str(listed)).returncode == 2  # needs a lineage


def test_dry_run_says_what_would_be_read_and_writes_nothing(tmp_path: Path) -> None:
    """Text and JSON; the targets are byte for byte as before."""
    cli = local_cli(tmp_path)
    data = sample_tree(cli.home / "data")
    cli.json("init")
    cli.json("backup", "files")
    (data / "contracts" / "0.txt").write_text("amended\n")
    before = sorted(p.name for p in (tmp_path / "targets").rglob("*"))
    planned = cli.json("backup", "files", "--dry-run")
    assert planned["dry_run"] is True
    assert planned["changed"] == ["data/contracts/0.txt"]
    assert planned["new"] == []
    assert planned["bytes_to_read"] == len("amended\n")
    text = cli.ok("backup", "files", "--dry-run", "--exclude", "contracts")
    assert "nothing was written" in text
    assert "changed" not in text.split("dry run")[0]
    assert sorted(p.name for p in (tmp_path / "targets").rglob("*")) == before
    streamed = cli("backup", "files", "--dry-run", "--stdin", "--name", "x")
    assert streamed.returncode == 2
    assert json.loads(cli.ok("--json", "snapshots"))[0]["id"]


def test_full_paths_from_the_flag_and_the_lineage_table(tmp_path: Path) -> None:
    """Two sources named config: refused by name, kept by --full-paths or full_paths = true."""
    cli = local_cli(tmp_path)
    for side in ("a", "b"):
        (tmp_path / side / "config").mkdir(parents=True)
        (tmp_path / side / "config" / "x.txt").write_text(side)
    cli.json("init")
    sources = [str(tmp_path / "a" / "config"), str(tmp_path / "b" / "config")]
    refused = cli("backup", "files", *sources)
    assert refused.returncode == 2
    assert "full path" in refused.stderr
    done = cli.json("backup", "files", "--full-paths", *sources)
    root = str(tmp_path).lstrip("/")
    assert {f"{root}/a/config/x.txt", f"{root}/b/config/x.txt"} <= _stored(cli, done["id"])
    text = cli.config.read_text().replace(
        "[lineages.files]\n", "[lineages.files]\nfull_paths = true\n"
    )
    cli.config.write_text(text)
    again = cli.json("backup", "files", *sources)
    assert f"{root}/a/config/x.txt" in _stored(cli, again["id"])


def test_paths_may_follow_options(tmp_path: Path) -> None:
    """``backup files --tag x PATH``: the path is taken, an unknown option is still refused."""
    cli = local_cli(tmp_path)
    data = sample_tree(cli.home / "data")
    cli.json("init")
    done = cli.json("backup", "files", "--tag", "x", str(data / "contracts"))
    assert "contracts" in _stored(cli, done["id"])
    wrong = cli("backup", "files", "--tag", "x", str(data), "--no-such-option")
    assert wrong.returncode == 2
    assert "--no-such-option" in wrong.stderr
