"""Object Lock dates that follow a retention plan: each kept snapshot locked as its reasons need.

A snapshot is locked until the latest moment a rule that keeps it could still keep it, given
what the plan knows at its ``now``:

- a window rule (``within``, ``within_daily`` ...) keeps a snapshot only while it is newer than
  the window's cutoff, so at most until its time plus the window's longest span (a month is 31
  days, a year 366, a day more outside UTC for clock changes). The snapshot is locked that long
  once that is final: for a periodic window, once its period (day, week, month, year) has ended
  by ``now``, since no later snapshot can then take its place as the period's newest;
- while the period is still open a later snapshot may take its place, so the lock only runs to
  ``now + lead`` (or the window's bound, if sooner). The next plan, made within ``lead``,
  extends it: once the period ends, to the full bound of that tier;
- a rule with no end of its own (the count rules, tags, the newest snapshot, snapshots after
  ``now``, an empty policy) keeps a snapshot for as long as plans keep choosing it: it is
  locked until ``now + lead`` and extended by each plan.

The newest snapshot not after ``now`` is never forgotten, whatever its reasons say: a window
measured from ``now`` (``anchor="now"``) can leave it behind while the plan still keeps it, as
``newest snapshot``. So it is always locked until at least ``now + lead``, even while a window
gives it a final date: that date can end before the next plan.

Likewise the oldest kept snapshot becomes the oldest of all once the older ones this plan
forgets are deleted, and a periodic window reaching it then keeps it as ``oldest``: it is
locked at least until ``now + lead`` (or that window's bound, if sooner) for each such window.

A lock is never shortened: a caller applies ``max(existing, new)``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar

from ctfy_vault.exceptions import PolicyError
from ctfy_vault.retention._duration import Duration
from ctfy_vault.retention._periods import PERIOD_OF_RULE, key_of
from ctfy_vault.retention._plan import RetentionPlan
from ctfy_vault.retention._policy import _UTC_NAMES, Policy
from ctfy_vault.retention._reason import Reason

__all__ = ["DEFAULT_LOCK_LEAD", "check_lead", "retain_until"]

T = TypeVar("T")

DEFAULT_LOCK_LEAD: Final = timedelta(days=7)
"""How long a lock that a later plan must extend runs past the plan: a plan (a backup or a
prune) at least this often keeps every kept snapshot locked. Seven days outlast a missed week
of nightly runs and lock a snapshot the next night's plan forgets at most a week too long."""


def check_lead(lead: object) -> timedelta:
    """Check a lock lead: a ``timedelta`` from one hour to 366 days.

    Raises:
        PolicyError: it is no ``timedelta`` or out of range (the message names the value).
    """
    if not isinstance(lead, timedelta) or not timedelta(hours=1) <= lead <= timedelta(days=366):
        raise PolicyError(
            f"the lock lead must be a timedelta from 1 hour to 366 days, not {lead!r}"
        )
    return lead


def _bound(policy: Policy, rule: str, time: datetime) -> datetime:
    window: Duration = getattr(policy, rule)
    span = window.longest()
    if policy.tz not in _UTC_NAMES:
        span += timedelta(days=1)
    return time + span


def _until(
    reason: Reason, time: datetime, policy: Policy, now: datetime, lead: timedelta
) -> datetime:
    extended = max(now, time) + lead
    rule = reason.rule
    if rule == "within":
        return _bound(policy, rule, time)
    if rule.startswith("within_"):
        bound = _bound(policy, rule, time)
        if reason.oldest:
            return bound
        period = PERIOD_OF_RULE[rule]
        zone = policy.zone
        still_open = key_of(period, time.astimezone(zone)) >= key_of(period, now.astimezone(zone))
        return min(bound, extended) if still_open else bound
    return extended


def retain_until(
    plan: RetentionPlan[T], *, lead: timedelta = DEFAULT_LOCK_LEAD
) -> tuple[datetime, ...]:
    """The retain-until date each kept snapshot of ``plan`` needs, in the order of ``plan.keep``.

    Args:
        plan: a retention plan (its ``now`` is the moment the dates are computed for).
        lead: how long a lock a later plan must extend runs past ``now`` (`DEFAULT_LOCK_LEAD`).

    Returns:
        One aware UTC datetime per kept item; empty for a plan that keeps nothing.

    Raises:
        PolicyError: ``lead`` is out of range.
    """
    lead = check_lead(lead)
    if plan.now is None or not plan.keep:
        return ()
    now = plan.now
    policy = plan.policy
    reasons = plan._kept_reasons()  # noqa: SLF001 - by position, as the plan lists them
    dates: list[datetime] = []
    newest_found = False
    last = len(plan.keep) - 1
    for time, why in zip(plan.keep_times, reasons, strict=True):
        moment = time.astimezone(UTC)
        date = max(_until(reason, moment, policy, now, lead) for reason in why)
        if len(dates) == last:
            for rule, limit in plan.cutoffs.items():
                if rule != "within" and limit < moment <= now:
                    # Once what is older is deleted, a window reaching it keeps it as the
                    # oldest: follow the plans until that window's bound.
                    date = max(date, min(_bound(policy, rule, moment), now + lead))
        if not newest_found and moment <= now:
            # Kept newest first, so the first one not after now is the one never forgotten.
            newest_found = True
            date = max(date, now + lead)
        dates.append(date)
    return tuple(dates)
