"""The ``ctfy-vault`` command: demo, probe, help and errors."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ctfy_vault import __version__
from ctfy_vault.cli import main


def run(*argv: str) -> tuple[int, str]:
    """Run the command in-process; return its exit code and what it printed."""
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_probe_json_for_a_local_folder(tmp_path: Path) -> None:
    """``probe --json`` reports a local folder's capabilities as JSON."""
    code, text = run("probe", str(tmp_path), "--json")
    assert code == 0
    report = json.loads(text)
    assert report["backend"] == "local"
    assert report["atomic_create"] is True
    assert report["target"] == f"file://{tmp_path}"


def test_probe_without_url_uses_a_temporary_folder() -> None:
    """``probe`` with no URL probes a fresh temporary folder as a table."""
    code, text = run("probe")
    assert code == 0
    assert "atomic create-only  yes" in text
    assert "versioning          no" in text
    assert "object lock         no" in text


def test_probe_bad_url_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad URL exits with 2 and one clear line on stderr, no traceback."""
    code, _ = run("probe", "ftp://example/x")
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown scheme 'ftp'" in err
    assert "Traceback" not in err


def test_probe_refuses_secrets_as_options(capsys: pytest.CaptureFixture[str]) -> None:
    """Secrets passed with --option are refused, and the value is not echoed."""
    code, _ = run("probe", "s3://bucket", "--option", "secret=hunter2hunter2")
    assert code == 2
    err = capsys.readouterr().err
    assert "use the environment" in err
    assert "hunter2hunter2" not in err


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_probe_unreachable_endpoint_fails_cleanly(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unreachable endpoint exits with 1 naming the error class and the target."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-access")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    code, _ = run(
        "probe", "s3://bucket", "--endpoint-url", "http://127.0.0.1:9", "--region", "default"
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "TargetUnreachableError" in err
    assert "127.0.0.1:9" in err


def test_help_lists_every_command() -> None:
    """``--help`` names every command, via the installed console script."""
    out = subprocess.run(
        [sys.executable, "-m", "ctfy_vault", "--help"], capture_output=True, text=True, check=True
    )
    for command in (
        "probe",
        "demo",
        "mirror",
        "export",
        "escrow",
        "init",
        "backup",
        "snapshots",
        "ls",
        "restore",
        "forget",
        "prune",
        "check",
        "heal",
        "key",
        "lock",
    ):
        assert re.search(rf"\b{command}\b", out.stdout), command


def test_version() -> None:
    """``--version`` prints the package version."""
    out = subprocess.run(
        [sys.executable, "-m", "ctfy_vault", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert __version__ in out.stdout


def test_probe_without_credentials_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With no credentials anywhere, probe says so instead of failing obscurely."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code, _ = run("probe", "s3://bucket", "--endpoint-url", "http://127.0.0.1:9")
    assert code == 1
    assert "no credentials found" in capsys.readouterr().err
