"""``copy``: snapshots of another repository (described by its own config) into this one.

The source's targets and key come from its config file (``--from-config``), the destination's from
``--config`` as for every repository command. Run again after an interruption, it copies only
what is missing. Each copied snapshot is recorded as its lineage's known head.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TextIO

from ctfy_vault.cli._config import load_config
from ctfy_vault.cli._context import load, now, open_vault
from ctfy_vault.cli._heads import heads_path, read_heads, write_heads
from ctfy_vault.cli._progress import format_bytes
from ctfy_vault.cli._render import (
    CommandInterrupted,
    ExitCode,
    backup_dict,
    dump,
    exit_code_for_partial,
    outcome_dict,
    progress,
    report_failed_targets,
    snapshot_dict,
    write_error,
)
from ctfy_vault.exceptions import ConfigurationError, TargetsFailedError
from ctfy_vault.vault import CopyReport, KnownHeads, Vault

__all__ = ["copy"]

_RESUME = "run copy again: it copies only what is missing"


def copy(args: argparse.Namespace, out: TextIO) -> ExitCode:
    """``copy``: the chosen snapshots of the ``--from-config`` repository that this one lacks."""
    config = load(args)
    source_path = Path(args.from_config).expanduser()
    if source_path.resolve() == config.path.resolve():
        raise ConfigurationError(
            f"--from-config names the destination's own config ({config.path}); give the config "
            "of the repository to copy from"
        )
    source_config = load_config(source_path)
    source = Vault.open(
        source_config.build_targets(os.environ),
        key=source_config.key.credential(os.environ),
    )
    _config, vault = open_vault(args, config)
    path = heads_path(config, vault.repo_id, args.known_heads, os.environ)
    known = read_heads(path, vault.repo_id)
    bar = progress("copy")
    try:
        with bar:
            report = vault.copy(
                source,
                snapshots=args.snapshot or None,
                lineages=args.lineage or None,
                now=now(),
                progress=bar,
            )
    except TargetsFailedError as err:
        return report_failed_targets(f"copy ({_RESUME})", err)
    except KeyboardInterrupt:
        raise CommandInterrupted(_RESUME) from None
    code = _record_heads(path, known, vault, report)
    if args.json:
        dump(_copy_dict(report), out)
    else:
        _print_copy(report, out)
    if report.ok:
        return code
    for outcome in report.outcomes:
        if not outcome.committed:
            error = outcome.error
            reason = "not committed" if error is None else f"{type(error).__name__}: {error}"
            write_error("copy", f"{outcome.target}: FAILED: {reason}")
    partial = exit_code_for_partial({o.target: o.error for o in report.outcomes})
    return max(code, partial)


def _record_heads(
    path: Path | None, known: KnownHeads | None, vault: Vault, report: CopyReport
) -> ExitCode:
    """Record each copied snapshot as its lineage's known head (as a backup does)."""
    if path is None or not report.copied:
        return ExitCode.OK
    heads = known if known is not None else KnownHeads(repo_id=vault.repo_id)
    for info in report.copied:
        heads = heads.advance(info.head)
    return ExitCode.OK if write_heads(path, heads, "copy") else ExitCode.FAILED


def _copy_dict(report: CopyReport) -> dict[str, object]:
    return {
        "source": report.source_repo_id,
        "copied": [backup_dict(info) for info in report.copied],
        "skipped": [snapshot_dict(info) for info in report.skipped],
        "bytes_read": report.bytes_read,
        "bytes_written": report.bytes_written,
        "targets": [outcome_dict(o) for o in report.outcomes],
    }


def _print_copy(report: CopyReport, out: TextIO) -> None:
    out.write(
        f"copied {len(report.copied)} snapshot(s) from repository "
        f"{report.source_repo_id.hex()}; {len(report.skipped)} already here\n"
    )
    for info in report.copied:
        out.write(
            f"  {info.lineage} {info.snapshot_id} ({info.name}): {info.files} entries, "
            f"{format_bytes(info.size)}\n"
        )
    out.write(
        f"  read {format_bytes(report.bytes_read)} (contents already here are not read), "
        f"wrote {format_bytes(report.bytes_written)}\n"
    )
    for outcome in report.outcomes:
        if not outcome.committed:
            out.write(f"  {outcome.target}: FAILED (see the error below)\n")
            continue
        out.write(
            f"  {outcome.target}: {outcome.chunks_uploaded} chunk(s) uploaded "
            f"({format_bytes(outcome.bytes_uploaded)}), {outcome.chunks_present} already there\n"
        )
