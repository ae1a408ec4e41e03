"""``ctfy-vault export``: one tenant's documents as one archive in a destination, with a signed link."""

from __future__ import annotations

import argparse
import binascii
import json
import os
import sys
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, TextIO

from ctfy_vault.cli._options import add_target_options, count_option, target_from_args
from ctfy_vault.cli._progress import Progress, format_bytes
from ctfy_vault.exceptions import ConfigurationError
from ctfy_vault.export import ExportProgress, ExportSummary, TargetSource, export
from ctfy_vault.links import LinkSigner
from ctfy_vault.storage import Target

EXIT_OK = 0
#: The link secret for local destinations: at least 32 bytes as hex digits.
SECRET_ENV = "CTFY_VAULT_LINK_SECRET"  # noqa: S105 - the variable's name, not a secret


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``export`` subcommand on ``subparsers`` (from ``add_subparsers``).

    Returns:
        The subcommand's parser, with ``run`` set to its function.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "export",
        help="export one tenant's documents as one archive with an inventory and a signed link",
        description=(
            "Stream everything stored under the tenant's prefix at SOURCE into one archive (zip "
            "or tar.gz) written create-only under a new name in DEST, with a README and an "
            "inventory (path, size, SHA-256, modification time; JSON and CSV), record it in the "
            "tenant's export register, and print a signed link valid at most one hour. Local "
            f"destinations sign links for your download endpoint: --link-base-url and {SECRET_ENV} "
            "(hex). Credentials come from the environment, never from arguments."
        ),
    )
    parser.add_argument("source", help="documents URL (s3://, az://, file://, or a folder)")
    parser.add_argument("dest", help="destination URL for the archive and the register")
    parser.add_argument("--tenant", required=True, help="the tenant id")
    parser.add_argument(
        "--prefix",
        help="the tenant's folder at SOURCE (default: the tenant id; '' for all of SOURCE)",
    )
    parser.add_argument("--format", choices=("zip", "tar.gz"), default="zip", help="archive type")
    parser.add_argument("--store", action="store_true", help="do not compress (faster)")
    parser.add_argument("--requested-by", help="who asked for the export (for the register)")
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="the tenant exists: export an empty archive rather than fail when it holds nothing",
    )
    parser.add_argument(
        "--skip-unsafe",
        action="store_true",
        help="leave out objects with unsafe keys (listed in the inventory) instead of failing",
    )
    parser.add_argument(
        "--link-minutes",
        type=count_option("--link-minutes", minimum=1, maximum=60),
        default=60,
        help="signed link lifetime, 1-60 minutes (a link lives at most one hour)",
    )
    parser.add_argument("--link-base-url", help="download endpoint that serves local exports")
    parser.add_argument("--no-link", action="store_true", help="do not sign a link")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_target_options(parser, scope="every s3:// URL")
    parser.set_defaults(run=run)
    return parser


def _signer(args: argparse.Namespace, environ: Mapping[str, str]) -> LinkSigner | None:
    if args.link_base_url is None:
        return None
    text = environ.get(SECRET_ENV, "")
    try:
        secret = bytes.fromhex(text)
    except (ValueError, binascii.Error) as err:
        raise ConfigurationError(f"{SECRET_ENV} must hold the link secret as hex digits") from err
    if len(secret) < 32:
        raise ConfigurationError(f"{SECRET_ENV} must hold at least 32 bytes (64 hex digits)")
    return LinkSigner(secret, args.link_base_url)


def _wants_signer(url: str) -> bool:
    scheme = url.split("://", 1)[0].lower() if "://" in url else "file"
    return scheme in ("file", "memory")


def _progress(err: TextIO) -> tuple[Progress, Callable[[ExportProgress], None]]:
    bar = Progress("export", stream=err)

    def show(progress: ExportProgress) -> None:
        bar.set(progress.bytes_done, progress.files_done)

    return bar, show


def _print(summary: ExportSummary, note: str | None, as_json: bool, out: TextIO) -> None:
    if as_json:
        document = summary.to_dict()
        document["link"] = summary.link.url if summary.link else None
        out.write(json.dumps(document, ensure_ascii=False, sort_keys=True) + "\n")
        return
    out.write(
        f"export {summary.tenant}: {summary.files} files, {format_bytes(summary.bytes)} -> "
        f"{summary.key}\n"
        f"  archive  {format_bytes(summary.archive_size)}, sha256 {summary.sha256}\n"
        f"  register {summary.register_key}\n"
    )
    for skipped in summary.skipped:
        out.write(f"  skipped  {skipped.source_path!r}: {skipped.reason}\n")
    if summary.link is not None:
        out.write(f"  link (valid until {summary.link.expires_at:%Y-%m-%d %H:%M:%S} UTC):\n")
        out.write(f"  {summary.link.url}\n")
    elif note:
        out.write(f"  {note}\n")


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run ``ctfy-vault export`` with parsed ``args``; return the exit code."""
    if not 1 <= args.link_minutes <= 60:
        raise ConfigurationError("--link-minutes is 1 to 60 (a link lives at most one hour)")
    source = target_from_args(args.source, args)
    dest = target_from_args(args.dest, args)
    signer = _signer(args, os.environ)
    link = not args.no_link
    note = None
    if link and signer is None and _wants_signer(args.dest):
        link = False
        note = (
            "no link: a local destination needs --link-base-url and "
            f"{SECRET_ENV} for your download endpoint"
        )
    bar, show = _progress(sys.stderr)
    with bar:
        on_progress = show if bar.enabled and not args.json else None
        summary = _run_export(args, source, dest, link=link, signer=signer, on_progress=on_progress)
    _print(summary, note, args.json, out)
    return EXIT_OK


def _run_export(
    args: argparse.Namespace,
    source: Target,
    dest: Target,
    *,
    link: bool,
    signer: LinkSigner | None,
    on_progress: Callable[[ExportProgress], None] | None,
) -> ExportSummary:
    return export(
        TargetSource(target=source, prefix=args.prefix),
        dest,
        tenant=args.tenant,
        format=args.format,
        requested_by=args.requested_by,
        allow_empty=args.allow_empty,
        skip_unsafe=args.skip_unsafe,
        compression="store" if args.store else "deflate",
        link=link,
        signer=signer,
        link_ttl=timedelta(minutes=args.link_minutes),
        on_progress=on_progress,
    )
