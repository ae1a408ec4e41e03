"""`RunMetrics`: the text format written for node exporter, parsed back by the library's parser."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from ctfy_vault.exceptions import ConfigurationError, StorageError
from ctfy_vault.metrics import RunMetrics


def samples(path: Path) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a metrics file, by name and labels."""
    found = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            found[sample.name, frozenset(sample.labels.items())] = sample.value
    return found


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """One sample's value."""
    return found[name, frozenset(labels.items())]


class Clock:
    """A clock the test moves."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def test_a_successful_run_writes_its_duration_success_and_counts(tmp_path: Path) -> None:
    """Durations from the clock, bytes and objects summed, a failed target stays down."""
    clock = Clock(1_000.0)
    run = RunMetrics("backup", lineage="db", clock=clock)
    run.add_bytes("uploaded", 100, target="ams")
    run.add_bytes("uploaded", 50, target="ams")
    run.add_objects("chunks_uploaded", 3, target="dub")
    run.target("ams", up=True)
    run.target("dub", up=False)
    run.target("dub", up=True)
    clock.now = 1_042.5
    run.finish(succeeded=True)
    path = tmp_path / "ctfy-backup-db.prom"
    run.write_textfile(path)
    found = samples(path)
    base = {"operation": "backup", "lineage": "db"}
    assert value(found, "ctfy_vault_run_success", **base) == 1
    assert value(found, "ctfy_vault_run_duration_seconds", **base) == 42.5
    assert value(found, "ctfy_vault_run_timestamp_seconds", **base) == 1_042.5
    assert value(found, "ctfy_vault_last_success_timestamp_seconds", **base) == 1_042.5
    assert value(found, "ctfy_vault_bytes", **base, what="uploaded", target="ams") == 150
    assert value(found, "ctfy_vault_objects", **base, what="chunks_uploaded", target="dub") == 3
    assert value(found, "ctfy_vault_target_up", **base, target="ams") == 1
    assert value(found, "ctfy_vault_target_up", **base, target="dub") == 0


def test_a_failed_run_keeps_the_last_success_of_the_file_it_replaces(tmp_path: Path) -> None:
    """Alerting on the last success works when runs fail, not only when they stop."""
    path = tmp_path / "job.prom"
    good = RunMetrics("prune", clock=Clock(500.0))
    good.finish(succeeded=True)
    good.write_textfile(path)
    bad = RunMetrics("prune", clock=Clock(900.0))
    bad.finish(succeeded=False)
    bad.write_textfile(path)
    found = samples(path)
    base = {"operation": "prune", "lineage": ""}
    assert value(found, "ctfy_vault_run_success", **base) == 0
    assert value(found, "ctfy_vault_run_timestamp_seconds", **base) == 900
    assert value(found, "ctfy_vault_last_success_timestamp_seconds", **base) == 500


def test_a_failed_first_run_has_no_last_success_and_junk_is_replaced(tmp_path: Path) -> None:
    """Nothing to carry over: the series is absent (``absent()`` alerts on it)."""
    path = tmp_path / "job.prom"
    path.write_text("this is not the text format {{{\n")
    run = RunMetrics("check")
    run.finish(succeeded=False)
    run.write_textfile(path)
    names = {name for name, _labels in samples(path)}
    assert "ctfy_vault_run_success" in names
    assert "ctfy_vault_last_success_timestamp_seconds" not in names


def test_metrics_of_an_unfinished_run_are_refused(tmp_path: Path) -> None:
    """Half a run's metrics would read as a run that took no time."""
    run = RunMetrics("backup")
    with pytest.raises(ConfigurationError, match="finish"):
        run.write_textfile(tmp_path / "x.prom")
    assert not (tmp_path / "x.prom").exists()


@pytest.mark.parametrize("url", ["ftp://host:9091", "host:9091", "http://"])
def test_a_pushgateway_url_must_be_http_with_a_host(url: str) -> None:
    """Refused before any connection."""
    run = RunMetrics("backup")
    run.finish(succeeded=True)
    with pytest.raises(ConfigurationError, match="Pushgateway URL"):
        run.push(url)


def test_an_unreachable_pushgateway_is_named_by_host_never_by_password() -> None:
    """The user and password of the URL stay out of the message."""
    run = RunMetrics("backup")
    run.finish(succeeded=True)
    with pytest.raises(StorageError) as caught:
        run.push("http://ops:s3cret-pw@127.0.0.1:9/", timeout=2)
    assert "127.0.0.1:9" in str(caught.value)
    assert "s3cret-pw" not in str(caught.value)
    assert "ops" not in str(caught.value)


label_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)


def shown(text: str) -> str:
    r"""How a label value reads back: control characters but the newline as ``\xNN``."""
    return "".join(
        f"\\x{ord(c):02x}" if (ord(c) < 0x20 and c != "\n") or ord(c) == 0x7F else c for c in text
    )


@given(lineage=label_text, target=label_text, amount=st.integers(0, 2**53))
def test_any_label_text_round_trips_through_the_format(
    tmp_path_factory: pytest.TempPathFactory, lineage: str, target: str, amount: int
) -> None:
    r"""Quotes, backslashes, newlines and any Unicode in labels survive.

    Control characters (which the format cannot carry raw) read back as ``\xNN``.
    """
    path = tmp_path_factory.mktemp("m") / "x.prom"
    run = RunMetrics("backup", lineage=lineage)
    run.add_bytes("read", amount, target=target)
    run.finish(succeeded=True)
    run.write_textfile(path)
    found = samples(path)
    key = {
        "operation": "backup",
        "lineage": shown(lineage),
        "what": "read",
        "target": shown(target),
    }
    assert value(found, "ctfy_vault_bytes", **key) == amount
