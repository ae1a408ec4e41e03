"""The command line fails cleanly: usage errors for bad numbers, Ctrl-C, odd files, references."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import io
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctfy_vault.cli._config import KeySource, load_config
from ctfy_vault.cli._options import MAX_DURATION, duration_option
from ctfy_vault.cli._parser import build_parser as _parser
from ctfy_vault.cli._progress import Progress
from ctfy_vault.escrow import read_identity, read_signing_key, recipient_key, verify_key
from ctfy_vault.exceptions import ConfigurationError, ObjectNotFoundError
from ctfy_vault.manifest import FileEntry, FileType
from ctfy_vault.mirror import MirrorState
from ctfy_vault.retention import Duration
from ctfy_vault.storage import Target
from ctfy_vault.vault import check_reference
from ctfy_vault.vault import find_snapshot as resolve_snapshot
from ctfy_vault.vault._restore import _write_files
from ctfy_vault.writer import COMMIT_INTERRUPTED
from tests.support.cli import LISTED, TIMEOUT, Cli, local_cli, sample_tree
from tests.support.vaults import new_vault
from tests.support.writer_strategies import NOW

# -- numeric options -----------------------------------------------------------------------------

#: Every option taking a duration, count or number: the argv before it, and its name.
NUMERIC_OPTIONS = [
    (["prune"], "--grace"),
    (["check"], "--read-data"),
    (["mirror", "src", "dst"], "--watch"),
    (["mirror", "src", "dst", "--watch", "5"], "--runs"),
    (["mirror", "src", "dst"], "--workers"),
    (["export", "src", "dst", "--tenant", "t"], "--link-minutes"),
]

BAD_VALUES = {
    "--grace": ["999999999w", "9" * 30 + "h", "1y", "2m", "-1d", "soon", "1d1d", ""],
    "--read-data": ["nan", "inf", "1e400%", "150%", "-0.5", "x"],
    "--watch": ["inf", "nan", "-1", "0", "1e400", "9" * 400, "x", ""],
    "--runs": ["0", "-3", "9" * 5000, "1.5", "x"],
    "--workers": ["0", "-1", "100000", "x"],
    "--link-minutes": ["0", "61", "99999999999999999999", "x"],
}


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse a command line the way ``ctfy-vault`` does."""
    return _parser().parse_args(argv)


@pytest.mark.parametrize(
    ("before", "option", "value"),
    [(before, option, value) for before, option in NUMERIC_OPTIONS for value in BAD_VALUES[option]],
)
def test_bad_numbers_are_usage_errors_naming_the_option(
    before: list[str], option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Overflowing, out-of-range or garbage numbers exit 2 at parsing, naming the option."""
    with pytest.raises(SystemExit) as exited:
        parse([*before, f"{option}={value}"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}:" in err
    assert "Traceback" not in err
    assert len(err.splitlines()[-1]) < 200


def test_good_numbers_parse_to_their_values() -> None:
    """Valid forms still parse: grace 0/24h/1w2d, 50% data, a short watch, workers, minutes."""
    assert parse(["prune", "--grace", "0"]).grace == timedelta(0)
    assert parse(["prune", "--grace", "1w2d3h"]).grace == timedelta(days=9, hours=3)
    assert parse(["check", "--read-data=50%"]).read_data == 0.5
    assert parse(["check", "--read-data"]).read_data is True
    assert parse(["check"]).read_data is False
    mirrored = parse(["mirror", "a", "b", "--watch", "0.01", "--runs", "2", "--workers", "3"])
    assert (mirrored.watch, mirrored.runs, mirrored.workers) == (0.01, 2, 3)
    assert parse(["export", "a", "b", "--tenant", "t", "--link-minutes", "5"]).link_minutes == 5


@settings(max_examples=150, deadline=None)
@given(option=st.sampled_from(NUMERIC_OPTIONS), text=st.text(max_size=30))
def test_any_text_is_parsed_or_a_usage_error(option: tuple[list[str], str], text: str) -> None:
    """Property: any text given to a numeric option parses or exits 2; nothing else escapes."""
    before, name = option
    code: str | int | None = 0
    try:
        parse([*before, f"{name}={text}"])
    except SystemExit as exited:
        code = exited.code
    assert code in (0, 2)


@given(
    weeks=st.integers(0, 10**12),
    days=st.integers(0, 10**12),
    hours=st.integers(0, 10**12),
)
def test_durations_parse_or_are_refused_never_overflow(weeks: int, days: int, hours: int) -> None:
    """Property: any w/d/h duration is the exact timedelta up to the maximum, else a usage error."""
    text = str(Duration(weeks=weeks, days=days, hours=hours))
    exact = (weeks * 7 + days) * 24 + hours
    if exact * 3600 > MAX_DURATION.total_seconds():
        with pytest.raises(argparse.ArgumentTypeError, match="too long"):
            duration_option("--grace")(text)
    else:
        assert duration_option("--grace")(text) == timedelta(hours=exact)


def test_a_duration_with_too_many_digits_is_a_policy_error() -> None:
    """``Duration.parse`` refuses a number Python will not convert with its own error."""
    from ctfy_vault.exceptions import PolicyError

    with pytest.raises(PolicyError, match="digits"):
        Duration.parse("9" * 5000 + "d")


# -- Ctrl-C --------------------------------------------------------------------------------------


def cli_env(cli: Cli) -> dict[str, str]:
    """The environment `Cli` runs the command with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CTFY_"))}
    env["CTFY_VAULT_CONFIG"] = str(cli.config)
    env["CTFY_TEST_KEY"] = cli.key
    return env


def big_tree(root: Path, files: int = 24, size: int = 4 * 2**20) -> Path:
    """Random files (incompressible, so every byte is sealed and written with fsync)."""
    root.mkdir(parents=True)
    for n in range(files):
        (root / f"{n:02}.bin").write_bytes(os.urandom(size))
    return root


def interrupt_when(
    cli: Cli, argv: list[str], started: Callable[[], bool]
) -> tuple[int, str, float]:
    """Run the CLI, send SIGINT once ``started()`` holds; return exit code, stderr, seconds to exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ctfy_vault", *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(cli),
        cwd=cli.home,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while not started():
            assert process.poll() is None, "the command ended before it could be interrupted"
            assert time.monotonic() < deadline, "the command never started its work"
            time.sleep(0.005)
        process.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _out, err = process.communicate(timeout=TIMEOUT)
        return process.returncode, err.decode(), time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def stored(folder: Path) -> list[Path]:
    """The files under ``folder`` (none if it does not exist)."""
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_ctrl_c_during_backup_commits_nothing_and_exits_130(tmp_path: Path) -> None:
    """SIGINT mid-backup: exit 130, one stderr line saying nothing was committed, no snapshot."""
    cli = local_cli(tmp_path)
    cli.ok("init", "--pack-size", "256KiB")  # packs land early, so the interrupt comes mid-way
    cli.ok("check")  # records the known heads: no first-run note below
    big_tree(tmp_path / "data")
    packs = tmp_path / "targets" / "ams" / "packs"
    code, err, seconds = interrupt_when(cli, ["backup", "files"], lambda: bool(stored(packs)))
    assert code == 130, err
    assert err == "ctfy-vault: interrupted; nothing was committed\n"
    assert seconds < 30  # the workers stopped: queued chunks were dropped
    for name in ("ams", "dub"):
        assert stored(tmp_path / "targets" / name / "snapshots") == []
    assert cli.json("snapshots") == []
    assert cli.json("check")["ok"]


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_ctrl_c_during_restore_exits_130_with_one_line(tmp_path: Path) -> None:
    """SIGINT mid-restore: exit 130 and one stderr line naming the incomplete destination."""
    cli = local_cli(tmp_path, names=("ams",))
    cli.ok("init")
    big_tree(tmp_path / "data", files=16)
    cli.ok("backup", "files")
    dest = tmp_path / "out"
    code, err, seconds = interrupt_when(
        cli, ["restore", "latest:files", str(dest)], lambda: bool(stored(dest))
    )
    assert code == 130, err
    assert err == f"ctfy-vault: interrupted; the restore into {dest} is incomplete\n"
    assert seconds < 30
    assert len(stored(dest)) < 16


def stopped(prefix: str) -> bool:
    """Whether every thread named ``prefix...`` ends within a few seconds (none keeps working)."""
    for thread in threading.enumerate():
        if thread.name.startswith(prefix):
            thread.join(timeout=10)
    return not [t for t in threading.enumerate() if t.name.startswith(prefix)]


def test_an_interrupted_backup_writes_no_manifest_and_stops_its_workers(tmp_path: Path) -> None:
    """Ctrl-C while chunks are written: no manifest anywhere, no note, no worker left running."""
    vault = new_vault()
    big_tree(tmp_path / "data", files=8, size=2**20)
    calls = 0

    def interrupt(nbytes: int, nfiles: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as interrupted:
        vault.backup([tmp_path / "data"], lineage="files", host="h", now=NOW, progress=interrupt)
    assert COMMIT_INTERRUPTED not in getattr(interrupted.value, "__notes__", ())
    assert stopped("ctfy-write")
    assert stopped("ctfy-seal")
    for target in vault.targets:
        assert list(target.list("snapshots")) == []
    assert vault.snapshots() == []


def test_an_interrupt_at_the_commit_point_says_the_snapshot_may_be_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C once the manifest writes started carries the note that it may be committed."""
    vault = new_vault()
    original = Target.write

    def write(target: Target, key: str, data: bytes | bytearray | memoryview) -> None:
        original(target, key, data)
        if key.startswith("snapshots/"):
            raise KeyboardInterrupt

    monkeypatch.setattr(Target, "write", write)
    (tmp_path / "a.txt").write_bytes(b"a" * 100)
    with pytest.raises(KeyboardInterrupt) as interrupted:
        vault.backup([tmp_path / "a.txt"], lineage="files", host="h", now=NOW)
    assert COMMIT_INTERRUPTED in interrupted.value.__notes__


class SlowReader:
    """A stand-in for the restore's reader: each file is 200 pieces of 1 KiB, 2 ms apart."""

    def content(self, entry: FileEntry, fallback: object) -> Iterator[bytes]:
        for _ in range(200):
            time.sleep(0.002)
            yield b"x" * 1024


def test_an_interrupted_restore_stops_the_files_being_written(tmp_path: Path) -> None:
    """Ctrl-C in the restoring thread: the files being written stop at their next piece."""
    entries = [
        FileEntry(path=f"f{n}", type=FileType.FILE, mode=0o644, mtime_ns=0, sha256=bytes(32))
        for n in range(8)
    ]
    jobs = [(entry, tmp_path / entry.path) for entry in entries]
    written = 0

    def interrupt_main_once(nbytes: int, nfiles: int) -> None:
        nonlocal written
        written += nbytes
        if written and written == nbytes:
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        _write_files(SlowReader(), jobs, [], interrupt_main_once)  # type: ignore[arg-type]
    assert stopped("ctfy-restore")
    # Four files were being written: each stopped within a few pieces, none ran to its end.
    assert written < 200 * 1024
    assert all(path.stat().st_size < 200 * 1024 for _entry, path in jobs if path.exists())


# -- FIFOs and other non-regular files -------------------------------------------------------------


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    """A named pipe nobody writes to (private, as a key file must be); released at the end."""
    path = tmp_path / "pipe"
    os.mkfifo(path, 0o600)
    yield path
    # Should a reader still wait on it (the defect), open and close the write end to free it.
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def raised_within(seconds: float, call: Callable[[], object]) -> BaseException | None:
    """Run ``call`` in a thread; fail if it is still running (blocked) after ``seconds``."""
    caught: list[BaseException | None] = [None]

    def run() -> None:
        try:
            call()
        except BaseException as err:  # noqa: BLE001 - handed to the test
            caught[0] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked on a file that is not a regular file"
    return caught[0]


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_a_fifo_as_config_file_is_refused_at_once(tmp_path: Path, fifo: Path) -> None:
    """``--config FIFO`` and ``CTFY_VAULT_CONFIG=FIFO`` exit 2 naming a FIFO, without blocking."""
    cli = local_cli(tmp_path)
    env = {**cli_env(cli), "CTFY_VAULT_CONFIG": str(fifo)}
    for argv in (["snapshots", "--config", str(fifo)], ["snapshots"]):
        done = subprocess.run(
            [sys.executable, "-m", "ctfy_vault", *argv],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr == (
            f"ctfy-vault: error: config file {fifo} is a FIFO (named pipe), not a regular file\n"
        )


def test_a_folder_as_config_file_says_so(tmp_path: Path) -> None:
    """A folder given as the config is named as a folder, not an opaque read error."""
    with pytest.raises(ConfigurationError, match="is a folder, not a regular file"):
        load_config(tmp_path)


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_a_fifo_as_key_file_is_refused_at_once(tmp_path: Path, fifo: Path) -> None:
    """``key = { file = FIFO }`` and ``key add --new-file FIFO`` exit 2 without blocking."""
    cli = local_cli(tmp_path)
    cli.ok("init")
    config = cli.config.read_text()
    cli.config.write_text(
        config.replace('{ env = "CTFY_TEST_KEY", type = "raw" }', f'{{ file = "{fifo}" }}')
    )
    done = cli("snapshots")
    assert done.returncode == 2, done.stderr
    assert (
        done.stderr
        == f"ctfy-vault: error: key file {fifo} is a FIFO (named pipe), not a regular file\n"
    )
    cli.config.write_text(config)
    added = cli("key", "add", "--new-file", str(fifo))
    assert added.returncode == 2, added.stderr
    assert "is a FIFO (named pipe), not a regular file" in added.stderr
    error = raised_within(20, lambda: KeySource(file=fifo).credential({}))
    assert isinstance(error, ConfigurationError)


def test_escrow_key_files_and_mirror_state_refuse_a_fifo(fifo: Path) -> None:
    """Escrow key files, ``.pub`` files and the mirror state are refused as FIFOs, not waited on."""
    for read in (read_identity, read_signing_key):
        error = raised_within(20, lambda read=read: read(fifo))  # type: ignore[misc]
        assert isinstance(error, ConfigurationError)
        assert "FIFO" in str(error)
    for value_reader in (recipient_key, verify_key):
        error = raised_within(20, lambda r=value_reader: r(str(fifo)))  # type: ignore[misc]
        assert isinstance(error, ConfigurationError)
        assert str(fifo) not in str(error)  # the value may be a mistyped key: never echoed
    error = raised_within(20, lambda: MirrorState.load(fifo))
    assert isinstance(error, ConfigurationError)
    assert "FIFO" in str(error)


def test_devices_are_refused_not_read_forever() -> None:
    """``/dev/zero`` as a config would never end: it is refused as a character device."""
    error = raised_within(20, lambda: load_config("/dev/zero"))
    assert isinstance(error, ConfigurationError)
    assert "is a character device, not a regular file" in str(error)


# -- snapshot references -------------------------------------------------------------------------

BAD_REFERENCES = ["latest:", ":", "", " ", "\t", " latest", "latest ", "abc def", "latest:db:x"]
BAD_REFERENCES += ["latest: db", "latest:-x", "../x", "a/b", "ab\x00", "é", "x" * 200]


@pytest.mark.parametrize("ref", BAD_REFERENCES)
def test_malformed_references_are_usage_errors_naming_them(
    ref: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``restore``/``ls`` refuse an empty or garbage reference at parsing, quoting it (exit 2)."""
    for argv in (["restore", ref, "/nonexistent/dest"], ["ls", ref]):
        with pytest.raises(SystemExit) as exited:
            parse(argv)
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert f"argument snapshot: snapshot reference {ref!r}" in err
    with pytest.raises(ConfigurationError, match="snapshot reference"):
        resolve_snapshot(LISTED, ref)


def test_latest_with_an_empty_lineage_is_not_latest() -> None:
    """``latest:`` is refused, not read as ``latest``; the good forms still resolve."""
    with pytest.raises(ConfigurationError, match="names no lineage"):
        resolve_snapshot(LISTED, "latest:")
    assert resolve_snapshot(LISTED, "latest").snapshot_id == "abc123"
    assert resolve_snapshot(LISTED, "latest:files").snapshot_id == "abd456"
    assert resolve_snapshot(LISTED, LISTED[2].name) is LISTED[2]
    assert parse(["restore", LISTED[2].name, "out"]).snapshot == LISTED[2].name


@given(st.text(max_size=20))
def test_any_reference_resolves_or_is_refused_cleanly(ref: str) -> None:
    """Property: any text resolves, or raises a usage error or "not found"; nothing else."""
    try:
        found = resolve_snapshot(LISTED, ref)
    except (ConfigurationError, ObjectNotFoundError):
        return
    assert found in LISTED
    check_reference(ref)


# -- the progress bar on a terminal --------------------------------------------------------------


def on_terminal(cli: Cli, argv: list[str]) -> bytes:
    """Run the CLI with a pseudo-terminal (80 columns) as stdout and stderr; return its bytes."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "ctfy_vault", *argv],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=cli_env(cli),
        cwd=cli.home,
    )
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer of the terminal is gone
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=TIMEOUT) == 0, b"".join(chunks)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait()
    return b"".join(chunks)


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
@pytest.mark.parametrize("command", ["backup", "restore"])
def test_the_line_after_the_bar_starts_clean_at_column_0(tmp_path: Path, command: str) -> None:
    """On a terminal: one bar on one line, then carriage return + erase-line, then the summary."""
    cli = local_cli(tmp_path, names=("ams",))
    cli.ok("init")
    cli.ok("check")  # records the known heads: no first-run note before the bar
    sample_tree(tmp_path / "data")
    if command == "backup":
        written = on_terminal(cli, ["backup", "files"])
        summary = b"snapshot "
    else:
        cli.ok("backup", "files")
        written = on_terminal(cli, ["restore", "latest:files", str(tmp_path / "out")])
        summary = b"restored snapshot "
    drawn, sep, after = written.partition(b"\r\x1b[K")
    assert sep, written
    assert drawn.startswith(f"\r{command} ".encode())  # the bar was drawn
    assert b"\n" not in drawn  # one bar, redrawn in place: never a second line
    assert b"\x1b[A" not in written  # no cursor moved up to a bar drawn below another
    assert drawn.endswith(b"\r" + b" " * 79 + b"\r")  # tqdm's own clearing of its line
    assert after.startswith(summary)
    assert b"\x1b[" not in after  # nothing drawn or erased after it
    assert after.endswith(b"\r\n")


def test_closing_a_bar_returns_to_column_0_once() -> None:
    """A drawn bar ends with carriage return and erase-line; a second close writes nothing."""
    shown = io.StringIO()
    bar = Progress("backup db", total_bytes=10, stream=shown, enabled=True, min_interval=0)
    bar(5, 1)
    bar.close()
    assert shown.getvalue().endswith("\r\x1b[K")
    size = len(shown.getvalue())
    bar.close()
    assert len(shown.getvalue()) == size
    quiet = io.StringIO()
    Progress("backup db", stream=quiet).close()
    assert quiet.getvalue() == ""
