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


def test_demo_runs_a_complete_cycle(tmp_path: Path) -> None:
    """``demo`` backs up twice to two targets, dedups, refuses overwrites, verifies and signs."""
    code, text = run("demo", "--dir", str(tmp_path))
    assert code == 0, text
    second = re.search(r"backup 2: .*\n((?:    .*\n){2})", text)
    assert second is not None, text
    for line in second.group(1).splitlines():
        uploaded, present = map(
            int, re.findall(r"(\d+) chunk\(s\) uploaded, (\d+) already", line)[0]
        )
        assert present > 0  # unchanged data was not uploaded again
        assert uploaded <= 1  # only the edited contract
    assert "was refused; stored bytes unchanged" in text
    counts = re.search(r"(\d+) nightly snapshots:\n\s+keep (\d+), forget (\d+)", text)
    assert counts is not None, text
    total, keep, forget = map(int, counts.groups())
    assert keep + forget == total
    assert 14 <= keep <= 14 + 8 + 6 + 2  # at most one slot per window period, overlapping
    assert "both targets hold the same objects" in text
    assert "a tampered copy is refused" in text
    assert text.strip().endswith("demo complete")
    amsterdam = sorted(
        p.relative_to(tmp_path / "amsterdam")
        for p in (tmp_path / "amsterdam").rglob("*")
        if p.is_file()
    )
    ireland = sorted(
        p.relative_to(tmp_path / "ireland")
        for p in (tmp_path / "ireland").rglob("*")
        if p.is_file()
    )
    assert amsterdam == ireland
    assert sum(1 for p in amsterdam if p.parts[0] == "snapshots") == 2
    assert sum(1 for p in amsterdam if p.parts[0] == "keys") == 1
    assert not any(b"INSERT INTO" in (tmp_path / "amsterdam" / p).read_bytes() for p in amsterdam)


def test_demo_in_a_temporary_folder_cleans_up() -> None:
    """``demo`` with no folder works in a temporary one and succeeds."""
    code, text = run("demo")
    assert code == 0
    assert "demo complete" in text


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
    for command in ("probe", "demo", "mirror"):
        assert command in out.stdout


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
