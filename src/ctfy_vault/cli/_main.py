"""``ctfy-vault``: parse, run the command, turn what went wrong into one line and an exit code.

Every decision is made by the library; the command modules only call it and print (see
`ctfy_vault.cli._parser` for the commands, `ctfy_vault.cli._render` for the output).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import TextIO

from ctfy_vault.cli._parser import Run, parse
from ctfy_vault.cli._render import CommandInterrupted, ExitCode
from ctfy_vault.exceptions import ConfigurationError, VaultError

__all__ = ["main"]


def _log_to_stderr() -> None:
    """Show the library's warnings (a target left out, a fallback read) as ``ctfy-vault:`` lines.

    Only when nothing configured logging already (an application or a test runner embedding
    `main` keeps its own handlers).
    """
    library = logging.getLogger("ctfy_vault")
    if logging.getLogger().handlers or library.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ctfy-vault: %(levelname)s: %(message)s"))
    library.addHandler(handler)
    library.setLevel(logging.WARNING)


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
    _log_to_stderr()
    run: Run = args.run
    try:
        return run(args, stream)
    except KeyboardInterrupt as err:
        # One line, no traceback; commands that write say what the interruption left.
        detail = f"; {err}" if isinstance(err, CommandInterrupted) and str(err) else ""
        sys.stderr.write(f"ctfy-vault: interrupted{detail}\n")
        return ExitCode.INTERRUPTED
    except ConfigurationError as err:
        sys.stderr.write(f"ctfy-vault: error: {err}\n")
        return ExitCode.USAGE
    except VaultError as err:
        sys.stderr.write(f"ctfy-vault: {type(err).__name__}: {err}\n")
        return ExitCode.FAILED
    except BrokenPipeError:
        raise  # the reader went away: `run` ends quietly
    except OSError as err:  # a local file or folder (a source, the restore destination)
        sys.stderr.write(f"ctfy-vault: {type(err).__name__}: {err}\n")
        return ExitCode.FAILED
