"""The commands that need no config: ``probe`` (what a target can do) and ``demo``."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import TextIO

from ctfy_vault.cli._demo import DemoFailedError, run_demo
from ctfy_vault.cli._options import target_from_args
from ctfy_vault.cli._render import ExitCode, dump, write_error
from ctfy_vault.storage import Target

__all__ = ["demo", "probe"]


def probe(args: argparse.Namespace, out: TextIO) -> ExitCode:
    """``probe [URL]``: the target's capabilities (default: a new temporary folder)."""
    if args.url is None:
        with tempfile.TemporaryDirectory(prefix="ctfy-probe-") as folder:
            return _print_probe(target_from_args(folder, args), args.json, out)
    return _print_probe(target_from_args(args.url, args), args.json, out)


def _print_probe(target: Target, as_json: bool, out: TextIO) -> ExitCode:
    caps = target.probe()
    if as_json:
        dump({"target": target.name, **caps.to_dict()}, out)
    else:
        out.write(f"target              {target.name}\n{caps.describe()}\n")
    return ExitCode.OK


def demo(args: argparse.Namespace, out: TextIO) -> ExitCode:
    """``demo [--dir DIR]``: the whole cycle on local folders (default: a new temporary one)."""
    if args.dir is not None:
        return _run_demo(args.dir, out)
    with tempfile.TemporaryDirectory(prefix="ctfy-demo-") as folder:
        return _run_demo(Path(folder), out)


def _run_demo(folder: Path, out: TextIO) -> ExitCode:
    try:
        run_demo(folder, lambda text: out.write(text + "\n"))
    except DemoFailedError as err:
        write_error("demo failed", err)
        return ExitCode.FAILED
    return ExitCode.OK
