"""A program's standard output as a backup source, committed only when the program succeeds.

A shell pipe (``pg_dump app | ctfy-vault backup db --stdin``) hides the producer's failure: the
reader sees an ordinary end of input whether ``pg_dump`` finished or died half way, and without
``set -o pipefail`` the pipe's status is the reader's. Running the producer here instead lets the
backup wait for its exit status after the end of its output and before anything is committed.

The program is run without a shell, from an argument list; its standard input is ``/dev/null`` and
its standard error is this process's, so its messages reach the user as they would from a pipe and
are never captured, logged or put into an exception. Errors name ``argv[0]`` only: the other
arguments and the environment may hold a password (a connection URI, ``PGPASSWORD``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from typing import IO

import attrs

from ctfy_vault.exceptions import ConfigurationError, SourceFailedError

__all__ = ["CommandSource", "describe_exit", "running"]


def _to_argv(value: Sequence[str | os.PathLike[str]]) -> tuple[str, ...]:
    if isinstance(value, (str, bytes, os.PathLike)):
        raise ConfigurationError(
            "a command is a list of arguments, not one string (it is run without a shell)"
        )
    argv: list[str] = []
    for arg in value:
        text: object = os.fspath(arg) if isinstance(arg, os.PathLike) else arg
        if not isinstance(text, str) or "\x00" in text:
            raise ConfigurationError("command arguments must be strings without NUL characters")
        argv.append(text)
    if not argv or not argv[0]:
        raise ConfigurationError("a command needs a program to run")
    return tuple(argv)


def _show_program(argv: tuple[str, ...]) -> str:
    # The arguments may hold a password (a connection URI): only the program is shown.
    return f"({argv[0]!r}, ...)" if len(argv) > 1 else repr(argv)


@attrs.frozen(kw_only=True)
class CommandSource:
    """A program's standard output backed up as one file, committed only if the program exits 0.

    The writer starts the program when it reaches this source, chunks its standard output as it
    comes (memory stays bounded as for any stream), then waits for it to exit. If it exits
    non-zero, is killed by a signal, or cannot be started, the backup raises
    `ctfy_vault.exceptions.SourceFailedError` before any manifest is written, so no target
    commits a snapshot (chunks already stored stay as unreferenced data, as after a crash). If
    the backup itself fails or is interrupted while the program runs, the program is killed and
    reaped.

    Attributes:
        name: the path recorded in the manifest (relative POSIX path, e.g. ``db/app.sql``).
        argv: the program and its arguments, run without a shell (``["pg_dump", "-d", "app"]``);
            a program without a ``/`` is looked up on ``PATH``. Only ``argv[0]`` is ever shown.
        env: the program's whole environment; ``None`` (default) passes this process's on. Never
            shown.
        mode: the permission bits recorded.
        mtime_ns: the modification time recorded; ``None`` records the backup's ``now``.
    """

    name: str
    argv: tuple[str, ...] = attrs.field(converter=_to_argv, repr=_show_program)
    env: Mapping[str, str] | None = attrs.field(default=None, repr=False)
    mode: int = 0o600
    mtime_ns: int | None = None

    @property
    def program(self) -> str:
        """The program run (``argv[0]``), the only part of the command errors name."""
        return self.argv[0]


def describe_exit(returncode: int) -> str:
    """Say how a process ended from its return code: ``exited with status 3``, ``killed by SIGKILL``."""
    if returncode >= 0:
        return f"exited with status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"was killed by {name}"


@attrs.define
class _Running:
    """A started producer: read `stdout` to its end, then call `finish`."""

    source: CommandSource
    process: subprocess.Popen[bytes]
    stdout: IO[bytes]

    def finish(self) -> None:
        """Wait for the program to exit after its output ended.

        Raises:
            SourceFailedError: it exited non-zero or was killed by a signal.
        """
        code = self.process.wait()
        if code != 0:
            raise SourceFailedError(
                f"{self.source.program} {describe_exit(code)}; nothing was committed",
                program=self.source.program,
                returncode=code,
            )


@contextlib.contextmanager
def running(source: CommandSource) -> Iterator[_Running]:
    """Start a command source's program; on leaving, kill it if it still runs, and reap it.

    Args:
        source: the command.

    Yields:
        The running program, its standard output on a pipe.

    Raises:
        SourceFailedError: the program could not be started (not found, not executable).
    """
    try:
        process = subprocess.Popen(  # noqa: S603 - an argument list run without a shell, on purpose
            list(source.argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            env=None if source.env is None else dict(source.env),
            close_fds=True,
        )
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise SourceFailedError(
            f"{source.program} could not be started ({reason}); nothing was committed",
            program=source.program,
        ) from err  # the original names argv[0] only
    if process.stdout is None:  # pragma: no cover - Popen(stdout=PIPE) always sets it
        raise RuntimeError("no pipe from the producer")
    try:
        yield _Running(source, process, process.stdout)
    finally:
        # Reached with the program still running only when the backup failed or was interrupted:
        # the output is abandoned, so the program must not outlive the backup.
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        process.stdout.close()
        process.wait()
