"""Keeping the repository in shape: ``forget``, ``prune``, ``check`` and ``heal``.

``forget`` and ``prune`` apply each configured lineage's retention policy (``forget --dry-run``
only shows the plan); ``check`` verifies and records the known heads; ``heal`` copies and repairs.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import attrs

from ctfy_vault.cli._config import Config
from ctfy_vault.cli._context import load, now, open_vault
from ctfy_vault.cli._heads import heads_path, note_first_run, read_heads, write_heads
from ctfy_vault.cli._metrics import record_check, record_prune
from ctfy_vault.cli._options import KEEP_COUNTS, KEEP_WINDOWS
from ctfy_vault.cli._progress import format_bytes
from ctfy_vault.cli._render import (
    ExitCode,
    dump,
    exit_code_for_partial,
    report_failed_targets,
    table,
    utc_time,
    warn,
    write_error,
)
from ctfy_vault.exceptions import ConfigurationError, TargetsFailedError
from ctfy_vault.retention import Policy, RetentionPlan
from ctfy_vault.vault import (
    KnownHeads,
    LockReport,
    Problem,
    PruneReport,
    SnapshotInfo,
    Vault,
    VerifyReport,
)
from ctfy_vault.writer import HealReport

__all__ = ["check", "forget", "heal", "prune"]


# -- retention -----------------------------------------------------------------------------------


def forget(args: argparse.Namespace, out: TextIO) -> ExitCode:
    """``forget``: the plan with ``--dry-run``; without it, prune with the default grace period."""
    if not args.dry_run:
        args.grace = None
        return prune(args, out)
    config = load(args)
    policies = _policies(config, args.lineage, args)
    _config, vault = open_vault(args, config)
    _unplanned(vault, policies, args.lineage)
    scoped = _target_policies(config, args)
    if scoped:
        # Each target is planned on its own: the dry run of a prune shows every target's plan.
        report = vault.prune(
            policies, lineage=args.lineage, now=now(), dry_run=True, target_policies=scoped
        )
        by_target = report.target_plans
    else:
        by_target = {}
        plans = vault.forget(policies, lineage=args.lineage, now=now(), dry_run=True)
    if args.json:
        if by_target:
            dump({"dry_run": True, "targets": _target_rows(by_target)}, out)
        else:
            dump({"dry_run": True, "plan": _plan_rows(plans)}, out)
    else:
        if by_target:
            _print_target_plans(by_target, out)
        else:
            _print_plan(_plan_rows(plans), out)
        out.write("dry run: nothing was changed\n")
    return ExitCode.OK


def prune(args: argparse.Namespace, out: TextIO) -> ExitCode:
    """``prune``: apply the policies under the lock and sweep unreferenced chunks."""
    config = load(args)
    policies = _policies(config, args.lineage, args)
    _config, vault = open_vault(args, config)
    _unplanned(vault, policies, args.lineage)
    options: dict[str, Any] = {"lineage": args.lineage, "dry_run": args.dry_run}
    if args.grace is not None:
        options["grace"] = args.grace
    if getattr(args, "repack_below", None) is not None:
        options["repack_below"] = args.repack_below
    scoped = _target_policies(config, args)
    if scoped:
        options["target_policies"] = scoped
    try:
        report = vault.prune(policies, now=now(), **options)
    except TargetsFailedError as err:
        return report_failed_targets("prune", err)
    record_prune(args, report, [t.name for t in vault.targets])
    if args.json:
        planned: dict[str, object] = (
            {"targets": _target_rows(report.target_plans)}
            if scoped
            else {"plan": _plan_rows(report.plans)}
        )
        dump({**_prune_dict(report), **planned}, out)
    else:
        if scoped:
            _print_target_plans(report.target_plans, out)
        else:
            _print_plan(_plan_rows(report.plans), out)
        _print_prune(report, out, vault_packed=vault.config.packed)
    for name, error in report.errors.items():
        write_error("prune", f"{name}: {type(error).__name__}: {error}")
    if report.ok:
        return ExitCode.OK
    return exit_code_for_partial({t.name: report.errors.get(t.name) for t in vault.targets})


def keep_policy(args: argparse.Namespace) -> Policy | None:
    """The policy restic's ``--keep-*`` flags give, or ``None`` when none is given.

    Raises:
        ConfigurationError: a value is not a count or duration (the message names the flag).
    """
    given: dict[str, object] = {}
    for rule in (*KEEP_COUNTS, *KEEP_WINDOWS):
        value = getattr(args, f"keep_{rule.replace('-', '_')}", None)
        if value is not None:
            given[f"keep-{rule}"] = value
    if getattr(args, "keep_tag", None):
        given["tags"] = list(args.keep_tag)
    if not given:
        if getattr(args, "keep_tz", None) is not None:
            raise ConfigurationError("--keep-tz needs a --keep-* rule to apply to")
        return None
    if args.keep_tz is not None:
        given["tz"] = args.keep_tz
    try:
        return Policy.from_dict(given)
    except ConfigurationError as err:
        raise ConfigurationError(f"the --keep-* flags: {err}") from None


def _target_policies(config: Config, args: argparse.Namespace) -> dict[str, dict[str, Policy]]:
    """The config's per-target policies, unless ``--keep-*`` flags replace every policy."""
    return {} if keep_policy(args) is not None else config.target_policies()


def _policies(
    config: Config, lineage: str | None, args: argparse.Namespace
) -> Policy | dict[str, Policy]:
    """The policies to plan.

    The ``--keep-*`` flags' policy for every lineage (or only ``lineage``), else the configured
    lineages' own.
    """
    flags = keep_policy(args)
    if flags is not None:
        return flags if lineage is None else {lineage: flags}
    policies = config.policies()
    if lineage is not None:
        config.lineage(lineage)
        if lineage not in policies:
            raise ConfigurationError(f"lineage {lineage} has no policy in {config.path}")
        return {lineage: policies[lineage]}
    if not policies:
        raise ConfigurationError(f"no lineage in {config.path} has a policy")
    return policies


def _unplanned(vault: Vault, policies: Policy | Mapping[str, Policy], lineage: str | None) -> None:
    if lineage is not None or isinstance(policies, Policy):
        return
    others = sorted({s.lineage for s in vault.snapshots()} - set(policies))
    if others:
        warn(f"lineage(s) without a policy, left alone: {', '.join(others)}")


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


def _target_rows(
    by_target: Mapping[str, Mapping[str, RetentionPlan[SnapshotInfo]]],
) -> dict[str, list[dict[str, object]]]:
    return {name: _plan_rows(plans) for name, plans in sorted(by_target.items())}


def _print_target_plans(
    by_target: Mapping[str, Mapping[str, RetentionPlan[SnapshotInfo]]], out: TextIO
) -> None:
    for name, rows in _target_rows(by_target).items():
        out.write(f"target {name}:\n")
        _print_plan(rows, out)


def _print_plan(rows: list[dict[str, object]], out: TextIO) -> None:
    shown = [["SNAPSHOT", "LINEAGE", "TIME (UTC)", "KEEP", "REASONS"]]
    for row in rows:
        created = row["created"]
        assert isinstance(created, datetime)  # noqa: S101 - built by _plan_rows
        reasons = row["reasons"]
        assert isinstance(reasons, list)  # noqa: S101 - built by _plan_rows
        shown.append(
            [
                str(row["snapshot"])[:12],
                str(row["lineage"]),
                utc_time(created),
                "keep" if row["keep"] else "forget",
                ", ".join(reasons),
            ]
        )
    table(shown, out)
    kept = sum(1 for row in rows if row["keep"])
    out.write(f"keep {kept}, forget {len(rows) - kept}\n")


def _prune_dict(report: PruneReport) -> dict[str, object]:
    return {
        "dry_run": report.dry_run,
        "records": list(report.records),
        "forgotten": [s.snapshot_id for s in report.forgotten],
        "chunks_deleted": report.chunks_deleted,
        "bytes_deleted": report.bytes_deleted,
        "chunks_pending": report.chunks_pending,
        "chunks_unused": report.chunks_unused,
        "packs_deleted": report.packs_deleted,
        "packs_repacked": report.packs_repacked,
        "packs_written": report.packs_written,
        "bytes_repacked": report.bytes_repacked,
        "packs_pending": report.packs_pending,
        "sweep_skipped": report.sweep_skipped,
        "locked": dict(report.locked),
        "errors": dict(report.errors),
    }


def _print_prune(report: PruneReport, out: TextIO, *, vault_packed: bool) -> None:
    if report.locked:
        soonest = min(report.locked.values())
        out.write(
            f"{len(report.locked)} object(s) still under Object Lock were left; the first can "
            f"go after {utc_time(soonest)}, the last after {utc_time(max(report.locked.values()))}\n"
        )
    verb = "would forget" if report.dry_run else "forgot"
    out.write(
        f"{verb} {len(report.forgotten)} snapshot(s); {len(report.records)} prune record(s); "
        f"deleted {report.chunks_deleted} chunk(s) ({format_bytes(report.bytes_deleted)}); "
        f"{report.chunks_pending} unreferenced chunk(s) wait out the grace period\n"
    )
    if vault_packed:
        out.write(
            f"packs: deleted {report.packs_deleted}, repacked {report.packs_repacked} into "
            f"{report.packs_written} new ({format_bytes(report.bytes_repacked)} written); "
            f"{report.packs_pending} loose pack(s) and {report.chunks_unused} unused chunk(s) "
            "kept for now\n"
        )
    if report.sweep_skipped:
        out.write(f"chunk sweep skipped: {report.sweep_skipped}\n")
    if report.dry_run:
        out.write("dry run: nothing was changed\n")


# -- check ---------------------------------------------------------------------------------------


def check(args: argparse.Namespace, out: TextIO) -> ExitCode:
    """``check``: verify every target; a clean check records the current heads."""
    config, vault = open_vault(args)
    path = heads_path(config, vault.repo_id, args.known_heads, os.environ)
    known = read_heads(path, vault.repo_id)
    if args.read_data_subset is not None and args.read_data is not False:
        raise ConfigurationError("--read-data and --read-data-subset cannot be used together")
    read_data = args.read_data if args.read_data_subset is None else args.read_data_subset
    report = vault.verify(read_data=read_data, known_heads=known)
    record_check(args, report)
    locks = _lock_check(config, vault)
    if locks is not None:
        report = attrs.evolve(report, problems=(*report.problems, *_under_locked(locks)))
    if args.json:
        dump({**_check_dict(report, known, path), "locks": _locks_dict(locks)}, out)
    else:
        _print_check(report, known, path, out)
        if locks is not None and locks.unlockable:
            out.write(f"object lock: cannot lock on {', '.join(locks.unlockable)}\n")
    if not report.ok:
        return ExitCode.FAILED
    if path is None:
        return ExitCode.OK
    if known is None:
        note_first_run(path)
    return ExitCode.OK if write_heads(path, report.heads, "check") else ExitCode.FAILED


def _lock_check(config: Config, vault: Vault) -> LockReport | None:
    """Read the locks the lineages' policies need, where a target may lock (else ``None``)."""
    policies = config.policies()
    if not policies or not any(t.supports.retain_until for t in vault.targets):
        return None
    found = vault.lock(policies, now=now(), dry_run=True, target_policies=config.target_policies())
    for name, err in found.errors.items():
        warn(f"object lock on {name} not checked: {type(err).__name__}: {err}")
    return found


def _under_locked(locks: LockReport) -> list[Problem]:
    return [
        Problem(
            kind="under-locked",
            target=target,
            key=key,
            detail=(
                f"locked until {utc_time(has) if has else 'never'}; the retention schedule "
                f"needs {utc_time(until)} (a backup or prune raises it)"
            ),
        )
        for target, keys in sorted(locks.short.items())
        for key, (has, until) in sorted(keys.items())
    ]


def _locks_dict(locks: LockReport | None) -> dict[str, object] | None:
    if locks is None:
        return None
    return {
        "checked": dict(locks.checked),
        "short": {name: len(keys) for name, keys in locks.short.items()},
        "unlockable": list(locks.unlockable),
    }


def _check_dict(
    report: VerifyReport, known: KnownHeads | None, path: Path | None
) -> dict[str, object]:
    return {
        "ok": report.ok,
        "targets": list(report.targets),
        "snapshots": report.snapshots,
        "chunks_read": report.chunks_read,
        "problems": [
            {
                "kind": p.kind,
                "severity": p.severity,
                "target": p.target,
                "key": p.key,
                "detail": p.detail,
            }
            for p in report.problems
        ],
        "heads": {h.lineage: {"name": h.name, "hash": h.hash} for h in report.heads},
        "known_heads": {
            "file": None if path is None else str(path),
            "lineages": None if known is None else [h.lineage for h in known],
        },
    }


def _heads_line(known: KnownHeads | None, path: Path | None) -> str:
    if path is None:
        return "known heads: off (deleting the newest snapshots everywhere goes unnoticed)"
    if known is None:
        return f"known heads: none yet in {path} (first run)"
    return f"known heads: {len(known)} lineage(s) checked against {path}"


def _print_check(
    report: VerifyReport, known: KnownHeads | None, path: Path | None, out: TextIO
) -> None:
    out.write(
        f"checked {len(report.targets)} target(s): {report.snapshots} snapshot object(s), "
        f"{report.chunks_read} chunk(s) re-read and authenticated\n{_heads_line(known, path)}\n"
    )
    rows = [["KIND", "TARGET", "KEY", "DETAIL"]]
    for p in report.problems:
        kind = p.kind if p.severity == "error" else f"{p.kind} (warning)"
        rows.append([kind, p.target or "-", p.key or "-", p.detail])
    if report.problems:
        table(rows, out)
    errors = len(report.problems) - len(report.warnings)
    warned = f"; {len(report.warnings)} warning(s)" if report.warnings else ""
    out.write(f"no problems found{warned}\n" if report.ok else f"{errors} problem(s){warned}\n")


# -- heal ----------------------------------------------------------------------------------------


def heal(args: argparse.Namespace, out: TextIO) -> ExitCode:
    """``heal``: copy what each target lacks; ``--repair`` replaces damaged copies."""
    _config, vault = open_vault(args)
    try:
        report = vault.heal(repair=args.repair, read_data=args.read_data, now=now())
    except TargetsFailedError as err:
        return report_failed_targets("heal", err)
    if args.json:
        dump(_heal_dict(report), out)
    else:
        _print_heal(report, out)
    return ExitCode.OK if report.ok else ExitCode.FAILED


def _heal_dict(report: HealReport) -> dict[str, object]:
    return {
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
    }


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
