"""The ``ctfy-vault`` command: a thin layer over the library."""

import os
import sys

from ctfy_vault.cli._main import main

__all__ = ["main"]


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
        code = 1
    raise SystemExit(code)
