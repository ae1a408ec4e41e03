"""Global options before the command, ``--quiet``/``--verbose``/``--no-progress``, completion."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ctfy_vault.cli import main
from ctfy_vault.cli._parser import parse
from tests.support.cli import local_cli, sample_tree


def test_config_and_json_before_the_command_count_for_it() -> None:
    """``ctfy-vault --config F --json snapshots`` is ``snapshots --config F --json``."""
    before = parse(["--config", "a.toml", "--json", "snapshots"])
    after = parse(["snapshots", "--config", "a.toml", "--json"])
    assert (before.config, before.json) == (after.config, after.json) == ("a.toml", True)
    both = parse(["--config", "a.toml", "snapshots", "--config", "b.toml"])
    assert both.config == "b.toml"  # the one nearer the command wins, as restic's flags do


def test_quiet_and_verbose_together_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 2 with the reason."""
    with pytest.raises(SystemExit) as stopped:
        parse(["-q", "-v", "snapshots"])
    assert stopped.value.code == 2
    assert "--quiet and --verbose" in capsys.readouterr().err


@pytest.mark.slow  # subprocesses; the whole suite runs it
def test_global_options_on_a_real_repository(tmp_path: Path) -> None:
    """Global --json; --quiet drops the first-run note and keeps the result."""
    results = {}
    for quiet in (False, True):
        home = tmp_path / str(quiet)
        home.mkdir()
        cli = local_cli(home)
        sample_tree(cli.home / "data")
        cli.json("init")
        results[quiet] = cli(*(["--quiet"] if quiet else []), "--json", "backup", "files")
        assert results[quiet].returncode == 0
        assert json.loads(results[quiet].stdout)["lineage"] == "files"
    assert "note:" in results[False].stderr  # the first run's known-heads note
    assert "note:" not in results[True].stderr
    listed = json.loads(cli.ok("--json", "snapshots"))
    assert len(listed) == 1
    assert cli("--no-progress", "-v", "snapshots").returncode == 0


@pytest.mark.parametrize("shell", ["bash", "zsh", "tcsh"])
def test_completion_scripts_name_every_command(
    shell: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Generated from the parser: every command is in it."""
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    for command in ("backup", "restore", "status", "forget", "key", "completion"):
        assert command in script


def test_the_bash_script_completes_commands_and_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Sourced in bash: ``ba`` completes to backup, ``status --max`` to --max-age."""
    bash = shutil.which("bash")
    assert bash is not None, "bash is needed to run the completion"
    main(["completion", "bash"])
    script = tmp_path / "ctfy-vault.bash"
    script.write_text(capsys.readouterr().out)
    probe = (
        f"source {script}\n"
        "COMP_WORDS=(ctfy-vault ba); COMP_CWORD=1; _shtab_ctfy_vault; echo ${COMPREPLY[@]}\n"
        "COMP_WORDS=(ctfy-vault status --max); COMP_CWORD=2; _shtab_ctfy_vault; "
        "echo ${COMPREPLY[@]}\n"
    )
    done = subprocess.run(
        [bash, "-c", probe], capture_output=True, text=True, check=True, timeout=30
    )
    assert done.stdout.split("\n")[:2] == ["backup", "--max-age"]
