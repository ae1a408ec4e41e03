"""`retain_until`: Object Lock dates that follow each snapshot's reasons.

A history grows one snapshot at a time; after each, a plan is made at that snapshot's time (as
a backup does), forgotten snapshots are removed (as prune deletes them), and each kept
snapshot's lock is raised to the plan's date (locks are never shortened). Between consecutive
plans at most ``lead`` passes.

* Safety: a plan that keeps a snapshot finds it locked, from earlier plans alone, at least
  until the plan's anchor (the moment its windows are measured from: the newest snapshot, as a
  plan made at a backup's time is anchored at that backup).
* Bound: a snapshot forgotten by a plan at time ``T`` is locked at most until
  ``T + max(lead, slack)``, where ``slack`` is how much longer a window's `Duration.longest`
  is than its shortest calendar span (a month counts 31 days, it may have 28), plus a day
  outside UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ctfy_vault.retention import DEFAULT_LOCK_LEAD, Duration, Policy, plan, retain_until

START = datetime(2026, 1, 1, 2, tzinfo=UTC)
WINDOWS = {
    "within_daily": ["3d", "14d"],
    "within_weekly": ["2w", "8w"],
    "within_monthly": ["2m", "6m"],
    "within_yearly": ["1y"],
}


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    """Window policies like the product's, sometimes with a count rule, in UTC or a zone."""
    chosen = draw(st.sets(st.sampled_from(sorted(WINDOWS)), min_size=1))
    windows = {rule: draw(st.sampled_from(WINDOWS[rule])) for rule in chosen}
    daily = draw(st.sampled_from([0, 0, 3]))
    zone = draw(st.sampled_from(["UTC", "Europe/Amsterdam"]))
    return Policy(daily=daily, tz=zone, **windows)  # type: ignore[arg-type]


def gaps(lead: timedelta) -> st.SearchStrategy[list[timedelta]]:
    """Times between backups, at most ``lead``: nightly, hourly bursts, missed nights."""
    hours = int(lead.total_seconds() // 3600)
    return st.lists(
        st.one_of(
            st.just(timedelta(days=1)),
            st.integers(1, 6).map(lambda h: timedelta(hours=h)),
            st.integers(1, hours).map(lambda h: timedelta(hours=h)),
        ),
        min_size=1,
        max_size=120,
    )


def slack(policy: Policy) -> timedelta:
    """How much a window's longest span can exceed its true span, plus a day outside UTC."""
    most = timedelta(0)
    for window in policy.windows().values():
        shortest = timedelta(
            days=window.years * 365 + window.months * 28 + window.weeks * 7 + window.days,
            hours=window.hours,
        )
        most = max(most, window.longest() - shortest)
    return most + (timedelta(0) if policy.tz == "UTC" else timedelta(days=1))


def simulate(policy: Policy, steps: list[timedelta], lead: timedelta) -> None:
    """Grow the history, plan after each backup, and check safety and the bound at each plan."""
    locks: dict[datetime, datetime] = {}
    history: list[datetime] = []
    moment = START
    for step in [timedelta(0), *steps]:
        moment += step
        history.append(moment)
        planned = plan(history, policy, now=moment)
        anchor = planned.anchor or moment
        for kept in planned.keep:
            if kept != moment:  # the new snapshot is locked by this very plan
                assert locks[kept] >= anchor, (kept, locks[kept], anchor)
        for forgotten in planned.forget:
            assert locks[forgotten] <= moment + max(lead, slack(policy)), forgotten
            del locks[forgotten]
        for kept, until in zip(planned.keep, retain_until(planned, lead=lead), strict=True):
            locks[kept] = max(locks.get(kept, until), until)
        history = sorted(planned.keep)


@settings(max_examples=60, deadline=None)
@given(policy=policies(), data=st.data())
def test_locks_cover_every_plan_that_keeps_and_end_soon_after_the_last(
    policy: Policy, data: st.DataObject
) -> None:
    """Safety and the bound of the module docstring, for the default and a short lead."""
    lead = data.draw(st.sampled_from([DEFAULT_LOCK_LEAD, timedelta(days=2)]))
    simulate(policy, data.draw(gaps(lead)), lead)


def test_the_product_schedule_over_a_year_of_nights() -> None:
    """Safety and the bound hold for a year of nightly backups under the product's policy."""
    simulate(Policy.contractify(), [timedelta(days=1)] * 400, DEFAULT_LOCK_LEAD)


def test_the_worked_dates_of_the_product_schedule() -> None:
    """A plain night 14 days, a week's last 56, a month's last 186, the year's last 366.

    The newest snapshot, whose periods are all open, gets the lead.
    """
    nights = [START + timedelta(days=n) for n in range(400)]
    planned = plan(nights, Policy.contractify())
    lengths = {
        kept: (until - kept).days
        for kept, until in zip(planned.keep, retain_until(planned), strict=True)
    }
    assert lengths[nights[-1]] == DEFAULT_LOCK_LEAD.days
    assert lengths[datetime(2027, 2, 3, 2, tzinfo=UTC)] == 14  # a Wednesday
    assert lengths[datetime(2027, 1, 24, 2, tzinfo=UTC)] == 56  # the Sunday ending a week
    assert lengths[datetime(2026, 11, 30, 2, tzinfo=UTC)] == 186  # the last of a month
    assert lengths[datetime(2026, 12, 31, 2, tzinfo=UTC)] == 366  # the last of the year


def test_duration_longest_bounds_the_shortest_span() -> None:
    """The slack used above is never negative (a sanity check of the bound's input)."""
    assert slack(Policy(within_monthly=Duration.parse("6m"))) == timedelta(days=18)
