"""``ctfy-vault completion SHELL``: a completion script for bash, zsh or tcsh.

The script is generated from the parser itself by ``shtab``, so it knows every command and
option as they are now, and completes without starting Python at each key press.
"""

from __future__ import annotations

import argparse
from typing import Final, TextIO

import shtab

from ctfy_vault.cli._render import ExitCode

__all__ = ["SHELLS", "completion"]

#: The shells a script can be generated for.
SHELLS: Final = ("bash", "zsh", "tcsh")


def completion(args: argparse.Namespace, out: TextIO) -> ExitCode:
    """Print the completion script for ``args.shell``."""
    from ctfy_vault.cli._parser import build_parser  # noqa: PLC0415 - the parser imports this

    out.write(shtab.complete(build_parser(), shell=args.shell))
    out.write("\n")
    return ExitCode.OK
