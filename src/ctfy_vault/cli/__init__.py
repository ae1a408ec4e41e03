"""The ``ctfy-vault`` command: a thin layer over the library.

`main` runs it in-process and returns an `ExitCode`. Inside: ``_parser`` (every command and
option), ``_render`` (tables, JSON, messages, progress bars, the exit codes), and one module of
command functions per area (``_repository``, ``_backup``, ``_browse``, ``_maintenance``,
``_tools``, ``_mirror``, ``_export``, ``_escrow``), each parsing nothing and deciding nothing:
arguments in, a library call, its result printed.
"""

import os
import sys

from ctfy_vault.cli._main import main
from ctfy_vault.cli._render import ExitCode

__all__ = ["ExitCode", "main"]


def run() -> None:
    """Console-script entry point: run `main` and exit with its code.

    A reader that goes away early (``ctfy-vault snapshots | head``) ends the command quietly.
    """
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = ExitCode.FAILED
    raise SystemExit(code)
