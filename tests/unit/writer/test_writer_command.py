"""Backing up a program's output: committed only when the program exits 0.

Real programs (``sh``, ``head``, ``yes``) on local folder targets: a producer that fails, is
killed, cannot start or is abandoned leaves no manifest on any target and no process behind.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctfy_vault.crypto import RawKey
from ctfy_vault.exceptions import ConfigurationError, SourceFailedError, VaultError
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault
from ctfy_vault.writer import CommandSource, StreamSource
from ctfy_vault.writer._command import describe_exit
from tests.support.writer_strategies import FAST_RETRY, NOW, SMALL, argvs

KEY = RawKey(b"k" * 32)
LATER = NOW + timedelta(days=1)
SECRET = "hunter2-s3cr3t"


def _vault(tmp_path: Path, repository_format: int = 2) -> tuple[Vault, list[Target]]:
    """A repository on two local folder targets holding one earlier snapshot of lineage db."""
    targets = [
        Target.from_url(str(tmp_path / name), name=name, retry=FAST_RETRY)
        for name in ("ams", "dub")
    ]
    vault = Vault.init(targets, key=KEY, now=NOW, chunker=SMALL, format=repository_format)
    vault.backup(
        StreamSource(name="db.sql", stream=io.BytesIO(b"day 1\n" * 500)), lineage="db", now=NOW
    )
    return vault, targets


def _manifests(targets: list[Target]) -> dict[str, list[str]]:
    return {target.name: sorted(target.list("snapshots")) for target in targets}


def _assert_nothing_committed(
    vault: Vault, targets: list[Target], before: dict[str, list[str]]
) -> None:
    assert _manifests(targets) == before
    reopened = Vault.open(targets, key=KEY)
    assert len(reopened.snapshots("db")) == 1
    assert reopened.verify().ok


def _sh(script: str, *args: str) -> list[str]:
    return ["sh", "-c", script, "sh", *args]


# -- success -------------------------------------------------------------------------------------


def test_a_command_that_exits_0_is_committed_and_restores(tmp_path: Path) -> None:
    """A program's whole output becomes one file of the snapshot, restored byte for byte."""
    vault, _targets = _vault(tmp_path)
    expected = b"z" * 300_000
    info = vault.backup(
        CommandSource(name="dump.sql", argv=_sh("head -c 300000 /dev/zero | tr '\\0' z")),
        lineage="db",
        now=LATER,
    )
    assert all(outcome.committed for outcome in info.outcomes)
    assert info.size == len(expected)
    with vault.open_file(info, "dump.sql") as stream:
        assert stream.read() == expected
    assert vault.snapshots("db")[0].snapshot_id == info.snapshot_id
    assert info.files == 1


def test_commands_files_and_streams_share_one_snapshot(tmp_path: Path) -> None:
    """Two commands and a file in one backup, each run in turn, all stored under their names."""
    vault, _targets = _vault(tmp_path)
    (tmp_path / "app.conf").write_text("workers = 4\n")
    info = vault.backup(
        [
            CommandSource(name="a.sql", argv=["printf", "first"]),
            tmp_path / "app.conf",
            CommandSource(name="b.sql", argv=_sh("printf second")),
        ],
        lineage="db",
        now=LATER,
    )
    with vault.open_file(info, "a.sql") as stream:
        assert stream.read() == b"first"
    with vault.open_file(info, "b.sql") as stream:
        assert stream.read() == b"second"
    assert sorted(entry.path for entry in vault.ls(info)) == ["a.sql", "app.conf", "b.sql"]


def test_the_program_reads_dev_null_not_our_standard_input(tmp_path: Path) -> None:
    """A program that reads its standard input sees an empty one at once (it never waits)."""
    vault, _targets = _vault(tmp_path)
    info = vault.backup(
        CommandSource(name="cat.out", argv=_sh("cat; printf done")), lineage="db", now=LATER
    )
    with vault.open_file(info, "cat.out") as stream:
        assert stream.read() == b"done"


# -- failure commits nothing ---------------------------------------------------------------------


def test_a_non_zero_exit_after_output_commits_nothing(tmp_path: Path) -> None:
    """``printf x; exit 3``: SourceFailedError naming sh and status 3; no target gains a manifest."""
    vault, targets = _vault(tmp_path)
    before = _manifests(targets)
    with pytest.raises(SourceFailedError) as caught:
        vault.backup(
            CommandSource(name="db.sql", argv=_sh("printf x; exit 3")), lineage="db", now=LATER
        )
    assert str(caught.value) == "sh exited with status 3; nothing was committed"
    assert (caught.value.program, caught.value.returncode) == ("sh", 3)
    assert isinstance(caught.value, VaultError)
    assert isinstance(caught.value, OSError)
    _assert_nothing_committed(vault, targets, before)


@pytest.mark.parametrize("repository_format", [1, 2])
def test_a_program_killed_midway_commits_nothing(tmp_path: Path, repository_format: int) -> None:
    """Killed by SIGKILL after 200 kB: no manifest anywhere, nothing stored before is touched.

    Format 1 leaves the chunks read before the kill as unreferenced objects; format 2 drops the
    pack they were being gathered into (it is written only once full or at the commit).
    """
    vault, targets = _vault(tmp_path, repository_format)
    before = _manifests(targets)
    stored = {target.name: set(target.list("")) for target in targets}
    with pytest.raises(SourceFailedError) as caught:
        vault.backup(
            CommandSource(name="db.sql", argv=_sh("head -c 200000 /dev/urandom; kill -KILL $$")),
            lineage="db",
            now=LATER,
        )
    assert str(caught.value) == "sh was killed by SIGKILL; nothing was committed"
    assert caught.value.returncode == -signal.SIGKILL
    for target in targets:
        now_stored = set(target.list(""))
        assert stored[target.name] <= now_stored  # nothing stored before is gone
        added = now_stored - stored[target.name]
        if repository_format == 1:  # the chunks read before the kill: harmless, unreferenced
            assert added
            assert all(key.startswith("objects/") for key in added)
        else:
            assert not added
    _assert_nothing_committed(vault, targets, before)


def test_a_program_terminated_by_sigterm_commits_nothing(tmp_path: Path) -> None:
    """A program ended by SIGTERM (what an operator's kill sends) commits nothing."""
    vault, targets = _vault(tmp_path)
    before = _manifests(targets)
    with pytest.raises(SourceFailedError, match="killed by SIGTERM"):
        vault.backup(
            CommandSource(name="db.sql", argv=_sh("printf partial; kill -TERM $$")),
            lineage="db",
            now=LATER,
        )
    _assert_nothing_committed(vault, targets, before)


def test_a_program_that_cannot_start_commits_nothing(tmp_path: Path) -> None:
    """A missing program: SourceFailedError naming it, no return code, nothing committed."""
    vault, targets = _vault(tmp_path)
    before = _manifests(targets)
    missing = str(tmp_path / "no-such-pg_dump")
    with pytest.raises(SourceFailedError) as caught:
        vault.backup(
            CommandSource(name="db.sql", argv=[missing, "-d", "app"]), lineage="db", now=LATER
        )
    assert str(caught.value).startswith(f"{missing} could not be started")
    assert caught.value.returncode is None
    _assert_nothing_committed(vault, targets, before)


def test_a_failing_command_also_drops_the_files_of_the_same_backup(tmp_path: Path) -> None:
    """A snapshot is all or nothing: files backed up with a failed command are not committed."""
    vault, targets = _vault(tmp_path)
    before = _manifests(targets)
    (tmp_path / "app.conf").write_text("workers = 4\n")
    with pytest.raises(SourceFailedError):
        vault.backup(
            [tmp_path / "app.conf", CommandSource(name="db.sql", argv=_sh("exit 1"))],
            lineage="db",
            now=LATER,
        )
    _assert_nothing_committed(vault, targets, before)


def test_after_a_failed_dump_the_next_good_one_is_the_only_new_snapshot(tmp_path: Path) -> None:
    """A failed run leaves the chain as it was; the next good run chains to the earlier head."""
    vault, _targets = _vault(tmp_path)
    head = vault.snapshots("db")[0]
    with pytest.raises(SourceFailedError):
        vault.backup(
            CommandSource(name="db.sql", argv=_sh("printf day; exit 2")), lineage="db", now=LATER
        )
    info = vault.backup(
        CommandSource(name="db.sql", argv=["printf", "day 2"]), lineage="db", now=LATER
    )
    assert [s.snapshot_id for s in vault.snapshots("db")] == [info.snapshot_id, head.snapshot_id]
    assert info.previous == head.hash
    assert vault.verify(read_data=True).ok


# -- the program never outlives the backup -------------------------------------------------------


def _gone(pid: int) -> bool:
    """Whether no process (not even a zombie awaiting its parent) has this pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_failing_backup_kills_and_reaps_the_program(tmp_path: Path) -> None:
    """An interruption while the program still runs kills it and reaps it: no zombie, no orphan."""
    vault, targets = _vault(tmp_path)
    before = _manifests(targets)
    pidfile = tmp_path / "pid"
    read = 0

    def interrupt(done: int, _files: int) -> None:
        nonlocal read
        read += done
        if read > 100_000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        vault.backup(
            CommandSource(
                name="y.txt",
                argv=_sh('echo $$ > "$1"; head -c 300000 /dev/zero; exec sleep 60', str(pidfile)),
            ),
            lineage="db",
            now=LATER,
            progress=interrupt,
        )
    pid = int(pidfile.read_text())
    assert _gone(pid)
    _assert_nothing_committed(vault, targets, before)


def test_a_program_closing_its_output_early_is_waited_for(tmp_path: Path) -> None:
    """The exit status counts, not the end of output: closing stdout then failing commits nothing."""
    vault, targets = _vault(tmp_path)
    before = _manifests(targets)
    with pytest.raises(SourceFailedError, match="status 4"):
        vault.backup(
            CommandSource(name="db.sql", argv=_sh("printf x; exec >&-; sleep 0.3; exit 4")),
            lineage="db",
            now=LATER,
        )
    _assert_nothing_committed(vault, targets, before)


# -- nothing secret is shown ---------------------------------------------------------------------


def test_arguments_and_environment_are_never_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Errors, reprs and logs name argv[0] only; the program's own stderr reaches ours unchanged."""
    vault, _targets = _vault(tmp_path)
    source = CommandSource(
        name="db.sql",
        argv=_sh("echo 'pg_dump: connection failed' >&2; exit 1", f"postgresql://u:{SECRET}@h/db"),
        env={"PATH": os.environ["PATH"], "PGPASSWORD": SECRET},
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceFailedError) as caught:
        vault.backup(source, lineage="db", now=LATER)
    shown = [str(caught.value), repr(caught.value), repr(source), caplog.text]
    assert all(SECRET not in text for text in shown)
    assert repr(source) == "CommandSource(name='db.sql', argv=('sh', ...), mode=384, mtime_ns=None)"
    assert "pg_dump: connection failed" in capfd.readouterr().err


def test_the_environment_given_is_the_programs_whole_environment(tmp_path: Path) -> None:
    """``env`` replaces this process's environment for the program (as in subprocess)."""
    vault, _targets = _vault(tmp_path)
    info = vault.backup(
        CommandSource(
            name="env.txt",
            argv=["/bin/sh", "-c", 'printf "%s|%s" "$ONLY" "$HOME"'],
            env={"ONLY": "me"},
        ),
        lineage="db",
        now=LATER,
    )
    with vault.open_file(info, "env.txt") as stream:
        assert stream.read() == b"me|"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ("pg_dump -d app", "not one string"),
        ([], "needs a program"),
        ([""], "needs a program"),
        (["pg_dump", "a\x00b"], "without NUL"),
        (["pg_dump", 3], "without NUL"),
    ],
)
def test_a_bad_command_is_refused_at_construction(argv: object, message: str) -> None:
    """A shell string, an empty list or a non-string argument: ConfigurationError at once."""
    with pytest.raises(ConfigurationError, match=message):
        CommandSource(name="db.sql", argv=argv)  # type: ignore[arg-type]


@given(argvs())
def test_argv_is_kept_and_its_repr_shows_the_program_only(argv: list[str]) -> None:
    """Any argument list is kept as given; the repr shows argv[0] and hides every other word."""
    source = CommandSource(name="db.sql", argv=argv)
    assert source.argv == tuple(argv)
    assert source.program == argv[0]
    shown = f"({argv[0]!r}, ...)" if len(argv) > 1 else repr((argv[0],))
    assert repr(source) == f"CommandSource(name='db.sql', argv={shown}, mode=384, mtime_ns=None)"


@given(st.integers(min_value=0, max_value=255))
def test_an_exit_status_is_described_as_a_status(code: int) -> None:
    """A non-negative return code reads ``exited with status N``."""
    assert describe_exit(code) == f"exited with status {code}"


@given(st.sampled_from(sorted(signal.valid_signals())))
def test_a_negative_return_code_names_the_signal(number: signal.Signals | int) -> None:
    """``-N`` reads ``was killed by SIGNAME`` (or ``signal N`` for one without a name)."""
    text = describe_exit(-int(number))
    try:
        name = signal.Signals(int(number)).name
    except ValueError:
        name = f"signal {int(number)}"
    assert text == f"was killed by {name}"


# -- a stream with a completion check ------------------------------------------------------------


def test_a_stream_check_returning_false_commits_nothing(tmp_path: Path) -> None:
    """A completion check answering False: SourceFailedError naming the stream, nothing committed."""
    vault, targets = _vault(tmp_path)
    before = _manifests(targets)
    with pytest.raises(SourceFailedError, match=r"stream db\.sql: its completion check failed"):
        vault.backup(
            StreamSource(name="db.sql", stream=io.BytesIO(b"half"), check=lambda: False),
            lineage="db",
            now=LATER,
        )
    _assert_nothing_committed(vault, targets, before)


def test_a_stream_check_that_raises_propagates_and_commits_nothing(tmp_path: Path) -> None:
    """The check's own exception reaches the caller unchanged; nothing is committed."""
    vault, targets = _vault(tmp_path)
    before = _manifests(targets)

    def incomplete() -> bool:
        raise RuntimeError("the dump has no trailer")

    with pytest.raises(RuntimeError, match="no trailer"):
        vault.backup(
            StreamSource(name="db.sql", stream=io.BytesIO(b"half"), check=incomplete),
            lineage="db",
            now=LATER,
        )
    _assert_nothing_committed(vault, targets, before)


def test_a_stream_check_runs_after_the_end_and_may_accept(tmp_path: Path) -> None:
    """The check runs once, after the stream's end was read; True or None commits the snapshot."""
    vault, _targets = _vault(tmp_path)
    data = b"complete dump\n" * 1000
    for answer in (True, None):
        stream = io.BytesIO(data)
        seen: list[int] = []

        def check(
            stream: io.BytesIO = stream, seen: list[int] = seen, answer: bool | None = answer
        ) -> bool | None:
            seen.append(stream.tell())
            return answer

        info = vault.backup(
            StreamSource(name="db.sql", stream=stream, check=check), lineage="db", now=LATER
        )
        assert seen == [len(data)]
        assert info.size == len(data)


def test_a_pipe_with_a_check_on_the_exit_status_commits_nothing_on_failure(tmp_path: Path) -> None:
    """Popen's pipe plus ``check=lambda: process.wait() == 0``: a failing producer commits nothing."""
    vault, targets = _vault(tmp_path)
    before = _manifests(targets)
    with subprocess.Popen(_sh("printf partial; exit 1"), stdout=subprocess.PIPE) as process:
        assert process.stdout is not None
        with pytest.raises(SourceFailedError):
            vault.backup(
                StreamSource(
                    name="db.sql", stream=process.stdout, check=lambda: process.wait() == 0
                ),
                lineage="db",
                now=LATER,
            )
    _assert_nothing_committed(vault, targets, before)


def test_a_failed_command_never_takes_long_to_report(tmp_path: Path) -> None:
    """The failure is reported as soon as the program exits (no polling delay)."""
    vault, _targets = _vault(tmp_path)
    started = time.monotonic()
    with pytest.raises(SourceFailedError):
        vault.backup(CommandSource(name="db.sql", argv=_sh("exit 9")), lineage="db", now=LATER)
    assert time.monotonic() - started < 5


def test_source_failed_error_keeps_its_fields_through_pickling() -> None:
    """The program and return code survive pickle (for process pools), with the same text."""
    err = SourceFailedError(
        "pg_dump exited with status 1; nothing was committed", program="pg_dump", returncode=1
    )
    copy = pickle.loads(pickle.dumps(err))  # noqa: S301 - round-tripping our own object
    assert type(copy) is SourceFailedError
    assert (copy.program, copy.returncode, str(copy)) == ("pg_dump", 1, str(err))
