"""``ctfy-vault``: argument parsing and output only; every decision is made by the library."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from ctfy_vault._version import __version__
from ctfy_vault.cli._demo import DemoFailedError, run_demo
from ctfy_vault.cli._escrow import add_parser as _add_escrow
from ctfy_vault.cli._export import add_parser as _add_export
from ctfy_vault.cli._mirror import add_parser as _add_mirror
from ctfy_vault.cli._options import add_target_options, target_from_args
from ctfy_vault.cli._vault_commands import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    CommandInterrupted,
    add_parsers,
    split_command,
)
from ctfy_vault.exceptions import ConfigurationError, VaultError
from ctfy_vault.storage import Target

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_PARTIAL", "EXIT_USAGE", "main"]

_EPILOG = """\
exit codes: 0 success; 1 the operation failed (or check found a problem); 2 bad usage or
configuration; 3 partial: some target failed while others succeeded (run heal when it is back);
130 interrupted (Ctrl-C).
The repository commands read ctfy-vault.toml (--config PATH, or $CTFY_VAULT_CONFIG); see docs/cli.md.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ctfy-vault",
        description="Multi-cloud, retained, append-only, encrypted backups.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_parsers(commands)

    probe = commands.add_parser(
        "probe",
        help="show what a storage target can do (create-only, versioning, object lock, links)",
        description=(
            "Probe a storage target: writes one small object under .ctfy-probe/ twice (the second "
            "create-only write must be refused), deletes it where allowed, and reads versioning and "
            "Object Lock settings. Credentials come from the environment (AWS_ACCESS_KEY_ID, "
            "AWS_SECRET_ACCESS_KEY, AZURE_STORAGE_CONNECTION_STRING, ...), never from arguments."
        ),
    )
    probe.add_argument(
        "url",
        nargs="?",
        help="target URL (file://, s3://, az://, abfs://, memory://); default: a temporary folder",
    )
    probe.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_target_options(probe)
    probe.set_defaults(run=_probe)

    demo = commands.add_parser(
        "demo",
        help="run a complete cycle on local folders with no configuration",
        description=(
            "Create an encrypted repository on three local folder targets, stream in back-dated "
            "database dumps, back up sample data twice (the second run uploads only what "
            "changed), list snapshots, show that an overwrite is refused, print the retention dry "
            "run with reasons, verify every chunk on every target, restore and byte-compare, and "
            "hand out a signed link that a tampered copy cannot use. Exits 1 if a promise fails."
        ),
    )
    demo.add_argument("--dir", type=Path, help="folder to work in (default: a new temporary one)")
    demo.set_defaults(run=_demo)
    _add_mirror(commands)
    _add_export(commands)
    _add_escrow(commands)
    return parser


def _probe(args: argparse.Namespace, out: TextIO) -> int:
    if args.url is None:
        with tempfile.TemporaryDirectory(prefix="ctfy-probe-") as folder:
            return _print_probe(target_from_args(folder, args), args.json, out)
    return _print_probe(target_from_args(args.url, args), args.json, out)


def _print_probe(target: Target, as_json: bool, out: TextIO) -> int:
    caps = target.probe()
    if as_json:
        json.dump({"target": target.name, **caps.to_dict()}, out, indent=2, sort_keys=True)
        out.write("\n")
    else:
        out.write(f"target              {target.name}\n{caps.describe()}\n")
    return EXIT_OK


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    if args.dir is not None:
        return _run_demo(args.dir, out)
    with tempfile.TemporaryDirectory(prefix="ctfy-demo-") as folder:
        return _run_demo(Path(folder), out)


def _run_demo(folder: Path, out: TextIO) -> int:
    try:
        run_demo(folder, lambda text: out.write(text + "\n"))
    except DemoFailedError as err:
        sys.stderr.write(f"ctfy-vault: demo failed: {err}\n")
        return EXIT_FAILED
    return EXIT_OK


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
    """Run ``ctfy-vault`` with ``argv`` (default: the process arguments); return the exit code."""
    stream = out or sys.stdout
    words, command = split_command(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(words)
    if command is not None:
        args.producer = command  # `backup --stdin-from-command -- CMD ARGS...`
    _log_to_stderr()
    run: Callable[[argparse.Namespace, TextIO], int] = args.run
    try:
        return run(args, stream)
    except KeyboardInterrupt as err:
        # One line, no traceback; commands that write say what the interruption left.
        detail = f"; {err}" if isinstance(err, CommandInterrupted) and str(err) else ""
        sys.stderr.write(f"ctfy-vault: interrupted{detail}\n")
        return EXIT_INTERRUPTED
    except ConfigurationError as err:
        sys.stderr.write(f"ctfy-vault: error: {err}\n")
        return EXIT_USAGE
    except VaultError as err:
        sys.stderr.write(f"ctfy-vault: {type(err).__name__}: {err}\n")
        return EXIT_FAILED
    except BrokenPipeError:
        raise  # the reader went away: `run` ends quietly
    except OSError as err:  # a local file or folder (a source, the restore destination)
        sys.stderr.write(f"ctfy-vault: {type(err).__name__}: {err}\n")
        return EXIT_FAILED
