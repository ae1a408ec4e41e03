"""The rules themselves: each marks the positions (0 = newest) it keeps."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import attrs

from ctfy_vault.retention._duration import cutoff
from ctfy_vault.retention._periods import PERIOD_OF_RULE, key_of
from ctfy_vault.retention._policy import Count, Policy, unlimited
from ctfy_vault.retention._reason import RULES
from ctfy_vault.retention._timeline import LocalTimes, Timeline

__all__ = ["OLDEST_SUFFIX", "Decision", "Mark", "decide"]

# Decisions are recorded compactly while planning, as (rule, key, slot) tuples, and turned into
# `Reason` values only when someone reads them: a million snapshots kept by `within` would
# otherwise cost a million objects nobody looks at.
Mark = tuple[str, Any, int | None]
OLDEST_SUFFIX: Final = ":oldest"
_AFTER_NOW: Final[Mark] = ("after_now", None, None)
_WITHIN: Final[Mark] = ("within", None, None)
_EMPTY: Final[Mark] = ("allow_empty", None, None)
_NEWEST: Final[Mark] = ("newest", None, None)
_RANK: Final = {rule: rank for rank, rule in enumerate(RULES)}


@attrs.frozen
class Decision:
    """What the rules decided, by position (0 is the newest item).

    Rules that keep a whole prefix of the timeline (after now, within, an empty policy) are
    stored as spans, so keeping a million snapshots costs no per-snapshot bookkeeping; every
    other rule marks single positions.

    Attributes:
        spans: ``(stop, mark)`` pairs: every position below ``stop`` carries ``mark``.
        marks: the marks of single positions.
        anchor: the moment windows were measured from, or ``None``.
        cutoffs: each window rule's cutoff.
    """

    spans: list[tuple[int, Mark]] = attrs.field(factory=list)
    marks: dict[int, list[Mark]] = attrs.field(factory=dict)
    anchor: datetime | None = None
    cutoffs: dict[str, datetime] = attrs.field(factory=dict)

    @property
    def prefix(self) -> int:
        """How many of the newest positions the spans keep."""
        return max((stop for stop, _ in self.spans), default=0)

    def sparse(self) -> list[int]:
        """Return the positions kept by single marks beyond the spans, in order."""
        prefix = self.prefix
        return sorted(position for position in self.marks if position >= prefix)

    def marks_at(self, position: int) -> list[Mark]:
        """Return every mark of a position, in the order reasons are listed."""
        found = [mark for stop, mark in self.spans if position < stop]
        found.extend(self.marks.get(position, ()))
        found.sort(key=lambda mark: _RANK[mark[0].removesuffix(OLDEST_SUFFIX)])
        return found


def _mark(marks: dict[int, list[Mark]], position: int, mark: Mark) -> None:
    found = marks.get(position)
    if found is None:
        marks[position] = [mark]
    else:
        found.append(mark)


def _apply_count(
    rule: str, count: Count, local: LocalTimes, total: int, marks: dict[int, list[Mark]]
) -> None:
    """Keep the newest item of each of ``count`` most recent periods, then maybe the oldest."""
    remaining = -1 if count is unlimited else count
    if rule == "last":
        for position in range(total if remaining < 0 else min(remaining, total)):
            _mark(marks, position, (rule, None, position + 1))
        return
    period = PERIOD_OF_RULE[rule]
    previous: int | None = None
    seen: set[int] = set()
    slot = 0
    oldest_counted = False
    for position, key in enumerate(local.period_keys(period, 0, total)):
        # The set only matters where a zone turns its clock back across a period boundary: a
        # period met again after another one is still counted once.
        if key != previous and key not in seen:
            seen.add(key)
            previous = key
            slot += 1
            _mark(marks, position, (rule, key, slot))
            oldest_counted = position == total - 1
            if remaining > 0:
                remaining -= 1
                if remaining == 0:
                    return
    if total and not oldest_counted:
        # The rule still has room after the whole history: keep the oldest snapshot too, so a
        # young repository keeps its first backup (restic 0.16 and later).
        oldest_key = key_of(period, local.at(total - 1))
        _mark(marks, total - 1, (rule + OLDEST_SUFFIX, oldest_key, slot + 1))


def _apply_window(
    rule: str, local: LocalTimes, marks: dict[int, list[Mark]], *, start: int, stop: int, total: int
) -> None:
    """Keep the newest item of each period among positions ``start`` to ``stop``, and the oldest.

    The oldest item of all (position ``total - 1``) is kept too when the window reaches it and
    it is not already the newest of its period, as restic does since 0.16.
    """
    previous: int | None = None
    seen: set[int] = set()
    last_marked = -1
    for position, key in enumerate(local.period_keys(PERIOD_OF_RULE[rule], start, stop), start):
        if key != previous and key not in seen:
            seen.add(key)
            previous = key
            last_marked = position
            _mark(marks, position, (rule, key, None))
    if start < stop and stop == total and last_marked != total - 1:
        # The window still has room at the end of the history: keep the oldest snapshot too, so
        # a young repository keeps its first backup (restic 0.16 and later).
        oldest_key = key_of(PERIOD_OF_RULE[rule], local.at(total - 1))
        _mark(marks, total - 1, (rule + OLDEST_SUFFIX, oldest_key, None))


def _apply_tags(timeline: Timeline, wanted: frozenset[str], marks: dict[int, list[Mark]]) -> None:
    for position, item in enumerate(timeline.items):
        carried = getattr(item, "tags", None)
        if not carried:
            continue
        if isinstance(carried, str):
            carried = (carried,)
        for tag in sorted(wanted.intersection(carried)):
            _mark(marks, position, ("tags", tag, None))


def _reach(
    policy: Policy, timeline: Timeline, moment: datetime, after_now: int
) -> tuple[datetime | None, dict[str, datetime], dict[str, int]]:
    """Return the window anchor, each window's cutoff, and how many items lie inside each."""
    windows = policy.windows()
    anchor: datetime | None = None
    if windows:
        if policy.anchor == "now":
            anchor = moment
        elif after_now < len(timeline):
            anchor = timeline.at(after_now)
    cutoffs: dict[str, datetime] = {}
    inside: dict[str, int] = {}
    if anchor is not None:
        for rule, duration in windows.items():
            cutoffs[rule] = cutoff(anchor, duration, policy.zone)
            inside[rule] = timeline.count_after(cutoffs[rule])
    return anchor, cutoffs, inside


def decide(policy: Policy, timeline: Timeline, moment: datetime) -> Decision:
    """Apply every rule of ``policy`` to a non-empty timeline.

    Rules run in the order their reasons are listed: after now, tags, within, the count rules
    (last, hourly, daily, weekly, monthly, yearly), then the periodic windows. The newest item
    not after ``now`` is kept even when no rule keeps it.

    Args:
        policy: the policy.
        timeline: the items and their times, newest first (items are read for ``tags``).
        moment: ``now`` as an aware datetime.

    Returns:
        The marks of every kept position, the anchor and the cutoffs.
    """
    decision = Decision()
    marks = decision.marks
    total = len(timeline)
    after_now = timeline.count_after(moment)
    if after_now:
        decision.spans.append((after_now, _AFTER_NOW))
    if policy.tags:
        _apply_tags(timeline, policy.tags, marks)
    anchor, cutoffs, inside = _reach(policy, timeline, moment, after_now)
    local = timeline.local(policy.zone)
    if inside.get("within"):
        decision.spans.append((inside["within"], _WITHIN))
    for rule, count in policy.counts().items():
        _apply_count(rule, count, local, total, marks)
    for rule, reach in inside.items():
        if rule != "within":
            # Items after now are kept anyway; leaving them out of the periods keeps the
            # anchor the newest of its period, so it is never forgotten by its own windows.
            _apply_window(rule, local, marks, start=after_now, stop=reach, total=total)
    if policy.is_empty:
        decision.spans.append((total, _EMPTY))
    if after_now < total and after_now >= decision.prefix and after_now not in marks:
        # The latest backup is the one a restore most likely needs; windows measured from now,
        # or snapshots after now filling the count slots, could otherwise drop it.
        _mark(marks, after_now, _NEWEST)
    return attrs.evolve(decision, anchor=anchor, cutoffs=cutoffs)
