"""Fault injection: flaky, dying and full targets; the others commit and heal repairs the rest."""

from __future__ import annotations

import io

import pytest

from ctfy_vault.exceptions import StorageError, TargetsFailedError, TargetUnreachableError
from ctfy_vault.storage import Target
from ctfy_vault.writer import StreamSource, Writer, heal
from tests.support.writer_strategies import (
    NOW,
    SMALL,
    Faults,
    contents,
    faulty_target,
    manifests,
    memory_target,
    restore,
    sealer,
)

DATA = bytes(range(256)) * 40 + b"tail" * 3000


def _backup(writer: Writer, data: bytes = DATA) -> None:
    writer.backup(
        [StreamSource(name="db.sql", stream=io.BytesIO(data))], lineage="db", host="h", now=NOW
    )


def _assert_healed(targets: list[Target]) -> None:
    stored = [contents(target) for target in targets]
    assert all(found == stored[0] for found in stored)
    seal = sealer()
    for target in targets:
        (manifest,) = manifests(target, seal)
        assert restore(target, seal, manifest, "db.sql") == DATA


def test_target_failing_every_third_write_still_commits() -> None:
    """Transient failures on every k-th request are retried; every target commits."""
    faults = Faults(every=3)
    targets = [memory_target(), faulty_target(faults), memory_target()]
    writer = Writer(targets, sealer(), chunker=SMALL)
    result = writer.backup(
        [StreamSource(name="db.sql", stream=io.BytesIO(DATA))], lineage="db", host="h", now=NOW
    )
    assert all(outcome.committed for outcome in result.outcomes)
    assert faults.writes > result.outcomes[1].chunks_uploaded  # some writes really failed
    _assert_healed(targets)


def test_outage_longer_than_target_retries_is_retried_by_the_writer() -> None:
    """A burst of transient failures beyond the target's own attempts is retried once more."""
    faults = Faults(burst=3)  # the target's policy makes 3 attempts
    targets = [memory_target(), faulty_target(faults)]
    result = Writer(targets, sealer(), chunker=SMALL, retries=1).backup(
        [StreamSource(name="db.sql", stream=io.BytesIO(DATA))], lineage="db", host="h", now=NOW
    )
    assert all(outcome.committed for outcome in result.outcomes)


def test_target_dying_mid_upload_fails_alone_and_heal_repairs_it() -> None:
    """A target that stops answering after a few writes fails; the others commit; heal fixes it."""
    faults = Faults(writes_before_death=4)
    dying = faulty_target(faults, "dying")
    targets = [memory_target(), dying, memory_target()]
    with pytest.raises(TargetsFailedError) as caught:
        _backup(Writer(targets, sealer(), chunker=SMALL))
    err = caught.value
    failed = {name for name, error in err.outcomes.items() if error is not None}
    assert failed == {dying.name}
    assert isinstance(err.outcomes[dying.name], TargetUnreachableError)
    assert dying.name in str(err)
    faults.down = False
    faults.writes_before_death = None
    assert list(dying.list("snapshots")) == []
    assert 0 < len(list(dying.list("objects"))) < len(list(targets[0].list("objects")))
    report = heal(targets, sealer=sealer())
    assert report.copied > 0
    _assert_healed(targets)


def test_full_target_fails_alone_and_heal_repairs_it_once_space_is_freed() -> None:
    """A full disk fails that target only; after space is freed, heal completes it."""
    faults = Faults(full=True)
    full = faulty_target(faults, "full")
    targets = [memory_target(), full]
    with pytest.raises(TargetsFailedError) as caught:
        _backup(Writer(targets, sealer(), chunker=SMALL))
    assert isinstance(caught.value.outcomes[full.name], StorageError)
    assert caught.value.outcomes[targets[0].name] is None
    assert list(full.list("")) == []
    faults.full = False
    heal(targets, sealer=sealer())
    _assert_healed(targets)


def test_failed_target_gets_no_manifest_even_with_quorum() -> None:
    """With a quorum met, a failed target still never receives a manifest naming missing data."""
    faults = Faults(writes_before_death=2)
    dying = faulty_target(faults)
    targets = [memory_target(), dying, memory_target()]
    result = Writer(targets, sealer(), chunker=SMALL, require=2).backup(
        [StreamSource(name="db.sql", stream=io.BytesIO(DATA))], lineage="db", host="h", now=NOW
    )
    assert [outcome.committed for outcome in result.outcomes] == [True, False, True]
    faults.down = False
    assert list(dying.list("snapshots")) == []
