"""Snapshot times checked, ordered newest first, and read in a zone only as far as needed."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timezone, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo

from ctfy_vault.exceptions import PolicyError
from ctfy_vault.retention._periods import keys

__all__ = ["LocalTimes", "Timeline"]

# POSIX timestamps are floats; between these years every distinct microsecond still maps to a
# distinct float, so sorting by them orders instants exactly. Outside, sort the datetimes.
_EXACT_FLOATS_FROM: Final = datetime(1700, 1, 1, tzinfo=UTC).timestamp()
_EXACT_FLOATS_UNTIL: Final = datetime(2240, 1, 1, tzinfo=UTC).timestamp()
# tzinfo classes whose utcoffset() never returns None, so their datetimes are always aware.
_ALWAYS_AWARE: Final = frozenset({timezone, ZoneInfo})
_FIRST_CHUNK: Final = 256
_LARGEST_CHUNK: Final = 1 << 16


def _time_of(item: object) -> object:
    moment = getattr(item, "time", None)
    if moment is None:
        raise TypeError(
            f"cannot plan {item!r}: it is not a datetime and has no 'time' attribute; "
            "pass key= to say where its time is"
        )
    return moment


def _all_datetimes(values: Sequence[Any]) -> bool:
    # A set of types is one quick pass; subclasses (pandas, pendulum) take the slower check.
    return {type(value) for value in values} <= {datetime} or all(
        isinstance(value, datetime) for value in values
    )


def _check(times: Sequence[Any], *, known_datetimes: bool = False) -> None:
    """Refuse anything that is not an aware datetime, naming the first offender."""
    if not known_datetimes and not _all_datetimes(times):
        index = next(i for i, moment in enumerate(times) if not isinstance(moment, datetime))
        raise TypeError(f"item {index} has time {times[index]!r}, which is not a datetime")
    zone_types = {type(moment.tzinfo) for moment in times}
    if type(None) in zone_types:
        index = next(i for i, moment in enumerate(times) if moment.tzinfo is None)
        raise PolicyError(
            f"item {index} has a naive datetime ({times[index].isoformat()}); retention needs "
            "aware datetimes, e.g. datetime(..., tzinfo=timezone.utc)"
        )
    if zone_types - _ALWAYS_AWARE:
        for index, moment in enumerate(times):
            if moment.utcoffset() is None:
                raise PolicyError(
                    f"item {index} has a naive datetime ({moment.isoformat()}): its tzinfo "
                    "gives no UTC offset"
                )


def _newest_first(values: Sequence[Any], stamp: Callable[[Any], float]) -> list[Any]:
    """Sort newest first, stably, by float timestamps when they are exact, else by datetimes."""
    # Floats compare several times faster than datetimes in the sort's inner loop.
    ordered = sorted(values, key=stamp, reverse=True)
    if ordered and not (
        stamp(ordered[-1]) >= _EXACT_FLOATS_FROM and stamp(ordered[0]) < _EXACT_FLOATS_UNTIL
    ):
        ordered = sorted(values, reverse=True)
    return ordered


class Timeline:
    """The items and their times, newest first; items with equal times keep their input order.

    Positions count from the newest item (position 0).

    Attributes:
        items: the items, newest first.
        times: the time of each item, in the same order (the same list when the items are
            datetimes themselves).
    """

    def __init__(self, items: list[Any], times: list[datetime]) -> None:
        self.items = items
        self.times = times

    @property
    def times_are_items(self) -> bool:
        """Whether the items are their own times (plain datetimes)."""
        return self.items is self.times

    @classmethod
    def of(cls, items: Sequence[Any], key: Callable[[Any], Any] | None) -> Timeline:
        """Read, check and order the time of every item.

        Args:
            items: the items, in input order.
            key: a function giving each item's time, or ``None`` to take datetimes as they
                are and other objects' ``time`` attribute.

        Returns:
            The timeline.

        Raises:
            TypeError: an item has no time, or a time is not a datetime.
            PolicyError: a time is a naive datetime.
        """
        if key is None and _all_datetimes(items):
            # Sorting the datetimes themselves lets keep and forget be cut from one list read
            # in order, instead of gathered from all over memory through indexes.
            _check(items, known_datetimes=True)
            ordered = _newest_first(items, datetime.timestamp)
            return cls(ordered, ordered)
        times: list[Any]
        if key is None:
            times = [item if isinstance(item, datetime) else _time_of(item) for item in items]
        else:
            times = [key(item) for item in items]
        _check(times)
        stamps: list[float] = [moment.timestamp() for moment in times]
        order = sorted(range(len(times)), key=stamps.__getitem__, reverse=True)
        if order and not (
            stamps[order[-1]] >= _EXACT_FLOATS_FROM and stamps[order[0]] < _EXACT_FLOATS_UNTIL
        ):
            order = sorted(range(len(times)), key=times.__getitem__, reverse=True)
        return cls([items[index] for index in order], [times[index] for index in order])

    def __len__(self) -> int:
        return len(self.times)

    def at(self, position: int) -> datetime:
        """Return the time at a position (0 is the newest)."""
        return self.times[position]

    def count_after(self, moment: datetime) -> int:
        """Return how many items are strictly after ``moment``: they hold the first positions."""
        times = self.times
        low, high = 0, len(times)
        while low < high:
            middle = (low + high) // 2
            if times[middle] > moment:
                low = middle + 1
            else:
                high = middle
        return low

    def local(self, zone: tzinfo) -> LocalTimes:
        """Return the wall-clock reader of this timeline in ``zone``."""
        return LocalTimes(self.times, zone)


class LocalTimes:
    """Wall-clock times in one zone, by position, converted only as far as some rule looks."""

    def __init__(self, times: list[datetime], zone: tzinfo) -> None:
        self._times = times
        self._zone = zone
        self._local: list[datetime] = []

    def upto(self, stop: int) -> list[datetime]:
        """Return a list holding at least the first ``stop`` wall-clock times."""
        local = self._local
        if len(local) < stop:
            zone = self._zone
            local.extend([moment.astimezone(zone) for moment in self._times[len(local) : stop]])
        return local

    def at(self, position: int) -> datetime:
        """Return the wall-clock time at one position."""
        if position < len(self._local):
            return self._local[position]
        return self._times[position].astimezone(self._zone)

    def period_keys(self, period: str, start: int, stop: int) -> Iterator[int]:
        """Yield the period key of each position from ``start`` up to ``stop``."""
        # Rules that stop early (a count that runs out) only pay for the prefix they walk.
        step = _FIRST_CHUNK
        while start < stop:
            end = min(stop, start + step)
            yield from keys(period, self.upto(end)[start:end])
            start = end
            step = min(step * 2, _LARGEST_CHUNK)
