"""The run's metrics for ``--metrics-file`` and ``--metrics-push`` (`ctfy_vault.metrics`).

`start` makes a `RunMetrics` when either option is given; the command records what it did
(`record_backup` and the others, through ``args.metrics``); `finish` ends it with the exit code
and writes or pushes it. A metrics file or push that fails is a warning: the run itself has
already happened, and its exit code stays.
"""

from __future__ import annotations

import argparse

from ctfy_vault.cli._render import ExitCode, warn
from ctfy_vault.exceptions import VaultError
from ctfy_vault.metrics import RunMetrics
from ctfy_vault.mirror import MirrorReport
from ctfy_vault.repository import VerifyReport
from ctfy_vault.vault import BackupInfo, PruneReport, Status

__all__ = [
    "finish",
    "mirror_run",
    "record_backup",
    "record_check",
    "record_mirror",
    "record_prune",
    "record_status",
    "start",
]


def start(args: argparse.Namespace) -> RunMetrics | None:
    """A `RunMetrics` for the command, when ``--metrics-file`` or ``--metrics-push`` was given."""
    if getattr(args, "metrics_file", None) is None and getattr(args, "metrics_push", None) is None:
        return None
    lineage = getattr(args, "lineage", None) or ""
    return RunMetrics(str(args.command), lineage=lineage)


def finish(
    args: argparse.Namespace, metrics: RunMetrics | None, code: int, seconds: float | None = None
) -> None:
    """End the run (it succeeded when ``code`` is 0) and write or push its metrics."""
    if metrics is None:
        return
    metrics.finish(succeeded=code == ExitCode.OK, seconds=seconds)
    if args.metrics_file is not None:
        try:
            metrics.write_textfile(args.metrics_file)
        except OSError as err:
            warn(f"metrics not written to {args.metrics_file}: {type(err).__name__}: {err}")
    if args.metrics_push is not None:
        try:
            metrics.push(args.metrics_push)
        except VaultError as err:
            warn(f"metrics not pushed: {err}")


def _metrics(args: argparse.Namespace) -> RunMetrics | None:
    found = getattr(args, "metrics", None)
    return found if isinstance(found, RunMetrics) else None


def record_backup(args: argparse.Namespace, info: BackupInfo) -> None:
    """What one snapshot's backup read, sealed and stored, per target."""
    metrics = _metrics(args)
    if metrics is None:
        return
    metrics.add_bytes("read", info.bytes_read)
    metrics.add_objects("chunks_sealed", info.chunks_sealed)
    metrics.add_objects("files", info.files)
    metrics.add_bytes("size", info.size)
    for outcome in info.outcomes:
        metrics.add_bytes("uploaded", outcome.bytes_uploaded, target=outcome.target)
        metrics.add_objects("chunks_uploaded", outcome.chunks_uploaded, target=outcome.target)
        metrics.target(outcome.target, up=outcome.committed)


def record_prune(args: argparse.Namespace, report: PruneReport, targets: list[str]) -> None:
    """What a prune forgot and deleted, and which targets failed."""
    metrics = _metrics(args)
    if metrics is None:
        return
    metrics.add_objects("snapshots_forgotten", len(report.forgotten))
    metrics.add_objects("chunks_deleted", report.chunks_deleted)
    metrics.add_objects("chunks_pending", report.chunks_pending)
    metrics.add_objects("packs_repacked", report.packs_repacked)
    metrics.add_objects("locked", len(report.locked))
    metrics.add_bytes("deleted", report.bytes_deleted)
    metrics.add_bytes("repacked", report.bytes_repacked)
    for name in targets:
        metrics.target(name, up=name not in report.errors)


def record_check(args: argparse.Namespace, report: VerifyReport) -> None:
    """What a check read and found, per target."""
    metrics = _metrics(args)
    if metrics is None:
        return
    metrics.add_objects("snapshots", report.snapshots)
    metrics.add_objects("chunks_read", report.chunks_read)
    errors = [p for p in report.problems if p.severity == "error"]
    metrics.add_objects("problems", len(errors))
    metrics.add_objects("warnings", len(report.warnings))
    for name in report.targets:
        bad = [p for p in errors if p.target == name]
        metrics.add_objects("problems", len(bad), target=name)
        metrics.target(name, up=not any(p.kind == "unreachable" for p in bad))


def mirror_run(args: argparse.Namespace, report: MirrorReport) -> None:
    """``mirror --watch``: write or push each run's metrics as it ends (not once at the end)."""
    if _metrics(args) is None:
        return
    metrics = RunMetrics("mirror")
    record_mirror(args, report, metrics)
    finish(args, metrics, ExitCode.OK if report.ok else ExitCode.FAILED, report.seconds)


def record_mirror(
    args: argparse.Namespace, report: MirrorReport, metrics: RunMetrics | None = None
) -> None:
    """What a mirror run copied, per replica."""
    metrics = metrics or _metrics(args)
    if metrics is None:
        return
    metrics.add_objects("listed", report.listed)
    metrics.add_objects("unchanged", report.unchanged)
    for replica in report.replicas:
        mine = [o for o in report.outcomes if o.replica == replica]
        copied = [o for o in mine if o.action != "failed"]
        metrics.add_objects("copied", len(copied), target=replica)
        metrics.add_objects("failed", len(mine) - len(copied), target=replica)
        metrics.add_bytes("copied", sum(o.size for o in copied), target=replica)
        metrics.target(replica, up=len(mine) == len(copied))


def record_status(args: argparse.Namespace, status: Status) -> None:
    """Each lineage's newest snapshot's age and its lagging targets."""
    metrics = _metrics(args)
    if metrics is None:
        return
    for item in status.lineages:
        metrics.lineage_age(item.age.total_seconds(), lineage=item.lineage)
        metrics.add_objects("snapshots", item.snapshots, lineage=item.lineage)
        for name in item.on_targets:
            metrics.lagging(name, lagging=name in item.lagging, lineage=item.lineage)
    for name in status.unreachable:
        metrics.target(name, up=False)
    for name in {n for item in status.lineages for n in item.on_targets}:
        metrics.target(name, up=True)
