"""What every command prints and returns: the exit codes, tables, JSON, messages and progress bars.

Commands print their results to ``out`` (standard output) as a table or, with ``--json``, as JSON;
warnings and errors go to standard error as ``ctfy-vault: ...`` lines. `ExitCode` is the one list
of exit codes; ``docs/cli.md`` explains each.
"""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TextIO

from ctfy_vault.cli._progress import Progress
from ctfy_vault.exceptions import TargetsFailedError
from ctfy_vault.vault import BackupInfo, SnapshotInfo
from ctfy_vault.writer import TargetOutcome

__all__ = [
    "CommandInterrupted",
    "ExitCode",
    "backup_dict",
    "dump",
    "dump_line",
    "exit_code_for_partial",
    "outcome_dict",
    "progress",
    "report_failed_targets",
    "snapshot_dict",
    "table",
    "utc_time",
    "warn",
    "write_error",
]


class ExitCode(enum.IntEnum):
    """The exit codes of ``ctfy-vault`` (the console script exits with the value)."""

    #: Success (``check``: no error found; ``heal``: nothing left unfixed).
    OK = 0
    #: The operation failed, or ``check`` found a problem, or ``heal`` left one unfixed.
    FAILED = 1
    #: Bad usage or configuration (argparse's own code for a bad command line).
    USAGE = 2
    #: Some target failed while others succeeded: run ``heal`` once it is back.
    PARTIAL = 3
    #: Ctrl-C: 128 + SIGINT, as shells report a command the signal ended.
    INTERRUPTED = 130


class CommandInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a command; the text says what it left behind (``nothing was committed``)."""


class _Messages:
    """How messages on standard error look, and which are shown (the global options)."""

    json = False
    quiet = False
    progress = True


def configure_messages(*, json_lines: bool, quiet: bool, progress: bool) -> None:
    """Set how messages look (``--log-format json``) and which are shown (``--quiet``).

    Quiet drops the notes and the progress bar; results, warnings and errors stay.
    ``progress=False`` (``--no-progress``) never draws a bar.
    """
    _Messages.json = json_lines
    _Messages.quiet = quiet
    _Messages.progress = progress and not quiet


def messages_as_json() -> bool:
    """Whether messages on standard error are JSON lines."""
    return _Messages.json


def json_message(level: str, message: str, logger: str = "ctfy_vault.cli") -> str:
    """One message as a JSON line: ``time`` (UTC), ``level``, ``logger``, ``message``."""
    moment = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    fields = {"time": moment, "level": level, "logger": logger, "message": message}
    return json.dumps(fields, ensure_ascii=False)


def say(level: str, text: str) -> None:
    """Write a message on standard error: ``ctfy-vault: LEVEL: TEXT`` or its JSON line.

    ``level`` is the word the line shows (``warning``, ``note``, ``error``, a command's name);
    in JSON, a command's name becomes level ``error``.
    """
    if level == "note" and _Messages.quiet:
        return
    if _Messages.json:
        known = level if level in ("warning", "note", "error", "info") else "error"
        message = text if known == level else f"{level}: {text}"
        sys.stderr.write(json_message(known, message) + "\n")
    else:
        sys.stderr.write(f"ctfy-vault: {level}: {text}\n")


def warn(text: str) -> None:
    """Print ``ctfy-vault: warning: TEXT`` on standard error."""
    say("warning", text)


def write_error(what: str, text: object) -> None:
    """Print ``ctfy-vault: WHAT: TEXT`` on standard error (``what`` names the command)."""
    say(what, str(text))


def utc_time(moment: datetime) -> str:
    """A moment as tables show it: UTC, to the second (``2026-11-26 22:11:59``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def dump(value: object, out: TextIO) -> None:
    """Print ``value`` as indented JSON with sorted keys (times in ISO 8601, bytes as hex)."""
    json.dump(value, out, indent=2, sort_keys=True, default=_json_default)
    out.write("\n")


def dump_line(value: object, out: TextIO, *, ensure_ascii: bool = True) -> None:
    """Print ``value`` as one line of JSON with sorted keys, and flush (one document per run)."""
    out.write(json.dumps(value, ensure_ascii=ensure_ascii, sort_keys=True) + "\n")
    out.flush()


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    raise TypeError(f"cannot encode {type(value).__name__}")


def table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    """Print rows as left-aligned columns (the last column unpadded)."""
    if not rows:
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        out.write("  ".join([*cells, row[-1]]).rstrip() + "\n")


def snapshot_dict(info: SnapshotInfo) -> dict[str, object]:
    """A snapshot as ``snapshots --json`` and ``backup --json`` print it."""
    return {
        "name": info.name,
        "id": info.snapshot_id,
        "lineage": info.lineage,
        "created": info.created,
        "host": info.host,
        "tags": list(info.tags),
        "files": info.files,
        "size": info.size,
    }


def outcome_dict(outcome: TargetOutcome) -> dict[str, object]:
    """One target's outcome of a backup or copy, as ``--json`` prints it."""
    return {
        "target": outcome.target,
        "committed": outcome.committed,
        "chunks_uploaded": outcome.chunks_uploaded,
        "chunks_present": outcome.chunks_present,
        "bytes_uploaded": outcome.bytes_uploaded,
        "error": outcome.error,
    }


def backup_dict(info: BackupInfo) -> dict[str, object]:
    """A snapshot a backup (or a copy) wrote, with each target's outcome, as ``--json`` prints it."""
    return {
        **snapshot_dict(info),
        "bytes_read": info.bytes_read,
        "chunks_sealed": info.chunks_sealed,
        "warnings": [{"path": w.path, "reason": w.reason} for w in info.warnings],
        "targets": [outcome_dict(o) for o in info.outcomes],
        "unlockable": list(info.unlockable),
    }


def exit_code_for_partial(outcomes: Mapping[str, BaseException | None]) -> ExitCode:
    """Return `ExitCode.PARTIAL` when some target succeeded and another failed, else ``FAILED``.

    Args:
        outcomes: per target, ``None`` when it succeeded or the error that stopped it (as in
            `TargetsFailedError.outcomes`).
    """
    succeeded = any(err is None for err in outcomes.values())
    failed = any(err is not None for err in outcomes.values())
    return ExitCode.PARTIAL if succeeded and failed else ExitCode.FAILED


def report_failed_targets(what: str, err: TargetsFailedError) -> ExitCode:
    """Print each target's outcome of a failed multi-target operation; return the exit code."""
    code = exit_code_for_partial(err.outcomes)
    lines = [str(err)]
    for name, error in err.outcomes.items():
        state = "ok" if error is None else f"FAILED: {type(error).__name__}: {error}"
        lines.append(f"  {name}: {state}")
    if code == ExitCode.PARTIAL:
        lines.append("  run `ctfy-vault heal` once the failed targets are back")
    say(what, "\n".join(lines))
    return code


def progress(
    label: str, totals: Callable[[], tuple[int | None, int | None]] | None = None
) -> Progress:
    """A progress bar to hand to the library as its ``(bytes, files)`` callback.

    Args:
        label: what is being done (``backup db``).
        totals: measures the bytes and files expected; called only when the bar is drawn (on a
            terminal), since measuring may walk a whole tree.

    Returns:
        The bar; use it as a context manager so it is cleared before the summary is printed.
    """
    bar = Progress(label, enabled=None if _Messages.progress else False)
    if bar.enabled and totals is not None:
        bar.set_totals(*totals())
    return bar
