"""``ctfy-vault status``: how current each lineage is, for people, cron and monitoring."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import TextIO

from ctfy_vault.cli._context import now, open_vault
from ctfy_vault.cli._metrics import record_status
from ctfy_vault.cli._render import ExitCode, dump, table, utc_time, warn
from ctfy_vault.vault import Status

__all__ = ["status"]


def status(args: argparse.Namespace, out: TextIO) -> ExitCode:
    """``status``: per lineage and target, the newest snapshot's age; exit 1 when one is stale.

    Exit code 1 when a lineage is older than ``--max-age``, else 3 when a target lags behind
    or cannot be listed, else 0.
    """
    _config, vault = open_vault(args)
    found = vault.status(now=now(), max_age=args.max_age, lineage=args.lineage)
    record_status(args, found)
    if args.json:
        dump(_status_dict(found), out)
    else:
        _print(found, out)
    for name, err in found.unreachable.items():
        warn(f"{name} could not be listed: {type(err).__name__}: {err}")
    if found.stale:
        return ExitCode.FAILED
    if found.lagging or found.unreachable:
        return ExitCode.PARTIAL
    return ExitCode.OK


def _age(age: timedelta) -> str:
    """An age to the minute: ``3d 4h 05m``, ``25h`` reads worse than ``1d 1h 00m``."""
    minutes = int(age.total_seconds() // 60)
    sign = "-" if minutes < 0 else ""
    days, rest = divmod(abs(minutes), 24 * 60)
    hours, minutes = divmod(rest, 60)
    return f"{sign}{days}d {hours}h {minutes:02d}m" if days else f"{sign}{hours}h {minutes:02d}m"


def _print(found: Status, out: TextIO) -> None:
    rows = [["LINEAGE", "NEWEST (UTC)", "AGE", "SNAPSHOTS", "STATE", "LAGGING"]]
    for item in found.lineages:
        state = "stale" if item.stale else "ok"
        rows.append(
            [
                item.lineage,
                utc_time(item.newest.created),
                _age(item.age),
                str(item.snapshots),
                state,
                ", ".join(item.lagging) or "-",
            ]
        )
    table(rows, out)
    if not found.lineages:
        out.write("no snapshot yet\n")
    lock = found.prune_lock
    if lock is not None:
        held = "stale (may be broken)" if lock.stale(found.now) else "held"
        out.write(f"prune lock: {lock.describe()}: {held}\n")
    out.write(f"chunks waiting to be deleted: {found.pending_chunks}\n")
    for name, locking in found.object_lock.items():
        said = {True: "Object Lock", False: "no Object Lock", None: "Object Lock unknown"}
        out.write(f"target {name}: {said[locking]}\n")
    if found.max_age is not None:
        verdict = "stale: " + ", ".join(found.stale) if found.stale else "none stale"
        out.write(f"max age {_age(found.max_age)}: {verdict}\n")


def _status_dict(found: Status) -> dict[str, object]:
    return {
        "now": found.now,
        "max_age_seconds": None if found.max_age is None else found.max_age.total_seconds(),
        "ok": found.ok,
        "stale": list(found.stale),
        "lineages": [
            {
                "lineage": item.lineage,
                "newest": item.newest.snapshot_id,
                "created": item.newest.created,
                "age_seconds": item.age.total_seconds(),
                "snapshots": item.snapshots,
                "stale": item.stale,
                "targets": dict(item.on_targets),
                "lagging": list(item.lagging),
            }
            for item in found.lineages
        ],
        "unreachable": {name: str(err) for name, err in found.unreachable.items()},
        "prune_lock": None
        if found.prune_lock is None
        else {
            "host": found.prune_lock.host,
            "pid": found.prune_lock.pid,
            "created": found.prune_lock.created,
            "expires": found.prune_lock.expires,
            "stale": found.prune_lock.stale(found.now),
        },
        "pending_chunks": found.pending_chunks,
        "object_lock": dict(found.object_lock),
    }
