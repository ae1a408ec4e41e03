"""The multi-target writer: chunking, sealing once, create-only fan-out, dedup, outcomes, resume."""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctfy_vault.crypto import OVERHEAD, MasterKeys, Sealer
from ctfy_vault.exceptions import (
    ConfigurationError,
    StorageError,
    TargetsFailedError,
    UnsupportedError,
)
from ctfy_vault.manifest import FileType
from ctfy_vault.storage import Target, set_retain_until
from ctfy_vault.writer import ChunkerParams, StreamSource, Writer, iter_chunks
from ctfy_vault.writer import _writer as writer_module
from tests.support.paths import REPO_ROOT
from tests.support.writer_strategies import (
    FAST_RETRY,
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

WRITER_SOURCES = REPO_ROOT / "src" / "ctfy_vault" / "writer"


def _data(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)  # noqa: S311 - reproducible test data, not secrets


def _stream(name: str, data: bytes) -> StreamSource:
    return StreamSource(name=name, stream=io.BytesIO(data))


def _three(tmp_path: Path) -> list[Target]:
    return [
        memory_target("a"),
        Target.from_url(str(tmp_path / "local"), retry=FAST_RETRY),
        memory_target("c"),
    ]


# -- chunking ------------------------------------------------------------------------------------


def test_chunks_concatenate_to_the_input_within_bounds() -> None:
    """Chunks rebuild the stream exactly and respect min/max sizes (except the last)."""
    data = _data(50_000)
    chunks = list(iter_chunks(io.BytesIO(data), SMALL))
    assert b"".join(chunks) == data
    assert all(SMALL.min_size <= len(c) <= SMALL.max_size for c in chunks[:-1])
    assert len(chunks[-1]) <= SMALL.max_size


def test_an_insertion_changes_only_nearby_chunks() -> None:
    """Content-defined cuts resynchronise after an insertion, so most chunks are shared."""
    data = _data(200_000)
    edited = data[:100_000] + b"a small edit" + data[100_000:]
    before = set(iter_chunks(io.BytesIO(data), SMALL))
    after = list(iter_chunks(io.BytesIO(edited), SMALL))
    shared = sum(1 for chunk in after if chunk in before)
    assert shared >= len(after) - 4


def test_empty_stream_has_no_chunks() -> None:
    """An empty stream yields no chunk at all."""
    assert list(iter_chunks(io.BytesIO(b""), SMALL)) == []


@pytest.mark.parametrize(
    ("low", "avg", "high"), [(10, 256, 1024), (64, 8 << 20, 16 << 20), (512, 256, 1024)]
)
def test_chunker_params_are_validated(low: int, avg: int, high: int) -> None:
    """Sizes outside the chunker's ranges, or out of order, are refused."""
    with pytest.raises(ConfigurationError):
        ChunkerParams(min_size=low, avg_size=avg, max_size=high)


def test_chunker_params_are_recorded_for_the_config() -> None:
    """The config form names the algorithm and the three sizes."""
    assert SMALL.to_config() == {
        "algorithm": "fastcdc2020",
        "min_size": 64,
        "avg_size": 256,
        "max_size": 1024,
    }


# -- fan-out -------------------------------------------------------------------------------------


def test_backup_lands_byte_identical_on_every_target(tmp_path: Path) -> None:
    """Memory and local targets end with the same keys holding the same bytes."""
    targets = _three(tmp_path)
    result = Writer(targets, sealer(), chunker=SMALL).backup(
        [_stream("dump.sql", _data(20_000))], lineage="db", host="h", now=NOW
    )
    stored = [contents(target) for target in targets]
    assert stored[0] == stored[1] == stored[2]
    assert f"snapshots/{result.name}" in stored[0]
    assert [o.committed for o in result.outcomes] == [True, True, True]
    assert all(o.error is None for o in result.outcomes)


def test_backup_restores_to_the_same_bytes(tmp_path: Path) -> None:
    """Each file is rebuilt from the stored chunks with its recorded size and SHA-256."""
    tree = tmp_path / "src"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.bin").write_bytes(_data(9_000, 2))
    (tree / "sub" / "b.txt").write_bytes(b"hello\n" * 500)
    (tree / "empty").write_bytes(b"")
    (tree / "link").symlink_to("a.bin")
    target = memory_target()
    seal = sealer()
    result = Writer([target], seal, chunker=SMALL).backup(
        [tree], lineage="files", host="h", now=NOW
    )
    manifest = result.manifest
    types = {entry.path: entry.type for entry in manifest.files}
    assert types == {
        "src": FileType.DIR,
        "src/a.bin": FileType.FILE,
        "src/empty": FileType.FILE,
        "src/link": FileType.SYMLINK,
        "src/sub": FileType.DIR,
        "src/sub/b.txt": FileType.FILE,
    }
    for path, source in [("src/a.bin", "a.bin"), ("src/sub/b.txt", "sub/b.txt")]:
        data = (tree / source).read_bytes()
        entry = next(e for e in manifest.files if e.path == path)
        assert restore(target, seal, manifest, path) == data
        assert entry.size == len(data)
        assert entry.sha256 == hashlib.sha256(data).digest()
    assert manifests(target, seal) == [manifest]
    assert result.warnings == ()


def test_each_chunk_is_sealed_once_for_all_targets(tmp_path: Path) -> None:
    """One backup to three targets seals each distinct chunk once, not once per target."""
    data = _data(30_000)
    distinct = len(set(iter_chunks(io.BytesIO(data), SMALL)))
    result = Writer(_three(tmp_path), sealer(), chunker=SMALL).backup(
        [_stream("x", data)], lineage="db", host="h", now=NOW
    )
    assert result.chunks_sealed == distinct
    assert all(o.chunks_uploaded == distinct for o in result.outcomes)


def test_second_backup_of_unchanged_data_uploads_no_chunk(tmp_path: Path) -> None:
    """Known chunks are neither sealed nor sent again; only the new manifest is written."""
    data = _data(30_000)
    writer = Writer(_three(tmp_path), sealer(), chunker=SMALL)
    first = writer.backup([_stream("x", data)], lineage="db", host="h", now=NOW)
    second = writer.backup(
        [_stream("x", data)], lineage="db", host="h", now=NOW, previous=first.hash
    )
    assert second.chunks_sealed == 0
    assert all(o.chunks_uploaded == 0 and o.committed for o in second.outcomes)
    assert all(o.chunks_present == second.chunks for o in second.outcomes)
    assert second.manifest.previous == first.hash


def test_parent_lets_unchanged_files_skip_reading(tmp_path: Path) -> None:
    """With a parent manifest, files with the same size, mtime and mode are not read again."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "same").write_bytes(_data(5_000, 3))
    (tree / "changed").write_bytes(_data(5_000, 4))
    writer = Writer([memory_target(), memory_target()], sealer(), chunker=SMALL)
    first = writer.backup([tree], lineage="f", host="h", now=NOW)
    (tree / "changed").write_bytes(_data(5_001, 5))
    second = writer.backup([tree], lineage="f", host="h", now=NOW, parent=first.manifest)
    assert second.bytes_read == 5_001
    same = {e.path: e for e in first.manifest.files}["tree/same"]
    assert {e.path: e for e in second.manifest.files}["tree/same"] == same


def test_existing_object_is_a_dedup_hit_not_an_error() -> None:
    """A chunk already stored on one target (by another writer) counts as present there."""
    data = _data(10_000)
    first, second = memory_target(), memory_target()
    Writer([first], sealer(), chunker=SMALL).backup(
        [_stream("x", data)], lineage="db", host="h", now=NOW
    )
    before = contents(first)
    result = Writer([first, second], sealer(), chunker=SMALL).backup(
        [_stream("x", data)], lineage="db", host="h", now=NOW
    )
    on_first, on_second = result.outcomes
    assert on_first.chunks_uploaded == 0
    assert on_second.chunks_uploaded == on_second.chunks_present + on_second.chunks_uploaded
    assert all(contents(first)[key] == blob for key, blob in before.items())
    objects = [
        {k: v for k, v in contents(t).items() if k.startswith("objects/")} for t in (first, second)
    ]
    assert objects[0] == objects[1]  # the missing target got the stored bytes, not a new seal
    assert result.chunks_sealed == 0
    assert on_first.committed
    assert on_second.committed


def test_concurrent_writer_race_counts_as_present(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk stored by someone else after the listing is refused create-only and counted."""
    data = _data(5_000)
    target = memory_target()
    other = Writer([target], sealer(), chunker=SMALL)
    real = writer_module.index_chunks
    monkeypatch.setattr(writer_module, "index_chunks", lambda t: set())
    result = Writer([target], sealer(), chunker=SMALL).backup(
        [_stream("x", data)], lineage="db", host="h", now=NOW
    )
    assert result.outcomes[0].chunks_uploaded == result.chunks
    monkeypatch.setattr(writer_module, "index_chunks", lambda t: set())
    again = other.backup([_stream("x", data)], lineage="db", host="h", now=NOW)
    assert again.outcomes[0].chunks_uploaded == 0
    assert again.outcomes[0].chunks_present == again.chunks
    assert real(target) == {c for e in again.manifest.files for c in e.chunks}


# -- outcomes and requirements ---------------------------------------------------------------------


def test_failed_target_raises_one_error_with_every_outcome(tmp_path: Path) -> None:
    """With require='all', a full target makes the backup fail after the others commit."""
    good = [memory_target("a"), Target.from_url(str(tmp_path / "b"), retry=FAST_RETRY)]
    bad = faulty_target(Faults(full=True), "full")
    seal = sealer()
    with pytest.raises(TargetsFailedError) as caught:
        Writer([*good, bad], seal, chunker=SMALL).backup(
            [_stream("x", _data(8_000))], lineage="db", host="h", now=NOW
        )
    outcomes = caught.value.outcomes
    assert list(outcomes) == [good[0].name, good[1].name, bad.name]
    assert outcomes[good[0].name] is None
    assert outcomes[good[1].name] is None
    assert isinstance(outcomes[bad.name], StorageError)
    assert bad.name in str(caught.value)
    assert all(len(manifests(t, seal)) == 1 for t in good)
    assert list(bad.list("snapshots")) == []


def test_quorum_succeeds_and_reports_the_failed_target() -> None:
    """With require=2 of 3, one failed target still gives a result naming its failure."""
    bad = faulty_target(Faults(full=True))
    targets = [memory_target(), bad, memory_target()]
    result = Writer(targets, sealer(), chunker=SMALL, require=2).backup(
        [_stream("x", _data(4_000))], lineage="db", host="h", now=NOW
    )
    assert [o.committed for o in result.outcomes] == [True, False, True]
    assert isinstance(result.outcomes[1].error, StorageError)


def test_quorum_not_reached_raises() -> None:
    """With require=2 of 3 and two targets failing, the backup raises."""
    targets = [faulty_target(Faults(full=True)), memory_target(), faulty_target(Faults(down=True))]
    with pytest.raises(TargetsFailedError) as caught:
        Writer(targets, sealer(), chunker=SMALL, require=2).backup(
            [_stream("x", _data(4_000))], lineage="db", host="h", now=NOW
        )
    assert [err is None for err in caught.value.outcomes.values()] == [False, True, False]


@pytest.mark.parametrize("require", [0, 4, "any", True])
def test_require_is_validated(require: Any) -> None:
    """A requirement that is not 'all' or a count within the targets is refused."""
    targets = [memory_target(), memory_target(), memory_target()]
    with pytest.raises(ConfigurationError):
        Writer(targets, sealer(), require=require)


def test_duplicate_target_names_are_refused() -> None:
    """Outcomes are keyed by target name, so two targets may not share one."""
    target = memory_target()
    with pytest.raises(ConfigurationError):
        Writer([target, target], sealer())


# -- resume --------------------------------------------------------------------------------------


def test_rerun_after_interruption_uploads_only_what_is_missing() -> None:
    """A stream that breaks mid-way leaves chunks but no manifest; the re-run reuses them."""
    data = _data(40_000)
    targets = [memory_target(), memory_target()]
    writer = Writer(targets, sealer(), chunker=SMALL)

    class BrokenPipe:
        """Delivers 25,000 bytes, then fails like a producer that died."""

        def __init__(self) -> None:
            self.position = 0

        def read(self, size: int, /) -> bytes:
            if self.position >= 25_000:
                raise OSError("pipe closed")
            end = min(self.position + size, 25_000)
            part = data[self.position : end]
            self.position = end
            return part

    with pytest.raises(OSError, match="pipe closed"):
        writer.backup(
            [StreamSource(name="x", stream=BrokenPipe())], lineage="db", host="h", now=NOW
        )
    stored = [set(t.list("objects")) for t in targets]
    assert stored[0]
    assert stored[0] == stored[1]
    assert all(list(t.list("snapshots")) == [] for t in targets)
    result = writer.backup([_stream("x", data)], lineage="db", host="h", now=NOW)
    for target, outcome in zip(targets, result.outcomes, strict=True):
        assert outcome.chunks_present >= len(stored[0]) - 1
        assert outcome.chunks_uploaded + outcome.chunks_present == result.chunks
        assert restore(target, sealer(), result.manifest, "x") == data


# -- bad input -----------------------------------------------------------------------------------


def _deny(monkeypatch: pytest.MonkeyPatch, denied: Path) -> None:
    """Make ``denied`` unreadable even for root, the way a mode-000 file is for anyone else."""
    real_open, real_scandir = os.open, os.scandir

    def guarded_open(path: str, flags: int, *args: int, **kwargs: int) -> int:
        if Path(path) == denied:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args, **kwargs)

    def guarded_scandir(path: str) -> Any:
        if Path(path) == denied:
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "open", guarded_open)
    monkeypatch.setattr(os, "scandir", guarded_scandir)


def test_unreadable_file_is_skipped_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that cannot be opened (permission denied) is reported and the rest backed up."""
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "ok").write_bytes(b"fine")
    secret = tree / "secret"
    secret.write_bytes(b"no")
    secret.chmod(0)
    _deny(monkeypatch, secret)
    result = Writer([memory_target()], sealer(), chunker=SMALL).backup(
        [tree], lineage="f", host="h", now=NOW
    )
    assert [e.path for e in result.manifest.files] == ["t", "t/ok"]
    assert [(w.path, w.reason) for w in result.warnings] == [
        (str(secret), "permission denied; skipped")
    ]


def test_unreadable_directory_is_recorded_without_contents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory that cannot be listed is recorded, its contents skipped with a warning."""
    tree = tmp_path / "t"
    (tree / "locked").mkdir(parents=True)
    (tree / "locked" / "inner").write_bytes(b"x")
    _deny(monkeypatch, tree / "locked")
    result = Writer([memory_target()], sealer(), chunker=SMALL).backup(
        [tree], lineage="f", host="h", now=NOW
    )
    assert [e.path for e in result.manifest.files] == ["t", "t/locked"]
    assert result.warnings[0].reason == "permission denied; skipped"


def test_file_changing_while_read_is_stored_as_read_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that grows during the read is detected by size/mtime and flagged."""
    tree = tmp_path / "t"
    tree.mkdir()
    growing = tree / "log"
    growing.write_bytes(_data(5_000))
    real = iter_chunks

    def appending(source: object, params: ChunkerParams, key: object = None) -> Iterator[bytes]:
        for index, chunk in enumerate(real(source, params, key)):  # type: ignore[arg-type]
            if index == 0:
                with growing.open("ab") as out:
                    out.write(b"appended while the backup read the file")
            yield chunk

    monkeypatch.setattr(writer_module, "iter_chunks", appending)
    result = Writer([memory_target()], sealer(), chunker=SMALL).backup(
        [tree], lineage="f", host="h", now=NOW
    )
    assert [(w.path, w.reason) for w in result.warnings] == [
        (str(growing), "changed while read; stored as read")
    ]
    entry = {e.path: e for e in result.manifest.files}["t/log"]
    assert entry.size >= 5_000


def test_special_files_are_recorded_or_skipped_without_blocking(tmp_path: Path) -> None:
    """A FIFO is recorded, never opened (it would block); a socket is skipped with a warning."""
    tree = tmp_path / "t"
    tree.mkdir()
    os.mkfifo(tree / "fifo")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tree / "sock"))
    try:
        result = Writer([memory_target()], sealer(), chunker=SMALL).backup(
            [tree], lineage="f", host="h", now=NOW
        )
    finally:
        server.close()
    assert [(e.path, e.type) for e in result.manifest.files] == [
        ("t", FileType.DIR),
        ("t/fifo", FileType.FIFO),
    ]
    assert [w.reason for w in result.warnings] == ["socket skipped"]


def test_symlink_loops_are_recorded_as_links(tmp_path: Path) -> None:
    """Links are never followed: a loop and a link to a parent are stored as links."""
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "a").symlink_to("b")
    (tree / "b").symlink_to("a")
    (tree / "up").symlink_to("..")
    result = Writer([memory_target()], sealer(), chunker=SMALL).backup(
        [tree], lineage="f", host="h", now=NOW
    )
    links = {e.path: e.link for e in result.manifest.files if e.type is FileType.SYMLINK}
    assert links == {"t/a": "b", "t/b": "a", "t/up": ".."}


def test_non_utf8_names_are_skipped_with_an_escaped_warning(tmp_path: Path) -> None:
    r"""Format v1 paths are UTF-8: other names are skipped and shown with \\x escapes."""
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "fine").write_bytes(b"ok")
    os.close(os.open(os.fsencode(tree) + b"/caf\xe9", os.O_CREAT | os.O_WRONLY, 0o600))
    result = Writer([memory_target()], sealer(), chunker=SMALL).backup(
        [tree], lineage="f", host="h", now=NOW
    )
    assert [e.path for e in result.manifest.files] == ["t", "t/fine"]
    assert [w.path for w in result.warnings] == [f"{tree}/caf\\xe9"]


def test_missing_source_is_refused_before_any_write(tmp_path: Path) -> None:
    """A source path that does not exist is a configuration error; nothing is stored."""
    target = memory_target()
    with pytest.raises(ConfigurationError, match="does not exist"):
        Writer([target], sealer()).backup([tmp_path / "nope"], lineage="f", host="h", now=NOW)
    assert list(target.list("")) == []


def test_sources_with_the_same_name_are_refused(tmp_path: Path) -> None:
    """Two sources that would be stored under one top-level name are refused."""
    (tmp_path / "a" / "x").mkdir(parents=True)
    (tmp_path / "b" / "x").mkdir(parents=True)
    with pytest.raises(ConfigurationError, match="both be stored"):
        Writer([memory_target()], sealer()).backup(
            [tmp_path / "a" / "x", tmp_path / "b" / "x"], lineage="f", host="h", now=NOW
        )


# -- never delete, never leak ----------------------------------------------------------------------


def test_writer_and_heal_never_delete() -> None:
    """The writer package deletes nothing; heal's opt-in repair of a damaged copy is the one delete.

    That single call is marked ``# repair-delete`` and lives in the repository's ``_heal.py``; any
    other delete of any kind in the writer package or in heal fails this test.
    """
    pattern = re.compile(r"\.(delete|rm|rm_file|remove|unlink|rmdir)\(|remove_key_slot")
    sources = [*sorted(WRITER_SOURCES.glob("*.py")), WRITER_SOURCES.parent / "repository/_heal.py"]
    found = [
        (path.name, line.strip())
        for path in sources
        for line in path.read_text().splitlines()
        if pattern.search(line)
    ]
    assert found == [("_heal.py", "target.delete(key)  # repair-delete")]


def test_reprs_and_errors_hold_no_key_material() -> None:
    """Neither the writer's repr nor a failure's text shows the master keys."""
    keys = MasterKeys.generate()
    seal = Sealer(repo_id=bytes(16), keys=keys)
    writer = Writer([memory_target(), faulty_target(Faults(full=True))], seal, require=1)
    result = writer.backup([_stream("x", b"data")], lineage="db", host="h", now=NOW)
    texts = [repr(writer), repr(result), str(result.outcomes[1].error)]
    for secret in (keys.data_key, keys.chunk_id_key):
        assert all(secret.hex() not in text and repr(secret) not in text for text in texts)


# -- options -------------------------------------------------------------------------------------


def test_compress_false_stores_chunks_uncompressed() -> None:
    """With compress=False compressible chunks are stored at full size plus the seal's overhead."""
    data = b"".join(f"row {n}: the same words again\n".encode() for n in range(300))
    target = memory_target()
    result = Writer([target], sealer(), chunker=SMALL, compress=False).backup(
        [_stream("x", data)], lineage="db", host="h", now=NOW
    )
    sizes = sorted(len(c) + OVERHEAD for c in iter_chunks(io.BytesIO(data), SMALL))
    assert sorted(len(target.read(key)) for key in target.list("objects")) == sizes
    assert restore(target, sealer(), result.manifest, "x") == data


def test_retain_until_is_ignored_where_there_is_no_object_lock(tmp_path: Path) -> None:
    """Targets without Object Lock are written as usual when a retain-until date is given."""
    targets = [memory_target(), Target.from_url(str(tmp_path / "l"), retry=FAST_RETRY)]
    result = Writer(targets, sealer(), chunker=SMALL).backup(
        [_stream("x", b"data" * 100)], lineage="db", host="h", now=NOW, retain_until=NOW
    )
    assert all(outcome.committed for outcome in result.outcomes)


def test_retain_until_skips_a_lock_without_per_object_dates(tmp_path: Path) -> None:
    """A target reporting a lock (Azure immutability) but no per-object date is written as usual."""
    target = memory_target()
    probed = attrs.evolve(target.probe(), object_lock=True)
    assert not target.supports.retain_until
    object.__setattr__(target, "_capabilities", probed)  # as Azure with immutability reports
    result = Writer([target], sealer(), chunker=SMALL).backup(
        [_stream("x", b"data" * 100)], lineage="db", host="h", now=NOW, retain_until=NOW
    )
    assert [outcome.committed for outcome in result.outcomes] == [True]


def test_naive_retain_until_is_refused() -> None:
    """A retain-until date without a time zone is ambiguous and refused before any write."""
    target = memory_target()
    with pytest.raises(ConfigurationError):
        Writer([target], sealer()).backup(
            [_stream("x", b"data")],
            lineage="db",
            host="h",
            now=NOW,
            retain_until=NOW.replace(tzinfo=None),
        )
    assert list(target.list("")) == []


def test_retention_lock_needs_an_s3_target(tmp_path: Path) -> None:
    """Setting a retain-until date on a local target is unsupported, and naive dates are refused."""
    target = Target.from_url(str(tmp_path / "l"))
    target.write("k", b"v")
    with pytest.raises(UnsupportedError):
        set_retain_until(target, "k", NOW)
    with pytest.raises(ConfigurationError):
        set_retain_until(target, "k", NOW.replace(tzinfo=None))


# -- degraded targets and the commit guard ---------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(count=st.integers(1, 4), data=st.data())
def test_degraded_targets_get_nothing_and_never_count(count: int, data: st.DataObject) -> None:
    """Any degraded set, any require: the rest commit, the degraded hold nothing, no false quorum."""
    targets = [memory_target(f"t{n}") for n in range(count)]
    chosen = data.draw(st.sets(st.integers(0, count - 1)), label="degraded")
    require = data.draw(st.integers(1, count), label="require")
    degraded: dict[str, BaseException] = {
        targets[n].name: StorageError("degraded", target=targets[n].name) for n in chosen
    }
    writer = Writer(targets, sealer(), chunker=SMALL, require=require)
    source = _stream("db.sql", _data(5000))
    try:
        result = writer.backup([source], lineage="db", host="h", now=NOW, degraded=degraded)
        outcomes = {o.target: o.error for o in result.outcomes}
        assert [o.committed for o in result.outcomes] == [t.name not in degraded for t in targets]
    except TargetsFailedError as err:
        outcomes = dict(err.outcomes)
        assert count - len(chosen) < require
    else:
        assert count - len(chosen) >= require
    for target in targets:
        if target.name in degraded:
            assert outcomes[target.name] is degraded[target.name]
            assert list(target.list("")) == []
        else:
            assert outcomes[target.name] is None
            assert len(manifests(target, sealer())) == 1


def test_a_guard_refusing_a_target_keeps_its_manifest_out() -> None:
    """A target the guard refuses (or whose guard raises) fails with that error and holds no manifest."""
    ok, refused, broken = memory_target("ok"), memory_target("refused"), memory_target("broken")
    reason = StorageError("gone meanwhile", target=refused.name)

    def guard(target: Target) -> BaseException | None:
        if target is broken:
            raise StorageError("cannot check", target=target.name)
        return reason if target is refused else None

    writer = Writer([ok, refused, broken], sealer(), chunker=SMALL, require=1)
    result = writer.backup(
        [_stream("db.sql", _data(5000))], lineage="db", host="h", now=NOW, guard=guard
    )
    assert [o.committed for o in result.outcomes] == [True, False, False]
    assert result.outcomes[1].error is reason
    assert "cannot check" in str(result.outcomes[2].error)
    assert len(manifests(ok, sealer())) == 1
    assert manifests(refused, sealer()) == []
    assert manifests(broken, sealer()) == []
