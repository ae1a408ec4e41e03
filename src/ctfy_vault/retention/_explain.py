"""Render a `RetentionPlan` for people (a table) and for programs (JSON)."""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctfy_vault.retention._plan import RetentionPlan
    from ctfy_vault.retention._reason import Reason

__all__ = ["as_dict", "as_json", "table"]

_Row = tuple[datetime, Any, "tuple[Reason, ...] | None"]


def _stamp(moment: datetime | None, zone: tzinfo) -> str | None:
    if moment is None:
        return None
    local = moment.astimezone(zone)
    spec = "microseconds" if local.microsecond else "seconds"
    return local.isoformat(sep=" ", timespec=spec)


def _rows(plan: RetentionPlan[Any], kept_reasons: Sequence[tuple[Reason, ...]]) -> Iterator[_Row]:
    """Yield (time, item, reasons or None when forgotten), newest first."""
    kept: Iterator[_Row] = zip(plan.keep_times, plan.keep, kept_reasons, strict=True)
    forgotten: Iterator[_Row] = (
        (moment, item, None) for moment, item in zip(plan.forget_times, plan.forget, strict=True)
    )
    return heapq.merge(kept, forgotten, key=lambda row: row[0].astimezone(UTC), reverse=True)


def _header(plan: RetentionPlan[Any]) -> list[str]:
    zone = plan.policy.zone
    lines = [f"Policy: {plan.policy} (periods in {plan.policy.tz})"]
    if plan.now is not None:
        lines.append(f"Now: {_stamp(plan.now, zone)}")
    if plan.anchor is not None:
        source = "now" if plan.policy.anchor == "now" else "newest snapshot not after now"
        lines.append(f"Windows measured from {_stamp(plan.anchor, zone)} ({source})")
    for rule, moment in plan.cutoffs.items():
        window = getattr(plan.policy, rule)
        lines.append(f"  {rule} {window}: snapshots after {_stamp(moment, zone)}")
    total = len(plan.keep) + len(plan.forget)
    lines.append(f"Keep {len(plan.keep)} of {total} snapshots, forget {len(plan.forget)}.")
    return lines


def table(
    plan: RetentionPlan[Any],
    kept_reasons: Sequence[tuple[Reason, ...]],
    describe: Callable[[Any], str] | None,
) -> str:
    """Return the human table of a plan.

    Args:
        plan: the plan to show.
        kept_reasons: the reasons of each kept item, in ``plan.keep`` order.
        describe: turns an item into its label for a ``Snapshot`` column, or ``None``.

    Returns:
        A header (policy, now, anchor, cutoffs, totals) and one line per item, newest first.
    """
    zone = plan.policy.zone
    heading = ["Time", *(["Snapshot"] if describe else []), "Action", "Reasons"]
    body: list[list[str]] = []
    for moment, item, reasons in _rows(plan, kept_reasons):
        cells = [_stamp(moment, zone) or ""]
        if describe is not None:
            cells.append(describe(item))
        if reasons is None:
            cells += ["forget", ""]
        else:
            cells += ["keep", ", ".join(str(reason) for reason in reasons)]
        body.append(cells)
    widths = [
        max([len(heading[col]), *(len(row[col]) for row in body)])
        for col in range(len(heading) - 1)
    ]
    lines = _header(plan)
    lines.append("")
    for row in [heading, *body]:
        padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*padded, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"


def as_dict(
    plan: RetentionPlan[Any],
    kept_reasons: Sequence[tuple[Reason, ...]],
    describe: Callable[[Any], str] | None,
) -> dict[str, Any]:
    """Return the JSON-friendly form of a plan.

    Args:
        plan: the plan to convert.
        kept_reasons: the reasons of each kept item, in ``plan.keep`` order.
        describe: turns an item into its label under ``"snapshot"``, or ``None``.

    Returns:
        A mapping of plain JSON types; times are ISO 8601 in the policy's zone.
    """
    zone = plan.policy.zone

    def entry(moment: datetime, item: Any, reasons: tuple[Reason, ...] | None) -> dict[str, Any]:
        result: dict[str, Any] = {"time": _stamp(moment, zone)}
        if describe is not None:
            result["snapshot"] = describe(item)
        if reasons is not None:
            result["reasons"] = [reason.to_dict() for reason in reasons]
        return result

    return {
        "policy": str(plan.policy),
        "settings": plan.policy.to_dict(),
        "tz": plan.policy.tz,
        "now": _stamp(plan.now, zone),
        "anchor": _stamp(plan.anchor, zone),
        "cutoffs": {rule: _stamp(moment, zone) for rule, moment in plan.cutoffs.items()},
        "keep": [
            entry(moment, item, reasons)
            for moment, item, reasons in zip(plan.keep_times, plan.keep, kept_reasons, strict=True)
        ],
        "forget": [
            entry(moment, item, None)
            for moment, item in zip(plan.forget_times, plan.forget, strict=True)
        ],
    }


def as_json(
    plan: RetentionPlan[Any],
    kept_reasons: Sequence[tuple[Reason, ...]],
    describe: Callable[[Any], str] | None,
    indent: int | None,
) -> str:
    """Return `as_dict` as JSON text.

    Args:
        plan: the plan to convert.
        kept_reasons: as for `as_dict`.
        describe: as for `as_dict`.
        indent: passed to ``json.dumps``.

    Returns:
        The JSON text.
    """
    return json.dumps(as_dict(plan, kept_reasons, describe), indent=indent, ensure_ascii=False)
