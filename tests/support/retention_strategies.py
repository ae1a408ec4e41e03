"""Hypothesis strategies for snapshot histories and retention policies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import attrs
from hypothesis import strategies as st

from ctfy_vault.retention import Duration, Policy, unlimited

__all__ = [
    "ZONES",
    "Snapshot",
    "durations",
    "histories",
    "instants",
    "policies",
    "snapshot_histories",
    "with_ties",
]

ZONES = ("UTC", "Europe/Brussels", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata")
"""Policy zones: none, European and American clock changes, a 30-minute change, no change."""

_START = datetime(2019, 12, 20, tzinfo=UTC)
_SPAN = timedelta(days=3 * 366)
_OFFSETS = st.sampled_from(
    [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
    + [ZoneInfo(name) for name in ZONES[1:]]
)


@attrs.frozen(eq=False)
class Snapshot:
    """A snapshot record as a caller might hold one: an aware time, tags and an id."""

    id: int
    time: datetime
    tags: frozenset[str] = frozenset()


@st.composite
def instants(draw: st.DrawFn, *, start: datetime = _START, span: timedelta = _SPAN) -> datetime:
    """Draw an aware datetime in ``[start, start + span)``, shown in a random zone or offset."""
    seconds = draw(st.integers(0, int(span.total_seconds()) - 1))
    zone: tzinfo = draw(_OFFSETS)
    return (start + timedelta(seconds=seconds)).astimezone(zone)


@st.composite
def histories(draw: st.DrawFn, *, max_size: int = 40) -> list[datetime]:
    """Draw snapshot times: a spread over years, or dense clusters that share hours and days."""
    if draw(st.booleans()):
        return draw(st.lists(instants(), max_size=max_size))
    # Clusters put several snapshots in one period and place some close to period boundaries.
    centre = draw(instants())
    scale = draw(st.sampled_from([timedelta(hours=3), timedelta(days=2), timedelta(days=40)]))
    offsets = draw(
        st.lists(st.integers(-int(scale.total_seconds()), 0), min_size=1, max_size=max_size)
    )
    zone: tzinfo = draw(_OFFSETS)
    return [(centre + timedelta(seconds=offset)).astimezone(zone) for offset in offsets]


@st.composite
def with_ties(draw: st.DrawFn, times: list[datetime]) -> list[datetime]:
    """Return ``times`` with some instants repeated, each copy anywhere, in any offset or zone."""
    result = list(times)
    if not result or draw(st.booleans()):
        return result
    for moment in draw(st.lists(st.sampled_from(times), min_size=1, max_size=6)):
        copy = moment.astimezone(draw(_OFFSETS))
        result.insert(draw(st.integers(0, len(result))), copy)
    return result


@st.composite
def snapshot_histories(draw: st.DrawFn, *, max_size: int = 40) -> list[Snapshot]:
    """Draw snapshot records with ids, some tagged ``keep`` or ``audit``, some sharing a time.

    Identical times are ordered by input position, as restic orders them (a stable sort).
    """
    times = draw(with_ties(draw(histories(max_size=max_size))))
    tags = st.frozensets(st.sampled_from(["keep", "audit", "other"]), max_size=2)
    return [Snapshot(id=index, time=moment, tags=draw(tags)) for index, moment in enumerate(times)]


def durations() -> st.SearchStrategy[Duration]:
    """Draw non-zero calendar durations, mostly small enough to fall inside a history."""
    return st.builds(
        Duration,
        years=st.sampled_from([0, 0, 0, 1]),
        months=st.sampled_from([0, 0, 1, 2, 6]),
        weeks=st.sampled_from([0, 0, 1, 3]),
        days=st.integers(0, 20),
        hours=st.sampled_from([0, 0, 1, 5, 30]),
    ).filter(lambda duration: not duration.is_zero)


@st.composite
def policies(draw: st.DrawFn, *, zones: tuple[str, ...] = ZONES) -> Policy:
    """Draw a non-empty policy: a few counts and windows, a zone, sometimes tags or anchor=now."""
    count = st.one_of(st.integers(0, 6), st.just(unlimited), st.just(0))
    counts = {
        name: draw(count) if draw(st.integers(0, 2)) == 0 else 0
        for name in ("last", "hourly", "daily", "weekly", "monthly", "yearly")
    }
    windows = {
        name: draw(durations()) if draw(st.integers(0, 3)) == 0 else None
        for name in (
            "within",
            "within_hourly",
            "within_daily",
            "within_weekly",
            "within_monthly",
            "within_yearly",
        )
    }
    settings: dict[str, Any] = {**counts, **windows}
    if not any(counts.values()) and not any(value is not None for value in windows.values()):
        settings[draw(st.sampled_from(["daily", "weekly", "last"]))] = draw(st.integers(1, 4))
    settings["tz"] = draw(st.sampled_from(zones))
    settings["tags"] = draw(st.sampled_from([(), ("keep",), ("keep", "audit")]))
    settings["anchor"] = draw(st.sampled_from(["newest", "newest", "now"]))
    return Policy(**settings)
