"""``ctfy-vault demo``: the whole cycle on three local targets, and that it notices broken promises."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ctfy_vault.cli import _demo
from ctfy_vault.cli._demo import TARGET_NAMES, DemoFailedError, run_demo
from ctfy_vault.cli._main import main
from ctfy_vault.vault import RestoreReport, Vault, VerifyReport


def run(*argv: str) -> tuple[int, str]:
    """Run the command in-process; return its exit code and what it printed."""
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def stored_files(root: Path) -> dict[Path, bytes]:
    """Every file under ``root``, by path relative to it, with its bytes."""
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One in-process demo run shared by the outcome tests: its folder and its output."""
    folder = tmp_path_factory.mktemp("demo")
    code, text = run("demo", "--dir", str(folder))
    assert code == 0, text
    return folder, text


def test_demo_ends_complete(demo_run: tuple[Path, str]) -> None:
    """The demo prints every step and ends with ``demo complete``."""
    _, text = demo_run
    for step in (
        "init: repository",
        "backup 1",
        "backup 2",
        "dedup:",
        "snapshots:",
        "was refused; stored bytes unchanged",
        "forget --dry-run",
        "verify --read-data: ok",
        "byte-identical to the source",
        "a tampered copy is refused",
    ):
        assert step in text, step
    assert text.strip().endswith("demo complete")


def test_three_targets_hold_identical_objects(demo_run: tuple[Path, str]) -> None:
    """The three targets hold the same object names with the same bytes, and no plaintext."""
    folder, _ = demo_run
    contents = [stored_files(folder / name) for name in TARGET_NAMES]
    assert contents[0] == contents[1] == contents[2]
    names = contents[0]
    snapshots = [p for p in names if p.parts[0] == "snapshots"]
    assert len(snapshots) == len(_demo.DB_HISTORY_DAYS) + 2
    assert sum(1 for p in names if p.parts[0] == "keys") == 1
    assert Path("config") in names
    assert sum(1 for p in names if p.parts[0] == "packs") >= 3  # format 2: several packs
    assert any(p.parts[0] == "index" for p in names)
    assert not any(p.parts[0] == "objects" for p in names)
    assert not any(b"INSERT INTO" in data or b"contract 4711" in data for data in names.values())


def test_restored_files_equal_the_sources(demo_run: tuple[Path, str]) -> None:
    """The restore folder holds exactly the (changed) source files, byte for byte."""
    folder, _ = demo_run
    source = stored_files(folder / "source")
    assert stored_files(folder / "restored" / "source") == source
    assert b"amended" in source[Path("contracts/4711.txt")]
    assert Path("contracts/4713.txt") in source
    assert len(source[Path("db/app.sql")]) > 4 * 2**20


def test_second_backup_deduplicates(demo_run: tuple[Path, str]) -> None:
    """Backup 2 uploads a few chunks per target and finds the rest already there."""
    _, text = demo_run
    second = re.search(r"backup 2 .*\n((?:    .*\n){3})", text)
    assert second is not None, text
    lines = second.group(1).splitlines()
    assert [line.split(":")[0].strip() for line in lines] == list(TARGET_NAMES)
    for line in lines:
        found = re.search(r"(\d+) chunk\(s\) uploaded, (\d+) already there, ([\d,]+) bytes", line)
        assert found is not None, line
        uploaded, present = int(found[1]), int(found[2])
        written = int(found[3].replace(",", ""))
        assert 1 <= uploaded <= 5  # the changed contracts and the chunks around the dump's edit
        assert present > 10 * uploaded
        assert written < 100_000
    assert re.search(r"dedup: backup 2 uploaded \d+ of \d+ chunks per target", text)


def test_forget_dry_run_shows_reasons(demo_run: tuple[Path, str]) -> None:
    """The dry run keeps and forgets db snapshots by the contractify schedule, with reasons."""
    _, text = demo_run
    counts = re.search(r"db: keep (\d+), forget (\d+)", text)
    assert counts is not None, text
    keep, forget = int(counts[1]), int(counts[2])
    assert keep + forget == len(_demo.DB_HISTORY_DAYS)
    assert forget > 0
    assert 14 <= keep <= 14 + 8 + 6 + 1
    assert "daily 2026-11-24 within 14d" in text
    assert re.search(r"weekly 2026-W\d\d within 8w", text)
    assert re.search(r"monthly 2026-\d\d within 6m", text)
    assert "server-files: keep 2, forget 0" in text


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def _masked_demo(folder: Path, repository_format: int) -> list[str]:
    """The demo's lines with ids, the link's expiry and the sizes that vary masked."""
    lines: list[str] = []
    run_demo(folder, lines.append, repository_format=repository_format)
    text = "\n".join(lines).replace(str(folder), "<dir>")
    text = re.sub(r"[0-9a-f]{12,}", "<id>", text)
    text = re.sub(r"[\d,]+ bytes written|\d+\.\d% of", "<n>", text)
    return re.sub(r"valid until \d\d:\d\d:\d\d", "valid until <t>", text).splitlines()


def test_demo_output_is_reproducible(tmp_path: Path) -> None:
    """Format 1: two runs print the same counts; ids, the link's expiry and sizes may differ.

    Bytes written include the sealed manifest, which records each file's mtime and inode.
    """
    assert _masked_demo(tmp_path / "a", 1) == _masked_demo(tmp_path / "b", 1)


def test_demo_output_is_reproducible_but_for_the_keyed_cut(tmp_path: Path) -> None:
    """Format 2: two runs print the same lines but for chunk counts, which must differ in places.

    Each demo repository gets fresh master keys, and format 2 derives the chunker's cut from them,
    so the same files are cut into different chunks in each repository: that is what keeps a
    storage provider from predicting chunk sizes.
    """
    first = _masked_demo(tmp_path / "a", 2)
    second = _masked_demo(tmp_path / "b", 2)
    assert len(first) == len(second)
    assert first != second  # the counts of chunks sealed differ with the keys
    masked = [re.sub(r"\d+", "<k>", line) for line in first]
    assert masked == [re.sub(r"\d+", "<k>", line) for line in second]


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_demo_as_a_subprocess_in_a_temporary_folder() -> None:
    """``python -m ctfy_vault demo`` with no folder succeeds within a few seconds."""
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "ctfy_vault", "demo"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("demo complete")
    assert done.stderr == ""
    assert elapsed < 60  # about 3 s here; generous for a loaded CI machine


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_a_corrupted_chunk_fails_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pack altered on one target before verify makes verify report it and the demo exit 1."""
    original = Vault.verify

    def corrupt_then_verify(self: Vault, *args: Any, **kwargs: Any) -> VerifyReport:
        victim = next(
            p for p in sorted((tmp_path / "amsterdam" / "packs").rglob("*")) if p.is_file()
        )
        os.chmod(victim, 0o600)
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0x01
        victim.write_bytes(bytes(data))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Vault, "verify", corrupt_then_verify)
    code, text = run("demo", "--dir", str(tmp_path))
    assert code == 1
    assert "demo complete" not in text
    err = capsys.readouterr().err
    assert "demo failed: verify found problems: corrupt-pack on amsterdam" in err


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_a_wrong_restore_fails_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A restored file that differs from its source makes the demo exit 1, naming the file."""
    original = Vault.restore

    def restore_then_alter(self: Vault, snapshot: Any, dest: Any, **kwargs: Any) -> RestoreReport:
        report = original(self, snapshot, dest, **kwargs)
        (Path(dest) / "source" / "contracts" / "4712.txt").write_text("contract 4712, forged\n")
        return report

    monkeypatch.setattr(Vault, "restore", restore_then_alter)
    code, _ = run("demo", "--dir", str(tmp_path))
    assert code == 1
    assert "restored contracts/4712.txt differs from the source" in capsys.readouterr().err


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_an_accepted_overwrite_fails_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A target that silently accepted an overwrite of a snapshot would fail the demo."""
    from ctfy_vault.storage import Target

    original = Target.write

    def write(self: Target, key: str, data: bytes | bytearray | memoryview) -> None:
        if bytes(data) == b"a tampered manifest":
            return  # pretend the overwrite went through
        original(self, key, data)

    monkeypatch.setattr(Target, "write", write)
    with pytest.raises(DemoFailedError, match="was not refused"):
        run_demo(tmp_path, lambda _: None)
