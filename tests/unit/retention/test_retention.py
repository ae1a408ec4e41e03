"""Hand-computed retention tables: every expected list below was worked out on a calendar."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

from ctfy_vault import retention
from ctfy_vault.exceptions import ConfigurationError, PolicyError, VaultError
from ctfy_vault.retention import Duration, Policy, Reason, RetentionPlan, plan, unlimited

BRUSSELS = ZoneInfo("Europe/Brussels")
NEW_YORK = ZoneInfo("America/New_York")


def at(text: str, zone: tzinfo = UTC) -> datetime:
    """Return ``YYYY-MM-DD HH:MM[:SS]`` as an aware datetime in ``zone``."""
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def daily(
    first: str, last: str, *, hour: str = "03:00", skip: tuple[str, ...] = ()
) -> list[datetime]:
    """Return one UTC snapshot per day from ``first`` to ``last`` at ``hour``, minus ``skip``."""
    day, end = date.fromisoformat(first), date.fromisoformat(last)
    times = []
    while day <= end:
        if day.isoformat() not in skip:
            times.append(at(f"{day.isoformat()} {hour}"))
        day += timedelta(days=1)
    return times


def kept(result: RetentionPlan[Any]) -> list[str]:
    """Return the kept times as ``YYYY-MM-DD HH:MM[:SS]`` in UTC, newest first."""
    return [_show(moment) for moment in result.keep_times]


def _show(moment: datetime) -> str:
    spec = "seconds" if moment.second else "minutes"
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec=spec)


def labels(result: RetentionPlan[Any]) -> list[list[str]]:
    """Return the reason labels of each kept item, newest first."""
    return [[str(reason) for reason in result.reasons[item]] for item in result.keep]


# --- count rules -----------------------------------------------------------------------------


def test_last_keeps_the_newest_n_snapshots() -> None:
    """last=3 keeps the three newest snapshots, numbered from the newest."""
    result = plan(daily("2026-11-01", "2026-11-05"), Policy(last=3))
    assert kept(result) == ["2026-11-05 03:00", "2026-11-04 03:00", "2026-11-03 03:00"]
    assert labels(result) == [["last #1"], ["last #2"], ["last #3"]]


def test_daily_keeps_newest_per_day_and_skips_empty_days() -> None:
    """daily=3 keeps the newest snapshot of the three most recent days that have snapshots."""
    times = [
        at("2026-11-10 08:00"),
        at("2026-11-10 22:00"),
        at("2026-11-09 23:59"),
        at("2026-11-07 12:00"),
        at("2026-11-07 01:00"),
        at("2026-11-03 00:00"),
    ]
    result = plan(times, Policy(daily=3))
    assert kept(result) == ["2026-11-10 22:00", "2026-11-09 23:59", "2026-11-07 12:00"]
    assert labels(result) == [["daily 2026-11-10"], ["daily 2026-11-09"], ["daily 2026-11-07"]]


def test_count_with_room_keeps_oldest_only_when_it_is_not_already_kept() -> None:
    """daily=5 over four days keeps one per day; the oldest is already the newest of its day."""
    times = [at("2026-11-10 22:00"), at("2026-11-09 09:00"), at("2026-11-07 12:00")]
    times.append(at("2026-11-03 00:00"))
    result = plan(times, Policy(daily=5))
    assert kept(result) == [_show(moment) for moment in times]
    assert not any(reason.oldest for item in result.keep for reason in result.reasons[item])


def test_oldest_snapshot_is_kept_while_a_count_rule_has_room() -> None:
    """daily=5 with two days left over keeps the oldest snapshot as 'oldest daily'."""
    times = [
        at("2026-11-10 22:00"),
        at("2026-11-10 08:00"),
        at("2026-11-09 10:00"),
        at("2026-11-09 09:00"),
    ]
    result = plan(times, Policy(daily=5))
    assert kept(result) == ["2026-11-10 22:00", "2026-11-09 10:00", "2026-11-09 09:00"]
    assert labels(result)[-1] == ["oldest daily 2026-11-09"]
    oldest = result.reasons[times[-1]][0]
    assert (oldest.rule, oldest.oldest, oldest.slot) == ("daily", True, 3)


def test_exhausted_count_does_not_keep_the_oldest() -> None:
    """daily=2 fills both slots, so the older snapshots are forgotten, the oldest too."""
    times = [at("2026-11-10 22:00"), at("2026-11-09 10:00"), at("2026-11-09 09:00")]
    result = plan(times, Policy(daily=2))
    assert kept(result) == ["2026-11-10 22:00", "2026-11-09 10:00"]
    assert result.forget == (times[2],)


def test_young_repository_keeps_its_first_backup_for_yearly() -> None:
    """yearly=3 over fifteen months keeps 2026's and 2025's newest and the very first backup."""
    times = daily("2025-10-01", "2026-01-10")
    result = plan(times, Policy(yearly=3))
    assert kept(result) == ["2026-01-10 03:00", "2025-12-31 03:00", "2025-10-01 03:00"]
    assert labels(result) == [["yearly 2026"], ["yearly 2025"], ["oldest yearly 2025"]]


def test_rules_overlap_on_one_snapshot() -> None:
    """One snapshot can fill a daily, weekly, monthly and yearly slot at once."""
    times = daily("2026-11-01", "2026-11-20")
    result = plan(times, Policy(daily=2, weekly=2, monthly=1, yearly=1))
    assert kept(result) == ["2026-11-20 03:00", "2026-11-19 03:00", "2026-11-15 03:00"]
    assert labels(result) == [
        ["daily 2026-11-20", "weekly 2026-W47", "monthly 2026-11", "yearly 2026"],
        ["daily 2026-11-19"],
        ["weekly 2026-W46"],
    ]


def test_weekly_buckets_iso_weeks_in_the_policy_zone() -> None:
    """Sunday 23:00 UTC is Monday in Brussels, so the weekly buckets differ by zone."""
    times = [
        at("2026-11-23 00:30"),
        at("2026-11-22 23:00"),
        at("2026-11-21 10:00"),
        at("2026-11-16 09:00"),
    ]
    in_utc = plan(times, Policy(weekly=2))
    in_brussels = plan(times, Policy(weekly=2, tz="Europe/Brussels"))
    assert kept(in_utc) == ["2026-11-23 00:30", "2026-11-22 23:00"]
    assert labels(in_utc) == [["weekly 2026-W48"], ["weekly 2026-W47"]]
    assert kept(in_brussels) == ["2026-11-23 00:30", "2026-11-21 10:00"]
    assert labels(in_brussels) == [["weekly 2026-W48"], ["weekly 2026-W47"]]


def test_iso_week_53_is_its_own_period() -> None:
    """Dec 28 2026 to Jan 3 2027 is 2026-W53, between 2026-W52 and 2027-W01."""
    times = [
        at("2027-01-04 09:00"),
        at("2027-01-03 09:00"),
        at("2026-12-28 09:00"),
        at("2026-12-27 09:00"),
        at("2026-12-21 09:00"),
    ]
    result = plan(times, Policy(weekly=3))
    assert kept(result) == ["2027-01-04 09:00", "2027-01-03 09:00", "2026-12-27 09:00"]
    assert labels(result) == [["weekly 2027-W01"], ["weekly 2026-W53"], ["weekly 2026-W52"]]


def test_week_53_of_2020_spans_new_year() -> None:
    """Dec 31 2020 and Jan 2 2021 share 2020-W53; yearly still splits them."""
    times = [at("2021-01-02 10:00"), at("2020-12-31 10:00"), at("2020-12-27 10:00")]
    result = plan(times, Policy(weekly=5, yearly=5))
    assert labels(result) == [
        ["weekly 2020-W53", "yearly 2021"],
        ["yearly 2020"],
        ["weekly 2020-W52", "oldest yearly 2020"],
    ]


def test_monthly_at_month_end_depends_on_zone() -> None:
    """Jan 31 23:30 UTC is February in Brussels and Dec 31 23:59 UTC is January there."""
    times = [
        at("2026-01-31 23:30"),
        at("2026-01-31 12:00"),
        at("2026-01-15 12:00"),
        at("2025-12-31 23:59"),
    ]
    in_utc = plan(times, Policy(monthly=2))
    in_brussels = plan(times, Policy(monthly=2, tz="Europe/Brussels"))
    assert kept(in_utc) == ["2026-01-31 23:30", "2025-12-31 23:59"]
    assert labels(in_utc) == [["monthly 2026-01"], ["monthly 2025-12"]]
    assert kept(in_brussels) == ["2026-01-31 23:30", "2026-01-31 12:00"]
    assert labels(in_brussels) == [["monthly 2026-02"], ["monthly 2026-01"]]


def test_leap_day_is_a_day_of_its_own() -> None:
    """Feb 29 2024 is bucketed as its own day, between Feb 28 and Mar 1."""
    times = [at("2024-03-01 01:00"), at("2024-02-29 23:00"), at("2024-02-29 01:00")]
    times.append(at("2024-02-28 23:00"))
    result = plan(times, Policy(daily=3))
    assert labels(result) == [["daily 2024-03-01"], ["daily 2024-02-29"], ["daily 2024-02-28"]]


def test_unlimited_keeps_every_period_and_the_oldest() -> None:
    """daily=unlimited keeps the newest of every day, plus the oldest snapshot."""
    times = [
        at("2026-11-03 20:00"),
        at("2026-11-03 08:00"),
        at("2026-11-02 08:00"),
        at("2026-11-01 20:00"),
        at("2026-11-01 08:00"),
    ]
    result = plan(times, Policy(daily=unlimited))
    assert kept(result) == [
        "2026-11-03 20:00",
        "2026-11-02 08:00",
        "2026-11-01 20:00",
        "2026-11-01 08:00",
    ]
    assert labels(result)[-1] == ["oldest daily 2026-11-01"]


def test_hourly_at_the_autumn_clock_change_in_brussels() -> None:
    """Both 02:00 hours of 25 Oct 2026 in Brussels are one hourly period; UTC sees two."""
    times = [
        at("2026-10-25 02:10"),  # 03:10 CET
        at("2026-10-25 01:40"),  # 02:40 CET, the second 02:00 hour
        at("2026-10-25 01:10"),  # 02:10 CET
        at("2026-10-25 00:40"),  # 02:40 CEST, the first 02:00 hour
        at("2026-10-25 00:10"),  # 02:10 CEST
    ]
    in_brussels = plan(times, Policy(hourly=10, tz="Europe/Brussels"))
    assert kept(in_brussels) == ["2026-10-25 02:10", "2026-10-25 01:40", "2026-10-25 00:10"]
    assert labels(in_brussels) == [
        ["hourly 2026-10-25 03:00"],
        ["hourly 2026-10-25 02:00"],
        ["oldest hourly 2026-10-25 02:00"],
    ]
    in_utc = plan(times, Policy(hourly=10))
    assert kept(in_utc) == [
        "2026-10-25 02:10",
        "2026-10-25 01:40",
        "2026-10-25 00:40",
        "2026-10-25 00:10",
    ]


def test_daily_in_brussels_follows_local_midnight() -> None:
    """23:30 UTC on 28 Mar 2026 is 00:30 on the 29th in Brussels."""
    times = [at("2026-03-29 10:00"), at("2026-03-28 23:30"), at("2026-03-28 12:00")]
    in_brussels = plan(times, Policy(daily=2, tz="Europe/Brussels"))
    assert kept(in_brussels) == ["2026-03-29 10:00", "2026-03-28 12:00"]
    in_utc = plan(times, Policy(daily=2))
    assert kept(in_utc) == ["2026-03-29 10:00", "2026-03-28 23:30"]


# --- window rules ----------------------------------------------------------------------------


def test_within_keeps_everything_strictly_after_the_cutoff() -> None:
    """within=2d from Nov 10 03:00 keeps what is newer than Nov 8 03:00, not Nov 8 03:00."""
    times = [*daily("2026-11-01", "2026-11-10"), at("2026-11-08 03:00:01")]
    result = plan(times, Policy(within="2d"))
    assert kept(result) == ["2026-11-10 03:00", "2026-11-09 03:00", "2026-11-08 03:00:01"]
    assert labels(result) == [["within 2d"]] * 3
    assert result.cutoffs["within"] == at("2026-11-08 03:00")


def test_within_hours_and_days_combine() -> None:
    """within=1d2h moves back a calendar day, then two hours."""
    times = [at("2026-11-10 03:00"), at("2026-11-09 01:00:01"), at("2026-11-09 01:00")]
    result = plan(times, Policy(within="1d2h"))
    assert result.cutoffs["within"] == at("2026-11-09 01:00")
    assert kept(result) == ["2026-11-10 03:00", "2026-11-09 01:00:01"]


@pytest.mark.parametrize(
    ("newest", "window", "cutoff"),
    [
        ("2024-03-31 12:00", "1m", "2024-03-02 12:00"),  # "Feb 31" in a leap year
        ("2025-03-31 12:00", "1m", "2025-03-03 12:00"),  # "Feb 31" in a common year
        ("2024-05-31 12:00", "1m", "2024-05-01 12:00"),  # "Apr 31"
        ("2024-02-29 12:00", "1y", "2023-03-01 12:00"),  # "Feb 29 2023"
        ("2025-02-28 12:00", "1y", "2024-02-28 12:00"),
        ("2025-12-31 01:30", "6m", "2025-07-01 01:30"),  # "Jun 31"
        ("2026-01-10 00:00", "2w", "2025-12-27 00:00"),
        ("2026-03-01 00:00", "1m1d", "2026-01-31 00:00"),
    ],
)
def test_calendar_cutoffs_carry_overflowing_days(newest: str, window: str, cutoff: str) -> None:
    """Month and year steps keep the day number and let an impossible date spill over."""
    times = [at(newest), at(cutoff), at(cutoff) + timedelta(seconds=1)]
    result = plan(times, Policy(within=window))
    assert result.cutoffs["within"] == at(cutoff)
    assert result.forget == (times[1],)


def test_within_daily_keeps_newest_per_day_inside_the_window() -> None:
    """within_daily=3d keeps the newest snapshot of each day that reaches past the cutoff."""
    times = [
        at("2026-11-10 20:00"),
        at("2026-11-10 03:00"),
        at("2026-11-09 03:00"),
        at("2026-11-08 21:00"),
        at("2026-11-07 21:00"),
        at("2026-11-06 03:00"),
    ]
    result = plan(times, Policy(within_daily="3d"))
    # The cutoff is Nov 7 20:00, so a three-day window touches four calendar days.
    assert kept(result) == [
        "2026-11-10 20:00",
        "2026-11-09 03:00",
        "2026-11-08 21:00",
        "2026-11-07 21:00",
    ]
    assert labels(result) == [
        ["daily 2026-11-10 within 3d"],
        ["daily 2026-11-09 within 3d"],
        ["daily 2026-11-08 within 3d"],
        ["daily 2026-11-07 within 3d"],
    ]


def test_periodic_window_reaching_the_oldest_keeps_it() -> None:
    """within_daily=3d over a younger history also keeps the oldest, as 'oldest daily ... 3d'."""
    times = [at("2026-11-10 20:00"), at("2026-11-09 21:00"), at("2026-11-09 03:00")]
    result = plan(times, Policy(within_daily="3d"))
    assert kept(result) == ["2026-11-10 20:00", "2026-11-09 21:00", "2026-11-09 03:00"]
    assert labels(result)[-1] == ["oldest daily 2026-11-09 within 3d"]
    oldest = result.reasons[times[-1]][0]
    assert (oldest.rule, oldest.oldest, oldest.slot) == ("within_daily", True, None)
    assert oldest.to_dict() == {
        "rule": "within_daily",
        "label": "oldest daily 2026-11-09 within 3d",
        "period": "2026-11-09",
        "window": "3d",
        "oldest": True,
    }


def test_periodic_window_keeps_an_oldest_alone_in_its_period_as_usual() -> None:
    """The oldest snapshot that is the newest of its period gets the plain window reason."""
    times = [at("2026-11-10 20:00"), at("2026-11-09 21:00")]
    assert labels(plan(times, Policy(within_daily="3d")))[-1] == ["daily 2026-11-09 within 3d"]


def test_young_repository_under_contractify_keeps_its_first_backup() -> None:
    """Hourly backups for three days under contractify keep the very first one, for each window."""
    start = at("2026-11-01 00:30")  # a Sunday: 2026-W44; Nov 2 and 3 are in 2026-W45
    times = [start + timedelta(hours=hour) for hour in range(72)]
    result = plan(times, Policy.contractify())
    assert kept(result) == [
        "2026-11-03 23:30",
        "2026-11-02 23:30",
        "2026-11-01 23:30",
        "2026-11-01 00:30",
    ]
    assert labels(result) == [
        [
            "daily 2026-11-03 within 14d",
            "weekly 2026-W45 within 8w",
            "monthly 2026-11 within 6m",
            "yearly 2026 within 1y",
        ],
        ["daily 2026-11-02 within 14d"],
        ["daily 2026-11-01 within 14d", "weekly 2026-W44 within 8w"],
        [
            "oldest daily 2026-11-01 within 14d",
            "oldest weekly 2026-W44 within 8w",
            "oldest monthly 2026-11 within 6m",
            "oldest yearly 2026 within 1y",
        ],
    ]


def test_contractify_schedule_over_a_year_with_missed_days() -> None:
    """Daily backups Dec 2024 to Dec 2025 with five missed days keep 22 snapshots."""
    missed = ("2025-12-20", "2025-12-25", "2025-11-30", "2025-10-31", "2025-03-15")
    times = daily("2024-12-01", "2025-12-31", hour="01:30", skip=missed)
    assert len(times) == 391
    result = plan(times, Policy.contractify())
    # within_daily 14d: after Dec 17 01:30. within_weekly 8w (56 days): after Nov 5 01:30,
    # newest per ISO week; Dec 29-31 are 2026-W01. within_monthly 6m: "Jun 31" is Jul 1,
    # so after Jul 1 01:30. within_yearly 1y: after Dec 31 2024 01:30, so only 2025 counts.
    assert result.cutoffs == {
        "within_daily": at("2025-12-17 01:30"),
        "within_weekly": at("2025-11-05 01:30"),
        "within_monthly": at("2025-07-01 01:30"),
        "within_yearly": at("2024-12-31 01:30"),
    }
    assert [moment.date().isoformat() for moment in result.keep_times] == [
        "2025-12-31",
        "2025-12-30",
        "2025-12-29",
        "2025-12-28",
        "2025-12-27",
        "2025-12-26",
        "2025-12-24",
        "2025-12-23",
        "2025-12-22",
        "2025-12-21",
        "2025-12-19",
        "2025-12-18",
        "2025-12-14",
        "2025-12-07",
        "2025-11-29",
        "2025-11-23",
        "2025-11-16",
        "2025-11-09",
        "2025-10-30",
        "2025-09-30",
        "2025-08-31",
        "2025-07-31",
    ]
    assert labels(result)[0] == [
        "daily 2025-12-31 within 14d",
        "weekly 2026-W01 within 8w",
        "monthly 2025-12 within 6m",
        "yearly 2025 within 1y",
    ]
    assert result.reasons[at("2025-11-29 01:30")] == (
        Reason(rule="within_weekly", period="2025-W48", window=Duration(weeks=8)),
        Reason(rule="within_monthly", period="2025-11", window=Duration(months=6)),
    )
    assert labels(result)[-4:] == [
        ["monthly 2025-10 within 6m"],
        ["monthly 2025-09 within 6m"],
        ["monthly 2025-08 within 6m"],
        ["monthly 2025-07 within 6m"],
    ]


def test_cutoff_in_the_spring_gap_in_brussels() -> None:
    """1d before 02:30 on 30 Mar 2026 is the skipped 02:30 of the 29th, read as 01:30 UTC."""
    times = [at("2026-03-30 00:30"), at("2026-03-29 01:45"), at("2026-03-29 01:00")]
    in_brussels = plan(times, Policy(within="1d", tz="Europe/Brussels"))
    assert in_brussels.cutoffs["within"] == at("2026-03-29 01:30")
    assert kept(in_brussels) == ["2026-03-30 00:30", "2026-03-29 01:45"]
    in_utc = plan(times, Policy(within="1d"))
    assert kept(in_utc) == [_show(moment) for moment in times]


def test_cutoff_in_the_repeated_hour_in_brussels() -> None:
    """1d before 02:30 CET on 26 Oct 2026 is the second 02:30 of the 25th (01:30 UTC)."""
    times = [at("2026-10-26 01:30"), at("2026-10-25 01:45"), at("2026-10-25 00:45")]
    result = plan(times, Policy(within="1d", tz="Europe/Brussels"))
    assert result.cutoffs["within"] == at("2026-10-25 01:30")
    assert kept(result) == ["2026-10-26 01:30", "2026-10-25 01:45"]


def test_cutoff_in_the_repeated_hour_in_new_york() -> None:
    """West of UTC the repeated 01:30 of 1 Nov 2026 reads as the first one (05:30 UTC)."""
    times = [at("2026-11-02 06:30"), at("2026-11-01 05:45"), at("2026-11-01 05:15")]
    result = plan(times, Policy(within="1d", tz="America/New_York"))
    assert result.cutoffs["within"] == at("2026-11-01 05:30")
    assert kept(result) == ["2026-11-02 06:30", "2026-11-01 05:45"]


def test_windows_anchor_on_newest_snapshot_not_after_now() -> None:
    """With now between snapshots, later ones are kept as 'after now' and windows start below."""
    times = daily("2026-11-01", "2026-11-10")
    result = plan(times, Policy(within_daily="2d"), now=at("2026-11-08 12:00"))
    assert result.anchor == at("2026-11-08 03:00")
    assert kept(result) == [
        "2026-11-10 03:00",
        "2026-11-09 03:00",
        "2026-11-08 03:00",
        "2026-11-07 03:00",
    ]
    assert labels(result) == [
        ["after now"],
        ["after now"],
        ["daily 2026-11-08 within 2d"],
        ["daily 2026-11-07 within 2d"],
    ]


def test_snapshot_after_now_does_not_take_the_anchors_period() -> None:
    """A later snapshot on the anchor's day is kept as 'after now'; the anchor stays kept."""
    times = [at("2026-11-10 20:00"), at("2026-11-10 03:00"), at("2026-11-09 03:00")]
    result = plan(times, Policy(within_daily="1d"), now=at("2026-11-10 12:00"))
    assert labels(result) == [["after now"], ["daily 2026-11-10 within 1d"]]


def test_anchor_now_measures_windows_from_now() -> None:
    """anchor='now' lets windows run out when backups stop; the newest is still kept."""
    times = daily("2026-11-01", "2026-11-10")
    now = at("2026-11-11 12:00")
    stopped = plan(times, Policy(within="2d", anchor="now"), now=now)
    assert stopped.anchor == now
    assert kept(stopped) == ["2026-11-10 03:00"]
    assert labels(stopped) == [["within 2d"]]
    later = plan(times, Policy(within="2d", anchor="now"), now=at("2026-12-01 00:00"))
    assert kept(later) == ["2026-11-10 03:00"]
    assert labels(later) == [["newest snapshot"]]
    default = plan(times, Policy(within="2d"), now=now)
    assert kept(default) == ["2026-11-10 03:00", "2026-11-09 03:00"]


def test_count_rules_ignore_now() -> None:
    """Count rules count every snapshot, those after now included, as restic does."""
    times = daily("2026-11-01", "2026-11-05")
    result = plan(times, Policy(last=2), now=at("2026-11-03 12:00"))
    assert kept(result) == ["2026-11-05 03:00", "2026-11-04 03:00", "2026-11-03 03:00"]
    assert labels(result) == [
        ["after now", "last #1"],
        ["after now", "last #2"],
        ["newest snapshot"],
    ]


def test_tags_keep_snapshots_on_top_of_rules() -> None:
    """A snapshot carrying a listed tag is kept whatever the rules say."""

    @attrs.frozen
    class Record:
        time: datetime
        tags: tuple[str, ...] = ()

    records = [
        Record(at("2026-11-10 03:00")),
        Record(at("2026-11-09 03:00"), ("release",)),
        Record(at("2026-11-08 03:00"), ("other",)),
        Record(at("2026-11-07 03:00"), ("release", "audit")),
    ]
    result = plan(records, Policy(last=1, tags=["release", "audit"]))
    assert result.keep == (records[0], records[1], records[3])
    assert labels(result) == [["last #1"], ["tag release"], ["tag audit", "tag release"]]


# --- items, identity, now --------------------------------------------------------------------


def test_objects_with_time_keep_their_identity() -> None:
    """Keep and forget hold the very objects given, newest first."""

    class Snap:
        def __init__(self, time: datetime) -> None:
            self.time = time

    snaps = [Snap(moment) for moment in daily("2026-11-01", "2026-11-04")]
    result = plan(reversed(snaps), Policy(last=2))
    assert result.keep == (snaps[3], snaps[2])
    assert result.forget == (snaps[1], snaps[0])
    assert all(a is b for a, b in zip(result.keep, (snaps[3], snaps[2]), strict=True))


def test_key_function_reads_times_from_any_object() -> None:
    """key= maps items to their times, here from (name, time) pairs."""
    rows = [(f"snap-{n}", moment) for n, moment in enumerate(daily("2026-11-01", "2026-11-03"))]
    result = plan(rows, Policy(last=1), key=lambda row: row[1])
    assert result.keep == (rows[2],)
    assert result.reasons[rows[2]] == (Reason(rule="last", slot=1),)


def test_mixed_offsets_are_ordered_by_instant() -> None:
    """The same instants written in different offsets sort and bucket as instants."""
    times = [
        at("2026-11-10 01:00", timezone(timedelta(hours=5))),  # 2026-11-09 20:00 UTC
        at("2026-11-09 21:00"),
        at("2026-11-09 17:00", timezone(timedelta(hours=-5))),  # 2026-11-09 22:00 UTC
    ]
    result = plan(times, Policy(last=3))
    assert kept(result) == ["2026-11-09 22:00", "2026-11-09 21:00", "2026-11-09 20:00"]


def test_naive_datetimes_are_refused() -> None:
    """A naive datetime is ambiguous; planning refuses it and names it."""
    with pytest.raises(PolicyError, match="naive"):
        plan([at("2026-11-10 03:00"), datetime(2026, 11, 9)], Policy(last=1))
    with pytest.raises(ValueError, match="naive"):
        plan([at("2026-11-10 03:00")], Policy(last=1), now=datetime(2026, 11, 9))


def test_items_without_a_time_are_refused() -> None:
    """An item that is neither a datetime nor has a .time raises TypeError."""
    days: list[Any] = [date(2026, 1, 1)]
    with pytest.raises(TypeError, match="no 'time' attribute"):
        plan(days, Policy(last=1))
    with pytest.raises(TypeError, match="not a datetime"):
        plan(days, Policy(last=1), key=lambda item: item)


def test_empty_input_gives_an_empty_plan() -> None:
    """No items, no decisions."""
    result: RetentionPlan[datetime] = plan([], Policy.contractify())
    assert (result.keep, result.forget, result.now, result.anchor) == ((), (), None, None)
    assert len(result.reasons) == 0


def test_reasons_are_found_by_equal_datetimes() -> None:
    """A datetime equal to a kept one (even in another offset) finds its reasons."""
    result = plan(daily("2026-11-01", "2026-11-03"), Policy(last=1))
    other = at("2026-11-03 04:00", timezone(timedelta(hours=1)))
    assert result.reasons[other] == (Reason(rule="last", slot=1),)
    assert at("2026-11-01 03:00") not in result.reasons
    assert result.reasons.get(at("2026-11-02 03:00"), ()) == ()


def test_equal_times_keep_their_input_order() -> None:
    """Two snapshots at the same instant are ordered as given; last=1 keeps the first."""

    @attrs.frozen(eq=False)
    class Snap:
        time: datetime

    first, second = Snap(at("2026-11-10 03:00")), Snap(at("2026-11-10 03:00"))
    assert plan([first, second], Policy(last=1)).keep == (first,)
    assert plan([second, first], Policy(last=1)).keep == (second,)


@pytest.mark.parametrize(
    "policy", [Policy(daily=5), Policy(within_daily="7d")], ids=["count", "window"]
)
def test_identical_times_keep_the_first_given_and_as_oldest_the_last(policy: Policy) -> None:
    """Of identical times a period keeps the first given; the oldest kept is the last given."""

    @attrs.frozen(eq=False)
    class Snap:
        name: str
        time: datetime

    a1, a2 = Snap("a1", at("2026-11-10 12:00")), Snap("a2", at("2026-11-10 12:00"))
    b1, b2, b3 = (Snap(name, at("2026-11-09 08:00")) for name in ("b1", "b2", "b3"))
    result = plan([b1, a1, b2, a2, b3], policy)
    assert [snap.name for snap in result.keep] == ["a1", "b1", "b3"]
    assert [snap.name for snap in result.forget] == ["a2", "b2"]
    assert [reason.oldest for snap in result.keep for reason in result.reasons[snap]] == [
        False,
        False,
        True,
    ]


def test_empty_policy_with_allow_empty_keeps_everything() -> None:
    """allow_empty=True with no rule keeps every snapshot and says so."""
    times = daily("2026-11-01", "2026-11-03")
    result = plan(times, Policy(allow_empty=True))
    assert result.forget == ()
    assert labels(result) == [["empty policy keeps all"]] * 3


# --- explaining ------------------------------------------------------------------------------


def test_explain_lists_every_snapshot_with_action_and_reasons() -> None:
    """The table shows policy, anchor, cutoffs, and one line per snapshot, newest first."""
    times = daily("2026-11-18", "2026-11-20")
    result = plan(times, Policy(within_daily="1d", last=1, tz="Europe/Brussels"))
    text = result.explain(describe=lambda moment: f"snap-{moment.day}")
    assert text == (
        "Policy: last=1,within_daily=1d,tz=Europe/Brussels (periods in Europe/Brussels)\n"
        "Now: 2026-11-20 04:00:00+01:00\n"
        "Windows measured from 2026-11-20 04:00:00+01:00 (newest snapshot not after now)\n"
        "  within_daily 1d: snapshots after 2026-11-19 04:00:00+01:00\n"
        "Keep 1 of 3 snapshots, forget 2.\n"
        "\n"
        "Time                       Snapshot  Action  Reasons\n"
        "2026-11-20 04:00:00+01:00  snap-20   keep    last #1, daily 2026-11-20 within 1d\n"
        "2026-11-19 04:00:00+01:00  snap-19   forget\n"
        "2026-11-18 04:00:00+01:00  snap-18   forget\n"
    )


def test_json_form_carries_reasons_and_cutoffs() -> None:
    """to_json gives plain JSON with times in the policy zone and structured reasons."""
    times = daily("2026-11-18", "2026-11-20")
    result = plan(times, Policy(daily=1, within="1d"))
    data = json.loads(result.to_json(describe=lambda moment: moment.strftime("%d")))
    assert data["policy"] == "daily=1,within=1d"
    assert data["settings"] == {"daily": 1, "within": "1d"}
    assert data["anchor"] == "2026-11-20 03:00:00+00:00"
    assert data["cutoffs"] == {"within": "2026-11-19 03:00:00+00:00"}
    assert data["keep"] == [
        {
            "time": "2026-11-20 03:00:00+00:00",
            "snapshot": "20",
            "reasons": [
                {"rule": "within", "label": "within 1d", "window": "1d"},
                {"rule": "daily", "label": "daily 2026-11-20", "period": "2026-11-20", "slot": 1},
            ],
        }
    ]
    assert [entry["time"] for entry in data["forget"]] == [
        "2026-11-19 03:00:00+00:00",
        "2026-11-18 03:00:00+00:00",
    ]


# --- policies --------------------------------------------------------------------------------


def test_contractify_is_the_promised_schedule() -> None:
    """The product schedule: daily 14 days, weekly 8 weeks, monthly 6 months, yearly 1 year."""
    policy = Policy.contractify()
    assert str(policy) == "within_daily=14d,within_weekly=8w,within_monthly=6m,within_yearly=1y"
    assert policy.within_weekly == Duration(weeks=8)
    assert Policy.contractify(tz="Europe/Brussels").tz == "Europe/Brussels"


@pytest.mark.parametrize(
    "text",
    [
        "daily=7,weekly=4,monthly=12,yearly=unlimited",
        "last=1,within=1y2m3w4d5h",
        "hourly=24,within_hourly=2d,tz=Europe/Brussels,tags=audit|release",
        "within_daily=14d,anchor=now",
        "allow_empty=true",
    ],
)
def test_policy_text_round_trips(text: str) -> None:
    """str(Policy.parse(text)) gives the text back, and parsing it again the same policy."""
    policy = Policy.parse(text)
    assert str(policy) == text
    assert Policy.parse(str(policy)) == policy
    assert Policy.from_dict(policy.to_dict()) == policy


def test_parse_accepts_restic_flag_names_and_spaces() -> None:
    """keep-daily and keep-within-weekly read as daily and within_weekly."""
    policy = Policy.parse(" keep-daily = 7 , keep-within-weekly=8w, keep-last=unlimited ")
    assert policy == Policy(daily=7, within_weekly="8w", last=unlimited)


def test_from_dict_reads_a_toml_table() -> None:
    """A TOML-style table with ints, strings and a tag list builds the policy."""
    table: dict[str, object] = {
        "daily": 14,
        "keep-weekly": "8",
        "within_monthly": "6m",
        "tz": "Europe/Brussels",
        "tags": ["release"],
    }
    policy = Policy.from_dict(table)
    assert policy == Policy(
        daily=14, weekly=8, within_monthly="6m", tz="Europe/Brussels", tags={"release"}
    )
    assert policy.to_dict() == {
        "daily": 14,
        "weekly": 8,
        "within_monthly": "6m",
        "tz": "Europe/Brussels",
        "tags": ["release"],
    }


def test_windows_accept_durations_text_and_timedeltas() -> None:
    """A window may be a Duration, restic text or a timedelta of whole hours."""
    assert Policy(within=timedelta(days=2, hours=3)).within == Duration(days=2, hours=3)
    assert Policy(within="2d3h") == Policy(within=Duration(days=2, hours=3))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"daily": -1}, "daily must be >= 0 or 'unlimited'"),
        ({"daily": 1.5}, "daily must be a whole number"),
        ({"weekly": True}, "weekly must be a whole number"),
        ({"monthly": "many"}, "monthly must be a whole number"),
        ({"within": "14"}, "within: invalid duration '14': 14 has no unit"),
        ({"within_daily": "14x"}, "within_daily: invalid duration '14x': unknown unit 'x'"),
        ({"within": "1d1d"}, "unit 'd' appears twice"),
        ({"within": "-1d"}, "expected a number"),
        ({"within": ""}, "must not be empty"),
        ({"within": "0d"}, "within is a zero window"),
        ({"within": timedelta(minutes=90)}, "whole number of hours"),
        ({"within": timedelta(hours=-1)}, "must not be negative"),
        ({"within": 14}, "expected a duration"),
        ({"daily": 1, "tz": "Mars/Olympus"}, "not a known IANA time zone"),
        ({"daily": 1, "tz": "../etc/passwd"}, "not a known IANA time zone"),
        ({"daily": 1, "tz": "localtime"}, "depends on the machine"),
        ({"daily": 1, "tz": 5}, "tz must be an IANA zone name"),
        ({"daily": 1, "tags": "release"}, "not the text"),
        ({"daily": 1, "tags": ["a b"]}, "must not contain whitespace"),
        ({"daily": 1, "tags": [""]}, "non-empty string"),
        ({"daily": 1, "anchor": "oldest"}, "anchor must be 'newest' or 'now'"),
        ({"daily": 1, "allow_empty": "yes"}, "allow_empty must be true or false"),
        ({}, "no count or window rule"),
        ({"daily": 0, "within": None}, "no count or window rule"),
        ({"tags": ["release"]}, "tags alone would forget"),
    ],
)
def test_invalid_policies_are_refused(settings: dict[str, Any], message: str) -> None:
    """Each invalid setting raises PolicyError naming the problem."""
    with pytest.raises(PolicyError, match=re.escape(message)):
        Policy(**settings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("daily=7,hourly", "'hourly' is not of the form key=value"),
        ("daily=7,fortnightly=2", "unknown policy key 'fortnightly'"),
        ("daily=7,keep-daily=3", "'daily' is given twice"),
        ("daily=seven", "daily must be a whole number"),
        ("daily=-1", "daily must be a whole number"),
        ("daily=1,allow_empty=maybe", "allow_empty must be true or false"),
        ("", "no count or window rule"),
    ],
)
def test_invalid_policy_text_is_refused(text: str, message: str) -> None:
    """Policy.parse refuses malformed text with a message naming the problem."""
    with pytest.raises(PolicyError, match=re.escape(message)):
        Policy.parse(text)


def test_policy_error_is_a_value_error_under_vault_error() -> None:
    """Callers can catch PolicyError as ValueError, ConfigurationError or VaultError."""
    with pytest.raises(PolicyError) as caught:
        Policy(daily=-3)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, ConfigurationError)
    assert isinstance(caught.value, VaultError)


def test_policy_is_frozen_and_evolvable() -> None:
    """Policies are immutable values; attrs.evolve derives a changed one with validation."""
    policy = Policy(daily=7)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.daily = 8  # type: ignore[misc]
    assert attrs.evolve(policy, weekly=4) == Policy(daily=7, weekly=4)
    with pytest.raises(PolicyError):
        attrs.evolve(policy, daily=-1)


def test_zone_names_and_objects() -> None:
    """Tz takes IANA names, ZoneInfo objects or timezone.utc; UTC aliases are fixed offsets."""
    assert Policy(daily=1, tz=BRUSSELS).tz == "Europe/Brussels"
    assert Policy(daily=1, tz=UTC).tz == "UTC"
    assert Policy(daily=1, tz="Etc/UTC").zone is UTC
    assert Policy(daily=1, tz="Europe/Brussels").zone == BRUSSELS


@pytest.mark.parametrize(
    ("policy", "horizon"),
    [
        (Policy.contractify(), timedelta(days=366)),
        (Policy.contractify(tz="Europe/Brussels"), timedelta(days=367)),
        (Policy(within="2d"), timedelta(days=2)),
        (Policy(within_daily="1y2m", within="3w4d5h"), timedelta(days=366 + 62)),
        (Policy(within="3w4d5h"), timedelta(days=25, hours=5)),
        (Policy(within="2d", daily=1), None),
        (Policy(within="2d", tags=["release"]), None),
        (Policy(allow_empty=True), None),
    ],
)
def test_horizon_bounds_window_rules_only(policy: Policy, horizon: timedelta | None) -> None:
    """horizon() is the longest window (years 366 days, months 31); counts and tags unbound it."""
    assert policy.horizon() == horizon


# --- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "duration", "canonical"),
    [
        ("14d", Duration(days=14), "14d"),
        ("8w", Duration(weeks=8), "8w"),
        ("1y2m3d4h", Duration(years=1, months=2, days=3, hours=4), "1y2m3d4h"),
        ("4h1y", Duration(years=1, hours=4), "1y4h"),
        ("0y3d", Duration(days=3), "3d"),
    ],
)
def test_duration_parse_and_str(text: str, duration: Duration, canonical: str) -> None:
    """Restic's syntax parses in any unit order and prints in y, m, w, d, h order."""
    assert Duration.parse(text) == duration
    assert str(duration) == canonical


def test_duration_refuses_negative_fields() -> None:
    """A Duration built directly must have non-negative whole numbers."""
    with pytest.raises(PolicyError, match="days must not be negative"):
        Duration(days=-1)
    with pytest.raises(PolicyError, match="hours must be an int"):
        Duration(hours=1.5)  # type: ignore[arg-type]


# --- public surface --------------------------------------------------------------------------


def test_public_names_are_sorted_and_complete() -> None:
    """__all__ is sorted and lists every public name of ctfy_vault.retention."""
    assert retention.__all__ == sorted(retention.__all__)
    public = {
        name
        for name, value in vars(retention).items()
        if not name.startswith("_") and not isinstance(value, type(retention))
    }
    assert public == set(retention.__all__)


def test_plan_is_frozen() -> None:
    """A RetentionPlan cannot be changed after planning."""
    result = plan(daily("2026-11-01", "2026-11-02"), Policy(last=1))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        result.keep = ()  # type: ignore[misc]
