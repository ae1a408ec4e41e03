"""Object Lock dates over simulated histories of backups and prunes.

A history is replayed as a repository lives it: after each backup a plan is made over every
snapshot still there, with ``now`` the backup's time; prunes between backups make plans of
their own; what a plan forgets is deleted; and each plan's `retain_until` dates raise the
locks, which are never shortened (``max`` with the lock already set). Plans are at most
``lead`` apart, the cadence the lead promises.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctfy_vault.exceptions import PolicyError
from ctfy_vault.retention import (
    DEFAULT_LOCK_LEAD,
    Duration,
    Policy,
    RetentionPlan,
    plan,
    retain_until,
    unlimited,
)
from ctfy_vault.retention._duration import cutoff
from tests.support.retention_strategies import Snapshot, durations, instants, policies

PROPERTY = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LOCK_ZONES = ("UTC", "Europe/Amsterdam")
LEADS = (timedelta(hours=6), timedelta(days=1), timedelta(days=3), DEFAULT_LOCK_LEAD)
PERIODIC = ("within_hourly", "within_daily", "within_weekly", "within_monthly", "within_yearly")
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


@attrs.frozen
class Step:
    """One plan of a history: made at ``now``, right after ``backup`` (``None`` for a prune)."""

    now: datetime
    backup: Snapshot | None


@attrs.frozen
class Round:
    """What one plan saw and did.

    Attributes:
        result: the plan.
        before: the lock of every snapshot that had one before this plan was computed.
        after: the locks once this plan's dates were applied.
    """

    result: RetentionPlan[Snapshot]
    before: dict[int, datetime]
    after: dict[int, datetime]


class Life:
    """A replayed history: every round and each snapshot's final lock.

    Its repr names only the policy, the lead and the schedule, one short entry per plan, so
    that a failing example stays readable.
    """

    def __init__(
        self,
        rounds: tuple[Round, ...],
        locks: dict[int, datetime],
        steps: tuple[Step, ...],
        lead: timedelta,
        policy: Policy,
    ) -> None:
        self.rounds = rounds
        self.locks = locks
        self.steps = steps
        self.lead = lead
        self.policy = policy

    def __repr__(self) -> str:
        entries = [
            f"{'prune' if step.backup is None else f'backup {step.backup.id}'}"
            f"{' ' + ','.join(sorted(step.backup.tags)) if step.backup and step.backup.tags else ''}"
            f" {step.now.astimezone(UTC):%Y-%m-%d %H:%M:%S}"
            for step in self.steps
        ]
        return f"Life(policy={str(self.policy)!r}, lead={self.lead!r}, steps={entries!r})"


def replay(steps: Sequence[Step], policy: Policy, lead: timedelta) -> Life:
    """Run every plan of ``steps`` in order, deleting what each forgets and raising locks."""
    alive: list[Snapshot] = []
    locks: dict[int, datetime] = {}
    rounds: list[Round] = []
    for step in steps:
        if step.backup is not None:
            alive.append(step.backup)
        result = plan(alive, policy, now=step.now)
        before = dict(locks)
        for snapshot, until in zip(result.keep, retain_until(result, lead=lead), strict=True):
            locks[snapshot.id] = max(locks.get(snapshot.id, until), until)
        gone = {snapshot.id for snapshot in result.forget}
        alive = [snapshot for snapshot in alive if snapshot.id not in gone]
        rounds.append(Round(result=result, before=before, after=dict(locks)))
    return Life(rounds=tuple(rounds), locks=locks, steps=tuple(steps), lead=lead, policy=policy)


small_windows = st.builds(
    Duration,
    weeks=st.sampled_from([0, 0, 1]),
    days=st.integers(0, 4),
    hours=st.sampled_from([0, 1, 5, 12]),
).filter(lambda duration: not duration.is_zero)


@st.composite
def window_policies(draw: st.DrawFn) -> Policy:
    """Draw a policy of window rules, some with a count rule or tags, in UTC or Amsterdam."""
    window = st.one_of(durations(), small_windows)
    rules = draw(st.lists(st.sampled_from(("within", *PERIODIC)), min_size=1, unique=True))
    settings: dict[str, Any] = {rule: draw(window) for rule in rules}
    if draw(st.integers(0, 3)) == 0:
        count = draw(st.sampled_from(("last", "daily", "weekly", "monthly")))
        settings[count] = draw(st.one_of(st.integers(1, 4), st.just(unlimited)))
    settings["tags"] = draw(st.sampled_from([(), (), ("keep",)]))
    settings["tz"] = draw(st.sampled_from(LOCK_ZONES))
    settings["anchor"] = draw(st.sampled_from(["newest", "newest", "now"]))
    return Policy(**settings)


lock_policies = st.one_of(
    window_policies(), window_policies(), window_policies(), policies(zones=LOCK_ZONES)
)


@st.composite
def schedules(draw: st.DrawFn, lead: timedelta, *, max_backups: int = 40) -> list[Step]:
    """Draw backups at most ``lead`` apart, evenly or irregularly, with prunes between them.

    Prunes fall strictly between two backups or, a few, after the last one (each at most
    ``lead`` after the plan before it), so no two plans are more than ``lead`` apart.
    """
    longest = int(lead.total_seconds())
    count = draw(st.integers(1, max_backups))
    if draw(st.booleans()):
        even = draw(st.sampled_from([HOUR, 6 * HOUR, DAY, lead]))
        gaps = [min(even, lead)] * (count - 1)
    else:
        seconds = st.one_of(
            st.integers(1, longest),
            st.sampled_from([1, 3600, 23 * 3600, longest]).map(lambda n: min(n, longest)),
        )
        gaps = [timedelta(seconds=draw(seconds)) for _ in range(count - 1)]
    # Elapsed-time arithmetic in UTC; each snapshot is shown in the zone the time was drawn in.
    drawn = draw(instants())
    shown = drawn.tzinfo
    moment = drawn.astimezone(UTC)
    tags = st.sampled_from([frozenset(), frozenset(), frozenset({"keep"}), frozenset({"other"})])
    steps: list[Step] = []
    for index in range(count):
        if index:
            gap = gaps[index - 1]
            pruned = draw(st.lists(st.floats(0.01, 0.99), max_size=2, unique=True))
            for share in sorted(pruned) if draw(st.integers(0, 2)) == 0 else ():
                steps.append(Step(now=moment + gap * share, backup=None))
            moment += gap
        snapshot = Snapshot(id=index, time=moment.astimezone(shown), tags=draw(tags))
        steps.append(Step(now=moment, backup=snapshot))
    for _ in range(draw(st.integers(0, 3))):
        moment += timedelta(seconds=draw(st.integers(1, longest)))
        steps.append(Step(now=moment, backup=None))
    return steps


@st.composite
def lives(draw: st.DrawFn) -> Life:
    """Draw a policy, a lead and a schedule, and replay it."""
    lead = draw(st.sampled_from(LEADS))
    return replay(draw(schedules(lead)), draw(lock_policies), lead)


def plan_time(result: RetentionPlan[Snapshot]) -> datetime:
    """The moment a plan keeps its snapshots for: its anchor when windows applied, else now."""
    moment = result.anchor if result.anchor is not None else result.now
    assert moment is not None
    return moment


def span(policy: Policy, rule: str) -> timedelta:
    """The longest a window can reach back, as the lock rule counts it."""
    window: Duration = getattr(policy, rule)
    return window.longest() + (timedelta(0) if policy.tz == "UTC" else DAY)


def calendar_slack(policy: Policy, rule: str) -> timedelta:
    """How much `span` can exceed a window's true reach back from any anchor.

    A month is 28 to 31 days and `Duration.longest` counts 31, a year 365 or 366 and it counts
    366; weeks, days and hours are exact in UTC. Outside UTC the rule adds a day and a clock
    change moves the reach by up to an hour.
    """
    window: Duration = getattr(policy, rule)
    slack = timedelta(days=window.years + 3 * window.months)
    return slack if policy.tz == "UTC" else slack + DAY + HOUR


@PROPERTY
@given(life=lives())
def test_a_kept_snapshot_was_already_locked_until_the_plan(life: Life) -> None:
    """Each plan finds every snapshot it keeps, but the new ones, locked up to its plan time.

    The plan time is the plan's ``anchor`` when windows applied and its ``now`` otherwise. A
    plan anchored at the newest snapshot measures its windows from that snapshot, not from the
    clock: it keeps what a window holds for as long as no newer backup moves the anchor, so
    a window's lock has to reach the anchor, and needs no more while backups keep coming
    (prunes in between see the same anchor). With ``anchor="now"`` the anchor is ``now``. The
    lock checked is the one set by the earlier plans only: it is what protected the snapshot
    between the previous plan and this one.
    """
    for round_ in life.rounds:
        result = round_.result
        for snapshot in result.keep:
            if snapshot.id in round_.before:
                assert round_.before[snapshot.id] >= plan_time(result), (snapshot, result.now)


def first_forgetting(life: Life, ident: int) -> Round | None:
    """The first round that forgets snapshot ``ident``, if any."""
    return next(
        (r for r in life.rounds if any(s.id == ident for s in r.result.forget)),
        None,
    )


@PROPERTY
@given(life=lives())
def test_a_lock_ends_at_most_a_lead_or_the_calendar_slack_after_it_is_forgotten(
    life: Life,
) -> None:
    """A forgotten snapshot's lock ends by ``max(F.now + lead, F.anchor + slack)``.

    ``F`` is the first plan that forgets the snapshot. A lock that follows the plans (a count
    rule, a tag, the newest snapshot, an open period) runs at most ``lead`` past an earlier
    plan, so past ``F.now``. A window's final lock runs to the snapshot's time plus `span`,
    and ``F`` forgets the snapshot only once it is outside every window, no newer than ``F``'s
    cutoff: so that lock ends by the cutoff plus `span`, which is ``F.anchor`` plus how much
    `span` exceeds the window's true reach from that anchor. That excess is at most
    `calendar_slack`: a year and three days per month of the window, plus a day and an hour
    outside UTC. So a lock outlives the plan that forgets its snapshot by at most
    ``max(lead, calendar_slack)``, and by nothing more when no window is set.

    A snapshot the last plan ``L`` still keeps may stay kept by a window, so its bound is
    ``L.now + lead``, or its time plus `span` for a window it is still inside of at ``L``, or
    ``L``'s cutoff plus `span` for a window it has left.
    """
    policy, lead = life.policy, life.lead
    windows = policy.windows()
    last = life.rounds[-1]
    for ident, lock in life.locks.items():
        forgetting = first_forgetting(life, ident)
        reference = forgetting or last
        result = reference.result
        assert result.now is not None
        # In UTC: adding to a time in a zone would add wall-clock time, not elapsed time.
        time = next(s.time for r in life.rounds for s in r.result.keep if s.id == ident)
        time = time.astimezone(UTC)
        allowed = result.now + lead
        for rule in windows:
            limit = result.cutoffs[rule]
            reach = (limit if time <= limit else time) + span(policy, rule)
            allowed = max(allowed, reach)
        assert lock <= allowed, (ident, lock, allowed)
        if forgetting is not None:
            slack = max((calendar_slack(policy, rule) for rule in windows), default=lead)
            assert lock - result.now <= max(lead, slack), (ident, lock, result.now)


def final_rules(result: RetentionPlan[Snapshot], snapshot: Snapshot) -> list[str]:
    """The window rules that keep ``snapshot`` for good: ``within``, oldest, ended periods."""
    assert result.now is not None
    zone = result.policy.zone
    rules = []
    for reason in result.reasons[snapshot]:
        if (
            reason.rule == "within"
            or (reason.rule in PERIODIC and reason.oldest)
            or (reason.rule in PERIODIC and ended(reason.rule, snapshot.time, result.now, zone))
        ):
            rules.append(reason.rule)
    return rules


def ended(rule: str, time: datetime, now: datetime, zone: tzinfo) -> bool:
    """Whether the period of ``time`` under ``rule`` is over at ``now``, by plain calendar calls."""
    then, later = time.astimezone(zone), now.astimezone(zone)
    kind = rule.removeprefix("within_")
    if kind == "hourly":
        return (then.date(), then.hour) < (later.date(), later.hour)
    if kind == "daily":
        return then.date() < later.date()
    if kind == "weekly":
        return tuple(then.isocalendar())[:2] < tuple(later.isocalendar())[:2]
    if kind == "monthly":
        return (then.year, then.month) < (later.year, later.month)
    return then.year < later.year


@PROPERTY
@given(life=lives())
def test_a_final_tier_is_locked_until_its_window_has_passed(life: Life) -> None:
    """Once a window keeps a snapshot for good, the lock outlasts that window's reach.

    A window keeps a snapshot for good when nothing later can take its place: ``within``, the
    oldest snapshot, or the newest of a period that has ended by the plan's ``now``. Then the
    lock must last until the snapshot leaves the window, whenever that is (a flat horizon
    would lock it that long): measured from the lock date as anchor, the window's cutoff is at
    or after the snapshot.
    """
    zone = life.policy.zone
    for round_ in life.rounds:
        for snapshot in round_.result.keep:
            lock = round_.after[snapshot.id]
            for rule in final_rules(round_.result, snapshot):
                window: Duration = getattr(life.policy, rule)
                assert cutoff(lock, window, zone) >= snapshot.time, (snapshot, rule, lock)


@st.composite
def nightly(draw: st.DrawFn) -> tuple[list[Step], str]:
    """Draw nightly backups at 02:00 UTC, a few nights missed, with a zone for the policy."""
    start = datetime(2025, 1, 1, 2, tzinfo=UTC) + DAY * draw(st.integers(0, 2 * 366))
    nights = draw(st.integers(20, 120))
    missed = draw(st.sets(st.integers(1, nights - 1), max_size=nights // 10))
    steps = [
        Step(now=start + DAY * n, backup=Snapshot(id=n, time=start + DAY * n))
        for n in range(nights)
        if n not in missed
    ]
    return steps, draw(st.sampled_from(LOCK_ZONES))


def months_later(moment: datetime, months: int, zone: tzinfo) -> datetime:
    """The same wall-clock time ``months`` calendar months later, the day clamped to the month."""
    local = moment.astimezone(zone)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    following = datetime(year + month // 12, month % 12 + 1, 1)
    day = min(local.day, (following - timedelta(days=1)).day)
    return local.replace(year=year, month=month, day=day).astimezone(UTC)


@PROPERTY
@given(schedule=nightly())
def test_contractify_locks_each_final_tier_its_promised_time(
    schedule: tuple[list[Step], str],
) -> None:
    """Nightly under `Policy.contractify`: the last of each ended period is locked its tier.

    Once a later night has run, a night is locked 14 days, the last night of an ISO week 8
    weeks, of a month 6 months and of a year 1 year, each counted on the calendar from its
    time.
    """
    steps, tz = schedule
    policy = Policy.contractify(tz=tz)
    zone = policy.zone
    life = replay(steps, policy, DEFAULT_LOCK_LEAD)
    nights = [_snapshot(step) for step in steps]
    newest = nights[-1]
    assert life.locks[newest.id] == newest.time + DEFAULT_LOCK_LEAD
    for night, following in itertools.pairwise(nights):
        local, next_local = night.time.astimezone(zone), following.time.astimezone(zone)
        promised = [night.time + timedelta(days=14)]
        if next_local.isocalendar()[:2] != local.isocalendar()[:2]:
            promised.append(night.time + timedelta(weeks=8))
        if (next_local.year, next_local.month) != (local.year, local.month):
            promised.append(months_later(night.time, 6, zone))
        if next_local.year != local.year:
            promised.append(months_later(night.time, 12, zone))
        assert life.locks[night.id] >= max(promised), (local, life.locks[night.id])


def _snapshot(step: Step) -> Snapshot:
    assert step.backup is not None
    return step.backup


def year_of_nights() -> list[Step]:
    """Nightly backups at 02:00 UTC from 2026-01-01 to 2027-01-01, each planned at once."""
    first = datetime(2026, 1, 1, 2, tzinfo=UTC)
    return [
        Step(now=first + DAY * n, backup=Snapshot(id=n, time=first + DAY * n)) for n in range(366)
    ]


@pytest.mark.parametrize(
    ("night", "days"),
    [
        ("2026-12-16", 14),  # a Wednesday: its day ended, a later night holds its week
        ("2026-12-20", 56),  # a Sunday: the last night of ISO week 2026-W51
        ("2026-11-30", 186),  # the last night of November
        ("2026-12-31", 366),  # the last night of 2026
        ("2027-01-01", 7),  # the newest, locked only at its own backup: the lead
    ],
)
def test_contractify_over_a_year_of_nights(night: str, days: int) -> None:
    """Each night's lock after a year of plans is the length of its longest final tier."""
    steps = year_of_nights()
    life = replay(steps, Policy.contractify(), DEFAULT_LOCK_LEAD)
    time = datetime.fromisoformat(f"{night} 02:00").replace(tzinfo=UTC)
    snapshot = next(_snapshot(step) for step in steps if step.now == time)
    assert life.locks[snapshot.id] == time + timedelta(days=days)


def test_the_newest_snapshot_is_locked_the_lead_at_its_own_backup() -> None:
    """At its own backup every period of the newest snapshot is open: it gets only the lead."""
    times = [datetime(2026, 12, 1, 2, tzinfo=UTC) + DAY * n for n in range(31)]
    result = plan(times, Policy.contractify())
    dates = retain_until(result, lead=timedelta(days=2))
    assert result.keep[0] == times[-1]
    assert dates[0] == times[-1] + timedelta(days=2)


@pytest.mark.parametrize(
    "lead",
    [timedelta(0), timedelta(days=-1), timedelta(days=367), 7, "7d", None],
    ids=repr,
)
def test_a_bad_lead_is_refused_naming_it(lead: object) -> None:
    """A lead that is no timedelta, not positive, or over 366 days raises PolicyError."""
    result = plan([datetime(2026, 12, 1, 2, tzinfo=UTC)], Policy.contractify())
    with pytest.raises(PolicyError, match=re.escape(repr(lead))):
        retain_until(result, lead=lead)  # type: ignore[arg-type]  # deliberately wrong


def test_the_newest_snapshot_stays_locked_when_a_window_from_now_leaves_it() -> None:
    """With ``anchor="now"`` a prune after the window passed still keeps the newest snapshot.

    Its day is open at its own backup, but the one-day window ends before the lead does; the
    prune 25 hours later keeps it as the newest snapshot, so it must still be locked then.
    """
    policy = Policy(within_daily="1d", anchor="now")
    backup = datetime(2026, 12, 1, 12, tzinfo=UTC)
    first = retain_until(plan([backup], policy, now=backup))
    prune = plan([backup], policy, now=backup + timedelta(hours=25))
    assert [str(reason) for reason in prune.reasons[backup]] == ["newest snapshot"]
    assert first == (backup + DEFAULT_LOCK_LEAD,)
    assert first[0] >= backup + timedelta(hours=25)
