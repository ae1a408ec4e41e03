"""``ctfy-vault export``: one tenant's documents as one archive in a destination, with a signed link."""

from __future__ import annotations

import argparse
import binascii
import os
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TextIO

from ctfy_vault.cli._options import target_from_args
from ctfy_vault.cli._progress import format_bytes
from ctfy_vault.cli._render import ExitCode, dump_line, progress
from ctfy_vault.exceptions import ConfigurationError
from ctfy_vault.export import ExportProgress, ExportSummary, TargetSource, export
from ctfy_vault.links import LinkSigner
from ctfy_vault.storage import Target

__all__ = ["SECRET_ENV", "run"]

#: The link secret for local destinations: at least 32 bytes as hex digits.
SECRET_ENV = "CTFY_VAULT_LINK_SECRET"  # noqa: S105 - the variable's name, not a secret


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


def _print(summary: ExportSummary, note: str | None, as_json: bool, out: TextIO) -> None:
    if as_json:
        document = summary.to_dict()
        document["link"] = summary.link.url if summary.link else None
        dump_line(document, out, ensure_ascii=False)
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


def run(args: argparse.Namespace, out: TextIO) -> ExitCode:
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
    bar = progress("export")

    def show(done: ExportProgress) -> None:
        bar.set(done.bytes_done, done.files_done)

    with bar:
        on_progress = show if bar.enabled and not args.json else None
        summary = _run_export(args, source, dest, link=link, signer=signer, on_progress=on_progress)
    _print(summary, note, args.json, out)
    return ExitCode.OK


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
