"""Heal: copy what a target lacks from another, verified, never deleting or overwriting."""

from __future__ import annotations

import io

import pytest

from ctfy_vault.crypto import MasterKeys, RawKey
from ctfy_vault.exceptions import (
    ConfigurationError,
    IntegrityError,
    StorageError,
    TargetsFailedError,
)
from ctfy_vault.repository import create_key_slot, list_key_slots, unlock
from ctfy_vault.storage import Target
from ctfy_vault.writer import StreamSource, Writer, chunk_key, heal
from tests.support.writer_strategies import (
    NOW,
    REPO_ID,
    SMALL,
    Faults,
    contents,
    faulty_target,
    manifests,
    memory_target,
    restore,
    sealer,
)

DATA = b"".join(bytes([n]) * 300 + bytes(range(n, 256)) for n in range(40))
KEYS = MasterKeys(data_key=b"d" * 32, chunk_id_key=b"c" * 32)


def _seed(*targets: Target) -> str:
    """Back up DATA to the given targets only; return the manifest's key."""
    result = Writer(targets, sealer(), chunker=SMALL).backup(
        [StreamSource(name="db.sql", stream=io.BytesIO(DATA))], lineage="db", host="h", now=NOW
    )
    return f"snapshots/{result.name}"


def _raw_store(target: Target, key: str, blob: bytes) -> None:
    """Put bytes straight into the backend, as damage or an outside writer would."""
    target.fs.pipe_file(f"{target.root}/{key}", blob)


def test_heal_copies_chunks_manifests_key_slots_and_config() -> None:
    """An empty target receives every object verbatim; afterwards all targets are identical."""
    full, empty = memory_target("full"), memory_target("empty")
    _seed(full)
    create_key_slot(
        full, repo_id=REPO_ID, keys=KEYS, credential=RawKey(b"k" * 32), now=NOW, key_id="svc"
    )
    full.write("config", b'{"format": 1}')
    report = heal([full, empty], sealer=sealer())
    assert contents(empty) == contents(full)
    assert report.outcomes[0].copied == ()
    assert set(report.outcomes[1].copied) == set(contents(full))
    assert [slot.key_id for slot in list_key_slots(empty)] == ["svc"]
    assert unlock(empty, repo_id=REPO_ID, credential=RawKey(b"k" * 32)) == KEYS
    (manifest,) = manifests(empty, sealer())
    assert restore(empty, sealer(), manifest, "db.sql") == DATA


def test_heal_fills_gaps_in_both_directions() -> None:
    """Each target gets what only the other had; both end with the union."""
    left, right = memory_target(), memory_target()
    _seed(left)
    Writer([right], sealer(), chunker=SMALL).backup(
        [StreamSource(name="other", stream=io.BytesIO(b"other data" * 500))],
        lineage="db",
        host="h",
        now=NOW,
    )
    heal([left, right], sealer=sealer())
    assert contents(left) == contents(right)
    assert len(manifests(left, sealer())) == 2


def test_heal_skips_a_damaged_donor_and_never_overwrites_it() -> None:
    """A tampered copy is not spread; a good donor is used; the damaged copy is left in place."""
    damaged, empty, good = memory_target(), memory_target(), memory_target()
    _seed(damaged, good)
    key = sorted(damaged.list("objects"))[0]
    blob = bytearray(damaged.read(key))
    blob[-1] ^= 1
    _raw_store(damaged, key, bytes(blob))
    heal([damaged, empty, good], sealer=sealer())
    assert empty.read(key) == good.read(key)
    assert damaged.read(key) == bytes(blob)


def test_heal_reports_an_object_no_target_holds_intact() -> None:
    """When the only copy fails verification, the target lacking it is reported, not fed it."""
    damaged, empty = memory_target(), memory_target()
    _seed(damaged)
    key = sorted(damaged.list("objects"))[0]
    _raw_store(damaged, key, b"\x01" + damaged.read(key)[1:-1] + b"\x00")
    with pytest.raises(TargetsFailedError) as caught:
        heal([damaged, empty], sealer=sealer())
    assert caught.value.outcomes[damaged.name] is None
    assert isinstance(caught.value.outcomes[empty.name], IntegrityError)
    assert not empty.exists(key)


def test_chunk_stored_under_a_wrong_name_is_not_copied() -> None:
    """A valid chunk moved to another id fails verification and is not spread."""
    source, empty = memory_target(), memory_target()
    _seed(source)
    key = sorted(source.list("objects"))[0]
    wrong = chunk_key(bytes(32))
    _raw_store(source, wrong, source.read(key))
    with pytest.raises(TargetsFailedError):
        heal([source, empty], sealer=sealer())
    assert not empty.exists(wrong)
    assert empty.exists(key)


def test_manifest_is_not_copied_to_a_target_missing_its_chunks() -> None:
    """If a chunk a manifest names exists nowhere intact, the manifest is not copied there."""
    source, empty = memory_target(), memory_target()
    manifest_key = _seed(source)
    key = sorted(source.list("objects"))[0]
    _raw_store(source, key, b"\x01garbage that fails to open........")
    with pytest.raises(TargetsFailedError) as caught:
        heal([source, empty], sealer=sealer())
    assert isinstance(caught.value.outcomes[empty.name], IntegrityError)
    assert not empty.exists(manifest_key)


def test_unreachable_target_is_reported_and_the_others_healed() -> None:
    """A dead target fails the heal with its error; a third target is still completed."""
    full, empty = memory_target(), memory_target()
    dead = faulty_target(Faults(down=True))
    _seed(full)
    with pytest.raises(TargetsFailedError) as caught:
        heal([full, dead, empty], sealer=sealer())
    assert isinstance(caught.value.outcomes[dead.name], StorageError)
    assert caught.value.outcomes[empty.name] is None
    assert contents(empty) == contents(full)


def test_lock_files_are_not_copied() -> None:
    """Short-lived prune locks belong to one target and are never healed across."""
    full, empty = memory_target(), memory_target()
    _seed(full)
    full.write("locks/abc", b"lock")
    heal([full, empty], sealer=sealer())
    assert not empty.exists("locks/abc")


def test_heal_needs_two_distinct_targets() -> None:
    """One target, or the same target twice, is refused."""
    target = memory_target()
    with pytest.raises(ConfigurationError):
        heal([target], sealer=sealer())
    with pytest.raises(ConfigurationError):
        heal([target, target], sealer=sealer())


def test_heal_of_identical_targets_copies_nothing() -> None:
    """Targets that already agree are left as they are."""
    left, right = memory_target(), memory_target()
    _seed(left, right)
    before = contents(left)
    report = heal([left, right], sealer=sealer())
    assert report.copied == 0
    assert contents(left) == contents(right) == before


def test_a_stray_name_is_never_copied_and_does_not_fail_heal() -> None:
    """Junk under objects/ or snapshots/ is reported where it is, not spread, and not fatal."""
    source, empty = memory_target(), memory_target()
    _seed(source)
    _raw_store(source, "objects/zz/junk", b"junk")
    _raw_store(source, "snapshots/zzz", b"junk")
    report = heal([source, empty], sealer=sealer())
    assert not report.ok
    assert {(target, key) for target, key, _why in report.unfixed} == {
        (source.name, "objects/zz/junk"),
        (source.name, "snapshots/zzz"),
    }
    assert not empty.exists("objects/zz/junk")
    assert not empty.exists("snapshots/zzz")
    assert len(manifests(empty, sealer())) == 1


def test_repair_without_a_time_reports_what_it_would_quarantine() -> None:
    """Quarantine folders are named by the time given; without one nothing is moved."""
    left, right = memory_target(), memory_target()
    _seed(left, right)
    _raw_store(left, "snapshots/zzz", b"junk")
    report = heal([left, right], sealer=sealer(), repair=True)
    assert report.quarantined == 0
    assert [key for _target, key, _why in report.unfixed] == ["snapshots/zzz"]
    assert left.read("snapshots/zzz") == b"junk"


def test_quarantine_never_replaces_other_bytes_already_set_aside() -> None:
    """A quarantine key holding other bytes is left alone, and so is the original."""
    left, right = memory_target(), memory_target()
    _seed(left, right)
    aside = f"quarantine/{NOW.strftime('%Y%m%dT%H%M%SZ')}/snapshots/zzz"
    _raw_store(left, "snapshots/zzz", b"junk")
    _raw_store(left, aside, b"earlier junk")
    report = heal([left, right], sealer=sealer(), repair=True, now=NOW)
    assert report.quarantined == 0
    assert [key for _target, key, _why in report.unfixed] == ["snapshots/zzz"]
    assert left.read("snapshots/zzz") == b"junk"
    assert left.read(aside) == b"earlier junk"


def test_an_unopenable_snapshot_is_not_quarantined_while_a_target_is_unreachable() -> None:
    """A target that could not be listed may hold a good copy: nothing is set aside then."""
    left, right = memory_target(), memory_target()
    dead = faulty_target(Faults(down=True))
    _seed(left, right)
    key = "snapshots/99991231T235959.999999Z-zzz"
    _raw_store(left, key, b"junk")
    with pytest.raises(TargetsFailedError):
        heal([left, dead, right], sealer=sealer(), repair=True, now=NOW)
    assert left.read(key) == b"junk"
    assert not right.exists(key)


def test_an_unopenable_snapshot_is_reported_not_spread_by_plain_heal() -> None:
    """A well-formed name whose only copy opens nowhere is no snapshot: reported, not fatal."""
    left, right = memory_target(), memory_target()
    _seed(left, right)
    key = "snapshots/99991231T235959.999999Z-zzz"
    _raw_store(left, key, b"\x01" + b"x" * 80)
    report = heal([left, right], sealer=sealer())
    assert [(target, k) for target, k, _why in report.unfixed] == [(left.name, key)]
    assert not right.exists(key)
    repaired = heal([left, right], sealer=sealer(), repair=True, now=NOW)
    assert repaired.ok
    assert repaired.outcomes[0].quarantined[0][0] == key
    assert not left.exists(key)
