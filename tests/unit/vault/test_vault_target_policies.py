"""Per-target retention: each target keeps what its own policy keeps, and every target verifies.

The model is the retention plan itself, applied per target to what that target still holds:
after every nightly backup and prune, each target's snapshot objects are exactly the ones its
model keeps, ``snapshots()`` lists their union, and verify is clean on the repository.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctfy_vault.exceptions import ConfigurationError, FormatError
from ctfy_vault.manifest import Forgotten, PruneRecord, decode, encode
from ctfy_vault.repository import snapshot_name_of
from ctfy_vault.retention import Policy, plan
from ctfy_vault.storage import Target
from ctfy_vault.vault import SnapshotInfo, Vault
from ctfy_vault.writer import StreamSource
from tests.support.vaults import KEY
from tests.support.writer_strategies import NOW, SMALL, memory_target

DAY = timedelta(days=1)


def _vault() -> Vault:
    return Vault.init(
        [memory_target("fast"), memory_target("far")], key=KEY, now=NOW, chunker=SMALL
    )


def _backup(vault: Vault, day: int, lineage: str = "db") -> str:
    data = bytes([day % 251]) * 3000 + day.to_bytes(4, "big")
    return vault.backup(
        StreamSource(name="d", stream=io.BytesIO(data)),
        lineage=lineage,
        host="h",
        now=NOW + day * DAY,
    ).snapshot_id


def _held(target: Target) -> set[str]:
    """The snapshot ids whose manifests the target holds (prune records aside)."""
    records = {record.record_id for record in _records(Vault.open([target], key=KEY))}
    names = {snapshot_name_of(key) for key in target.list("snapshots")}
    return {name.rsplit("-", 1)[-1] for name in names if name is not None} - records


def _records(vault: Vault) -> list[PruneRecord]:
    return [
        opened.entry
        for opened in vault._reader.catalog().values()  # noqa: SLF001 - the records as stored
        if isinstance(opened.entry, PruneRecord)
    ]


def _keep(model: list[SnapshotInfo], policy: Policy, now: datetime) -> list[SnapshotInfo]:
    return list(plan(model, policy, now=now).keep)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fast=st.builds(Policy, daily=st.integers(1, 5), weekly=st.integers(0, 2)),
    far=st.builds(Policy, weekly=st.integers(1, 4), monthly=st.integers(0, 3)),
    nights=st.integers(5, 24),
    every=st.integers(1, 7),
)
def test_each_target_converges_to_its_own_policy(
    fast: Policy, far: Policy, nights: int, every: int
) -> None:
    """Nightly backups, a prune every few nights: each target holds what its model keeps."""
    vault = _vault()
    a, b = vault.targets
    policies = {a.name: fast, b.name: far}
    models: dict[str, list[SnapshotInfo]] = {a.name: [], b.name: []}
    for day in range(nights):
        _backup(vault, day)
        newest = vault.snapshots("db")[0]
        for model in models.values():
            model.insert(0, newest)
        if day % every == every - 1 or day == nights - 1:
            now = NOW + day * DAY + timedelta(hours=1)
            report = vault.prune(fast, now=now, grace=timedelta(0), target_policies={b.name: far})
            assert set(report.target_plans) == {a.name, b.name}
            for name, policy in policies.items():
                models[name] = _keep(models[name], policy, now)
            for target in (a, b):
                assert _held(target) == {i.snapshot_id for i in models[target.name]}
            union = {i.snapshot_id for m in models.values() for i in m}
            assert {s.snapshot_id for s in vault.snapshots()} == union
            found = vault.verify()
            assert found.ok, found.problems
    assert vault.verify(read_data=True).ok
    # Every record names the targets it forgets on, and the chain is whole on each target.
    assert all(record.targets for record in _records(vault))
    for target in (a, b):
        alone = Vault.open([target], key=KEY).verify()
        assert not [p for p in alone.problems if p.kind == "chain"], alone.problems


def test_a_snapshot_only_the_long_target_keeps_restores_and_is_not_healed_back() -> None:
    """It is listed, restores from the target that holds it, and heal leaves the other alone."""
    vault = _vault()
    a, b = vault.targets
    ids = [_backup(vault, day) for day in range(10)]
    now = NOW + 9 * DAY + timedelta(hours=1)
    report = vault.prune(
        Policy(last=2), now=now, grace=timedelta(0), target_policies={b.name: Policy(last=6)}
    )
    assert _held(a) == set(ids[-2:])
    assert _held(b) == set(ids[-6:])
    assert {s.snapshot_id for s in report.forgotten} == set(ids[:8])
    scopes = sorted(record.targets or () for record in _records(vault))
    assert scopes == sorted([(a.name,), (b.name,)])
    only_far = vault.find(ids[-4])
    stream = vault.open_file(only_far, "d")
    assert stream.read().endswith((6).to_bytes(4, "big"))
    healed = Vault.open([a, b], key=KEY).heal()
    assert healed.ok
    assert not any(key.startswith("snapshots/") for o in healed.outcomes for key in o.copied)
    assert _held(a) == set(ids[-2:])
    # A prune with one policy for every target later forgets on both.
    vault.prune(Policy(last=2), now=now + DAY, grace=timedelta(0))
    assert _held(b) == set(ids[-2:])
    assert vault.verify(read_data=True).ok


def test_a_snapshot_the_long_target_lost_is_reported_lost() -> None:
    """Deleted on the target that should keep it, with no record there: verify says so."""
    vault = _vault()
    a, b = vault.targets
    ids = [_backup(vault, day) for day in range(4)]
    vault.prune(
        Policy(last=1),
        now=NOW + 4 * DAY,
        grace=timedelta(0),
        target_policies={b.name: Policy(last=4)},
    )
    assert vault.verify().ok
    victim = next(k for k in b.list("snapshots") if k.endswith(ids[0]))
    b.delete(victim)
    found = Vault.open([a, b], key=KEY).verify()
    lost = [p for p in found.problems if p.kind == "lost"]
    assert [(p.target, ids[0] in p.detail) for p in lost] == [(b.name, True)]
    assert not found.ok


def test_a_target_policy_by_lineage_overrides_that_lineage_only() -> None:
    """``{lineage: policy}`` for a target: its other lineages keep the common policy."""
    vault = _vault()
    a, b = vault.targets
    db = [_backup(vault, day, "db") for day in range(5)]
    files = [_backup(vault, day, "files") for day in range(5)]
    vault.prune(
        {"db": Policy(last=1), "files": Policy(last=1)},
        now=NOW + 5 * DAY,
        grace=timedelta(0),
        target_policies={b.name: {"db": Policy(last=3)}},
    )
    assert _held(a) == {db[-1], files[-1]}
    assert _held(b) == {*db[-3:], files[-1]}
    assert vault.verify().ok


def test_a_dry_run_plans_each_target_and_changes_nothing() -> None:
    """``target_plans`` holds each target's plan; no object is written or deleted."""
    vault = _vault()
    a, b = vault.targets
    ids = [_backup(vault, day) for day in range(4)]
    before = {t.name: sorted(t.list("")) for t in (a, b)}
    report = vault.prune(
        Policy(last=1),
        now=NOW + 4 * DAY,
        dry_run=True,
        target_policies={b.name: Policy(last=3)},
    )
    assert [i.snapshot_id for i in report.target_plans[a.name]["db"].keep] == ids[-1:]
    assert [i.snapshot_id for i in report.target_plans[b.name]["db"].keep] == ids[:0:-1]
    assert {t.name: sorted(t.list("")) for t in (a, b)} == before


def test_a_policy_for_an_unknown_target_is_refused_before_anything_changes() -> None:
    """A name the vault has no target for is a ConfigurationError naming it."""
    vault = _vault()
    _backup(vault, 0)
    before = [sorted(t.list("")) for t in vault.targets]
    with pytest.raises(ConfigurationError, match="'elsewhere'"):
        vault.prune(Policy(last=1), now=NOW + DAY, target_policies={"elsewhere": Policy(last=1)})
    with pytest.raises(ConfigurationError, match="'elsewhere'"):
        vault.lock(Policy(last=1), now=NOW + DAY, target_policies={"elsewhere": Policy(last=1)})
    assert [sorted(t.list("")) for t in vault.targets] == before


# -- the record's encoding ---------------------------------------------------------------------


def _record(targets: object) -> PruneRecord:
    return PruneRecord(
        record_id="r1",
        lineage="db",
        created=NOW,
        host="h",
        forgotten=[Forgotten("s1", bytes(32))],
        targets=targets,  # type: ignore[arg-type]
    )


def test_a_scoped_record_round_trips_and_an_unscoped_one_keeps_its_encoding() -> None:
    """Targets are sorted and deduplicated; without them the encoding has no ``targets``."""
    scoped = _record(["far", "fast", "far"])
    assert scoped.targets == ("far", "fast")
    assert decode(encode(scoped))[0] == scoped
    plain = _record(None)
    assert b"targets" not in b"".join(encode(plain))
    assert decode(encode(plain))[0] == plain
    assert scoped.applies_to("fast")
    assert not scoped.applies_to("other")
    assert plain.applies_to("other")


@pytest.mark.parametrize("bad", [[], "fast"])
def test_a_record_with_no_target_or_a_bare_name_is_refused(bad: object) -> None:
    """An empty scope would forget nowhere; a bare string is no list of names."""
    with pytest.raises(ConfigurationError, match="target"):
        _record(bad)


def test_an_encoded_record_with_an_empty_or_unsorted_scope_does_not_decode() -> None:
    """Only the canonical encoding decodes."""
    line = b"".join(encode(_record(["a", "b"])))
    for swapped in (line.replace(b'["a","b"]', b'["b","a"]'), line.replace(b'["a","b"]', b"[]")):
        assert swapped != line
        with pytest.raises(FormatError):
            decode([swapped])
