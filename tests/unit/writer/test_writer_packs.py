"""The format 2 writer: packs and index objects, identical on every target, and the commit rule."""

from __future__ import annotations

import io
import random

import pytest

from ctfy_vault.exceptions import TargetsFailedError
from ctfy_vault.repository import (
    INDEX_PREFIX,
    PACKS_PREFIX,
    SNAPSHOTS_PREFIX,
    Location,
    TargetRanges,
    load_packed,
    pack_key,
    padme,
    read_pack_header,
)
from ctfy_vault.storage import Target
from ctfy_vault.writer import StreamSource, Writer
from ctfy_vault.writer import _writer as writer_module
from tests.support.writer_strategies import (
    NOW,
    SMALL,
    Faults,
    faulty_target,
    memory_target,
    sealer,
)


def _stream(name: str, size: int, seed: int) -> StreamSource:
    data = random.Random(seed).randbytes(size)  # noqa: S311 - test data, not secrets
    return StreamSource(name=name, stream=io.BytesIO(data))


def _names(target: Target, prefix: str) -> set[str]:
    return set(target.list(prefix))


def test_every_target_gets_the_same_packs_and_index_objects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three targets hold byte-identical packs and index objects, intermediate ones included."""
    monkeypatch.setattr(writer_module, "INDEX_EVERY", 3)
    targets = [memory_target() for _ in range(3)]
    seal = sealer()
    writer = Writer(targets, seal, chunker=SMALL, format=2, pack_size=4096)
    result = writer.backup(
        [_stream(f"f{n}", 20_000, n) for n in range(4)], lineage="x", host="h", now=NOW
    )
    packs = [_names(t, PACKS_PREFIX) for t in targets]
    indexes = [_names(t, INDEX_PREFIX) for t in targets]
    assert len(packs[0]) >= 10
    assert packs[0] == packs[1] == packs[2]
    assert len(indexes[0]) >= 3  # batches of three packs, then the rest
    assert indexes[0] == indexes[1] == indexes[2]
    for key in packs[0] | indexes[0]:
        blobs = {t.read(key) for t in targets}
        assert len(blobs) == 1
        size = len(blobs.pop())
        assert padme(size) == size
    held = load_packed(targets[0], seal)
    needed = {c for entry in result.manifest.files for c in entry.chunks}
    assert needed
    assert all(chunk in held for chunk in needed)
    assert not held.loose_packs()
    assert not held.missing_packs()


def test_a_second_backup_of_the_same_data_writes_no_pack() -> None:
    """Unchanged data stores nothing but an index-free manifest the second time."""
    targets = [memory_target() for _ in range(2)]
    writer = Writer(targets, sealer(), chunker=SMALL, format=2, pack_size=4096)
    writer.backup([_stream("f", 30_000, 1)], lineage="x", host="h", now=NOW)
    before = [_names(t, PACKS_PREFIX) | _names(t, INDEX_PREFIX) for t in targets]
    again = writer.backup([_stream("f", 30_000, 1)], lineage="x", host="h", now=NOW)
    after = [_names(t, PACKS_PREFIX) | _names(t, INDEX_PREFIX) for t in targets]
    assert before == after
    assert all(o.chunks_uploaded == 0 and o.chunks_present > 0 for o in again.outcomes)
    assert again.chunks_sealed == 0


def test_a_target_failing_its_writes_commits_no_manifest_there() -> None:
    """A target refusing every write fails alone: no manifest there, the other commits."""
    good, bad = memory_target(), faulty_target(Faults(full=True), "full")
    writer = Writer([good, bad], sealer(), chunker=SMALL, format=2, pack_size=4096, require=1)
    result = writer.backup([_stream("f", 20_000, 2)], lineage="x", host="h", now=NOW)
    outcomes = {o.target: o for o in result.outcomes}
    assert outcomes[good.name].committed
    assert not outcomes[bad.name].committed
    assert outcomes[bad.name].error is not None
    assert not _names(bad, SNAPSHOTS_PREFIX)
    assert _names(good, SNAPSHOTS_PREFIX)


def test_no_target_commits_when_every_target_fails_its_writes() -> None:
    """With every target refusing writes, the backup raises and no manifest exists anywhere."""
    targets = [faulty_target(Faults(full=True), f"full{n}") for n in range(2)]
    writer = Writer(targets, sealer(), chunker=SMALL, format=2, pack_size=4096)
    with pytest.raises(TargetsFailedError):
        writer.backup([_stream("f", 20_000, 3)], lineage="x", host="h", now=NOW)
    assert not any(_names(t, SNAPSHOTS_PREFIX) for t in targets)


def test_every_index_record_is_what_its_pack_header_says() -> None:
    """Each pack's own header lists exactly the chunks, offsets and lengths the index gives."""
    target = memory_target()
    seal = sealer()
    Writer([target], seal, chunker=SMALL, format=2, pack_size=4096).backup(
        [_stream("f", 30_000, 4)], lineage="x", host="h", now=NOW
    )
    held = load_packed(target, seal)
    assert len(held.index.pack_ids) >= 3
    for pack_id in held.index.pack_ids:
        key = pack_key(pack_id)
        header = read_pack_header(seal, TargetRanges(target, key))
        assert header.size == held.index.pack_size(pack_id) == target.size(key)
        for entry in header.entries:
            assert held.locate(entry.chunk_id) == Location(
                chunk_id=entry.chunk_id,
                pack_id=pack_id,
                pack_size=header.size,
                offset=entry.offset,
                length=entry.length,
            )
