"""``ctfy-vault``: parse, run the command, turn what went wrong into one line and an exit code.

Every decision is made by the library; the command modules only call it and print (see
`ctfy_vault.cli._parser` for the commands, `ctfy_vault.cli._render` for the output).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TextIO

from ctfy_vault.cli import _metrics as metrics
from ctfy_vault.cli._parser import Run, parse
from ctfy_vault.cli._render import (
    CommandInterrupted,
    ExitCode,
    configure_messages,
    json_message,
    messages_as_json,
    say,
)
from ctfy_vault.exceptions import ConfigurationError, VaultError

__all__ = ["main"]


class JsonLines(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``.

    The library's messages never carry a secret; neither does anything this adds.
    """

    def format(self, record: logging.LogRecord) -> str:
        return json_message(record.levelname.lower(), record.getMessage(), record.name)


def _log_to_stderr(log_format: str = "text", *, verbose: bool = False) -> None:
    """Show the library's warnings (a target left out, a fallback read) on standard error.

    As ``ctfy-vault:`` lines, or as JSON lines (`JsonLines`) with ``--log-format json``; with
    ``verbose`` (``--verbose``) the informational messages too. Only
    when nothing configured logging already (an application or a test runner embedding
    `main` keeps its own handlers).
    """
    library = logging.getLogger("ctfy_vault")
    if logging.getLogger().handlers or library.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("ctfy-vault: %(levelname)s: %(message)s"))
    library.addHandler(handler)
    library.setLevel(logging.INFO if verbose else logging.WARNING)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run ``ctfy-vault`` with ``argv`` (default: the process arguments); return the exit code.

    Args:
        argv: the words after the program name.
        out: where results go (standard output by default); messages go to standard error.

    Returns:
        An `ExitCode` (an `int`).
    """
    stream = out or sys.stdout
    args = parse(sys.argv[1:] if argv is None else argv)
    log_format = getattr(args, "log_format", "text")
    configure_messages(
        json_lines=log_format == "json",
        quiet=getattr(args, "quiet", False),
        progress=not getattr(args, "no_progress", False),
    )
    _log_to_stderr(log_format, verbose=getattr(args, "verbose", False))
    args.metrics = metrics.start(args)
    code: int = ExitCode.FAILED
    try:
        code = _run(args, stream)
    finally:
        metrics.finish(args, args.metrics, code)
    return code


def _run(args: argparse.Namespace, stream: TextIO) -> int:
    """Run the parsed command; turn what went wrong into one line and an exit code."""
    run: Run = args.run
    try:
        return run(args, stream)
    except KeyboardInterrupt as err:
        # One line, no traceback; commands that write say what the interruption left.
        detail = f"; {err}" if isinstance(err, CommandInterrupted) and str(err) else ""
        _line("interrupted", f"interrupted{detail}")
        return ExitCode.INTERRUPTED
    except ConfigurationError as err:
        say("error", str(err))
        return ExitCode.USAGE
    except VaultError as err:
        _line("error", f"{type(err).__name__}: {err}")
        return ExitCode.FAILED
    except BrokenPipeError:
        raise  # the reader went away: `run` ends quietly
    except OSError as err:  # a local file or folder (a source, the restore destination)
        _line("error", f"{type(err).__name__}: {err}")
        return ExitCode.FAILED


def _line(level: str, text: str) -> None:
    """``ctfy-vault: TEXT`` (no level word), or the JSON line of ``level``."""
    if messages_as_json():
        sys.stderr.write(json_message(level if level != "interrupted" else "error", text) + "\n")
    else:
        sys.stderr.write(f"ctfy-vault: {text}\n")
