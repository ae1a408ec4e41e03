"""``ctfy-vault mirror``: copy a documents bucket to replicas, never deleting, once or on an interval."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from ctfy_vault.cli._options import (
    add_target_options,
    count_option,
    seconds_option,
    target_from_args,
)
from ctfy_vault.exceptions import ConfigurationError
from ctfy_vault.mirror import MirrorReport, mirror, watch

EXIT_OK = 0
EXIT_FAILED = 1
#: The longest ``--watch`` interval: 31 days (longer sleeps gain nothing and may not be representable).
_MAX_INTERVAL = 31 * 86400.0
#: Each worker is a thread with its own connections.
_MAX_WORKERS = 256


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``mirror`` subcommand on ``subparsers`` (from ``add_subparsers``).

    Returns:
        The subcommand's parser, with ``run`` set to its function.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "mirror",
        help="copy new and changed objects from a bucket to replicas, never deleting",
        description=(
            "Copy every object that is new or changed at SOURCE to each REPLICA. Nothing on a "
            "replica is ever deleted; when an object changed, the replica keeps the previous "
            "version (bucket versioning, or the .ctfy-versions/ folder). Objects deleted at the "
            "source are listed, not removed. Credentials come from the environment "
            "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AZURE_STORAGE_CONNECTION_STRING, ...)."
        ),
    )
    parser.add_argument("source", help="source URL (s3://, az://, file://, or a folder)")
    parser.add_argument("replicas", nargs="+", metavar="replica", help="replica URL(s)")
    parser.add_argument(
        "--state", metavar="FILE", help="JSON state file: makes runs incremental across restarts"
    )
    parser.add_argument(
        "--watch",
        type=seconds_option("--watch", maximum=_MAX_INTERVAL),
        metavar="SECONDS",
        help="run again every SECONDS (continuous synchronisation) until interrupted",
    )
    parser.add_argument(
        "--runs",
        type=count_option("--runs", minimum=1, maximum=2**31),
        metavar="N",
        help="with --watch, stop after N runs",
    )
    parser.add_argument(
        "--workers",
        type=count_option("--workers", minimum=1, maximum=_MAX_WORKERS),
        default=16,
        help=f"objects copied concurrently (1 to {_MAX_WORKERS})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON report per run")
    add_target_options(parser, scope="every s3:// URL")
    parser.set_defaults(run=run)
    return parser


def _print(report: MirrorReport, as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(json.dumps(report.to_dict(), sort_keys=True) + "\n")
        out.flush()
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


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run ``ctfy-vault mirror`` with parsed ``args``; return the exit code (1 if a copy failed)."""
    if args.runs is not None and args.watch is None:
        raise ConfigurationError("--runs only makes sense with --watch")
    source = target_from_args(args.source, args)
    replicas = [target_from_args(url, args) for url in args.replicas]
    if args.watch is None:
        report = mirror(source, replicas, state=args.state, workers=args.workers)
        _print(report, args.json, out)
        return EXIT_OK if report.ok else EXIT_FAILED
    failed = False

    def show(report: MirrorReport) -> None:
        nonlocal failed
        failed = failed or not report.ok
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
    return EXIT_FAILED if failed else EXIT_OK
