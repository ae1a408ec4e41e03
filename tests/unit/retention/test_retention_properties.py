"""Properties of retention plans over generated histories and policies."""

from __future__ import annotations

import itertools
import json
from collections.abc import Hashable
from datetime import datetime, timedelta, tzinfo
from typing import Any

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctfy_vault.retention import Duration, Policy, RetentionPlan, plan, unlimited
from ctfy_vault.retention._duration import cutoff
from tests.support.retention_strategies import (
    ZONES,
    Snapshot,
    histories,
    instants,
    policies,
    snapshot_histories,
)

PROPERTY = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
COUNTS = ("last", "hourly", "daily", "weekly", "monthly", "yearly")
WINDOWS = (
    "within",
    "within_hourly",
    "within_daily",
    "within_weekly",
    "within_monthly",
    "within_yearly",
)

nows = st.one_of(st.none(), instants())


def ids(items: tuple[Snapshot, ...]) -> list[int]:
    """Return the ids of snapshots in order."""
    return [snapshot.id for snapshot in items]


def newest_first(history: list[Snapshot]) -> list[Snapshot]:
    """Sort by instant, newest first, ties in input order."""
    return sorted(history, key=lambda snapshot: snapshot.time, reverse=True)


def period(rule: str, moment: datetime, zone: tzinfo) -> Hashable:
    """Return the period a rule buckets ``moment`` in, computed with plain datetime calls."""
    local = moment.astimezone(zone)
    kind = rule.removeprefix("within_")
    if kind == "hourly":
        return (local.date(), local.hour)
    if kind == "daily":
        return local.date()
    if kind == "weekly":
        return tuple(local.isocalendar())[:2]
    if kind == "monthly":
        return (local.year, local.month)
    return local.year


def period_label(rule: str, moment: datetime, zone: tzinfo) -> str:
    """Return the label the plan should give the period of ``moment``."""
    local = moment.astimezone(zone)
    kind = rule.removeprefix("within_")
    if kind == "hourly":
        return f"{local.date().isoformat()} {local.hour:02d}:00"
    if kind == "daily":
        return local.date().isoformat()
    if kind == "weekly":
        year, week, _ = local.isocalendar()
        return f"{year:04d}-W{week:02d}"
    if kind == "monthly":
        return f"{local.year:04d}-{local.month:02d}"
    return f"{local.year:04d}"


def model(history: list[Snapshot], policy: Policy, now: datetime | None) -> set[int]:
    """Return the ids a policy keeps, by the plainest reading of the rules.

    This walks the history once per rule and compares each snapshot's period with the last
    one kept, as restic's forget does (0.16 and later): a count rule with slots left and a
    periodic window that reaches the oldest snapshot both keep the oldest snapshot too, the
    last of the identical oldest times. The window cutoff comes from the engine's own calendar
    arithmetic, which the hand-computed tables check on their own.
    """
    ordered = newest_first(history)
    if not ordered:
        return set()
    zone = policy.zone
    moment = now if now is not None else ordered[0].time
    kept = {snapshot.id for snapshot in ordered if snapshot.time > moment}
    kept |= {snapshot.id for snapshot in ordered if policy.tags & snapshot.tags}
    if policy.is_empty:
        kept |= {snapshot.id for snapshot in ordered}
    for rule, count in policy.counts().items():
        left = len(ordered) + 1 if count is unlimited else count
        last: Hashable = None
        for index, snapshot in enumerate(ordered):
            if left == 0:
                break
            value = index if rule == "last" else period(rule, snapshot.time, zone)
            if value != last or index == len(ordered) - 1:
                kept.add(snapshot.id)
                last = value
                left -= 1
    settled = [snapshot for snapshot in ordered if snapshot.time <= moment]
    anchor = moment if policy.anchor == "now" else (settled[0].time if settled else None)
    for rule, duration in policy.windows().items():
        if anchor is not None:
            kept |= model_window(rule, cutoff(anchor, duration, zone), ordered, settled, zone)
    if settled:
        kept.add(settled[0].id)
    return kept


def model_window(
    rule: str, limit: datetime, ordered: list[Snapshot], settled: list[Snapshot], zone: tzinfo
) -> set[int]:
    """Return the ids one window rule keeps, walking newest first as restic does."""
    if rule == "within":
        return {snapshot.id for snapshot in ordered if snapshot.time > limit}
    kept: set[int] = set()
    last: Hashable = None
    for index, snapshot in enumerate(settled):
        if snapshot.time <= limit:
            break
        value = period(rule, snapshot.time, zone)
        # settled is the older end of ordered, so its last snapshot is the oldest of all.
        if value != last or index == len(settled) - 1:
            kept.add(snapshot.id)
            last = value
    return kept


@PROPERTY
@given(history=snapshot_histories(), policy=policies(), now=nows)
def test_plan_matches_the_plain_model(
    history: list[Snapshot], policy: Policy, now: datetime | None
) -> None:
    """The engine keeps exactly what a plain per-snapshot walk of the rules keeps."""
    result = plan(history, policy, now=now)
    assert set(ids(result.keep)) == model(history, policy, now)


@PROPERTY
@given(history=snapshot_histories(), policy=policies(), now=nows)
def test_keep_and_forget_partition_the_input_newest_first(
    history: list[Snapshot], policy: Policy, now: datetime | None
) -> None:
    """Keep and forget are disjoint, hold every input object once, and run newest first."""
    result = plan(history, policy, now=now)
    assert sorted(ids(result.keep) + ids(result.forget)) == list(range(len(history)))
    for part in (result.keep, result.forget):
        times = [snapshot.time for snapshot in part]
        assert all(a >= b for a, b in itertools.pairwise(times))
    by_id = {snapshot.id: snapshot for snapshot in history}
    assert all(by_id[snapshot.id] is snapshot for snapshot in result.keep + result.forget)
    assert [snapshot.time for snapshot in result.keep] == list(result.keep_times)


@PROPERTY
@given(history=snapshot_histories(), policy=policies(), now=nows, data=st.data())
def test_order_of_input_does_not_matter(
    history: list[Snapshot], policy: Policy, now: datetime | None, data: st.DataObject
) -> None:
    """Shuffling snapshots with distinct instants gives the same plan."""
    # Only ties are ordered by input position, so one snapshot per instant makes order moot.
    distinct = list({snapshot.time: snapshot for snapshot in history}.values())
    shuffled = data.draw(st.permutations(distinct))
    first, second = plan(distinct, policy, now=now), plan(shuffled, policy, now=now)
    assert ids(first.keep) == ids(second.keep)
    assert ids(first.forget) == ids(second.forget)


@PROPERTY
@given(times=histories(), policy=policies(), now=nows, data=st.data())
def test_order_of_plain_datetimes_does_not_matter(
    times: list[datetime], policy: Policy, now: datetime | None, data: st.DataObject
) -> None:
    """Shuffling datetimes, equal ones included, keeps and forgets the same instants."""
    shuffled = data.draw(st.permutations(times))
    first, second = plan(times, policy, now=now), plan(shuffled, policy, now=now)
    assert first.keep_times == second.keep_times
    assert first.forget_times == second.forget_times


@PROPERTY
@given(history=snapshot_histories(), policy=policies(), now=nows, data=st.data())
def test_other_utc_offsets_give_the_same_plan(
    history: list[Snapshot], policy: Policy, now: datetime | None, data: st.DataObject
) -> None:
    """The same instants written in other offsets or zones give the same decisions."""
    zone = data.draw(st.sampled_from(ZONES))
    moved = [
        attrs.evolve(snapshot, time=snapshot.time.astimezone(Policy(daily=1, tz=zone).zone))
        for snapshot in history
    ]
    first, second = plan(history, policy, now=now), plan(moved, policy, now=now)
    assert ids(first.keep) == ids(second.keep)
    assert [first.reasons[a] for a in first.keep] == [second.reasons[b] for b in second.keep]


@PROPERTY
@given(history=snapshot_histories(), policy=policies(), now=nows)
def test_planning_the_kept_set_again_keeps_all_of_it(
    history: list[Snapshot], policy: Policy, now: datetime | None
) -> None:
    """A plan is idempotent: what it keeps, planned again at the same now, is all kept."""
    first = plan(history, policy, now=now)
    again = plan(first.keep, policy, now=first.now)
    assert again.forget == ()
    assert again.keep == first.keep


def raised(policy: Policy, rule: str, data: st.DataObject) -> Policy:
    """Return ``policy`` with one count or window made larger (or switched on)."""
    current = getattr(policy, rule)
    if rule in COUNTS:
        if current is unlimited:
            return policy
        bigger = data.draw(
            st.one_of(st.integers(1, 5).map(lambda n: current + n), st.just(unlimited))
        )
        return Policy.from_dict({**policy.to_dict(), rule: bigger})
    extra = data.draw(
        st.builds(
            Duration,
            months=st.integers(0, 2),
            days=st.integers(0, 10),
            hours=st.integers(0, 30),
        ).filter(lambda duration: not duration.is_zero)
    )
    if current is None:
        return Policy.from_dict({**policy.to_dict(), rule: extra})
    summed = {
        unit: getattr(current, unit) + getattr(extra, unit)
        for unit in ("years", "months", "weeks", "days", "hours")
    }
    return Policy.from_dict({**policy.to_dict(), rule: Duration(**summed)})


@PROPERTY
@given(history=snapshot_histories(), policy=policies(), now=nows, data=st.data())
def test_raising_a_count_or_window_never_forgets_more(
    history: list[Snapshot], policy: Policy, now: datetime | None, data: st.DataObject
) -> None:
    """Raising any count or window keeps a superset of what the original policy keeps."""
    rule = data.draw(st.sampled_from(COUNTS + WINDOWS))
    larger = raised(policy, rule, data)
    before, after = plan(history, policy, now=now), plan(history, larger, now=now)
    assert set(ids(before.keep)) <= set(ids(after.keep))


@PROPERTY
@given(history=snapshot_histories(), policy=policies(), now=nows)
def test_newest_is_always_kept(
    history: list[Snapshot], policy: Policy, now: datetime | None
) -> None:
    """Any non-empty policy keeps the newest snapshot and the newest one not after now."""
    result = plan(history, policy, now=now)
    ordered = newest_first(history)
    if not ordered:
        return
    kept = set(ids(result.keep))
    assert ordered[0].id in kept
    assert result.now is not None
    settled = [snapshot for snapshot in ordered if snapshot.time <= result.now]
    if settled:
        assert settled[0].id in kept


def bound(result: RetentionPlan[Snapshot], history: list[Snapshot], policy: Policy) -> int:
    """Return the most snapshots the rules can keep: counts plus periods inside the windows."""
    zone, now = policy.zone, result.now
    assert now is not None
    ordered = newest_first(history)
    # The newest snapshot not after now may be kept on its own, on top of every rule.
    total = 1 + sum(1 for snapshot in ordered if snapshot.time > now)
    total += sum(1 for snapshot in ordered if policy.tags & snapshot.tags)
    for rule, count in policy.counts().items():
        if count is unlimited:
            buckets = {
                index if rule == "last" else period(rule, s.time, zone)
                for index, s in enumerate(ordered)
            }
            total += len(buckets) + 1
        else:
            total += count
    for rule, limit in result.cutoffs.items():
        inside = [s for s in ordered if s.time > limit and (rule == "within" or s.time <= now)]
        if rule == "within":
            total += len(inside)
            continue
        total += len({period(rule, s.time, zone) for s in inside})
        # A periodic window that reaches the oldest snapshot keeps it as well.
        total += bool(inside) and inside[-1] is ordered[-1]
    return total


@PROPERTY
@given(history=snapshot_histories(), policy=policies(), now=nows)
def test_keep_is_bounded_by_counts_and_window_periods(
    history: list[Snapshot], policy: Policy, now: datetime | None
) -> None:
    """|keep| stays within the counts, the window periods, tags, the future and the newest."""
    result = plan(history, policy, now=now)
    if history:
        assert len(result.keep) <= bound(result, history, policy)


@PROPERTY
@given(history=snapshot_histories(), policy=policies(), now=nows)
def test_reasons_name_only_rules_that_apply(
    history: list[Snapshot], policy: Policy, now: datetime | None
) -> None:
    """Every reason names a rule of the policy that really covers that snapshot."""
    result = plan(history, policy, now=now)
    zone, moment = policy.zone, result.now
    # The oldest snapshot is the last one newest first: of identical oldest times, the last given.
    oldest = newest_first(history)[-1] if history else None
    assert len(result.reasons) == len(result.keep)
    for snapshot in result.keep:
        reasons = result.reasons[snapshot]
        assert reasons
        for reason in reasons:
            assert moment is not None
            if reason.rule == "after_now":
                assert snapshot.time > moment
            elif reason.rule == "newest":
                assert reasons == (reason,)
                assert snapshot.time <= moment
                assert not any(s.time > snapshot.time for s in history if s.time <= moment)
            elif reason.rule == "tags":
                assert reason.tag in policy.tags & snapshot.tags
            elif reason.rule == "within":
                assert snapshot.time > result.cutoffs["within"]
                assert reason.window == policy.within
            elif reason.rule in COUNTS:
                assert getattr(policy, reason.rule)
                if reason.rule != "last":
                    assert reason.period == period_label(reason.rule, snapshot.time, zone)
                assert reason.slot is not None
                assert reason.slot >= 1
                if reason.oldest:
                    assert snapshot is oldest
            else:
                assert reason.rule in WINDOWS
                assert result.cutoffs[reason.rule] < snapshot.time <= moment
                assert reason.period == period_label(reason.rule, snapshot.time, zone)
                assert reason.window == getattr(policy, reason.rule)
                assert reason.slot is None
                if reason.oldest:
                    assert snapshot is oldest
    assert not any(snapshot in result.reasons for snapshot in result.forget)


def rules_keeping(result: RetentionPlan[Snapshot], snapshot: Snapshot) -> set[str]:
    """Return the rules that keep ``snapshot``, or the empty set when it is forgotten."""
    if not any(kept is snapshot for kept in result.keep):
        return set()
    return {reason.rule for reason in result.reasons[snapshot]}


@PROPERTY
@given(history=snapshot_histories(), policy=policies(), now=nows)
def test_oldest_is_kept_exactly_while_a_rule_has_room(
    history: list[Snapshot], policy: Policy, now: datetime | None
) -> None:
    """Each count rule with a slot left and each periodic window reaching it keeps the oldest."""
    result = plan(history, policy, now=now)
    ordered = newest_first(history)
    if not ordered:
        return
    assert result.now is not None
    zone, oldest = policy.zone, ordered[-1]
    keeping = rules_keeping(result, oldest)
    for rule, count in policy.counts().items():
        if rule == "last":
            before = len(ordered) - 1
        else:
            before = len({period(rule, s.time, zone) for s in ordered[:-1]})
        assert (rule in keeping) == (count is unlimited or count > before), rule
    for rule, limit in result.cutoffs.items():
        if rule != "within":
            assert (rule in keeping) == (limit < oldest.time <= result.now), rule


@PROPERTY
@given(history=snapshot_histories(), policy=policies(), now=nows)
def test_period_reasons_go_to_the_first_of_their_period_or_to_the_oldest(
    history: list[Snapshot], policy: Policy, now: datetime | None
) -> None:
    """A period reason names its period's first snapshot newest first, an oldest one the last."""
    # Of identical times the first given is the newest and the last given the oldest (restic).
    result = plan(history, policy, now=now)
    ordered = newest_first(history)
    zone, moment = policy.zone, result.now
    for snapshot in result.keep:
        for reason in result.reasons[snapshot]:
            if reason.rule in ("last", "within") or reason.period is None:
                continue
            assert moment is not None
            considered = ordered
            if reason.rule in WINDOWS:
                limit = result.cutoffs[reason.rule]
                considered = [s for s in ordered if limit < s.time <= moment]
            here = next(i for i, s in enumerate(considered) if s is snapshot)
            own = period(reason.rule, snapshot.time, zone)
            newer_of_period = [
                s for s in considered[:here] if period(reason.rule, s.time, zone) == own
            ]
            if reason.oldest:
                assert snapshot is ordered[-1]
                assert newer_of_period
            else:
                assert not newer_of_period


@PROPERTY
@given(history=snapshot_histories(max_size=15), policy=policies(), now=nows)
def test_explain_and_json_cover_every_snapshot(
    history: list[Snapshot], policy: Policy, now: datetime | None
) -> None:
    """The table has a line per snapshot and the JSON form lists each once."""
    result = plan(history, policy, now=now)
    table = result.explain(describe=lambda snapshot: f"id-{snapshot.id}")
    assert sum(line.count(" id-") for line in table.splitlines()) == len(history)
    data: dict[str, Any] = json.loads(result.to_json(describe=lambda snapshot: str(snapshot.id)))
    listed = [entry["snapshot"] for entry in data["keep"] + data["forget"]]
    assert sorted(listed, key=int) == [str(index) for index in range(len(history))]


@PROPERTY
@given(policy=policies())
def test_any_policy_round_trips_through_text_and_dict(policy: Policy) -> None:
    """str() and to_dict() both parse back to an equal policy."""
    assert Policy.parse(str(policy)) == policy
    assert Policy.from_dict(policy.to_dict()) == policy


@PROPERTY
@given(
    moment=instants(),
    duration=st.builds(Duration, months=st.integers(0, 13), days=st.integers(0, 40)),
    zone=st.sampled_from(ZONES),
)
def test_cutoff_is_before_the_anchor(moment: datetime, duration: Duration, zone: str) -> None:
    """A non-zero window always starts before its anchor, so the anchor is inside it."""
    if not duration.is_zero:
        assert cutoff(moment, duration, Policy(daily=1, tz=zone).zone) < moment
        assert cutoff(moment, duration, Policy(daily=1, tz=zone).zone) >= moment - timedelta(
            days=duration.longest().days + 1
        )
