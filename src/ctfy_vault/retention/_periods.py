"""Calendar periods (hour, day, ISO week, month, year) as sortable integer keys and labels."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Final

__all__ = ["PERIOD_OF_RULE", "key_of", "keys", "label"]

# Keys are integers that grow with the wall clock, so a walk from the newest snapshot sees them
# in non-increasing order except where a zone turns its clock back across a period boundary.
# Week keys count Mondays since 0001-01-01 (itself a Monday), so a key is exactly one ISO week.


def _hour_keys(times: Sequence[datetime]) -> list[int]:
    return [moment.toordinal() * 24 + moment.hour for moment in times]


def _day_keys(times: Sequence[datetime]) -> list[int]:
    return [moment.toordinal() for moment in times]


def _week_keys(times: Sequence[datetime]) -> list[int]:
    return [(moment.toordinal() - 1) // 7 for moment in times]


def _month_keys(times: Sequence[datetime]) -> list[int]:
    return [moment.year * 12 + moment.month - 1 for moment in times]


def _year_keys(times: Sequence[datetime]) -> list[int]:
    return [moment.year for moment in times]


def _hour_label(key: int) -> str:
    return f"{date.fromordinal(key // 24).isoformat()} {key % 24:02d}:00"


def _day_label(key: int) -> str:
    return date.fromordinal(key).isoformat()


def _week_label(key: int) -> str:
    year, week, _ = date.fromordinal(key * 7 + 1).isocalendar()
    return f"{year:04d}-W{week:02d}"


def _month_label(key: int) -> str:
    return f"{key // 12:04d}-{key % 12 + 1:02d}"


def _year_label(key: int) -> str:
    return f"{key:04d}"


_KEYS: Final[dict[str, Callable[[Sequence[datetime]], list[int]]]] = {
    "hour": _hour_keys,
    "day": _day_keys,
    "week": _week_keys,
    "month": _month_keys,
    "year": _year_keys,
}

_LABELS: Final[dict[str, Callable[[int], str]]] = {
    "hour": _hour_label,
    "day": _day_label,
    "week": _week_label,
    "month": _month_label,
    "year": _year_label,
}

PERIOD_OF_RULE: Final = {
    "hourly": "hour",
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
    "yearly": "year",
    "within_hourly": "hour",
    "within_daily": "day",
    "within_weekly": "week",
    "within_monthly": "month",
    "within_yearly": "year",
}
"""The period each bucketing rule counts in."""


def keys(period: str, local_times: Sequence[datetime]) -> list[int]:
    """Return the period key of each wall-clock time.

    Args:
        period: ``"hour"``, ``"day"``, ``"week"``, ``"month"`` or ``"year"``.
        local_times: datetimes already converted to the policy's zone.

    Returns:
        One integer key per time; equal keys mean the same period.
    """
    return _KEYS[period](local_times)


def key_of(period: str, local_time: datetime) -> int:
    """Return the period key of one wall-clock time.

    Args:
        period: as for `keys`.
        local_time: a datetime already converted to the policy's zone.

    Returns:
        The integer key.
    """
    return _KEYS[period]((local_time,))[0]


def label(period: str, key: int) -> str:
    """Return the human label of a period key.

    Args:
        period: as for `keys`.
        key: a key returned by `keys`.

    Returns:
        ``2026-11-20 14:00``, ``2026-11-20``, ``2026-W47``, ``2026-11`` or ``2026``.
    """
    return _LABELS[period](key)
