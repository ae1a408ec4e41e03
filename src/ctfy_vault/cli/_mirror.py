"""``ctfy-vault mirror``: copy a documents bucket to replicas, never deleting, once or on an interval."""

from __future__ import annotations

import argparse
from typing import TextIO

from ctfy_vault.cli._metrics import mirror_run, record_mirror
from ctfy_vault.cli._options import target_from_args
from ctfy_vault.cli._render import ExitCode, dump_line
from ctfy_vault.exceptions import ConfigurationError
from ctfy_vault.mirror import MirrorReport, mirror, watch

__all__ = ["run"]


def _print(report: MirrorReport, as_json: bool, out: TextIO) -> None:
    if as_json:
        dump_line(report.to_dict(), out)
        return
    summary = report.to_dict()
    out.write(
        f"mirror {report.source} -> {', '.join(report.replicas)}: listed {report.listed}, "
        f"copied {summary['copied']}, updated {summary['updated']}, restored "
        f"{summary['restored']}, unchanged {report.unchanged}, failed {summary['failed']} "
        f"({report.bytes_copied} bytes, {report.seconds:.1f} s)\n"
    )
    for outcome in report.outcomes:
        line = f"  {outcome.action:<8} {outcome.key} -> {outcome.replica}"
        if outcome.previous:
            line += f" (previous version kept: {outcome.previous})"
        if outcome.error:
            line += f": {outcome.error}"
        out.write(line + "\n")
    for key in report.deleted_at_source:
        out.write(f"  deleted at source, kept on replicas: {key}\n")
    out.flush()


def run(args: argparse.Namespace, out: TextIO) -> ExitCode:
    """Run ``ctfy-vault mirror`` with parsed ``args``; return the exit code (1 if a copy failed)."""
    if args.runs is not None and args.watch is None:
        raise ConfigurationError("--runs only makes sense with --watch")
    source = target_from_args(args.source, args)
    replicas = [target_from_args(url, args) for url in args.replicas]
    if args.watch is None:
        report = mirror(source, replicas, state=args.state, workers=args.workers)
        record_mirror(args, report)
        _print(report, args.json, out)
        return ExitCode.OK if report.ok else ExitCode.FAILED
    failed = False

    def show(report: MirrorReport) -> None:
        nonlocal failed
        failed = failed or not report.ok
        mirror_run(args, report)
        _print(report, args.json, out)

    try:
        watch(
            source,
            replicas,
            interval=args.watch,
            state=args.state,
            runs=args.runs,
            on_report=show,
            workers=args.workers,
        )
    except KeyboardInterrupt:
        out.write("mirror: stopped\n")
    args.metrics = None  # each run's metrics were written as it ended
    return ExitCode.FAILED if failed else ExitCode.OK
