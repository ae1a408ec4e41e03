"""Retention policies: which snapshots to keep, which to forget, and why.

A pure engine (no I/O, no clock): give it snapshot times, a `Policy` and optionally ``now``;
`plan` returns a frozen `RetentionPlan`. The rules match restic's ``forget``; see
``docs/retention.md`` for every rule, with examples.

    >>> from datetime import datetime, timedelta, timezone
    >>> from ctfy_vault.retention import Policy, plan
    >>> start = datetime(2026, 11, 1, 3, tzinfo=timezone.utc)
    >>> days = [start + timedelta(days=n) for n in range(20)]
    >>> result = plan(days, Policy(daily=7, weekly=2))
    >>> len(result.keep), len(result.forget)
    (7, 13)
    >>> [str(reason) for reason in result.reasons[result.keep[0]]]
    ['daily 2026-11-20', 'weekly 2026-W47']
"""

from ctfy_vault.retention._duration import Duration
from ctfy_vault.retention._lock import DEFAULT_LOCK_LEAD, retain_until
from ctfy_vault.retention._plan import RetentionPlan, SupportsTime, plan
from ctfy_vault.retention._policy import Policy, Unlimited, unlimited
from ctfy_vault.retention._reason import Reason

__all__ = [
    "DEFAULT_LOCK_LEAD",
    "Duration",
    "Policy",
    "Reason",
    "RetentionPlan",
    "SupportsTime",
    "Unlimited",
    "plan",
    "retain_until",
    "unlimited",
]
