"""Reading the snapshots back: ``snapshots``, ``ls`` and ``restore``.

``ls`` and ``restore`` name a snapshot the way `Vault.find` takes it (a name, an id, a unique id
prefix, ``latest`` or ``latest:LINEAGE``); the parser already refused a malformed reference.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from ctfy_vault.cli._context import open_vault
from ctfy_vault.cli._progress import format_bytes
from ctfy_vault.cli._render import (
    CommandInterrupted,
    ExitCode,
    dump,
    progress,
    snapshot_dict,
    table,
    utc_time,
    warn,
    write_error,
)
from ctfy_vault.exceptions import ObjectExistsError
from ctfy_vault.manifest import FileEntry, FileType
from ctfy_vault.vault import RestoreReport, SnapshotInfo, Vault

__all__ = ["ls", "restore", "snapshots"]

#: The first letter of ``ls``'s mode column, per entry type.
_KINDS = {
    FileType.FILE: "-",
    FileType.DIR: "d",
    FileType.SYMLINK: "l",
    FileType.HARDLINK: "h",  # as ``tar -tv`` shows a hard link
    FileType.FIFO: "p",
    FileType.CHARDEV: "c",
    FileType.BLOCKDEV: "b",
}


def snapshots(args: argparse.Namespace, out: TextIO) -> ExitCode:
    """``snapshots``: every snapshot (of ``--lineage``), newest first."""
    _config, vault = open_vault(args)
    listed = vault.snapshots(args.lineage)
    if args.json:
        dump([snapshot_dict(info) for info in listed], out)
        return ExitCode.OK
    rows = [["ID", "TIME (UTC)", "LINEAGE", "HOST", "FILES", "SIZE", "TAGS"]]
    rows.extend(
        [
            info.snapshot_id[:12],
            utc_time(info.created),
            info.lineage,
            info.host,
            str(info.files),
            format_bytes(info.size),
            ",".join(info.tags),
        ]
        for info in listed
    )
    table(rows, out)
    out.write(f"{len(listed)} snapshot(s)\n")
    return ExitCode.OK


def _mtime(entry: FileEntry) -> datetime:
    return datetime.fromtimestamp(entry.mtime_ns / 1e9, UTC)


def _entry_dict(entry: FileEntry) -> dict[str, object]:
    found: dict[str, object] = {
        "path": entry.path,
        "type": entry.type.value,
        "mode": f"{entry.mode:04o}",
        "size": entry.size,
        "mtime": _mtime(entry),
    }
    if entry.link is not None:
        found["link"] = entry.link
    for key in ("uid", "gid", "user", "group"):
        if getattr(entry, key) is not None:
            found[key] = getattr(entry, key)
    if entry.device is not None:
        found["device"] = list(entry.device)
    return found


def ls(args: argparse.Namespace, out: TextIO) -> ExitCode:
    """``ls SNAPSHOT [PATH]``: the entries at and under PATH."""
    _config, vault = open_vault(args)
    entries = vault.ls(vault.find(args.snapshot), args.path or "")
    if args.json:
        dump([_entry_dict(entry) for entry in entries], out)
        return ExitCode.OK
    rows = []
    for entry in entries:
        arrow = " link to " if entry.type is FileType.HARDLINK else " -> "
        shown = entry.path + (f"{arrow}{entry.link}" if entry.link is not None else "")
        mode = f"{_KINDS[entry.type]}{entry.mode:04o}"
        rows.append([mode, str(entry.size), utc_time(_mtime(entry)), shown])
    table(rows, out)
    return ExitCode.OK


def restore(args: argparse.Namespace, out: TextIO) -> ExitCode:
    """``restore SNAPSHOT DEST``: every chunk authenticated, nothing outside DEST written."""
    _config, vault = open_vault(args)
    info = vault.find(args.snapshot)
    totals = None if args.include else lambda: (info.size, _files(vault, info))
    bar = progress(f"restore {info.snapshot_id[:12]}", totals)
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
        if args.dest.exists() and (args.dest.is_symlink() or not args.dest.is_dir()):
            kind = "a link" if args.dest.is_symlink() else "a file, not a folder"
            write_error(
                "restore",
                f"{args.dest} is {kind}; restore writes into a folder (give a new or empty "
                "folder; --overwrite does not replace it)",
            )
        else:
            write_error(
                "restore",
                f"{args.dest} is not an empty folder; refusing to restore into it (pass "
                "--overwrite to replace files of the same name)",
            )
        return ExitCode.FAILED
    for path, reason in report.refused:
        warn(f"not restored: {path}: {reason}")
    for key, target in report.fallbacks:
        warn(f"{key} was not intact on {target}; read from the next target")
    for path, reason in report.warnings:
        warn(f"{path}: {reason}")
    if args.json:
        dump(_restore_dict(info, args.dest, report), out)
    else:
        out.write(
            f"restored snapshot {info.snapshot_id} into {args.dest}: {report.files} file(s), "
            f"{report.dirs} folder(s), {report.symlinks} link(s), {format_bytes(report.bytes)}; "
            "every chunk authenticated\n"
        )
    return ExitCode.OK


def _files(vault: Vault, info: SnapshotInfo) -> int:
    return sum(1 for entry in vault.ls(info) if entry.type is FileType.FILE)


def _restore_dict(info: SnapshotInfo, dest: Path, report: RestoreReport) -> dict[str, object]:
    return {
        "snapshot": info.snapshot_id,
        "dest": str(dest),
        "files": report.files,
        "dirs": report.dirs,
        "symlinks": report.symlinks,
        "bytes": report.bytes,
        "refused": [{"path": p, "reason": r} for p, r in report.refused],
        "fallbacks": [{"key": k, "target": t} for k, t in report.fallbacks],
        "hardlinks": report.hardlinks,
        "specials": report.specials,
        "warnings": [{"path": p, "reason": r} for p, r in report.warnings],
    }
