"""``backup``: each lineage's sources, PATHS, standard input or a command's output as one snapshot.

The usage errors (``--stdin`` without ``--name``, PATHS with a command, an unknown lineage) are
raised before any target is contacted. Each new snapshot is recorded as its lineage's known head.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final, TextIO

from ctfy_vault.cli._config import Config
from ctfy_vault.cli._context import load, now, open_vault
from ctfy_vault.cli._heads import heads_path, note_first_run, read_heads, write_heads
from ctfy_vault.cli._metrics import record_backup
from ctfy_vault.cli._progress import format_bytes
from ctfy_vault.cli._render import (
    CommandInterrupted,
    ExitCode,
    backup_dict,
    dump,
    progress,
    report_failed_targets,
    warn,
    write_error,
)
from ctfy_vault.exceptions import (
    ConfigurationError,
    RollbackError,
    SourceFailedError,
    TargetsFailedError,
)
from ctfy_vault.vault import BackupInfo, KnownHeads, Vault
from ctfy_vault.writer import COMMIT_INTERRUPTED, CommandSource, StreamSource

__all__ = ["backup"]

_PIPE_WARNING: Final = (
    "backing up standard input: a shell pipe hides a failure of the program writing into it "
    "(without `set -o pipefail` its truncated output looks complete and is committed); use "
    "`backup LINEAGE --stdin-from-command -- CMD ARGS...`, which commits only when CMD exits 0"
)


def backup(args: argparse.Namespace, out: TextIO) -> ExitCode:
    """``backup``: one snapshot per lineage planned; the worst exit code of them."""
    config = load(args)
    plan = _backup_plan(args, config)
    _config, vault = open_vault(args, config)
    path = heads_path(config, vault.repo_id, args.known_heads, os.environ)
    known = read_heads(path, vault.repo_id)
    if path is not None and known is None:
        note_first_run(path)
    results: list[dict[str, object]] = []
    worst = ExitCode.OK
    for name, sources in plan:
        try:
            code, info = _backup_one(
                args,
                config=config,
                vault=vault,
                lineage=name,
                sources=sources,
                known=known,
                out=out,
            )
        except KeyboardInterrupt as err:
            raise _backup_interrupted(err, name, results) from None
        worst = max(worst, code)
        if info is None:
            continue
        record_backup(args, info)
        results.append(backup_dict(info))
        if path is not None:
            recorded = known if known is not None else KnownHeads(repo_id=vault.repo_id)
            known = recorded.advance(info.head)
            if not write_heads(path, known, f"backup {name}"):
                worst = max(worst, ExitCode.FAILED)
    if args.json and not args.dry_run:  # a dry run printed its own report
        dump(results if args.lineage is None else (results[0] if results else None), out)
    return worst


def _check_stream_options(args: argparse.Namespace) -> None:
    """Refuse ``--stdin`` and ``--stdin-from-command`` combinations that cannot be meant."""
    if args.stdin and args.stdin_from_command:
        raise ConfigurationError("backup takes --stdin or --stdin-from-command, not both")
    if args.stdin_from_command:
        if not args.producer:
            raise ConfigurationError(
                "backup --stdin-from-command needs the command after --: "
                "backup LINEAGE --stdin-from-command [--name NAME] -- CMD ARGS..."
            )
        if args.lineage is None:
            raise ConfigurationError("backup --stdin-from-command needs a LINEAGE")
        if args.paths:
            raise ConfigurationError(
                "backup --stdin-from-command takes no PATHS; give the command after --"
            )
    elif args.stdin:
        if args.lineage is None or args.name is None:
            raise ConfigurationError("backup --stdin needs a LINEAGE and --name NAME")
        if args.paths:
            raise ConfigurationError("backup --stdin takes no PATHS")
    elif args.name is not None:
        raise ConfigurationError("--name only goes with --stdin or --stdin-from-command")


def _lines_of(path: Path, what: str) -> list[str]:
    """The lines of a ``--exclude-file`` or ``--files-from`` file: blank ones and ``#`` comments out."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigurationError(f"{what} {path} cannot be read ({type(err).__name__})") from None
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _selection(args: argparse.Namespace, full_paths: bool) -> dict[str, Any]:
    """``exclude``, ``one_file_system`` and ``full_paths`` for `Vault.backup`."""
    patterns = list(args.exclude)
    for path in args.exclude_file:
        patterns.extend(_lines_of(path, "--exclude-file"))
    return {
        "exclude": patterns,
        "one_file_system": args.one_file_system,
        "full_paths": args.full_paths or full_paths,
    }


def _backup_plan(args: argparse.Namespace, config: Config) -> list[tuple[str, list[str]]]:
    """Each lineage to back up with its sources; usage errors before any target is contacted."""
    _check_stream_options(args)
    streamed = args.stdin or args.stdin_from_command
    listed = [line for path in args.files_from for line in _lines_of(path, "--files-from")]
    if listed:
        if args.lineage is None:
            raise ConfigurationError("backup --files-from needs a LINEAGE")
        if streamed:
            raise ConfigurationError(
                "--files-from does not go with --stdin or --stdin-from-command"
            )
        args.paths = [*args.paths, *listed]
    if args.dry_run and streamed:
        raise ConfigurationError("--dry-run reads no stream and runs no command: give PATHS")
    if args.lineage is None:
        plan = [(name, list(lin.sources)) for name, lin in config.lineages.items() if lin.sources]
        if not plan:
            raise ConfigurationError(f"no lineage in {config.path} has sources; name one")
    else:
        lineage = config.lineage(args.lineage)
        sources = list(args.paths) or list(lineage.sources)
        if not sources and not streamed:
            raise ConfigurationError(
                f"lineage {args.lineage} has no sources in {config.path}; give PATHS, --stdin "
                "or --stdin-from-command"
            )
        plan = [(args.lineage, sources)]
    return plan


def _stdin_is_a_pipe() -> bool:
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _given_sources(
    args: argparse.Namespace, sources: list[str]
) -> list[str | StreamSource | CommandSource]:
    """The paths, or standard input, or the producer command, as the vault's sources."""
    if args.stdin:
        if _stdin_is_a_pipe():
            warn(_PIPE_WARNING)
        return [StreamSource(name=args.name, stream=sys.stdin.buffer)]
    if args.stdin_from_command:
        name = args.name or os.path.basename(args.producer[0])
        return [CommandSource(name=name, argv=args.producer)]
    return list(sources)


def _measure(paths: Iterable[str]) -> tuple[int, int]:
    """Count the bytes and files under ``paths`` (for the progress bar's total; links not followed)."""
    total = files = 0
    for path in paths:
        if os.path.isfile(path) and not os.path.islink(path):
            total, files = total + os.path.getsize(path), files + 1
            continue
        for folder, _dirs, names in os.walk(path):
            for name in names:
                full = os.path.join(folder, name)
                try:
                    info = os.lstat(full)
                except OSError:
                    continue
                if os.path.isfile(full) and not os.path.islink(full):
                    total, files = total + info.st_size, files + 1
    return total, files


def _dry_run(  # noqa: PLR0917 - one call site
    args: argparse.Namespace,
    vault: Vault,
    lineage: str,
    given: list[str | StreamSource | CommandSource],
    chosen: dict[str, Any],
    out: TextIO,
) -> ExitCode:
    """``backup --dry-run``: what the backup would read and record; nothing read or written."""
    found = vault.preview_backup(given, lineage=lineage, **chosen)
    for warning in found.warnings:
        warn(f"{warning.path}: {warning.reason}")
    if args.json:
        dump(
            {
                "dry_run": True,
                "lineage": lineage,
                "entries": found.entries,
                "files": found.files,
                "new": list(found.new),
                "changed": list(found.changed),
                "unchanged": found.unchanged,
                "bytes_to_read": found.bytes_to_read,
                "bytes_total": found.bytes_total,
            },
            out,
        )
        return ExitCode.OK
    for path in found.new:
        out.write(f"new      {path}\n")
    for path in found.changed:
        out.write(f"changed  {path}\n")
    out.write(
        f"dry run of backup {lineage}: {found.entries} entries, {found.files} file(s): "
        f"{len(found.new)} new, {len(found.changed)} changed, {found.unchanged} unchanged; "
        f"would read {format_bytes(found.bytes_to_read)} of {format_bytes(found.bytes_total)}; "
        "nothing was written\n"
    )
    return ExitCode.OK


def _backup_interrupted(
    err: KeyboardInterrupt, lineage: str, done: list[dict[str, object]]
) -> CommandInterrupted:
    if COMMIT_INTERRUPTED in getattr(err, "__notes__", ()):
        text = f"the snapshot of lineage {lineage} may be committed (see `ctfy-vault snapshots`)"
    else:
        text = "nothing was committed"
        if done:
            text = f"the backup of lineage {lineage} committed nothing"
    if done:
        text += "; committed before: " + ", ".join(f"{r['lineage']} {r['id']}" for r in done)
    return CommandInterrupted(text)


def _backup_one(
    args: argparse.Namespace,
    *,
    config: Config,
    vault: Vault,
    lineage: str,
    sources: list[str],
    known: KnownHeads | None,
    out: TextIO,
) -> tuple[ExitCode, BackupInfo | None]:
    given = _given_sources(args, sources)
    streamed = args.stdin or args.stdin_from_command
    if args.dry_run:
        chosen = _selection(args, config.lineage(lineage).full_paths)
        return _dry_run(args, vault, lineage, given, chosen, out), None
    bar = progress(f"backup {lineage}", None if streamed else lambda: _measure(sources))
    tags = [*config.lineage(lineage).tags, *args.tag]
    options: dict[str, Any] = {
        "host": args.host,
        "tags": tags,
        "progress": bar,
        **_selection(args, config.lineage(lineage).full_paths),
    }
    policy = config.lineage(lineage).policy
    if policy is not None:
        # Object Lock follows the lineage's schedule on buckets that have it.
        options["lock_policy"] = policy
        options["target_policies"] = config.target_policies()
    try:
        with bar:
            try:
                info = vault.backup(given, lineage=lineage, now=now(), known_heads=known, **options)
            except RollbackError as err:
                if not args.accept_rollback:
                    raise
                # Raised before any source is read, so standard input is still unread.
                warn(f"{err}; backing up onto the current head anyway (--accept-rollback)")
                info = vault.backup(given, lineage=lineage, now=now(), **options)
    except TargetsFailedError as err:
        return report_failed_targets(f"backup {lineage}", err), None
    except SourceFailedError as err:  # the producer failed: one line, nothing was committed
        write_error(f"backup {lineage}", err)
        return ExitCode.FAILED, None
    except RollbackError as err:
        write_error(
            f"backup {lineage}",
            f"{err}\n  nothing was written; give --accept-rollback to back up onto the current "
            "head anyway",
        )
        return ExitCode.FAILED, None
    for warning in info.warnings:
        warn(f"{warning.path}: {warning.reason}")
    if not args.json:
        _print_backup(info, out)
    failed = {o.target: o.error for o in info.outcomes if not o.committed}
    if not failed:
        return ExitCode.OK, info
    for name, error in failed.items():  # enough targets committed, but not every one
        reason = "not committed" if error is None else f"{type(error).__name__}: {error}"
        write_error(f"backup {lineage}", f"{name}: FAILED: {reason}")
    return ExitCode.PARTIAL, info


def _print_backup(info: BackupInfo, out: TextIO) -> None:
    out.write(
        f"snapshot {info.snapshot_id} ({info.name}) of lineage {info.lineage}: "
        f"{info.files} entries, {format_bytes(info.size)}\n"
        f"  read {format_bytes(info.bytes_read)} (unchanged files are not read), "
        f"sealed {info.chunks_sealed} new chunk(s)\n"
    )
    for outcome in info.outcomes:
        if not outcome.committed:
            out.write(f"  {outcome.target}: FAILED, nothing committed (see the error below)\n")
            continue
        out.write(
            f"  {outcome.target}: committed; {outcome.chunks_uploaded} chunk(s) uploaded "
            f"({format_bytes(outcome.bytes_uploaded)}), {outcome.chunks_present} already there\n"
        )
    if info.unlockable:
        out.write(f"  object lock: cannot lock on {', '.join(info.unlockable)}\n")
