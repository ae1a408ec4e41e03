"""Replicas against a plain model: reads fall back, writes reach every live target, quorums hold."""

from __future__ import annotations

import re

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from ctfy_vault.exceptions import ObjectExistsError, StorageError, TargetsFailedError
from ctfy_vault.repository import Failures, Outcome, Replicas
from ctfy_vault.storage import Target
from tests.support.writer_strategies import Faults, faulty_target

KEYS = st.sampled_from(["a", "b/c", "objects/x"])
BLOBS = st.sampled_from([b"1", b"22", b"333"])
COUNT = 3


class ReplicasMachine(RuleBasedStateMachine):
    """Three faulty memory targets beside a model: each target's objects, and which are down."""

    def __init__(self) -> None:
        super().__init__()
        self.faults = [Faults() for _ in range(COUNT)]
        self.targets = [faulty_target(faults, f"r{i}") for i, faults in enumerate(self.faults)]
        self.replicas = Replicas(self.targets)
        self.model: list[dict[str, bytes]] = [{} for _ in range(COUNT)]

    @rule(index=st.integers(0, COUNT - 1), down=st.booleans(), full=st.booleans())
    def set_faults(self, index: int, down: bool, full: bool) -> None:
        """A target goes down, fills up, or comes back."""
        self.faults[index].down = down
        self.faults[index].full = full

    @rule(key=KEYS, blob=BLOBS, exists_ok=st.booleans())
    def write(self, key: str, blob: bytes, exists_ok: bool) -> None:
        """Writing everywhere stores on each live target; an object already there is kept."""
        outcome = self.replicas.write(key, blob, exists_ok=exists_ok)
        assert list(outcome.outcomes) == [t.name for t in self.targets]
        for i, target in enumerate(self.targets):
            err = outcome.outcomes[target.name]
            # The memory target finds an object already there before its write can fail.
            if key in self.model[i]:
                if exists_ok:
                    assert err is None
                    assert outcome.results[target.name] is False
                else:
                    assert isinstance(err, ObjectExistsError)
            elif self.faults[i].down or self.faults[i].full:
                assert isinstance(err, StorageError)
                assert not isinstance(err, ObjectExistsError)
            else:
                assert err is None
                assert outcome.results[target.name] is True
                self.model[i][key] = blob

    @rule(key=KEYS)
    def read_first(self, key: str) -> None:
        """A read takes the first target that answers, and reports each one it fell back from."""
        fell_back: list[str] = []
        holders = [i for i in range(COUNT) if not self.faults[i].down and key in self.model[i]]
        if not holders:
            with pytest.raises(TargetsFailedError) as caught:
                self.replicas.first(
                    lambda t: t.read(key),
                    what="no copy",
                    on_fallback=lambda t, _e: fell_back.append(t.name),
                )
            assert set(caught.value.outcomes) == {t.name for t in self.targets}
            assert all(err is not None for err in caught.value.outcomes.values())
            assert re.fullmatch(r"no copy \(.+\)", str(caught.value), re.DOTALL)
            assert fell_back == [t.name for t in self.targets]
            return
        got = self.replicas.first(
            lambda t: t.read(key),
            what="no copy",
            on_fallback=lambda t, _e: fell_back.append(t.name),
        )
        assert got == self.model[holders[0]][key]
        assert fell_back == [t.name for t in self.targets[: holders[0]]]

    @rule(count=st.integers(0, COUNT + 1))
    def quorum(self, count: int) -> None:
        """``require(n)`` passes exactly when at least n targets could be listed."""
        outcome = self.replicas.each(lambda t: sorted(t.list("")))
        live = [i for i in range(COUNT) if not self.faults[i].down]
        assert outcome.succeeded == [self.targets[i].name for i in live]
        for i in live:
            assert outcome.results[self.targets[i].name] == sorted(self.model[i])
        if len(live) >= count:
            assert outcome.require(count, "quorum") is outcome
        else:
            with pytest.raises(TargetsFailedError, match=r"^quorum"):
                outcome.require(count, "quorum")

    @rule(names=st.lists(st.integers(0, COUNT - 1), unique=True))
    def skip_failed(self, names: list[int]) -> None:
        """Targets already failed are reported first and nothing is done on them."""
        failed = {self.targets[i].name: StorageError("gone", target="x") for i in names}
        touched: list[str] = []
        outcome = self.replicas.each(lambda t: touched.append(t.name), failed=failed)
        assert list(outcome.outcomes)[: len(failed)] == list(failed)
        assert not set(touched) & set(failed)

    @invariant()
    def stored_matches_the_model(self) -> None:
        """Every target holds exactly the model's objects (read past the faults)."""
        for i, target in enumerate(self.targets):
            down, full = self.faults[i].down, self.faults[i].full
            self.faults[i].down = self.faults[i].full = False
            try:
                assert {k: target.read(k) for k in target.list("")} == self.model[i]
            finally:
                self.faults[i].down, self.faults[i].full = down, full


ReplicasMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=12, deadline=None)
TestReplicas = ReplicasMachine.TestCase


def test_the_outcome_message_names_each_failed_target() -> None:
    """The one error a multi-target failure raises says the message, then each target's error."""
    outcome = Outcome[None](outcomes={"a": None, "b": StorageError("full", target="b")})
    err = outcome.error("backup missed")
    assert err.outcomes == {"a": None, "b": outcome.failed["b"]}
    assert str(err) == f"backup missed (b: {outcome.failed['b']})"
    assert outcome.require(1, "x") is outcome
    with pytest.raises(TargetsFailedError, match=r"^all \(b: "):
        outcome.require_all("all")


def test_failures_keep_each_targets_first_error() -> None:
    """A run's failures keep the first error per target and leave the others live."""
    targets = [Target.from_url(f"memory://failures-{name}", name=name) for name in "abc"]
    failures = Failures("test")
    first, second = StorageError("one", target="b"), StorageError("two", target="b")
    assert failures.fail(targets[1], first)
    assert not failures.fail("b", second)
    assert failures.get("b") is first
    assert "b" in failures
    assert [t.name for t in failures.live(targets)] == ["a", "c"]
    assert failures.errors() == {"b": first}
