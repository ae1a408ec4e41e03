"""Hypothesis strategies for signed links: lifetimes and clocks, honest and lying, and URL readers.

A lifetime or time argument is drawn as a recipe and built at run time against the real clock, so a
test knows both the object `presign` receives and the plain value it stores.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
from hypothesis import strategies as st

from ctfy_vault.links import CLOCK_SKEW, MAX_TTL

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SECOND = timedelta(seconds=1)


class SecondsLie(timedelta):
    """Stores one duration; ``total_seconds()`` answers for another (the cap trusted it)."""

    claimed: timedelta

    def total_seconds(self) -> float:
        return self.claimed.total_seconds()


class FullLie(SecondsLie):
    """Stores one duration; comparisons, division and ``str`` answer for another as well."""

    def __lt__(self, other: timedelta) -> bool:
        return self.claimed < other

    def __le__(self, other: timedelta) -> bool:
        return self.claimed <= other

    def __gt__(self, other: timedelta) -> bool:
        return self.claimed > other

    def __ge__(self, other: timedelta) -> bool:
        return self.claimed >= other

    def __floordiv__(self, other: Any) -> Any:
        return self.claimed // other

    def __truediv__(self, other: Any) -> Any:
        return self.claimed / other

    def __str__(self) -> str:
        return str(self.claimed)


class ClockLie(datetime):
    """Stores one instant; ``timestamp``, conversion, comparisons and arithmetic answer for another."""

    claimed: datetime

    def timestamp(self) -> float:
        return self.claimed.timestamp()

    def astimezone(self, tz: tzinfo | None = None) -> Any:
        return self.claimed.astimezone(tz)

    def __add__(self, other: Any) -> Any:
        return self.claimed + other

    def __sub__(self, other: Any) -> Any:
        return self.claimed - other

    def __lt__(self, other: Any) -> bool:
        return bool(self.claimed < other)

    def __le__(self, other: Any) -> bool:
        return bool(self.claimed <= other)

    def __gt__(self, other: Any) -> bool:
        return bool(self.claimed > other)

    def __ge__(self, other: Any) -> bool:
        return bool(self.claimed >= other)


def lying_duration(kind: type[SecondsLie], stored: timedelta, claimed: timedelta) -> SecondsLie:
    """Return a ``kind`` storing ``stored`` and claiming ``claimed``."""
    value = kind(days=stored.days, seconds=stored.seconds, microseconds=stored.microseconds)
    value.claimed = claimed
    return value


def lying_time(stored: datetime, claimed: datetime) -> ClockLie:
    """Return a `ClockLie` storing ``stored`` and claiming ``claimed``."""
    value = ClockLie.combine(stored.date(), stored.timetz())
    value.claimed = claimed
    return value


@attrs.frozen
class DurationArg:
    """A ``ttl``/``max_ttl`` argument and the plain duration it stores (``None``: not one)."""

    value: object
    stored: timedelta | None


_plain_durations = st.one_of(
    st.timedeltas(),
    st.timedeltas(min_value=timedelta(hours=-2), max_value=timedelta(hours=3)),
    st.sampled_from(
        [
            timedelta(0),
            SECOND - timedelta(microseconds=1),
            SECOND,
            MAX_TTL - timedelta(microseconds=1),
            MAX_TTL,
            MAX_TTL + timedelta(microseconds=1),
            MAX_TTL + SECOND,
            timedelta(days=3650),
            timedelta.max,
            timedelta.min,
        ]
    ),
)
_not_durations: st.SearchStrategy[object] = st.sampled_from(
    [600, 600.0, 3600, True, False, "PT1H", "0:10:00", None, date(2026, 1, 1)]
)


def durations() -> st.SearchStrategy[DurationArg]:
    """Plain timedeltas over the whole range, subclasses that lie, and things that are not one."""
    lies = st.builds(
        lambda kind, stored, claimed: DurationArg(lying_duration(kind, stored, claimed), stored),
        st.sampled_from([SecondsLie, FullLie]),
        _plain_durations,
        _plain_durations,
    )
    return st.one_of(
        _plain_durations.map(lambda d: DurationArg(d, d)),
        lies,
        _not_durations.map(lambda v: DurationArg(v, None)),
    )


_zones: st.SearchStrategy[tzinfo] = st.sampled_from(
    [
        UTC,
        timezone(timedelta(hours=14)),
        timezone(timedelta(hours=-12, minutes=-30)),
        timezone(timedelta(hours=5, minutes=45)),
        timezone(timedelta(hours=23, minutes=59, microseconds=1)),
    ]
)
_offsets = st.one_of(
    st.timedeltas(min_value=-2 * CLOCK_SKEW, max_value=2 * CLOCK_SKEW),
    st.timedeltas(min_value=timedelta(days=-3650), max_value=timedelta(days=3650)),
    st.sampled_from(
        [
            timedelta(0),
            -CLOCK_SKEW,
            -CLOCK_SKEW - SECOND,
            SECOND,
            MAX_TTL,
            MAX_TTL + SECOND,
            2 * MAX_TTL,
            timedelta(days=365),
        ]
    ),
)


@attrs.frozen
class TimeArg:
    """A recipe for a ``now`` or ``expires_at`` argument relative to the real clock.

    Attributes:
        kind: ``none`` (leave it out), ``aware``, ``naive``, ``lie`` (a `ClockLie`), ``fixed``
            (an absolute time, up to the ends of the datetime range) or ``other`` (not a datetime).
        offset: the stored instant minus the real clock (``aware``, ``naive``, ``lie``).
        claimed: the claimed instant minus the real clock (``lie``).
        zone: the time zone the value is expressed in.
        fixed: the value for ``fixed``; ``other``: the value for ``other``.
    """

    kind: str
    offset: timedelta = timedelta(0)
    claimed: timedelta = timedelta(0)
    zone: tzinfo = UTC
    fixed: datetime | None = None
    other: object = None

    def build(self, real: datetime) -> tuple[object, datetime | None]:
        """Return the argument and the plain aware instant it stores (``None``: not an instant)."""
        if self.kind == "none":
            return None, None
        if self.kind == "other":
            return self.other, None
        if self.kind == "fixed":
            assert self.fixed is not None
            return self.fixed, self.fixed
        stored = (real + self.offset).astimezone(self.zone)
        if self.kind == "naive":
            return stored.replace(tzinfo=None), None
        if self.kind == "lie":
            return lying_time(stored, real + self.claimed), stored
        return stored, stored


_extreme = st.one_of(
    st.datetimes(timezones=_zones),
    st.sampled_from(
        [
            datetime.max.replace(tzinfo=UTC),
            datetime.min.replace(tzinfo=UTC),
            datetime.min.replace(tzinfo=timezone(timedelta(hours=23, minutes=59))),
            datetime.max.replace(tzinfo=timezone(timedelta(hours=-23, minutes=-59))),
        ]
    ),
)


def times(*, optional: bool) -> st.SearchStrategy[TimeArg]:
    """Time arguments: near and far from the real clock, naive, lying, extreme, or not times."""
    choices = [
        st.builds(TimeArg, kind=st.just("aware"), offset=_offsets, zone=_zones),
        st.builds(TimeArg, kind=st.just("naive"), offset=_offsets),
        st.builds(TimeArg, kind=st.just("lie"), offset=_offsets, claimed=_offsets, zone=_zones),
        st.builds(TimeArg, kind=st.just("fixed"), fixed=_extreme),
        st.builds(
            TimeArg,
            kind=st.just("other"),
            other=st.sampled_from([0, 1.5e9, True, "2026-01-01T00:00:00Z", date(2026, 1, 1)]),
        ),
    ]
    if optional:
        choices.insert(0, st.just(TimeArg("none")))
    return st.one_of(choices)


def query(url: str) -> dict[str, str]:
    """Return a signed URL's query parameters (each exactly once)."""
    fields = parse_qs(urlsplit(url).query, keep_blank_values=True)
    assert all(len(values) == 1 for values in fields.values())
    return {name: values[0] for name, values in fields.items()}


def sigv4_window(url: str) -> tuple[datetime, datetime]:
    """Return when a SigV4 link starts and stops working (``X-Amz-Date``, ``+ X-Amz-Expires``)."""
    fields = query(url)
    start = datetime.strptime(fields["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return start, start + timedelta(seconds=int(fields["X-Amz-Expires"]))


def sas_window(url: str) -> tuple[datetime | None, datetime]:
    """Return when a SAS starts (``st``; ``None``: any earlier time) and stops (``se``)."""
    fields = query(url)

    def parse(value: str) -> datetime:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)

    return (parse(fields["st"]) if "st" in fields else None), parse(fields["se"])


def hmac_expiry_seconds(url: str) -> int:
    """Return the expiry a local HMAC link carries (its ``e`` field), in Unix seconds."""
    return int(query(url.rpartition("&s=")[0])["e"])


def hmac_expiry(url: str) -> datetime:
    """Return the expiry a local HMAC link carries (its ``e`` field)."""
    return EPOCH + timedelta(seconds=hmac_expiry_seconds(url))


def floor_seconds(value: timedelta) -> int:
    """Return a plain duration in whole seconds, rounded down."""
    return value // SECOND


def must_accept(
    ttl: DurationArg,
    when: TimeArg,
    instant: datetime | None,
    before: datetime,
    after: datetime,
    *,
    cap: timedelta = MAX_TTL,
) -> bool | None:
    """Whether `presign` must accept (True), must refuse (False) or may do either (None).

    The system clock `presign` reads lies somewhere between ``before`` and ``after``; a ``now``
    is acceptable when it is no later than that clock and at most `CLOCK_SKEW` behind it.
    """
    if ttl.stored is None or not SECOND <= ttl.stored <= cap:
        return False
    if when.kind == "none":
        return True
    if instant is None or instant > after or instant < before - CLOCK_SKEW:
        return False
    if after - CLOCK_SKEW <= instant <= before:
        return True
    return None


def check_window(
    start: datetime | None,
    end: datetime,
    *,
    ttl: DurationArg,
    instant: datetime | None,
    before: datetime,
    after: datetime,
) -> None:
    """Assert a link's validity (start to end) is what was asked and ends within the cap of now."""
    assert ttl.stored is not None
    life = timedelta(seconds=floor_seconds(ttl.stored))
    assert end <= after + MAX_TTL  # the promise, measured from the real clock after the call
    if start is None:  # no start time: the link works from any earlier moment
        return
    assert end - start == life
    if instant is not None:
        assert start == instant.astimezone(UTC).replace(microsecond=0)
    else:
        assert before.replace(microsecond=0) <= start <= after
    assert start >= before.replace(microsecond=0) - CLOCK_SKEW
