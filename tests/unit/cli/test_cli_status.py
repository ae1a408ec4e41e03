"""``ctfy-vault status``, ``--metrics-file`` and ``--log-format json`` in a subprocess."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.cli import local_cli, sample_tree

pytestmark = pytest.mark.slow  # subprocesses; the whole suite runs them


def test_status_reports_ages_and_max_age_decides_the_exit_code(tmp_path: Path) -> None:
    """Fresh: exit 0; an age over --max-age: exit 1; a lagging target: exit 3; text and JSON."""
    cli = local_cli(tmp_path)
    sample_tree(cli.home / "data")
    cli.json("init")
    first = cli.json("backup", "files")
    found = cli.json("status", "--max-age", "26h")
    (files,) = found["lineages"]
    assert files["lineage"] == "files"
    assert files["newest"] == first["id"]
    assert 0 <= files["age_seconds"] < 600
    assert files["lagging"] == []
    assert found["ok"]
    assert found["stale"] == []
    shown = cli.ok("status", "--max-age", "26h")
    assert "files" in shown
    assert "none stale" in shown
    # --max-age 0: every snapshot is older than that.
    stale = cli("status", "--max-age", "0", "--json")
    assert stale.returncode == 1
    assert json.loads(stale.stdout)["stale"] == ["files"]
    # The newest snapshot missing on one target: it lags (exit 3), heal fixes it.
    (cli.home / "data" / "contracts" / "0.txt").write_text("changed\n")
    second = cli.json("backup", "files")
    manifests = list((tmp_path / "targets" / "dub" / "snapshots").glob(f"*{second['id']}"))
    assert len(manifests) == 1
    manifests[0].unlink()
    lagging = cli("status", "--json")
    assert lagging.returncode == 3
    assert json.loads(lagging.stdout)["lineages"][0]["lagging"] == ["dub"]
    cli.ok("heal")
    assert cli("status").returncode == 0


def test_status_of_an_unknown_lineage_is_a_usage_error(tmp_path: Path) -> None:
    """Exit 2, naming the lineage."""
    cli = local_cli(tmp_path)
    sample_tree(cli.home / "data")
    cli.json("init")
    cli.json("backup", "files")
    done = cli("status", "nope")
    assert done.returncode == 2
    assert "'nope'" in done.stderr


def test_check_and_prune_write_their_metrics(tmp_path: Path) -> None:
    """A textfile per job, readable by the library's parser; a failed check says success 0."""
    cli = local_cli(tmp_path)
    sample_tree(cli.home / "data")
    cli.json("init")
    cli.json("backup", "files")
    check_file = tmp_path / "check.prom"
    cli.json("check", "--metrics-file", str(check_file))
    prune_file = tmp_path / "prune.prom"
    cli.json("prune", "--grace", "0", "--metrics-file", str(prune_file))

    def read(path: Path) -> dict[str, float]:
        text = path.read_text()
        return {
            sample.name + str(sorted(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    checked = read(check_file)
    assert checked["ctfy_vault_run_success[('lineage', ''), ('operation', 'check')]"] == 1
    pruned = read(prune_file)
    assert pruned["ctfy_vault_run_success[('lineage', ''), ('operation', 'prune')]"] == 1
    shutil.rmtree(tmp_path / "targets" / "dub" / "snapshots")
    failed = cli("check", "--metrics-file", str(check_file))
    assert failed.returncode != 0
    again = read(check_file)
    assert again["ctfy_vault_run_success[('lineage', ''), ('operation', 'check')]"] == 0
    last = "ctfy_vault_last_success_timestamp_seconds[('lineage', ''), ('operation', 'check')]"
    assert again[last] == checked[last]


def test_log_format_json_writes_every_message_as_a_json_line(tmp_path: Path) -> None:
    """Warnings and the final error, one JSON object per line, no secret."""
    cli = local_cli(tmp_path)
    sample_tree(cli.home / "data")
    cli.json("init")
    cli.json("backup", "files")
    shutil.rmtree(tmp_path / "targets" / "dub")
    done = cli("--log-format", "json", "backup", "files")
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines
    for line in lines:
        record = json.loads(line)
        assert set(record) == {"time", "level", "logger", "message"}
        assert record["level"] in ("warning", "error", "note", "info")
    assert any("dub" in json.loads(line)["message"] for line in lines)
    text = cli("backup", "files")
    assert text.stderr.startswith("ctfy-vault: ")
