"""The repository layout: every key kind round-trips, and near-misses are strays for every caller."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctfy_vault import repository, writer
from ctfy_vault.crypto import RawKey
from ctfy_vault.repository import (
    CONFIG_KEY,
    LOCK_KEY,
    KeyKind,
    chunk_id_of,
    chunk_key,
    kind_of,
    quarantine_key,
    quarantined_of,
    slot_id_of,
    slot_key,
    snapshot_key,
    snapshot_name_of,
    sweep_mark_key,
    unexpected_key,
)
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault
from ctfy_vault.writer import StreamSource, index_chunks
from tests.support.crypto_strategies import entries
from tests.support.strategies import object_keys
from tests.support.writer_strategies import NOW, SMALL

chunk_ids = st.binary(min_size=32, max_size=32)
key_ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,63}", fullmatch=True)
moments = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
)
tokens = st.from_regex(r"[0-9a-f]{8}", fullmatch=True)


# -- build -> parse ------------------------------------------------------------------------------


@given(chunk_ids)
def test_a_chunk_key_parses_back_to_its_id(chunk_id: bytes) -> None:
    """``chunk_id_of(chunk_key(id))`` is the id, and the key is classified as a chunk."""
    key = chunk_key(chunk_id)
    assert chunk_id_of(key) == chunk_id
    assert kind_of(key) is KeyKind.CHUNK
    assert not unexpected_key(key)


@given(key_ids)
def test_a_slot_key_parses_back_to_its_id(key_id: str) -> None:
    """``slot_id_of(slot_key(id))`` is the id, and the key is classified as a key slot."""
    key = slot_key(key_id)
    assert slot_id_of(key) == key_id
    assert kind_of(key) is KeyKind.KEY_SLOT


@given(entries)
def test_an_entry_key_parses_back_to_its_name(entry: object) -> None:
    """Every manifest's or prune record's key parses back to its name and is a snapshot."""
    name = entry.name  # type: ignore[attr-defined]
    key = snapshot_key(name)
    assert snapshot_name_of(key) == name
    assert kind_of(key) is KeyKind.SNAPSHOT


@given(moments, tokens)
def test_a_sweep_mark_key_is_a_sweep_mark(now: datetime, token: str) -> None:
    """A sweep mark's key, made at any time, is classified as a sweep mark."""
    assert kind_of(sweep_mark_key(now, token)) is KeyKind.SWEEP_MARK


@given(moments, object_keys())
def test_a_quarantine_key_parses_back_to_the_key_it_holds(now: datetime, key: str) -> None:
    """``quarantined_of(quarantine_key(now, key))`` gives back the key, under the time stamp."""
    aside = quarantine_key(now, key)
    found = quarantined_of(aside)
    assert found is not None
    assert found[1] == key
    assert aside == f"quarantine/{found[0]}/{key}"
    assert kind_of(aside) is KeyKind.QUARANTINED


def test_the_fixed_keys_have_their_kinds() -> None:
    """``config`` and ``locks/prune`` are the config and the lock."""
    assert kind_of(CONFIG_KEY) is KeyKind.CONFIG
    assert kind_of(LOCK_KEY) is KeyKind.LOCK


# -- near-misses ---------------------------------------------------------------------------------


@st.composite
def chunk_near_misses(draw: st.DrawFn) -> str:
    """A key that looks like a chunk's but is not one `chunk_key` writes."""
    name = "a" + draw(chunk_ids).hex()[1:]  # a letter to upper-case
    at = draw(st.integers(0, 63))
    other = draw(st.sampled_from("0123456789bcdef"))
    return draw(
        st.sampled_from(
            [
                f"objects/{name[:2]}/{name[:-1]}",  # too short
                f"objects/{name[:2]}/{name}0",  # too long
                f"objects/{name[:2]}/{name[:at]}g{name[at + 1 :]}",  # not hex
                f"objects/{name[:2]}/{name.upper()}",  # upper-case hex
                f"objects/{name[:2].upper()}/{name.upper()}",  # upper-case hex and folder
                f"objects/{other}{name[1]}/{name}",  # wrong fan-out folder
                f"objects/{name}",  # no fan-out folder
                f"objects/{name[:2]}/{name}/x",  # extra segment
                f"x/objects/{name[:2]}/{name}",  # extra segment in front
                f"object/{name[:2]}/{name}",  # wrong folder
            ]
        )
    )


@given(chunk_near_misses())
def test_a_chunk_near_miss_is_a_stray(key: str) -> None:
    """Wrong length, upper case, wrong fan-out folder or extra segments: no chunk, a stray."""
    assert chunk_id_of(key) is None
    assert kind_of(key) is KeyKind.STRAY
    assert unexpected_key(key)


@given(key_ids, st.sampled_from(["upper", "long", "extra", "empty", "start"]))
def test_a_slot_near_miss_is_a_stray(key_id: str, how: str) -> None:
    """A key slot name with upper case, 65 characters, extra segments or a bad start is a stray."""
    key = {
        "upper": f"keys/{key_id.upper()}X",
        "long": f"keys/{key_id}{'a' * 64}",
        "extra": f"keys/{key_id}/x",
        "empty": "keys/",
        "start": f"keys/-{key_id}",
    }[how]
    assert slot_id_of(key) is None
    assert kind_of(key) is KeyKind.STRAY


@given(entries, st.sampled_from(["extra", "suffix", "bare", "folder"]))
def test_a_snapshot_near_miss_is_a_stray(entry: object, how: str) -> None:
    """A snapshot key with an extra segment, a changed name or a wrong folder is a stray."""
    name = entry.name  # type: ignore[attr-defined]
    key = {
        "extra": f"snapshots/{name}/x",
        "suffix": f"snapshots/{name}.tmp",
        "bare": name,
        "folder": f"snapshot/{name}",
    }[how]
    assert snapshot_name_of(key) is None
    assert kind_of(key) is KeyKind.STRAY


@pytest.mark.parametrize(
    "key",
    [
        "junk",
        "configs",
        "config/x",
        "locks/other",
        "locks/sweep/yesterday",
        "quarantine/today/x",
        "quarantine/20261101T020000Z/",
    ],
)
def test_other_near_misses_are_strays(key: str) -> None:
    """Junk at the top level, in ``locks/`` or ``quarantine/`` is no object of the repository."""
    assert kind_of(key) is KeyKind.STRAY


def test_every_caller_takes_the_layout_from_one_module() -> None:
    """The writer's key functions are the repository's, so no caller parses with its own rules."""
    for name in ("chunk_key", "chunk_id_of", "unexpected_key", "OBJECTS_PREFIX"):
        assert getattr(writer, name) is getattr(repository, name)


# -- the same strictness in every caller -----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "heal_sees"),
    [
        ("keys/NOT-A-SLOT", True),  # junk among the key slots
        ("keys/a/b", True),  # an extra segment among the key slots
        (f"objects/{'ab' * 32}", True),  # a chunk-like name without its fan-out folder
        (f"objects/ab/{'AB' * 32}", True),  # upper-case hex
        ("junk", False),  # junk at the top level: heal never lists the top level
        ("packs/zz/not-a-pack", True),  # junk among the packs
        (f"packs/ab/{'AB' * 32}", True),  # upper-case hex
        (f"packs/cd/{'ab' * 32}", True),  # the wrong fan-out folder
        ("index/not-an-index", True),  # junk among the index objects
        (f"index/ab/{'ab' * 32}", True),  # index objects are not fanned out
    ],
)
def test_a_near_miss_is_a_stray_to_verify_heal_and_backup(
    tmp_path: Path, key: str, heal_sees: bool
) -> None:
    """Verify warns about a near-miss, heal leaves it as a stray, and backup and open ignore it."""
    targets = [Target.from_url(str(tmp_path / name), name=name) for name in ("a", "b")]
    key_ = RawKey(b"k" * 32)
    vault = Vault.init(targets, key=key_, now=NOW, chunker=SMALL)
    targets[1].write(key, b"junk\n")
    reopened = Vault.open(targets, key=key_)
    assert reopened.degraded == {}
    info = reopened.backup(
        StreamSource(name="d", stream=io.BytesIO(b"x" * 5000)), lineage="db", host="h", now=NOW
    )
    assert chunk_id_of(key) is None or chunk_id_of(key) not in index_chunks(targets[1])
    report = vault.verify()
    found = {(p.kind, p.severity, p.target, p.key) for p in report.problems}
    assert found == {("unexpected", "warning", "b", key)}
    healed = vault.heal()
    assert [(name, where) for name, where, _why in healed.unfixed] == ([("b", key)] * heal_sees)
    assert all("not an object this repository writes" in why for *_, why in healed.unfixed)
    assert targets[1].read(key) == b"junk\n"
    slots, original = reopened.keys(), vault.keys()
    assert [s.key_id for s in slots] == [s.key_id for s in original]
    assert reopened.snapshots()[0].name == info.name
