"""Apply a `Policy` to snapshot times: which snapshots to keep, which to forget, and why."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from itertools import compress
from types import MappingProxyType
from typing import Any, Generic, Protocol, TypeVar, overload

import attrs

from ctfy_vault.exceptions import PolicyError
from ctfy_vault.retention import _explain
from ctfy_vault.retention._periods import PERIOD_OF_RULE, label
from ctfy_vault.retention._policy import Policy
from ctfy_vault.retention._reason import Reason
from ctfy_vault.retention._rules import OLDEST_SUFFIX, Decision, Mark, decide
from ctfy_vault.retention._timeline import Timeline

__all__ = ["RetentionPlan", "SupportsTime", "plan"]

_FLIP = bytes.maketrans(b"\x00\x01", b"\x01\x00")

T = TypeVar("T")
TimedT = TypeVar("TimedT", bound="datetime | SupportsTime")


class SupportsTime(Protocol):
    """Anything with an aware ``time`` attribute, such as a snapshot record."""

    @property
    def time(self) -> datetime:
        """When the snapshot was taken, as an aware datetime."""
        ...


class _Reasons(Mapping[T, tuple[Reason, ...]]):
    """The reasons of each kept item, looked up by identity first and by equality second."""

    def __init__(self, kept: tuple[T, ...], decision: Decision, policy: Policy) -> None:
        self._kept = kept
        self._decision = decision
        self._prefix = decision.prefix
        self._sparse = decision.sparse()
        self._policy = policy
        self._by_identity: dict[int, int] | None = None
        self._by_equality: dict[Hashable, int] | None = None
        self._made: dict[int, tuple[Reason, ...]] = {}

    def _index(self, item: object) -> int:
        if self._by_identity is None:
            # Built on first lookup: plans read only through keep/forget never pay for it.
            table: dict[int, int] = {}
            for index, kept in enumerate(self._kept):
                table.setdefault(id(kept), index)
            self._by_identity = table
        found = self._by_identity.get(id(item))
        if found is not None and self._kept[found] is item:
            return found
        if self._by_equality is None:
            # Equal datetimes built elsewhere (or the same instant in another offset) must find
            # the kept item too; the first kept item wins among equal ones.
            equal: dict[Hashable, int] = {}
            for position, kept in enumerate(self._kept):
                try:
                    equal.setdefault(kept, position)
                except TypeError:
                    continue
            self._by_equality = equal
        if not isinstance(item, Hashable):
            raise KeyError(item)
        try:
            return self._by_equality[item]
        except (KeyError, TypeError):
            raise KeyError(item) from None

    def __getitem__(self, item: T) -> tuple[Reason, ...]:
        return self.at(self._index(item))

    def at(self, index: int) -> tuple[Reason, ...]:
        """Return the reasons of the kept item at ``index``, building them on first use."""
        made = self._made.get(index)
        if made is None:
            position = index if index < self._prefix else self._sparse[index - self._prefix]
            marks = self._decision.marks_at(position)
            made = tuple(_reason(mark, self._policy) for mark in marks)
            self._made[index] = made
        return made

    def __iter__(self) -> Iterator[T]:
        return iter(self._kept)

    def __len__(self) -> int:
        return len(self._kept)

    def __repr__(self) -> str:
        return f"<reasons for {len(self._kept)} kept snapshots>"


def _reason(mark: Mark, policy: Policy) -> Reason:
    rule, key, slot = mark
    oldest = rule.endswith(OLDEST_SUFFIX)
    if oldest:
        rule = rule[: -len(OLDEST_SUFFIX)]
    if rule == "tags":
        return Reason(rule=rule, tag=key)
    if rule == "within":
        return Reason(rule=rule, window=policy.within)
    if rule == "last":
        return Reason(rule=rule, slot=slot)
    if rule in PERIOD_OF_RULE:
        period = label(PERIOD_OF_RULE[rule], key)
        window = getattr(policy, rule) if rule.startswith("within_") else None
        return Reason(rule=rule, period=period, window=window, slot=slot, oldest=oldest)
    return Reason(rule=rule)


@attrs.frozen
class RetentionPlan(Generic[T]):
    """What a policy does to a list of snapshots: a frozen, explainable decision.

    ``keep`` and ``forget`` are disjoint, together hold every input item exactly once (the
    same objects, not copies), and are ordered newest first; items with equal times keep
    their input order.

    Attributes:
        keep: the items to keep, newest first.
        forget: the items to forget, newest first.
        reasons: for each kept item, every rule that keeps it, in rule order (see
            `Reason`). Looked up by identity, or by equality for hashable items such as
            datetimes; forgotten items are not in it.
        keep_times: the time of each kept item, in the same order.
        forget_times: the time of each forgotten item, in the same order.
        policy: the policy applied.
        now: the moment of planning as an aware UTC datetime (the newest item's time unless
            given), or ``None`` for an empty input without ``now``.
        anchor: the moment windows were measured from, or ``None`` when no window applied
            (no window rule, or every item lies after ``now``).
        cutoffs: for each window rule, the instant a snapshot must be newer than.
    """

    keep: tuple[T, ...]
    forget: tuple[T, ...]
    reasons: Mapping[T, tuple[Reason, ...]] = attrs.field(eq=False, repr=False)
    keep_times: tuple[datetime, ...] = attrs.field(repr=False)
    forget_times: tuple[datetime, ...] = attrs.field(repr=False)
    policy: Policy
    now: datetime | None
    anchor: datetime | None
    cutoffs: Mapping[str, datetime] = attrs.field(eq=False)

    def explain(self, *, describe: Callable[[T], str] | None = None) -> str:
        """Return a human table of every item, newest first, with its action and reasons.

        Args:
            describe: turns an item into a short label (such as a snapshot id) shown in its
                own column; without it only the time is shown.

        Returns:
            The table, preceded by the policy, the anchor and the window cutoffs.
        """
        return _explain.table(self, self._kept_reasons(), describe)

    def to_dict(self, *, describe: Callable[[T], str] | None = None) -> dict[str, Any]:
        """Return the JSON-friendly form of the plan, for ``forget --dry-run --json``.

        Args:
            describe: turns an item into a label stored under ``"snapshot"``.

        Returns:
            A mapping of plain JSON types: policy, zone, now, anchor, cutoffs, and the kept
            (with reasons) and forgotten items in the policy's zone.
        """
        return _explain.as_dict(self, self._kept_reasons(), describe)

    def to_json(
        self, *, describe: Callable[[T], str] | None = None, indent: int | None = None
    ) -> str:
        """Return `to_dict` encoded as JSON text.

        Args:
            describe: as for `to_dict`.
            indent: passed to ``json.dumps``.

        Returns:
            The JSON text.
        """
        return _explain.as_json(self, self._kept_reasons(), describe, indent)

    def _kept_reasons(self) -> list[tuple[Reason, ...]]:
        reasons = self.reasons
        if isinstance(reasons, _Reasons):
            # By position, so an object passed twice still shows each copy's own reasons.
            return [reasons.at(index) for index in range(len(self.keep))]
        return [reasons[item] for item in self.keep]


def _aware_now(now: datetime) -> datetime:
    if not isinstance(now, datetime):
        raise TypeError(f"now must be a datetime, got {now!r}")
    if now.utcoffset() is None:
        raise PolicyError(f"now is a naive datetime ({now.isoformat()}); give it a tzinfo")
    return now


@overload
def plan(
    items: Iterable[TimedT],
    policy: Policy,
    *,
    now: datetime | None = None,
    key: None = None,
) -> RetentionPlan[TimedT]: ...


@overload
def plan(
    items: Iterable[T],
    policy: Policy,
    *,
    now: datetime | None = None,
    key: Callable[[T], datetime],
) -> RetentionPlan[T]: ...


def plan(
    items: Iterable[Any],
    policy: Policy,
    *,
    now: datetime | None = None,
    key: Callable[[Any], datetime] | None = None,
) -> RetentionPlan[Any]:
    """Decide which items a policy keeps and which it forgets, and record why.

    Items are ordered newest first by instant (ties keep their input order, so of identical
    times the first given is its period's newest and the last given the oldest item). Each
    count rule keeps the newest item of each of its N most recent periods that hold items, and
    the oldest item while it still has room; each window rule keeps items newer than its cutoff
    (all, or the newest per period and the oldest item while the window reaches it); tagged
    items, items after ``now`` and the newest item not after ``now`` are always kept. Periods
    are taken in the policy's zone. The decisions match restic's ``forget`` (0.16 and later);
    ``docs/retention.md`` lists every rule and the few deliberate differences.

    Args:
        items: aware datetimes, objects with an aware ``time`` attribute, or anything
            ``key`` maps to an aware datetime. Objects with a ``tags`` attribute (a collection
            of strings) can be kept by the policy's ``tags``.
        policy: the policy to apply.
        now: the moment of planning, an aware datetime; defaults to the newest item's time.
            Items after it are kept; windows are measured from the newest item not after it,
            or from ``now`` itself with ``anchor="now"``.
        key: a function returning each item's time, for items that keep it elsewhere.

    Returns:
        The frozen plan.

    Raises:
        PolicyError: an item's time or ``now`` is a naive datetime.
        TypeError: an item has no time, a time is not a datetime, or ``policy`` is not a
            `Policy`.
    """
    if not isinstance(policy, Policy):
        raise TypeError(f"policy must be a Policy, got {policy!r}")
    sequence: Sequence[Any] = items if isinstance(items, list | tuple) else list(items)
    timeline = Timeline.of(sequence, key)
    total = len(timeline)
    moment = _aware_now(now) if now is not None else (timeline.at(0) if total else None)
    decision = decide(policy, timeline, moment) if moment is not None and total else Decision()
    prefix = decision.prefix
    sparse = decision.sparse()
    # Byte flags let C loops (itertools.compress) cut a million items in milliseconds.
    kept_flags = bytearray(b"\x01") * prefix + bytearray(total - prefix)
    for position in sparse:
        kept_flags[position] = 1
    forgotten_flags = kept_flags.translate(_FLIP)
    keep = tuple(compress(timeline.items, kept_flags))
    forget = tuple(compress(timeline.items, forgotten_flags))
    same = timeline.times_are_items
    return RetentionPlan(
        keep=keep,
        forget=forget,
        reasons=_Reasons(keep, decision, policy),
        keep_times=keep if same else tuple(compress(timeline.times, kept_flags)),
        forget_times=forget if same else tuple(compress(timeline.times, forgotten_flags)),
        policy=policy,
        now=moment.astimezone(UTC) if moment is not None else None,
        anchor=decision.anchor.astimezone(UTC) if decision.anchor is not None else None,
        cutoffs=MappingProxyType(decision.cutoffs),
    )
