"""The repository commands: init, backup, snapshots, ls, restore, forget, prune, check, heal, key, lock.

Each command reads ``ctfy-vault.toml`` (see `ctfy_vault.cli._config`), opens the `Vault` and prints
what the library did: a table, or JSON with ``--json``. Times are read from the machine's clock
here, once per command, and handed to the library, which never reads a clock itself.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TextIO

from ctfy_vault.cli._config import Config, KeySource, config_path, load_config
from ctfy_vault.cli._heads import heads_path, note_first_run, read_heads, write_heads
from ctfy_vault.cli._options import duration_option
from ctfy_vault.cli._progress import Progress, format_bytes
from ctfy_vault.exceptions import (
    ConfigurationError,
    LockError,
    ObjectExistsError,
    ObjectNotFoundError,
    RollbackError,
    SourceFailedError,
    TargetsFailedError,
)
from ctfy_vault.manifest import FileEntry, FileType
from ctfy_vault.retention import Policy, RetentionPlan
from ctfy_vault.vault import BackupInfo, KnownHeads, SnapshotInfo, Vault, VerifyReport
from ctfy_vault.writer import COMMIT_INTERRUPTED, CommandSource, HealReport, StreamSource

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "CommandInterrupted",
    "add_parsers",
    "check_reference",
    "exit_code_for_partial",
    "parse_read_data",
    "resolve_snapshot",
    "split_command",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_PARTIAL: Final = 3
#: Ctrl-C: 128 + SIGINT, as shells report a command the signal ended.
EXIT_INTERRUPTED: Final = 130

FROM_COMMAND: Final = "--stdin-from-command"
_PIPE_WARNING: Final = (
    "backing up standard input: a shell pipe hides a failure of the program writing into it "
    "(without `set -o pipefail` its truncated output looks complete and is committed); use "
    "`backup LINEAGE --stdin-from-command -- CMD ARGS...`, which commits only when CMD exits 0"
)

Run = Callable[[argparse.Namespace, TextIO], int]


class CommandInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a command; the text says what it left behind (``nothing was committed``)."""


# -- shared pieces -----------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _config(args: argparse.Namespace) -> Config:
    return load_config(config_path(args.config, os.environ))


def _open(args: argparse.Namespace, config: Config | None = None) -> tuple[Config, Vault]:
    """Read the config (unless given), build the targets and open the vault."""
    config = config or _config(args)
    targets = config.build_targets(os.environ)
    # Targets left out (unreachable, lacking the config) are logged by the library as warnings.
    return config, Vault.open(targets, key=config.key.credential(os.environ))


def _warn(text: str) -> None:
    sys.stderr.write(f"ctfy-vault: warning: {text}\n")


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _dump(value: object, out: TextIO) -> None:
    json.dump(value, out, indent=2, sort_keys=True, default=_json_default)
    out.write("\n")


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    raise TypeError(f"cannot encode {type(value).__name__}")


def _table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    """Print rows as left-aligned columns (the last column unpadded)."""
    if not rows:
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        out.write("  ".join([*cells, row[-1]]).rstrip() + "\n")


def exit_code_for_partial(outcomes: Mapping[str, BaseException | None]) -> int:
    """Return 3 (partial) when some target succeeded and another failed, else 1.

    Args:
        outcomes: per target, ``None`` when it succeeded or the error that stopped it (as in
            `TargetsFailedError.outcomes`).
    """
    succeeded = any(err is None for err in outcomes.values())
    failed = any(err is not None for err in outcomes.values())
    return EXIT_PARTIAL if succeeded and failed else EXIT_FAILED


def _report_failed_targets(what: str, err: TargetsFailedError) -> int:
    code = exit_code_for_partial(err.outcomes)
    sys.stderr.write(f"ctfy-vault: {what}: {err}\n")
    for name, error in err.outcomes.items():
        state = "ok" if error is None else f"FAILED: {type(error).__name__}: {error}"
        sys.stderr.write(f"  {name}: {state}\n")
    if code == EXIT_PARTIAL:
        sys.stderr.write("  run `ctfy-vault heal` once the failed targets are back\n")
    return code


#: A snapshot name (``20261126T000300.000000Z-abc123``), an id or a prefix of one.
_REFERENCE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: A lineage name, as the manifest allows it.
_LINEAGE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def check_reference(ref: str) -> str:
    """Check the form of a snapshot reference before any snapshot is listed.

    Args:
        ref: ``latest``, ``latest:LINEAGE``, a snapshot name, an id or an id prefix.

    Returns:
        ``ref``, unchanged.

    Raises:
        ConfigurationError: the reference is empty, has blanks or other characters no name or
            id has, or is ``latest:`` with no (or no valid) lineage; the message quotes it.
    """
    if ref.startswith("latest:"):
        lineage = ref.removeprefix("latest:")
        if not lineage:
            raise ConfigurationError(
                f"snapshot reference {ref!r} names no lineage: write latest or latest:LINEAGE"
            )
        if not _LINEAGE.fullmatch(lineage):
            raise ConfigurationError(
                f"snapshot reference {ref!r}: {lineage!r} is not a lineage name"
            )
        return ref
    if not _REFERENCE.fullmatch(ref):
        raise ConfigurationError(
            f"snapshot reference {ref!r} is not latest, latest:LINEAGE, a snapshot name, an id "
            "or an id prefix"
        )
    return ref


def _reference_option(text: str) -> str:
    try:
        return check_reference(text)
    except ConfigurationError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def resolve_snapshot(snapshots: Sequence[SnapshotInfo], ref: str) -> SnapshotInfo:
    """Find the snapshot a command-line reference names.

    Args:
        snapshots: every snapshot, newest first (as `Vault.snapshots` lists them).
        ref: ``latest``, ``latest:LINEAGE``, a snapshot name, a snapshot id, or a unique prefix
            of an id.

    Returns:
        The snapshot.

    Raises:
        ObjectNotFoundError: nothing matches.
        ConfigurationError: the reference is malformed (see `check_reference`), or a prefix
            matches several snapshots (the message lists them).
    """
    check_reference(ref)
    if ref == "latest" or ref.startswith("latest:"):
        lineage = ref.partition(":")[2] or None
        found = [s for s in snapshots if lineage is None or s.lineage == lineage]
        if not found:
            where = f" of lineage {lineage}" if lineage else ""
            raise ObjectNotFoundError(f"no snapshot{where}", target="repository", key=ref)
        return max(found, key=lambda s: (s.created, s.name))
    exact = [s for s in snapshots if ref in (s.name, s.snapshot_id)]
    if exact:
        return exact[0]
    matches = [s for s in snapshots if ref and s.snapshot_id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        listed = ", ".join(s.snapshot_id for s in matches[:5])
        raise ConfigurationError(f"snapshot prefix {ref!r} is ambiguous: {listed}")
    raise ObjectNotFoundError("no such snapshot", target="repository", key=ref)


def parse_read_data(text: str | None) -> bool | float:
    """Parse ``--read-data[=FRACTION or N%]``.

    Args:
        text: ``None`` (flag absent), ``""`` (flag without a value: read everything), a fraction
            from 0 to 1, or a percentage.

    Returns:
        ``False``, ``True`` or the fraction.

    Raises:
        ConfigurationError: not a fraction from 0 to 1 or a percentage from 0 to 100.
    """
    if text is None:
        return False
    if text == "":
        return True
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ConfigurationError(
            f"--read-data takes a fraction from 0 to 1 or a percentage, got {text!r}"
        )
    return True if value == 1.0 else value


def _read_data_option(text: str) -> bool | float:
    """``--read-data`` as an argparse ``type``: a bad value is a usage error naming it."""
    try:
        return parse_read_data(text)
    except ConfigurationError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--read-data ")) from None


def _snapshot_row(info: SnapshotInfo) -> dict[str, object]:
    return {
        "name": info.name,
        "id": info.snapshot_id,
        "lineage": info.lineage,
        "created": info.created,
        "host": info.host,
        "tags": list(info.tags),
        "files": info.files,
        "size": info.size,
    }


# -- init ----------------------------------------------------------------------------------------


def _init(args: argparse.Namespace, out: TextIO) -> int:
    config = _config(args)
    targets = config.build_targets(os.environ)
    credential = config.key.credential(os.environ)
    try:
        vault = Vault.init(targets, key=credential, now=_now())
    except TargetsFailedError as err:
        return _report_failed_targets("init", err)
    if args.json:
        _dump({"repo_id": vault.repo_id.hex(), "targets": [t.name for t in targets]}, out)
    else:
        out.write(f"created repository {vault.repo_id.hex()} on {len(targets)} target(s):\n")
        for target in targets:
            out.write(f"  {target.name}\n")
    return EXIT_OK


# -- backup --------------------------------------------------------------------------------------


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


def split_command(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """Split ``backup ... --stdin-from-command ... -- CMD ARGS...`` at its ``--``.

    argparse cannot hand everything after ``--`` to one option (it drops later ``--`` and mixes
    the words with the positional PATHS), so the command is cut off before parsing.

    Args:
        argv: the command line after the program name.

    Returns:
        The words to parse, and the command after the first ``--`` when ``--stdin-from-command``
        comes before it (``None`` otherwise: nothing is split).
    """
    words = list(argv)
    if "--" not in words:
        return words, None
    cut = words.index("--")
    if FROM_COMMAND not in words[:cut]:
        return words, None
    return words[:cut], words[cut + 1 :]


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


def _stdin_is_a_pipe() -> bool:
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _backup_plan(args: argparse.Namespace, config: Config) -> list[tuple[str, list[str]]]:
    """Each lineage to back up with its sources; usage errors before any target is contacted."""
    _check_stream_options(args)
    streamed = args.stdin or args.stdin_from_command
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


def _backup(args: argparse.Namespace, out: TextIO) -> int:
    config = _config(args)
    plan = _backup_plan(args, config)
    _config_again, vault = _open(args, config)
    path = heads_path(config, vault.repo_id, args.known_heads, os.environ)
    known = read_heads(path, vault.repo_id)
    if path is not None and known is None:
        note_first_run(path)
    results: list[dict[str, object]] = []
    worst = EXIT_OK
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
        results.append(_backup_dict(info))
        if path is not None:
            recorded = known if known is not None else KnownHeads(repo_id=vault.repo_id)
            known = recorded.advance(info.head)
            if not write_heads(path, known, f"backup {name}"):
                worst = max(worst, EXIT_FAILED)
    if args.json:
        _dump(results if args.lineage is None else (results[0] if results else None), out)
    return worst


def _given_sources(
    args: argparse.Namespace, sources: list[str]
) -> list[str | StreamSource | CommandSource]:
    """The paths, or standard input, or the producer command, as the vault's sources."""
    if args.stdin:
        if _stdin_is_a_pipe():
            _warn(_PIPE_WARNING)
        return [StreamSource(name=args.name, stream=sys.stdin.buffer)]
    if args.stdin_from_command:
        name = args.name or os.path.basename(args.producer[0])
        return [CommandSource(name=name, argv=args.producer)]
    return list(sources)


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
) -> tuple[int, BackupInfo | None]:
    given = _given_sources(args, sources)
    bar = Progress(f"backup {lineage}")
    if bar.enabled and not (args.stdin or args.stdin_from_command):
        bar.set_totals(*_measure(sources))
    tags = [*config.lineage(lineage).tags, *args.tag]
    options: dict[str, Any] = {"host": args.host, "tags": tags, "progress": bar}
    try:
        with bar:
            try:
                info = vault.backup(
                    given, lineage=lineage, now=_now(), known_heads=known, **options
                )
            except RollbackError as err:
                if not args.accept_rollback:
                    raise
                # Raised before any source is read, so standard input is still unread.
                _warn(f"{err}; backing up onto the current head anyway (--accept-rollback)")
                info = vault.backup(given, lineage=lineage, now=_now(), **options)
    except TargetsFailedError as err:
        return _report_failed_targets(f"backup {lineage}", err), None
    except SourceFailedError as err:  # the producer failed: one line, nothing was committed
        sys.stderr.write(f"ctfy-vault: backup {lineage}: {err}\n")
        return EXIT_FAILED, None
    except RollbackError as err:
        sys.stderr.write(
            f"ctfy-vault: backup {lineage}: {err}\n"
            "  nothing was written; give --accept-rollback to back up onto the current head "
            "anyway\n"
        )
        return EXIT_FAILED, None
    for warning in info.warnings:
        _warn(f"{warning.path}: {warning.reason}")
    if not args.json:
        _print_backup(info, out)
    failed = {o.target: o.error for o in info.outcomes if not o.committed}
    if not failed:
        return EXIT_OK, info
    for name, error in failed.items():  # enough targets committed, but not every one
        reason = "not committed" if error is None else f"{type(error).__name__}: {error}"
        sys.stderr.write(f"ctfy-vault: backup {lineage}: {name}: FAILED: {reason}\n")
    return EXIT_PARTIAL, info


def _backup_dict(info: BackupInfo) -> dict[str, object]:
    return {
        **_snapshot_row(info),
        "bytes_read": info.bytes_read,
        "chunks_sealed": info.chunks_sealed,
        "warnings": [{"path": w.path, "reason": w.reason} for w in info.warnings],
        "targets": [
            {
                "target": o.target,
                "committed": o.committed,
                "chunks_uploaded": o.chunks_uploaded,
                "chunks_present": o.chunks_present,
                "bytes_uploaded": o.bytes_uploaded,
                "error": o.error,
            }
            for o in info.outcomes
        ],
    }


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


# -- listing -------------------------------------------------------------------------------------


def _snapshots(args: argparse.Namespace, out: TextIO) -> int:
    _config_unused, vault = _open(args)
    listed = vault.snapshots(args.lineage)
    if args.json:
        _dump([_snapshot_row(info) for info in listed], out)
        return EXIT_OK
    rows = [["ID", "TIME (UTC)", "LINEAGE", "HOST", "FILES", "SIZE", "TAGS"]]
    rows.extend(
        [
            info.snapshot_id[:12],
            _time(info.created),
            info.lineage,
            info.host,
            str(info.files),
            format_bytes(info.size),
            ",".join(info.tags),
        ]
        for info in listed
    )
    _table(rows, out)
    out.write(f"{len(listed)} snapshot(s)\n")
    return EXIT_OK


def _entry_dict(entry: FileEntry) -> dict[str, object]:
    found: dict[str, object] = {
        "path": entry.path,
        "type": entry.type.value,
        "mode": f"{entry.mode:04o}",
        "size": entry.size,
        "mtime": datetime.fromtimestamp(entry.mtime_ns / 1e9, UTC),
    }
    if entry.link is not None:
        found["link"] = entry.link
    return found


def _ls(args: argparse.Namespace, out: TextIO) -> int:
    _config_unused, vault = _open(args)
    info = resolve_snapshot(vault.snapshots(), args.snapshot)
    entries = vault.ls(info, args.path or "")
    if args.json:
        _dump([_entry_dict(entry) for entry in entries], out)
        return EXIT_OK
    kinds = {FileType.FILE: "-", FileType.DIR: "d", FileType.SYMLINK: "l"}
    rows = []
    for entry in entries:
        shown = entry.path + (f" -> {entry.link}" if entry.link is not None else "")
        moment = datetime.fromtimestamp(entry.mtime_ns / 1e9, UTC)
        rows.append([f"{kinds[entry.type]}{entry.mode:04o}", str(entry.size), _time(moment), shown])
    _table(rows, out)
    return EXIT_OK


# -- restore -------------------------------------------------------------------------------------


def _restore(args: argparse.Namespace, out: TextIO) -> int:
    _config_unused, vault = _open(args)
    info = resolve_snapshot(vault.snapshots(), args.snapshot)
    bar = Progress(f"restore {info.snapshot_id[:12]}")
    if bar.enabled and not args.include:
        files = sum(1 for entry in vault.ls(info) if entry.type is FileType.FILE)
        bar.set_totals(info.size, files)
    try:
        with bar:
            report = vault.restore(
                info,
                args.dest,
                include=args.include or None,
                overwrite=args.overwrite,
                progress=bar,
            )
    except KeyboardInterrupt:
        raise CommandInterrupted(f"the restore into {args.dest} is incomplete") from None
    except ObjectExistsError:
        sys.stderr.write(
            f"ctfy-vault: restore: {args.dest} is not an empty folder; refusing to restore into "
            "it (pass --overwrite to replace files of the same name)\n"
        )
        return EXIT_FAILED
    for path, reason in report.refused:
        _warn(f"not restored: {path}: {reason}")
    for key, target in report.fallbacks:
        _warn(f"{key} was not intact on {target}; read from the next target")
    if args.json:
        _dump(
            {
                "snapshot": info.snapshot_id,
                "dest": str(args.dest),
                "files": report.files,
                "dirs": report.dirs,
                "symlinks": report.symlinks,
                "bytes": report.bytes,
                "refused": [{"path": p, "reason": r} for p, r in report.refused],
                "fallbacks": [{"key": k, "target": t} for k, t in report.fallbacks],
            },
            out,
        )
    else:
        out.write(
            f"restored snapshot {info.snapshot_id} into {args.dest}: {report.files} file(s), "
            f"{report.dirs} folder(s), {report.symlinks} link(s), {format_bytes(report.bytes)}; "
            "every chunk authenticated\n"
        )
    return EXIT_OK


# -- retention -----------------------------------------------------------------------------------


def _policies(config: Config, lineage: str | None) -> dict[str, Policy]:
    policies = config.policies()
    if lineage is not None:
        config.lineage(lineage)
        if lineage not in policies:
            raise ConfigurationError(f"lineage {lineage} has no policy in {config.path}")
        return {lineage: policies[lineage]}
    if not policies:
        raise ConfigurationError(f"no lineage in {config.path} has a policy")
    return policies


def _plan_rows(plans: Mapping[str, RetentionPlan[SnapshotInfo]]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for lineage, plan in plans.items():
        for info in sorted([*plan.keep, *plan.forget], key=lambda s: s.created, reverse=True):
            rows.append(
                {
                    "snapshot": info.snapshot_id,
                    "lineage": lineage,
                    "created": info.created,
                    "keep": info in plan.keep,
                    "reasons": [str(r) for r in plan.reasons.get(info, ())],
                }
            )
    return rows


def _print_plan(rows: list[dict[str, object]], out: TextIO) -> None:
    table = [["SNAPSHOT", "LINEAGE", "TIME (UTC)", "KEEP", "REASONS"]]
    for row in rows:
        created = row["created"]
        assert isinstance(created, datetime)  # noqa: S101 - built just above
        reasons = row["reasons"]
        assert isinstance(reasons, list)  # noqa: S101 - built just above
        table.append(
            [
                str(row["snapshot"])[:12],
                str(row["lineage"]),
                _time(created),
                "keep" if row["keep"] else "forget",
                ", ".join(reasons),
            ]
        )
    _table(table, out)
    kept = sum(1 for row in rows if row["keep"])
    out.write(f"keep {kept}, forget {len(rows) - kept}\n")


def _unplanned(vault: Vault, policies: Mapping[str, Policy], lineage: str | None) -> None:
    if lineage is not None:
        return
    others = sorted({s.lineage for s in vault.snapshots()} - set(policies))
    if others:
        _warn(f"lineage(s) without a policy, left alone: {', '.join(others)}")


def _forget(args: argparse.Namespace, out: TextIO) -> int:
    if not args.dry_run:
        args.grace = None
        return _prune(args, out)
    config = _config(args)
    policies = _policies(config, args.lineage)
    _config_again, vault = _open(args, config)
    _unplanned(vault, policies, args.lineage)
    plans = vault.forget(policies, lineage=args.lineage, now=_now(), dry_run=True)
    rows = _plan_rows(plans)
    if args.json:
        _dump({"dry_run": True, "plan": rows}, out)
    else:
        _print_plan(rows, out)
        out.write("dry run: nothing was changed\n")
    return EXIT_OK


def _prune(args: argparse.Namespace, out: TextIO) -> int:
    config = _config(args)
    policies = _policies(config, args.lineage)
    _config_again, vault = _open(args, config)
    _unplanned(vault, policies, args.lineage)
    options: dict[str, Any] = {"lineage": args.lineage, "dry_run": args.dry_run}
    if args.grace is not None:
        options["grace"] = args.grace
    try:
        report = vault.prune(policies, now=_now(), **options)
    except TargetsFailedError as err:
        return _report_failed_targets("prune", err)
    rows = _plan_rows(report.plans)
    summary = {
        "dry_run": report.dry_run,
        "records": list(report.records),
        "forgotten": [s.snapshot_id for s in report.forgotten],
        "chunks_deleted": report.chunks_deleted,
        "bytes_deleted": report.bytes_deleted,
        "chunks_pending": report.chunks_pending,
        "sweep_skipped": report.sweep_skipped,
        "errors": dict(report.errors),
    }
    if args.json:
        _dump({**summary, "plan": rows}, out)
    else:
        _print_plan(rows, out)
        verb = "would forget" if report.dry_run else "forgot"
        out.write(
            f"{verb} {len(report.forgotten)} snapshot(s); {len(report.records)} prune record(s); "
            f"deleted {report.chunks_deleted} chunk(s) ({format_bytes(report.bytes_deleted)}); "
            f"{report.chunks_pending} unreferenced chunk(s) wait out the grace period\n"
        )
        if report.sweep_skipped:
            out.write(f"chunk sweep skipped: {report.sweep_skipped}\n")
        if report.dry_run:
            out.write("dry run: nothing was changed\n")
    for name, error in report.errors.items():
        sys.stderr.write(f"ctfy-vault: prune: {name}: {type(error).__name__}: {error}\n")
    if report.ok:
        return EXIT_OK
    failed = set(report.errors)
    return exit_code_for_partial(
        {t.name: (report.errors[t.name] if t.name in failed else None) for t in vault.targets}
    )


# -- maintenance ---------------------------------------------------------------------------------


def _check(args: argparse.Namespace, out: TextIO) -> int:
    config, vault = _open(args)
    path = heads_path(config, vault.repo_id, args.known_heads, os.environ)
    known = read_heads(path, vault.repo_id)
    report = vault.verify(read_data=args.read_data, known_heads=known)
    _print_check(report, args.json, out, known=known, path=path)
    if not report.ok:
        return EXIT_FAILED
    if path is None:
        return EXIT_OK
    if known is None:
        note_first_run(path)
    return EXIT_OK if write_heads(path, report.heads, "check") else EXIT_FAILED


def _heads_line(known: KnownHeads | None, path: Path | None) -> str:
    if path is None:
        return "known heads: off (deleting the newest snapshots everywhere goes unnoticed)"
    if known is None:
        return f"known heads: none yet in {path} (first run)"
    return f"known heads: {len(known)} lineage(s) checked against {path}"


def _print_check(
    report: VerifyReport,
    as_json: bool,
    out: TextIO,
    *,
    known: KnownHeads | None,
    path: Path | None,
) -> None:
    problems = [
        {
            "kind": p.kind,
            "severity": p.severity,
            "target": p.target,
            "key": p.key,
            "detail": p.detail,
        }
        for p in report.problems
    ]
    if as_json:
        _dump(
            {
                "ok": report.ok,
                "targets": list(report.targets),
                "snapshots": report.snapshots,
                "chunks_read": report.chunks_read,
                "problems": problems,
                "heads": {h.lineage: {"name": h.name, "hash": h.hash} for h in report.heads},
                "known_heads": {
                    "file": None if path is None else str(path),
                    "lineages": None if known is None else [h.lineage for h in known],
                },
            },
            out,
        )
        return
    out.write(
        f"checked {len(report.targets)} target(s): {report.snapshots} snapshot object(s), "
        f"{report.chunks_read} chunk(s) re-read and authenticated\n{_heads_line(known, path)}\n"
    )
    rows = [["KIND", "TARGET", "KEY", "DETAIL"]]
    for p in report.problems:
        kind = p.kind if p.severity == "error" else f"{p.kind} (warning)"
        rows.append([kind, p.target or "-", p.key or "-", p.detail])
    if report.problems:
        _table(rows, out)
    errors = len(report.problems) - len(report.warnings)
    warned = f"; {len(report.warnings)} warning(s)" if report.warnings else ""
    out.write(f"no problems found{warned}\n" if report.ok else f"{errors} problem(s){warned}\n")


def _heal(args: argparse.Namespace, out: TextIO) -> int:
    _config_unused, vault = _open(args)
    try:
        report = vault.heal(repair=args.repair, read_data=args.read_data, now=_now())
    except TargetsFailedError as err:
        return _report_failed_targets("heal", err)
    if args.json:
        _dump(
            {
                "ok": report.ok,
                "data_read": report.data_read,
                "targets": {
                    o.target: {
                        "copied": list(o.copied),
                        "repaired": list(o.repaired),
                        "quarantined": dict(o.quarantined),
                        "unfixed": dict(o.unfixed),
                    }
                    for o in report.outcomes
                },
            },
            out,
        )
    else:
        _print_heal(report, out)
    return EXIT_OK if report.ok else EXIT_FAILED


def _print_heal(report: HealReport, out: TextIO) -> None:
    for o in report.outcomes:
        out.write(
            f"{o.target}: copied {len(o.copied)}, repaired {len(o.repaired)}, quarantined "
            f"{len(o.quarantined)} object(s)\n"
        )
        for key, aside in o.quarantined:
            out.write(f"  quarantined {key} -> {aside}\n")
        for key, why in o.unfixed:
            out.write(f"  NOT FIXED {key}: {why}\n")
    done = f"{report.copied} copied, {report.repaired} repaired, {report.quarantined} quarantined"
    if not report.ok:
        out.write(f"heal left {len(report.unfixed)} problem(s) unfixed ({done})\n")
        return
    out.write(f"healed: every target holds every object, nothing found wrong ({done})\n")
    if not report.data_read:
        out.write(
            "chunk copies were not re-read: heal --read-data or check --read-data looks for "
            "damaged chunks, heal --repair replaces them\n"
        )


# -- keys and locks ------------------------------------------------------------------------------


def _key_add(args: argparse.Namespace, out: TextIO) -> int:
    if (args.new_env is None) == (args.new_file is None):
        raise ConfigurationError("key add needs exactly one of --new-env VARIABLE or --new-file")
    source = KeySource(
        type=args.type,
        env=args.new_env,
        file=Path(args.new_file) if args.new_file is not None else None,
        setting="--new-env",
    )
    credential = source.credential(os.environ)
    _config_unused, vault = _open(args)
    try:
        slot = vault.add_key(credential, now=_now())
    except TargetsFailedError as err:
        return _report_failed_targets("key add", err)
    out.write(f"added key slot {slot.key_id} ({slot.type})\n")
    return EXIT_OK


def _key_list(args: argparse.Namespace, out: TextIO) -> int:
    _config_unused, vault = _open(args)
    slots = vault.keys()
    if args.json:
        _dump([{"id": s.key_id, "type": s.type, "created": s.created} for s in slots], out)
        return EXIT_OK
    rows = [["ID", "TYPE", "CREATED (UTC)"]]
    rows.extend([s.key_id, s.type, _time(s.created)] for s in slots)
    _table(rows, out)
    return EXIT_OK


def _key_remove(args: argparse.Namespace, out: TextIO) -> int:
    _config_unused, vault = _open(args)
    try:
        vault.remove_key(args.key_id)
    except TargetsFailedError as err:
        return _report_failed_targets("key remove", err)
    out.write(f"removed key slot {args.key_id}\n")
    return EXIT_OK


def _lock_show(args: argparse.Namespace, out: TextIO) -> int:
    _config_unused, vault = _open(args)
    held = vault.lock_info()
    now = _now()
    if args.json:
        _dump(
            None
            if held is None
            else {
                "lock_id": held.lock_id,
                "host": held.host,
                "pid": held.pid,
                "created": held.created,
                "expires": held.expires,
                "stale": held.stale(now),
            },
            out,
        )
    elif held is None:
        out.write("not locked\n")
    else:
        state = "stale (may be broken)" if held.stale(now) else "held"
        out.write(f"locked by {held.describe()}: {state}\n")
    return EXIT_OK


def _lock_break(args: argparse.Namespace, out: TextIO) -> int:
    _config_unused, vault = _open(args)
    try:
        held = vault.break_lock(now=_now(), force=args.force)
    except LockError as err:
        sys.stderr.write(f"ctfy-vault: lock break: {err}\n")
        return EXIT_FAILED
    out.write(f"broke the lock of {held.describe()}\n")
    return EXIT_OK


# -- the parsers ---------------------------------------------------------------------------------


def _common() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument(
        "--config",
        metavar="PATH",
        help="the TOML config (default: $CTFY_VAULT_CONFIG, else ./ctfy-vault.toml)",
    )
    listing = argparse.ArgumentParser(add_help=False)
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return config, listing


def add_parsers(commands: Any) -> None:
    """Register the repository commands on ``commands`` (from ``add_subparsers``)."""
    config, listing = _common()
    both = [config, listing]

    def add(name: str, run: Run, help_text: str, description: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(
            name, parents=both, help=help_text, description=description
        )
        parser.set_defaults(run=run)
        return parser

    add(
        "init",
        _init,
        "create the repository on every configured target",
        "Create an encrypted repository on every target of the config: a config document, master "
        "keys and one key slot for the configured key. Refuses targets that already hold one.",
    )
    backup = add(
        "backup",
        _backup,
        "back up a lineage's sources (or PATHS, or a command's output) as one snapshot",
        "Back up PATHS (default: the lineage's configured sources) as one snapshot on every "
        "target. Without LINEAGE, every lineage with sources is backed up in turn. Unchanged "
        "files are not read again; chunks already stored are not uploaded again. With "
        "--stdin-from-command -- CMD ARGS..., CMD is run (without a shell) and its standard "
        "output is stored as one file: the snapshot is committed only if CMD exits 0, so a "
        "database dump that fails half way is never kept (exit code 1, nothing committed). "
        "A lineage whose known head the storage lost (see check) is not backed up (exit code 1) "
        "unless --accept-rollback; each new snapshot is recorded as its lineage's known head. "
        "Exit code 3 when some target failed while others committed (repair with heal).",
    )
    backup.usage = (
        "%(prog)s [-h] [--config PATH] [--json] [--tag TAG] [--host HOST] [LINEAGE] [PATHS ...]\n"
        "       %(prog)s LINEAGE --stdin-from-command [--name NAME] [options] -- CMD [ARGS ...]\n"
        "       %(prog)s LINEAGE --stdin --name NAME [options]"
    )
    backup.add_argument("lineage", nargs="?", help="a lineage of the config")
    backup.add_argument("paths", nargs="*", help="files and folders (default: the sources)")
    backup.add_argument(
        FROM_COMMAND,
        action="store_true",
        help="run the command given after -- (no shell) and back up its standard output as one "
        "file (--name, default: the program's name); nothing is committed unless it exits 0",
    )
    backup.add_argument(
        "--stdin",
        action="store_true",
        help="back up standard input as one file (with --name); a failure of the program "
        "piping into it goes unnoticed without `set -o pipefail`: prefer --stdin-from-command",
    )
    backup.add_argument("--name", help="the file name the stream is stored under")
    backup.set_defaults(producer=None)
    backup.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    backup.add_argument("--host", help="the host recorded (default: this machine's name)")
    _add_known_heads(backup)
    backup.add_argument(
        "--accept-rollback",
        action="store_true",
        help="back up even when the storage lost a lineage's known head (deleted or rolled "
        "back): chain onto the head it holds now and record the new snapshot as known",
    )

    snapshots = add(
        "snapshots",
        _snapshots,
        "list the snapshots, newest first",
        "List every snapshot any target holds, newest first.",
    )
    snapshots.add_argument("--lineage", help="only this lineage")

    ls = add(
        "ls",
        _ls,
        "list the files of a snapshot",
        "List the entries of SNAPSHOT (a name, an id, a unique id prefix, latest or "
        "latest:LINEAGE) at and under PATH.",
    )
    ls.add_argument(
        "snapshot",
        type=_reference_option,
        help="name, id, unique id prefix, latest or latest:LINEAGE",
    )
    ls.add_argument("path", nargs="?", help="a path inside the snapshot (default: everything)")

    restore = add(
        "restore",
        _restore,
        "restore a snapshot into a local folder, every chunk authenticated",
        "Restore SNAPSHOT into DEST. DEST must be empty or missing unless --overwrite. Paths that "
        "would escape DEST and links pointing outside it are refused.",
    )
    restore.add_argument(
        "snapshot",
        type=_reference_option,
        help="name, id, unique id prefix, latest or latest:LINEAGE",
    )
    restore.add_argument("dest", type=Path, help="the destination folder")
    restore.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="PATTERN",
        help="restore only this path, folder or glob (repeatable)",
    )
    restore.add_argument(
        "--overwrite", action="store_true", help="restore into a non-empty folder, replacing files"
    )

    forget = add(
        "forget",
        _forget,
        "show (--dry-run) or apply each lineage's retention policy",
        "Plan each configured lineage's retention policy over its own snapshots: a table of "
        "snapshot, lineage, keep or forget, and the rules that keep it. With --dry-run nothing "
        "changes; without it, this is prune with the default grace period.",
    )
    forget.add_argument("--lineage", help="only this lineage")
    forget.add_argument("--dry-run", action="store_true", help="change nothing")

    prune = add(
        "prune",
        _prune,
        "forget what the policies no longer keep and delete unreferenced chunks, under a lock",
        "Apply each lineage's retention policy under the exclusive prune lock: write prune "
        "records, delete forgotten snapshots, and delete chunks no snapshot references once "
        "they have been unreferenced for the grace period.",
    )
    prune.add_argument("--lineage", help="only this lineage (chunks are swept repository-wide)")
    prune.add_argument(
        "--grace",
        type=duration_option("--grace"),
        metavar="DURATION",
        help="how long an unreferenced chunk waits before deletion (e.g. 24h, 2d, 0; default 24h)",
    )
    prune.add_argument("--dry-run", action="store_true", help="plan and count, change nothing")

    check = add(
        "check",
        _check,
        "verify structure, chain and agreement of the targets, optionally the data",
        "Check every target: each snapshot opens, names only chunks the target holds, the "
        "lineages' hash chains have no unexplained gap, no lineage lost the head recorded in "
        "the known-heads file, and the targets agree. Exit code 1 when anything is wrong; a "
        "clean check records the current heads in the file.",
    )
    check.add_argument(
        "--read-data",
        nargs="?",
        const=True,
        default=False,
        type=_read_data_option,
        metavar="FRACTION|N%",
        help="also re-read and authenticate chunks: all, or a share (0.1 or 10%%)",
    )
    _add_known_heads(check)

    heal_parser = add(
        "heal",
        _heal,
        "copy to each target what it lacks from another; --repair replaces damaged copies",
        "Copy every object a target lacks from a target that holds it, verified and create-only, "
        "and judge every copy of the config, key slots and manifests (and, with --read-data or "
        "--repair, of every chunk). Whatever is found and not fixed is listed and makes the exit "
        "code 1. Without --repair nothing is deleted or overwritten. With --repair a damaged copy "
        "is replaced from a good one, and what no good copy proves damaged (a stray name under "
        "objects/ or snapshots/, a snapshot object that opens on no target) is moved to "
        "quarantine/<time>/ on its target, never deleted outright.",
    )
    heal_parser.add_argument(
        "--repair",
        action="store_true",
        help="replace damaged copies from good ones and quarantine strays (reads every object)",
    )
    heal_parser.add_argument(
        "--read-data",
        action="store_true",
        help="also re-read and judge every chunk copy (without --repair: report only)",
    )

    _add_key_and_lock(commands, config, both)


def _add_known_heads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--known-heads",
        metavar="FILE",
        help="the file holding each lineage's last verified head (default: [repository] "
        "known_heads, else $XDG_STATE_HOME/ctfy-vault/REPO-ID.heads.json)",
    )


def _add_key_and_lock(
    commands: Any, config: argparse.ArgumentParser, both: list[argparse.ArgumentParser]
) -> None:
    key = commands.add_parser(
        "key", help="manage key slots (add, list, remove)", description="Manage key slots."
    )
    key_commands = key.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    key_add = key_commands.add_parser(
        "add",
        parents=[config],
        help="add a slot for another passphrase or raw key",
        description="Add a key slot for a new passphrase or raw key, read from an environment "
        "variable or an owner-only file; the configured key opens the repository.",
    )
    key_add.add_argument("--new-env", metavar="VARIABLE", help="the new key's variable")
    key_add.add_argument("--new-file", metavar="PATH", help="the new key's file (mode 600)")
    key_add.add_argument("--type", choices=("passphrase", "raw"), default="passphrase")
    key_add.set_defaults(run=_key_add)
    key_list = key_commands.add_parser("list", parents=both, help="list the key slots")
    key_list.set_defaults(run=_key_list)
    key_remove = key_commands.add_parser(
        "remove", parents=[config], help="remove a key slot (never the last)"
    )
    key_remove.add_argument("key_id", help="the slot's id (see key list)")
    key_remove.set_defaults(run=_key_remove)

    lock = commands.add_parser(
        "lock", help="show or break the prune lock", description="Show or break the prune lock."
    )
    lock_commands = lock.add_subparsers(dest="lock_command", metavar="ACTION", required=True)
    lock_show = lock_commands.add_parser("show", parents=both, help="show who holds the lock")
    lock_show.set_defaults(run=_lock_show)
    lock_break = lock_commands.add_parser(
        "break",
        parents=[config],
        help="remove a stale lock (past expiry, holder gone)",
        description="Remove the prune lock when it is stale: past its expiry and its holder "
        "not running. --force removes any lock: only when you know the holder is gone.",
    )
    lock_break.add_argument("--force", action="store_true", help="remove even a live lock")
    lock_break.set_defaults(run=_lock_break)
