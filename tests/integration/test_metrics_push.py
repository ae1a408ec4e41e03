"""Metrics pushed to a real Prometheus Pushgateway, read back from its /metrics page."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ctfy_vault.metrics import RunMetrics
from tests.support.cli import local_cli, sample_tree

PROGRAM = "prometheus-pushgateway"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Pushgateway on a free loopback port (the Debian package ``prometheus-pushgateway``)."""
    program = shutil.which(PROGRAM) or (
        f"/usr/bin/{PROGRAM}" if Path(f"/usr/bin/{PROGRAM}").exists() else None
    )
    if program is None:
        pytest.fail(f"{PROGRAM} is not installed (apt-get install {PROGRAM})")
    port = _free_port()
    log = tmp_path_factory.mktemp("pushgateway") / "log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [program, f"--web.listen-address=127.0.0.1:{port}"], stdout=sink, stderr=sink
        )
    url = f"http://127.0.0.1:{port}"
    try:
        for _attempt in range(100):
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1):  # noqa: S310 - loopback
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"the Pushgateway did not start: {log.read_text()[-2000:]}")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def scraped(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """What Prometheus would scrape from the Pushgateway, by name and labels."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as page:  # noqa: S310 - loopback
        text = page.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def ours(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """The value of our series with these labels (the gateway adds job and instance)."""
    for (sample, labelled), value in found.items():
        if sample == name and set(labels.items()) <= labelled:
            return value
    raise AssertionError(f"{name} {labels} not scraped")


def test_a_push_is_scraped_and_a_failed_run_keeps_the_last_success(pushgateway: str) -> None:
    """Grouped by operation and lineage; a failure replaces all but the last success."""
    good = RunMetrics("backup", lineage="db", clock=lambda: 1_000.0)
    good.add_bytes("uploaded", 123, target="ams")
    good.finish(succeeded=True)
    good.push(pushgateway)
    found = scraped(pushgateway)
    base = {"operation": "backup", "lineage": "db", "job": "ctfy_vault"}
    assert ours(found, "ctfy_vault_run_success", **base) == 1
    assert ours(found, "ctfy_vault_bytes", **base, what="uploaded", target="ams") == 123
    bad = RunMetrics("backup", lineage="db", clock=lambda: 2_000.0)
    bad.finish(succeeded=False)
    bad.push(pushgateway)
    found = scraped(pushgateway)
    assert ours(found, "ctfy_vault_run_success", **base) == 0
    assert ours(found, "ctfy_vault_run_timestamp_seconds", **base) == 2_000
    assert ours(found, "ctfy_vault_last_success_timestamp_seconds", **base) == 1_000
    other = RunMetrics("prune", clock=lambda: 3_000.0)
    other.finish(succeeded=True)
    other.push(pushgateway)
    found = scraped(pushgateway)
    assert ours(found, "ctfy_vault_run_success", **base) == 0  # its own group, untouched
    assert ours(found, "ctfy_vault_run_success", operation="prune") == 1


@pytest.mark.slow  # subprocesses; the whole suite runs it
def test_the_command_line_pushes_a_backup_and_writes_a_textfile(
    pushgateway: str, tmp_path: Path
) -> None:
    """``backup --metrics-push --metrics-file``: both hold the same run."""
    cli = local_cli(tmp_path)
    sample_tree(cli.home / "data")
    cli.json("init")
    path = tmp_path / "ctfy-backup-files.prom"
    cli.json("backup", "files", "--metrics-push", pushgateway, "--metrics-file", str(path))
    found = scraped(pushgateway)
    base = {"operation": "backup", "lineage": "files"}
    assert ours(found, "ctfy_vault_run_success", **base) == 1
    for target in ("ams", "dub"):
        assert ours(found, "ctfy_vault_target_up", **base, target=target) == 1
        assert ours(found, "ctfy_vault_bytes", **base, what="uploaded", target=target) > 0
    text = path.read_text()
    assert 'ctfy_vault_run_success{lineage="files",operation="backup"} 1.0' in text
