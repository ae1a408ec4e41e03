"""Calendar durations in restic's ``1y2m3d4h`` syntax, and the window cutoff they define."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo

import attrs

from ctfy_vault.exceptions import PolicyError

__all__ = ["Duration", "cutoff"]

_UNITS = ("y", "m", "w", "d", "h")
_FIELDS = {"y": "years", "m": "months", "w": "weeks", "d": "days", "h": "hours"}
_TOKEN = re.compile(r"(\d+)([a-zA-Z]?)")

# The earliest instant Python can represent: a cutoff before it admits every snapshot.
_BEFORE_EVERYTHING = datetime.min.replace(tzinfo=UTC)


def _non_negative(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int:
        raise PolicyError(f"duration {attribute.name} must be an int, got {value!r}")
    if value < 0:
        raise PolicyError(f"duration {attribute.name} must not be negative, got {value}")


@attrs.frozen(kw_only=True)
class Duration:
    """A calendar duration: years, months, weeks, days and hours, counted as calendar units.

    Years, months, weeks and days move the calendar date (so ``1m`` before March 31 is "February
    31", which the calendar carries over to March 2 or 3); hours are then subtracted as elapsed
    time. This is the arithmetic restic uses for its ``--keep-within*`` options, with ``w``
    added as seven calendar days.

    Attributes:
        years: calendar years.
        months: calendar months.
        weeks: calendar weeks (seven calendar days each).
        days: calendar days.
        hours: elapsed hours.
    """

    years: int = attrs.field(default=0, validator=_non_negative)
    months: int = attrs.field(default=0, validator=_non_negative)
    weeks: int = attrs.field(default=0, validator=_non_negative)
    days: int = attrs.field(default=0, validator=_non_negative)
    hours: int = attrs.field(default=0, validator=_non_negative)

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse restic's duration syntax, such as ``14d``, ``8w``, ``6m`` or ``1y2m3d4h``.

        Each unit (``y``, ``m``, ``w``, ``d``, ``h``) may appear at most once, in any order, each
        after a non-negative whole number.

        Args:
            text: the duration text.

        Returns:
            The parsed duration.

        Raises:
            PolicyError: the text is empty, has a number without a unit, an unknown unit, a
                repeated unit, or anything else that is not a number followed by a unit.
        """
        if not isinstance(text, str):
            raise PolicyError(f"a duration must be text such as '14d', got {text!r}")
        if not text:
            raise PolicyError("a duration must not be empty; write for example '14d' or '1y2m'")
        values: dict[str, int] = {}
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None:
                raise PolicyError(
                    f"invalid duration {text!r}: expected a number at position {position}"
                )
            number, unit = match.groups()
            if not unit:
                raise PolicyError(
                    f"invalid duration {text!r}: {number} has no unit (use y, m, w, d or h)"
                )
            if unit not in _FIELDS:
                raise PolicyError(
                    f"invalid duration {text!r}: unknown unit {unit!r} (use y, m, w, d or h)"
                )
            if unit in values:
                raise PolicyError(f"invalid duration {text!r}: unit {unit!r} appears twice")
            try:
                values[unit] = int(number)
            except ValueError:  # more digits than Python converts to an int
                raise PolicyError(
                    f"invalid duration {text[:40]!r}...: the number has {len(number)} digits"
                ) from None
            position = match.end()
        return cls(**{_FIELDS[unit]: value for unit, value in values.items()})

    @classmethod
    def from_timedelta(cls, value: timedelta) -> Duration:
        """Convert a whole number of hours into days and hours.

        Args:
            value: a non-negative ``timedelta`` of whole hours.

        Returns:
            The duration with the timedelta's days and remaining hours.

        Raises:
            PolicyError: the timedelta is negative or not a whole number of hours.
        """
        if value < timedelta(0):
            raise PolicyError(f"a duration must not be negative, got {value}")
        if value % timedelta(hours=1):
            raise PolicyError(f"a duration must be a whole number of hours, got {value}")
        return cls(days=value.days, hours=value.seconds // 3600)

    @property
    def is_zero(self) -> bool:
        """Whether every unit is zero."""
        return not (self.years or self.months or self.weeks or self.days or self.hours)

    def longest(self) -> timedelta:
        """Return the longest elapsed time this duration can span on the calendar.

        A year counts as 366 days and a month as 31; clock changes in a zone come on top.

        Returns:
            An upper bound of the elapsed time between a moment and the same moment moved
            back by this duration in UTC.
        """
        days = self.years * 366 + self.months * 31 + self.weeks * 7 + self.days
        return timedelta(days=days, hours=self.hours)

    def __str__(self) -> str:
        parts = [
            f"{getattr(self, _FIELDS[unit])}{unit}"
            for unit in _UNITS
            if getattr(self, _FIELDS[unit])
        ]
        return "".join(parts) or "0h"


def _resolve(wall: datetime, zone: tzinfo) -> datetime:
    # Go's time.Date, which restic's cutoff goes through, reads the offset in force at the wall
    # time taken as UTC and corrects it once if the result lands in another offset. Doing the same
    # makes a wall time that a clock change skips or repeats resolve as restic resolves it.
    as_utc = wall.replace(tzinfo=UTC)
    offset = as_utc.astimezone(zone).utcoffset() or timedelta(0)
    guess = as_utc - offset
    actual = guess.astimezone(zone).utcoffset() or timedelta(0)
    return guess if actual == offset else as_utc - actual


def cutoff(anchor: datetime, duration: Duration, zone: tzinfo) -> datetime:
    """Move ``anchor`` back by ``duration`` on the calendar of ``zone``.

    The date moves back by whole years, months, weeks and days at the same wall-clock time (an
    overflowing day such as February 31 carries into the next month), then the hours are
    subtracted as elapsed time. A wall-clock time that a clock change skips or repeats resolves
    as Go's ``time.Date`` resolves it, so the cutoff matches restic's in the same zone.

    Args:
        anchor: an aware datetime.
        duration: how far to move back.
        zone: the time zone whose calendar and wall clock are used.

    Returns:
        The cutoff as an aware UTC datetime; the earliest representable instant when the
        calendar would run out before year 1.
    """
    moment = anchor.astimezone(UTC)
    try:
        if duration.years or duration.months or duration.weeks or duration.days:
            local = anchor.astimezone(zone)
            month_index = local.month - 1 - duration.months
            year = local.year - duration.years + month_index // 12
            if year < 1:
                return _BEFORE_EVERYTHING
            first = date(year, month_index % 12 + 1, 1)
            ordinal = first.toordinal() + local.day - 1 - duration.days - 7 * duration.weeks
            if ordinal < 1:
                return _BEFORE_EVERYTHING
            wall = datetime.combine(date.fromordinal(ordinal), local.time())
            moved = _resolve(wall, zone)
            if moved >= moment:
                # Only a zone that skipped a whole calendar day gets here; the earlier reading
                # keeps the cutoff before the anchor, so the anchor stays inside its window.
                moved = min(
                    wall.replace(tzinfo=zone, fold=0).astimezone(UTC),
                    wall.replace(tzinfo=zone, fold=1).astimezone(UTC),
                )
            moment = moved
        return moment - timedelta(hours=duration.hours)
    except OverflowError:
        return _BEFORE_EVERYTHING
