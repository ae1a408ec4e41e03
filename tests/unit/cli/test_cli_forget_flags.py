"""restic's ``--keep-*`` flags on ``forget`` and ``prune``: a policy on the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Cli, TargetSpec, local_cli, sample_tree

pytestmark = pytest.mark.slow  # subprocesses; the whole suite runs them


def _history(cli: Cli, backups: int) -> list[str]:
    data = sample_tree(cli.home / "data")
    cli.json("init")
    ids = []
    for number in range(backups):
        (data / "contracts" / "0.txt").write_text(f"version {number}\n")
        ids.append(cli.json("backup", "files")["id"])
    return ids


def test_keep_flags_plan_and_prune_instead_of_the_config(tmp_path: Path) -> None:
    """``--keep-last 2`` keeps two where the config keeps one; prune applies it."""
    cli = local_cli(tmp_path)
    ids = _history(cli, 4)
    planned = cli.json("forget", "--dry-run", "--keep-last", "2")
    kept = [row["snapshot"] for row in planned["plan"] if row["keep"]]
    assert kept == ids[:1:-1]
    assert all("last" in " ".join(row["reasons"]) for row in planned["plan"] if row["keep"])
    pruned = cli.json("prune", "--keep-last", "3", "--grace", "0")
    assert pruned["forgotten"] == [ids[0]]
    assert {row["id"] for row in cli.json("snapshots")} == set(ids[1:])
    tagged = cli.json("forget", "--dry-run", "--keep-tag", "nope", "--keep-within", "1h")
    assert {row["snapshot"] for row in tagged["plan"] if row["keep"]} == set(ids[1:])


def test_keep_flags_replace_a_targets_own_policy(tmp_path: Path) -> None:
    """What is typed applies to every target: a target's own policy does not hold it back."""
    targets = [
        TargetSpec(name="near", url=str(tmp_path / "targets" / "near")),
        TargetSpec(name="far", url=str(tmp_path / "targets" / "far"), policy="{ last = 9 }"),
    ]
    cli = Cli(home=tmp_path, targets=targets)
    cli.write_config()
    ids = _history(cli, 3)
    pruned = cli.json("prune", "--keep-last", "1", "--grace", "0")
    assert set(pruned["forgotten"]) == set(ids[:2])
    assert "plan" in pruned
    assert [row["id"] for row in cli.json("snapshots")] == ids[-1:]


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--keep-daily", "-1"], "daily"),
        (["--keep-weekly", "lots"], "weekly"),
        (["--keep-within", "soon"], "within"),
        (["--keep-tz", "Europe/Amsterdam"], "--keep-tz"),
        (["--keep-last", "1", "--keep-tz", "Mars/Olympus"], "Mars/Olympus"),
    ],
)
def test_bad_keep_flags_are_usage_errors_and_change_nothing(
    tmp_path: Path, flags: list[str], named: str
) -> None:
    """Exit 2, naming the rule; nothing is deleted."""
    cli = local_cli(tmp_path)
    _history(cli, 2)
    before = sorted(p.name for p in (tmp_path / "targets").rglob("*"))
    done = cli("prune", "--grace", "0", *flags)
    assert done.returncode == 2, done.stderr
    assert named in done.stderr
    assert sorted(p.name for p in (tmp_path / "targets").rglob("*")) == before
