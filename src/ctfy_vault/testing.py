"""Helpers for testing code that uses ctfy_vault: in-memory targets, a fixed clock, no real waits.

Public and stable, for the library's users' own test suites::

    from ctfy_vault.testing import FixedClock, RecordingSleep, memory_target

    target = memory_target()                       # a fresh, isolated in-memory target
    clock = FixedClock(datetime(2026, 11, 26, 2, 30, tzinfo=UTC))
    clock.advance(days=1)
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

import attrs

from ctfy_vault.storage import RetryPolicy, Target

__all__ = ["FixedClock", "RecordingSleep", "fast_retry", "memory_target"]


def memory_target(name: str | None = None, *, retry: RetryPolicy | None = None) -> Target:
    """Return an in-memory target under a fresh namespace (or ``name``), isolated from others.

    fsspec's memory store is shared by the whole process; a unique namespace keeps tests apart.
    """
    return Target.from_url(f"memory://{name or 'test-' + uuid.uuid4().hex}", retry=retry)


@attrs.define
class RecordingSleep:
    """A stand-in for ``time.sleep`` that records the waits instead of waiting."""

    waits: list[float] = attrs.Factory(list)

    def __call__(self, seconds: float) -> None:
        """Record one wait of ``seconds``."""
        self.waits.append(seconds)


def fast_retry(attempts: int = 3, *, seed: int = 0) -> RetryPolicy:
    """Return a retry policy that never really waits and jitters deterministically."""
    return RetryPolicy(attempts=attempts, sleep=RecordingSleep(), rng=random.Random(seed))  # noqa: S311 - jitter, not secrets


@attrs.define
class FixedClock:
    """A clock that only moves when told to; pass ``clock.now`` wherever a ``now`` is expected.

    Raises:
        ValueError: the start time is naive.
    """

    _now: datetime = attrs.field(alias="now")

    @_now.validator
    def _aware(self, _attribute: object, value: datetime) -> None:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("FixedClock needs an aware datetime")

    def now(self) -> datetime:
        """Return the current fixed time."""
        return self._now

    def advance(self, delta: timedelta | None = None, **units: float) -> datetime:
        """Move the clock forward by ``delta`` or by ``timedelta(**units)``; return the new time."""
        step = delta if delta is not None else timedelta(**units)
        if step < timedelta(0):
            raise ValueError("a FixedClock only moves forward")
        self._now += step
        return self._now
