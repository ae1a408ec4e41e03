"""The public testing helpers behave as documented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ctfy_vault.exceptions import TransientStorageError
from ctfy_vault.testing import FixedClock, RecordingSleep, fast_retry, memory_target


def test_memory_targets_are_isolated() -> None:
    """Two memory targets never see each other's objects."""
    first, second = memory_target(), memory_target()
    first.write("k", b"1")
    assert not second.exists("k")
    assert list(first.list()) == ["k"]


def test_fast_retry_records_waits_without_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    """A target with fast_retry retries and records the waits it would have slept."""
    policy = fast_retry(attempts=3)
    target = memory_target(retry=policy)
    target.write("k", b"1")

    def broken(*_args: object, **_kwargs: object) -> bytes:
        raise ConnectionResetError("reset")

    monkeypatch.setattr(target.fs, "cat_file", broken)
    with pytest.raises(TransientStorageError):
        target.read("k")
    assert isinstance(policy.sleep, RecordingSleep)
    assert len(policy.sleep.waits) == 2


def test_fixed_clock_moves_only_forward() -> None:
    """FixedClock advances on request, refuses naive starts and backward steps."""
    clock = FixedClock(datetime(2026, 11, 26, 2, 30, tzinfo=UTC))
    assert clock.advance(days=1) == datetime(2026, 11, 27, 2, 30, tzinfo=UTC)
    assert clock.now() == datetime(2026, 11, 27, 2, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="aware"):
        FixedClock(datetime(2026, 1, 1))
