"""Verify and heal on format 2: packs and index objects checked, copied, repaired and indexed.

Run on local folders and on moto (two prefixes of one bucket), with the vault's own API; the
damage is done straight on the targets, as a provider or an outside writer could.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctfy_vault.crypto import CHUNK_ID_SIZE
from ctfy_vault.exceptions import IntegrityError, TargetsFailedError
from ctfy_vault.repository import (
    TRAILER_SIZE,
    IndexedPack,
    PackEntry,
    decode_index,
    header_size,
    index_id_of,
    load_packed,
    pack_id_of,
    padme,
)
from ctfy_vault.repository._heal import _index_objects
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault, VerifyReport
from ctfy_vault.writer import StreamSource
from tests.support.pack_strategies import fixed_sealer
from tests.support.servers import S3Endpoint, make_bucket, s3_target
from tests.support.vaults import KEY, corrupt, holdings, pack_of, repo_sealer
from tests.support.writer_strategies import NOW, SMALL, memory_target

#: Small packs, so one backup writes several.
PACK = 4096

Targets = Callable[[], list[Target]]
Found = set[tuple[str, str, str | None, str | None]]


@pytest.fixture(params=["local", pytest.param("moto", marks=pytest.mark.moto)])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Targets:
    """Builds fresh handles on targets ``a`` and ``b`` (local folders, or moto prefixes)."""
    if request.param == "local":
        return lambda: [Target.from_url(str(tmp_path / name), name=name) for name in ("a", "b")]
    moto: S3Endpoint = request.getfixturevalue("moto_s3")
    bucket = make_bucket(moto, f"v2-{uuid.uuid4().hex[:12]}")
    return lambda: [s3_target(moto, bucket, prefix, name=prefix) for prefix in ("a", "b")]


def _data(seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    return {"db.sql": rng.randbytes(9000), "notes.txt": b"notes %d " % seed * 400}


def _seeded(targets: list[Target]) -> tuple[Vault, dict[str, dict[str, bytes]]]:
    """A format 2 vault with two backups in several packs; what each snapshot holds."""
    vault = Vault.init(targets, key=KEY, now=NOW, chunker=SMALL, pack_size=PACK)
    held = {}
    for seed in range(2):
        files = _data(seed)
        info = vault.backup(
            [StreamSource(name=name, stream=io.BytesIO(blob)) for name, blob in files.items()],
            lineage="db",
            host="h",
            now=NOW.replace(hour=seed + 3),
        )
        held[info.name] = files
    return vault, held


def _found(report: VerifyReport) -> Found:
    return {(p.kind, p.severity, p.target, p.key) for p in report.problems}


def _keys(target: Target, prefix: str) -> list[str]:
    return sorted(target.list(prefix))


def _flip(target: Target, key: str, at: int | None = None) -> None:
    """Flip one byte of a stored object in the middle (or at ``at``), in place."""
    blob = bytearray(target.read(key))
    blob[len(blob) // 2 if at is None else at] ^= 0x01
    target.fs.pipe_file(f"{target.root}/{key}", bytes(blob))


def _restores(vault: Vault, held: dict[str, dict[str, bytes]], dest: Path) -> None:
    for name, files in held.items():
        vault.restore(name, dest / name)
        for path, blob in files.items():
            assert (dest / name / path).read_bytes() == blob, path


def _chunks_of(vault: Vault, target: Target) -> int:
    return sum(1 for _ in holdings(vault, target).chunk_ids())


def test_a_clean_v2_repository_verifies_ok_reading_every_pack(fresh: Targets) -> None:
    """No problem, no warning; read_data checks every pack whole and counts its chunks."""
    vault, _held = _seeded(fresh())
    assert len(_keys(vault.targets[0], "packs")) > 2
    report = vault.verify(read_data=True)
    assert report.problems == ()
    assert report.ok
    assert report.chunks_read == 2 * _chunks_of(vault, vault.targets[0])
    assert vault.verify().chunks_read == 0
    assert vault.heal().copied == 0


def test_a_pack_deleted_on_one_target_is_missing_there_and_heal_copies_it(
    fresh: Targets, tmp_path: Path
) -> None:
    """missing-chunk (keyed by the pack) and lacking on that target; heal copies it back."""
    vault, held = _seeded(fresh())
    a, b = vault.targets
    entry = next(e for e in vault.ls(vault.snapshots()[0]) if e.chunks)
    key = pack_of(vault, b, entry.chunks[0])
    inside = {e.chunk_id for e in holdings(vault, b).index.locations(entry.chunks[0])}
    b.delete(key)
    report = vault.verify()
    found = _found(report)
    assert found == {("lacking", "error", "b", key), ("missing-chunk", "error", "b", key)}
    missing = [p for p in report.problems if p.kind == "missing-chunk"]
    assert entry.chunks[0].hex() in " ".join(p.detail for p in missing)
    assert len(missing) >= len(inside)
    healed = vault.heal()
    assert {o.target: o.copied for o in healed.outcomes} == {"a": (), "b": (key,)}
    assert b.read(key) == a.read(key)
    assert vault.verify(read_data=True).problems == ()
    _restores(Vault.open([b], key=KEY), held, tmp_path / "out")


def test_a_flipped_byte_in_a_pack_is_corrupt_pack_and_repair_replaces_it(fresh: Targets) -> None:
    """Only read_data sees it; plain heal names it and keeps it; repair rewrites that one copy."""
    vault, _held = _seeded(fresh())
    a, b = vault.targets
    key = _keys(a, "packs")[1]
    _flip(a, key)
    damaged = a.read(key)
    assert vault.verify().ok
    assert _found(vault.verify(read_data=True)) == {("corrupt-pack", "error", "a", key)}
    assert vault.heal().ok  # packs are read only with read_data or repair
    looked = vault.heal(read_data=True)
    assert [(target, k) for target, k, _why in looked.unfixed] == [("a", key)]
    assert a.read(key) == damaged
    repaired = vault.heal(repair=True, now=NOW)
    assert {o.target: o.repaired for o in repaired.outcomes} == {"a": (key,), "b": ()}
    assert a.read(key) == b.read(key)
    assert vault.verify(read_data=True).problems == ()


def test_a_damaged_index_object_is_an_index_problem_and_repair_replaces_it(
    fresh: Targets,
) -> None:
    """The index error names the good copy; its chunks are missing there until repair."""
    vault, _held = _seeded(fresh())
    _a, b = vault.targets
    key = _keys(b, "index")[0]
    index_id = index_id_of(key)
    assert index_id is not None
    listed = decode_index(repo_sealer(vault), index_id, b.read(key))
    _flip(b, key)
    report = vault.verify()
    (index,) = (p for p in report.problems if p.kind == "index")
    assert (index.target, index.key) == ("b", key)
    assert "a good copy is on a" in index.detail
    assert _found(report) == {
        ("index", "error", "b", key),
        ("missing-chunk", "error", "b", None),
        *(("loose-pack", "warning", "b", pack_key_of(record)) for record in listed),
    }
    plain = vault.heal()
    assert [(target, k) for target, k, _why in plain.unfixed] == [("b", key)]
    assert plain.copied == 0  # the packs it lists are listed on a: not loose, nothing indexed
    repaired = vault.heal(repair=True, now=NOW)
    assert {o.target: o.repaired for o in repaired.outcomes} == {"a": (), "b": (key,)}
    assert vault.verify(read_data=True).problems == ()


def pack_key_of(record: IndexedPack) -> str:
    """The key of the pack an index record lists."""
    name = record.pack_id.hex()
    return f"packs/{name[:2]}/{name}"


def test_a_wiped_target_is_restored_by_heal_and_alone_restores_the_files(tmp_path: Path) -> None:
    """Heal rebuilds an emptied local target; opened alone it restores byte-identical files."""
    roots = [tmp_path / "a", tmp_path / "b"]
    vault, held = _seeded([Target.from_url(str(root), name=root.name) for root in roots])
    shutil.rmtree(roots[1])
    roots[1].mkdir()
    before = {key: vault.targets[0].read(key) for key in vault.targets[0].list("")}
    report = vault.heal()
    assert set(report.outcomes[1].copied) == set(before)
    wiped = Target.from_url(str(roots[1]), name="b")
    assert {key: wiped.read(key) for key in wiped.list("")} == before
    assert vault.verify(read_data=True).problems == ()
    _restores(Vault.open([wiped], key=KEY), held, tmp_path / "out")


@pytest.mark.parametrize("where", ["everywhere", "one target"])
def test_a_loose_pack_is_warned_about_and_heal_indexes_it(
    fresh: Targets, tmp_path: Path, where: str
) -> None:
    """Packs no index object lists: loose-pack warnings; heal indexes them and all restores."""
    vault, held = _seeded(fresh())
    a, b = vault.targets
    packs = _keys(a, "packs")
    for target in vault.targets:
        for key in _keys(target, "index"):
            target.delete(key)
    if where == "one target":  # as a backup that stopped on b before its index object
        for key in packs[::2]:
            b.delete(key)
    report = vault.verify()
    assert {p.kind for p in report.warnings} == {"loose-pack"}
    assert {(p.target, p.key) for p in report.warnings} == {
        (target.name, key) for target in vault.targets for key in _keys(target, "packs")
    }
    assert "no index object lists it: heal indexes it" in report.warnings[0].detail
    assert ("missing-chunk", "error", "a", None) in _found(report)
    healed = vault.heal()
    assert healed.ok
    copied = {o.target: set(o.copied) for o in healed.outcomes}
    assert copied["a"] == set(_keys(a, "index"))
    assert copied["b"] == set(_keys(b, "index")) | (
        {*packs[::2]} if where != "everywhere" else set()
    )
    assert _keys(a, "index") == _keys(b, "index")
    assert sorted(record.pack_id for record in indexed(vault, a)) == sorted(
        pack_id for key in packs if (pack_id := pack_id_of(key)) is not None
    )
    assert vault.verify(read_data=True).problems == ()
    _restores(Vault.open([b], key=KEY), held, tmp_path / "out")


def indexed(vault: Vault, target: Target) -> list[IndexedPack]:
    """Every record of every index object on a target."""
    sealer = repo_sealer(vault)
    records: list[IndexedPack] = []
    for key in target.list("index"):
        index_id = index_id_of(key)
        assert index_id is not None
        records.extend(decode_index(sealer, index_id, target.read(key)))
    return records


def test_a_pack_damaged_on_its_only_donor_is_not_copied(fresh: Targets) -> None:
    """The donor's copy fails check_pack: the target lacking it is reported, never fed it."""
    vault, _held = _seeded(fresh())
    a, b = vault.targets
    key = _keys(a, "packs")[0]
    b.delete(key)
    corrupt(a, key)  # the trailer's last byte: the whole-pack check sees it
    with pytest.raises(TargetsFailedError, match="incomplete") as caught:
        vault.heal()
    assert caught.value.outcomes["a"] is None
    assert isinstance(caught.value.outcomes["b"], IntegrityError)
    assert not b.exists(key)


def test_an_index_object_damaged_on_its_only_holder_is_not_spread_and_its_packs_reindexed(
    fresh: Targets, tmp_path: Path
) -> None:
    """Not copied; the packs only it listed get a new index object; repair quarantines it."""
    vault, held = _seeded(fresh())
    a, b = vault.targets
    key = _keys(a, "index")[0]
    b.delete(key)
    _flip(a, key)
    report = vault.verify()
    (index,) = (p for p in report.problems if p.kind == "index")
    assert "opens on no target" in index.detail
    assert ("lacking", "error", "b", key) not in _found(report)
    healed = vault.heal()
    assert not b.exists(key)
    assert [(target, k) for target, k, _why in healed.unfixed] == [("a", key)]
    (new,) = {k for o in healed.outcomes for k in o.copied}
    assert new.startswith("index/")
    assert {k for o in healed.outcomes for k in o.copied if o.target == "b"} == {new}
    assert _found(vault.verify(read_data=True)) == {("index", "error", "a", key)}
    repaired = vault.heal(repair=True, now=NOW)
    assert [k for k, _aside in repaired.outcomes[0].quarantined] == [key]
    after = vault.verify(read_data=True)
    assert after.ok
    assert {p.kind for p in after.problems} == {"quarantined"}
    _restores(Vault.open([b], key=KEY), held, tmp_path / "out")


def test_index_records_that_disagree_with_the_pack_header_are_an_index_problem() -> None:
    """An index object (sealed with the keys) that misplaces a chunk: read_data names the pack."""
    targets = [memory_target("a"), memory_target("b")]
    vault = Vault.init(targets, key=KEY, now=NOW, chunker=SMALL, pack_size=PACK)
    vault.backup(
        StreamSource(name="d", stream=io.BytesIO(os.urandom(6000))), lineage="db", host="h", now=NOW
    )
    a, _b = targets
    sealer = repo_sealer(vault)
    records = indexed(vault, a)
    record = next(r for r in records if len(r.entries) > 1)
    first, second, *rest = record.entries
    swapped = IndexedPack(
        pack_id=record.pack_id,
        size=record.size,
        entries=(
            PackEntry(chunk_id=second.chunk_id, offset=first.offset, length=first.length),
            PackEntry(chunk_id=first.chunk_id, offset=second.offset, length=second.length),
            *rest,
        ),
    )
    (lying,) = _index_objects(sealer, [swapped])
    for key in _keys(a, "index"):
        a.delete(key)
    others = [r for r in records if r.pack_id != record.pack_id]
    for index in _index_objects(sealer, others) if others else []:
        a.write(f"index/{index.name}", bytes(index.blob))
    a.write(f"index/{lying.name}", bytes(lying.blob))
    found = _found(vault.verify(read_data=True))
    assert ("index", "error", a.name, pack_key_of(record)) in found
    assert all(kind != "corrupt-pack" for kind, *_rest in found)


# -- the loose packs' index objects (pure logic) -----------------------------------------------


def _record(pack: int, chunks: list[int]) -> IndexedPack:
    """A well-formed record of a pack of 40-byte sealed chunks with the given chunk numbers."""
    entries = tuple(
        PackEntry(chunk_id=n.to_bytes(CHUNK_ID_SIZE, "big"), offset=40 * at, length=40)
        for at, n in enumerate(chunks)
    )
    size = padme(40 * len(chunks) + header_size(len(chunks)) + TRAILER_SIZE)
    return IndexedPack(pack_id=pack.to_bytes(CHUNK_ID_SIZE, "big"), size=size, entries=entries)


@given(st.lists(st.lists(st.integers(0, 12), min_size=1, max_size=5, unique=True), max_size=8))
def test_loose_packs_go_into_index_objects_that_list_each_chunk_once(
    packs: list[list[int]],
) -> None:
    """Every record lands in exactly one object; no object lists a chunk twice; it decodes."""
    sealer = fixed_sealer()
    records = [_record(n, chunks) for n, chunks in enumerate(packs)]
    objects = _index_objects(sealer, records)
    listed = [record for index in objects for record in index.packs]
    assert sorted(r.pack_id for r in listed) == sorted(r.pack_id for r in records)
    for index in objects:
        chunk_ids = [e.chunk_id for record in index.packs for e in record.entries]
        assert len(chunk_ids) == len(set(chunk_ids))
        assert decode_index(sealer, index.id, index.blob) == index.packs
    if records and not any(set(x) & set(y) for i, x in enumerate(packs) for y in packs[:i]):
        assert len(objects) == 1


def test_a_target_loaded_after_heal_holds_every_chunk_each_manifest_names(fresh: Targets) -> None:
    """After healing a wiped index folder on one target, load_packed finds every chunk there."""
    vault, _held = _seeded(fresh())
    _a, b = vault.targets
    for key in _keys(b, "index"):
        b.delete(key)
    vault.heal()
    store = load_packed(b, repo_sealer(vault))
    for info in vault.snapshots():
        for entry in vault.ls(info):
            assert all(chunk in store for chunk in entry.chunks)
