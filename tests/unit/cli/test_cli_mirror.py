"""``ctfy-vault mirror``: one run, JSON output, the state file, watch mode and exit codes."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from ctfy_vault.cli import main
from ctfy_vault.cli._mirror import run
from ctfy_vault.cli._parser import add_mirror as add_parser
from ctfy_vault.storage import Target


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A source folder with two documents and two empty replica folders."""
    source = Target.from_url(str(tmp_path / "src"))
    source.write("contracts/a.pdf", b"A")
    source.write("contracts/b.pdf", b"BB")
    return tmp_path / "src", tmp_path / "r1", tmp_path / "r2"


def _cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, out=out)
    return code, out.getvalue()


def test_mirror_copies_and_prints_a_summary(folders: tuple[Path, Path, Path]) -> None:
    """One run copies every document to every replica and prints the per-object lines."""
    src, r1, r2 = folders
    code, text = _cli(["mirror", str(src), str(r1), str(r2)])
    assert code == 0
    assert "copied 4" in text
    assert (r1 / "contracts" / "b.pdf").read_bytes() == b"BB"
    assert (r2 / "contracts" / "a.pdf").read_bytes() == b"A"
    assert f"  copied   contracts/a.pdf -> file://{r1}" in text


def test_json_and_state_make_the_second_run_empty(
    folders: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """With --state, the second run reports everything unchanged, as JSON."""
    src, r1, _ = folders
    state = tmp_path / "state.json"
    _cli(["mirror", str(src), str(r1), "--state", str(state), "--json"])
    code, text = _cli(["mirror", str(src), str(r1), "--state", str(state), "--json"])
    report = json.loads(text)
    assert code == 0
    assert (report["copied"], report["unchanged"], report["ok"]) == (0, 2, True)
    assert json.loads(state.read_text())["format"] == 1


def test_deleted_at_source_is_listed(folders: tuple[Path, Path, Path]) -> None:
    """A document deleted at the source stays on the replica and is named in the output."""
    src, r1, _ = folders
    _cli(["mirror", str(src), str(r1)])
    (src / "contracts" / "a.pdf").unlink()
    code, text = _cli(["mirror", str(src), str(r1)])
    assert code == 0
    assert "deleted at source, kept on replicas: contracts/a.pdf" in text
    assert (r1 / "contracts" / "a.pdf").read_bytes() == b"A"


def test_watch_runs_n_times(folders: tuple[Path, Path, Path]) -> None:
    """--watch with --runs prints one JSON report per run."""
    src, r1, _ = folders
    code, text = _cli(["mirror", str(src), str(r1), "--watch", "0.01", "--runs", "2", "--json"])
    reports = [json.loads(line) for line in text.splitlines()]
    assert code == 0
    assert [r["copied"] for r in reports] == [2, 0]


def test_secrets_on_the_command_line_are_refused(folders: tuple[Path, Path, Path]) -> None:
    """--option secret=... is a usage error (exit 2): secrets come from the environment."""
    _, r1, _ = folders
    code, _ = _cli(["mirror", "s3://bucket-a", str(r1), "--option", "secret=x"])
    assert code == 2


def test_runs_without_watch_is_a_usage_error(folders: tuple[Path, Path, Path]) -> None:
    """--runs alone makes no sense and is refused."""
    src, r1, _ = folders
    assert _cli(["mirror", str(src), str(r1), "--runs", "2"])[0] == 2


def test_failed_copy_exits_1(folders: tuple[Path, Path, Path]) -> None:
    """A replica that cannot be written makes the command exit 1 with the failure shown."""
    src, _, _ = folders
    blocker = src.parent / "blocker"
    blocker.write_bytes(b"a file where the replica's folder should be")
    code, text = _cli(["mirror", str(src), str(blocker / "replica")])
    assert code == 1
    assert "failed 2" in text


def test_add_parser_registers_the_command(folders: tuple[Path, Path, Path]) -> None:
    """add_parser works on any subparsers object and sets run to the command function."""
    src, r1, _ = folders
    parser = argparse.ArgumentParser(prog="x")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["mirror", str(src), str(r1), "--workers", "2"])
    assert args.run is run
    out = io.StringIO()
    assert run(args, out) == 0
    assert "copied 2" in out.getvalue()
