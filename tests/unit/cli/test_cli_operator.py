"""The operator's commands on local folders and on moto: tag, status, key list, keep flags, subsets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import Cli, TargetSpec, local_cli, sample_tree
from tests.support.servers import S3Endpoint, make_bucket

pytestmark = pytest.mark.slow  # subprocesses; the whole suite runs them


def _moto_cli(tmp_path: Path, moto_s3: S3Endpoint) -> Cli:
    targets = []
    for name in ("ams", "dub"):
        bucket = f"op-{name}-{tmp_path.name[-12:].lower().replace('_', '-')}"
        make_bucket(moto_s3, bucket)
        targets.append(TargetSpec(name=name, url=f"s3://{bucket}/repo", endpoint=moto_s3))
    cli = Cli(home=tmp_path, targets=targets)
    cli.write_config()
    return cli


def _cycle(cli: Cli) -> None:
    data = sample_tree(cli.home / "data")
    cli.json("init")
    ids = []
    for number in range(3):
        (data / "contracts" / "0.txt").write_text(f"version {number}\n")
        ids.append(cli.json("backup", "files")["id"])
    # tag: JSON and text; the retention then keeps by the tag.
    tagged = cli.json("tag", ids[0], "--add", "audit")
    assert tagged == [{"id": ids[0], "tags": ["audit"], "changed": True}]
    same = cli.json("tag", ids[0], "--add", "audit")
    assert same[0]["changed"] is False
    assert "audit" in cli.ok("tag", ids[1], "--set", "audit", "--set", "q4")
    listed = {row["id"]: row["tags"] for row in cli.json("snapshots")}
    assert listed[ids[0]] == ["audit"]
    assert listed[ids[1]] == ["audit", "q4"]
    assert cli("tag", ids[0]).returncode == 2
    pruned = cli.json("prune", "--keep-last", "1", "--keep-tag", "audit", "--grace", "0")
    assert pruned["forgotten"] == []
    cli.json("tag", ids[0], "--remove", "audit")
    pruned = cli.json("prune", "--keep-last", "1", "--keep-tag", "audit", "--grace", "0")
    assert pruned["forgotten"] == [ids[0]]
    # status, key list, check subsets, all with --json and as text.
    found = cli.json("status", "--max-age", "1h")
    assert found["ok"]
    assert found["lineages"][0]["newest"] == ids[2]
    assert "files" in cli.ok("status")
    (slot,) = cli.json("key", "list")
    assert slot["in_use"] is True
    parts = [cli.json("check", "--read-data-subset", f"{n}/2") for n in (1, 2)]
    assert all(part["ok"] for part in parts)
    assert (
        sum(part["chunks_read"] for part in parts)
        == cli.json("check", "--read-data")["chunks_read"]
    )
    assert "no problems found" in cli.ok("check", "--read-data-subset", "1/2")
    assert json.loads(cli.ok("--json", "status"))["ok"]
    # backup's selection flags and dry run.
    (data / "contracts" / "0.txt").write_text("version 9\n")
    planned = cli.json("backup", "files", "--dry-run")
    assert planned["changed"] == ["data/contracts/0.txt"]
    assert "would read" in cli.ok("backup", "files", "--dry-run")
    kept = cli.json("backup", "files", "--exclude", "contracts")
    assert not any("contracts" in row["path"] for row in cli.json("ls", kept["id"]))
    # key passwd: the new key opens, the old one does not.
    key_file = cli.home / "new.key"
    key_file.write_text("7e" * 32 + "\n")
    key_file.chmod(0o600)
    cli.secrets.append("7e" * 32)
    assert "key changed" in cli.ok("key", "passwd", "--new-file", str(key_file), "--type", "raw")
    assert cli("snapshots").returncode == 1
    cli.key = "7e" * 32
    (changed,) = cli.json("key", "list")
    assert changed["in_use"] is True


def test_operator_commands_on_local_folders(tmp_path: Path) -> None:
    """Every command, text and JSON, against folder targets."""
    _cycle(local_cli(tmp_path))


def test_operator_commands_on_moto(tmp_path: Path, moto_s3: S3Endpoint) -> None:
    """The same against two buckets of the in-process S3 server."""
    _cycle(_moto_cli(tmp_path, moto_s3))
