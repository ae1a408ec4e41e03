"""Vault.copy: snapshots of one repository re-chunked and re-sealed into another, resumably."""

from __future__ import annotations

import io
import os
import random
import tracemalloc
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctfy_vault.crypto import RawKey
from ctfy_vault.exceptions import (
    AmbiguousSnapshotError,
    ChainOrderError,
    ConfigurationError,
    IntegrityError,
    ObjectExistsError,
    SnapshotNotFoundError,
    TargetsFailedError,
)
from ctfy_vault.repository import load_packed, pack_key
from ctfy_vault.retention import Policy
from ctfy_vault.storage import Target
from ctfy_vault.vault import ORIGIN_TAG, CopyReport, SnapshotInfo, Vault, origin_tag
from ctfy_vault.writer import (
    OBJECTS_PREFIX,
    ChunkerParams,
    EntrySource,
    StreamSource,
    Writer,
)
from tests.support.copies import Stored, catalog, chains, sealer_of, tree_state
from tests.support.vaults import corrupt_in_pack
from tests.support.writer_strategies import NOW, SMALL, Faults, faulty_target, memory_target

#: Most tests copy a source of seven backups and verify the result: the whole suite runs them,
#: the fast tier does not.
pytestmark = pytest.mark.slow

SOURCE_KEY = RawKey(b"s" * 32)
DEST_KEY = RawKey(b"d" * 32)
MINUTE = timedelta(minutes=1)
#: Chunk sizes other than the source's, so a copy really re-chunks.
OTHER = ChunkerParams(min_size=128, avg_size=512, max_size=2048)


def source_vault(count: int = 2) -> Vault:
    """A fresh source repository with small chunks."""
    targets = [memory_target(f"src{n}") for n in range(count)]
    return Vault.init(targets, key=SOURCE_KEY, now=NOW, chunker=SMALL)


def dest_vault(count: int = 2) -> Vault:
    """A fresh destination repository with other chunk sizes and its own keys."""
    targets = [memory_target(f"dst{n}") for n in range(count)]
    return Vault.init(targets, key=DEST_KEY, now=NOW, chunker=OTHER)


def stream(data: bytes, name: str = "db.sql", *, mode: int = 0o640) -> StreamSource:
    """A stream with a fixed mode and mtime."""
    return StreamSource(
        name=name, stream=io.BytesIO(data), mode=mode, mtime_ns=1_700_000_000 * 10**9
    )


def rich_tree(root: Path, seed: int) -> Path:
    """Files (empty, small, several chunks), nested and empty folders, links, odd modes."""
    tree = root / "tree"
    (tree / "a" / "b" / "c").mkdir(parents=True)
    (tree / "empty-dir").mkdir()
    (tree / "a" / "text.txt").write_bytes(b"alpha %d\n" % seed * 300)
    (tree / "a" / "b" / "blob.bin").write_bytes(
        random.Random(seed).randbytes(9000)  # noqa: S311 - sample data, not secrets
    )
    (tree / "a" / "b" / "c" / "empty.txt").write_bytes(b"")
    (tree / "same.txt").write_bytes(b"repeated content\n" * 100)
    (tree / "same-again.txt").write_bytes(b"repeated content\n" * 100)
    os.symlink("a/text.txt", tree / "link")
    os.symlink("does-not-exist", tree / "dangling")
    os.chmod(tree / "a" / "text.txt", 0o604)
    os.chmod(tree / "a" / "b", 0o700)
    for n, path in enumerate(sorted(tree.rglob("*"), reverse=True)):
        os.utime(
            path, ns=(10**18 + n * 10**9 + seed, 10**18 + n * 10**9 + seed), follow_symlinks=False
        )
    os.utime(tree, ns=(10**18, 10**18))
    return tree


def populated(tmp_path: Path) -> Vault:
    """A source with lineages files, db and etc, several snapshots each, one with a label."""
    vault = source_vault()
    moment = NOW
    for day in range(3):
        tree = rich_tree(tmp_path / f"day{day}", day)
        vault.backup(tree, lineage="files", host="web1", now=moment, tags=["daily"])
        moment += MINUTE
        dump = stream(b"INSERT %d;\n" % day * (200 + 50 * day))
        vault.backup(dump, lineage="db", host="db1", now=moment, labels={"app": "contractify"})
        moment += MINUTE
    vault.backup(
        [stream(b"", "etc/empty.conf"), stream(b"x = 1\n", "etc/app.conf", mode=0o600)],
        lineage="etc",
        host="web1",
        now=moment,
    )
    return vault


@pytest.fixture(scope="module")
def populated_source(tmp_path_factory: pytest.TempPathFactory) -> Stored:
    """The objects of a `populated` source, built once for the module."""
    return Stored.of(populated(tmp_path_factory.mktemp("populated")), SOURCE_KEY)


@pytest.fixture
def source(populated_source: Stored) -> Vault:
    """A private `populated` source on fresh memory targets: the test may change it."""
    return populated_source.reopened("src")


def origin_tags(source: Vault) -> frozenset[str]:
    """The origin tags a copy of every snapshot of ``source`` adds."""
    return frozenset(origin_tag(source.repo_id, s.snapshot_id) for s in source.snapshots())


def objects(vault: Vault) -> dict[str, set[str]]:
    """Every object key on each target."""
    return {target.name: set(target.list("")) for target in vault.targets}


def check_complete_copy(source: Vault, dest: Vault) -> None:
    """The destination holds each source snapshot once, identical, chained alike, verifying clean."""
    assert catalog(dest, drop_tags=origin_tags(source)) == catalog(source)
    assert chains(dest) == chains(source)
    ids = [s.snapshot_id for s in dest.snapshots()]
    assert len(ids) == len(set(ids))
    report = dest.verify(read_data=True)
    assert report.ok, report.problems


# -- a whole copy --------------------------------------------------------------------------------


def test_every_copied_snapshot_restores_byte_and_metadata_identical(
    source: Vault, tmp_path: Path
) -> None:
    """Each copied snapshot restores to the same bytes, modes, mtimes, links and empty folders."""
    dest = dest_vault()
    report = dest.copy(source, now=NOW + timedelta(days=1))
    assert [c.name for c in report.copied] == sorted(s.name for s in source.snapshots())
    assert report.skipped == ()
    for info in source.snapshots():
        mine, theirs = tmp_path / "out" / "src" / info.name, tmp_path / "out" / "dst" / info.name
        source.restore(info, mine)
        dest.restore(dest.find(info.snapshot_id), theirs)
        paths = [entry.path for entry in source.manifest(info).files]
        assert tree_state(theirs, paths) == tree_state(mine, paths)
        assert len(tree_state(mine, paths)) == len(paths)
    state = tree_state(tmp_path / "out" / "dst" / source.find("latest:files").name)
    assert state["tree/empty-dir"][0] == "dir"
    assert state["tree/dangling"] == ("link", 0, state["tree/dangling"][2], "does-not-exist")
    assert state["tree/a/b/c/empty.txt"][3] == b""
    assert state["tree/a/text.txt"][1] == 0o604


def test_names_ids_times_hosts_tags_labels_and_chains_are_kept(source: Vault) -> None:
    """The catalog and each lineage's chain order are the source's; the destination verifies."""
    dest = dest_vault()
    dest.copy(source, now=NOW)
    check_complete_copy(source, dest)
    assert {s.lineage for s in dest.snapshots()} == {"files", "db", "etc"}


def test_each_copy_records_where_it_came_from_in_a_tag(source: Vault) -> None:
    """A copied snapshot carries ``copied-from=<source repo id hex>/<snapshot id>``."""
    dest = dest_vault()
    dest.copy(source, now=NOW)
    for info in dest.snapshots():
        original = source.find(info.snapshot_id)
        assert set(info.tags) == {
            *original.tags,
            f"copied-from={source.repo_id.hex()}/{info.snapshot_id}",
        }
    assert origin_tag(source.repo_id, "abc").startswith(f"{ORIGIN_TAG}=")


def test_a_copy_of_a_copy_keeps_both_origins(source: Vault) -> None:
    """Copying A to B then B to C: C's snapshots name both A and B as origins."""
    first = source
    second = dest_vault()
    second.copy(first, now=NOW)
    third = Vault.init([memory_target("third")], key=SOURCE_KEY, now=NOW, chunker=SMALL)
    third.copy(second, now=NOW)
    for info in third.snapshots():
        assert origin_tag(first.repo_id, info.snapshot_id) in info.tags
        assert origin_tag(second.repo_id, info.snapshot_id) in info.tags
    # And back: the original holds every snapshot already (same lineage and id).
    back = first.copy(third, now=NOW)
    assert back.copied == ()
    assert len(back.skipped) == len(first.snapshots())


def test_destination_chunks_are_sealed_under_its_own_keys(source: Vault) -> None:
    """No source key opens a destination chunk, and the two repositories share no chunk id."""
    dest = dest_vault(1)
    dest.copy(source, now=NOW)
    theirs, mine = sealer_of(source, SOURCE_KEY), sealer_of(dest, DEST_KEY)
    target = dest.targets[0]
    held = load_packed(target, mine)
    dest_ids = set(held.chunk_ids())
    source_ids = set(load_packed(source.targets[0], theirs).chunk_ids())
    assert dest_ids
    assert not dest_ids & source_ids
    for chunk_id in dest_ids:
        where = held.locate(chunk_id)
        assert where is not None
        blob = target.read_range(pack_key(where.pack_id), where.offset, where.offset + where.length)
        mine.open_chunk(chunk_id, blob)
        with pytest.raises(IntegrityError):
            theirs.open_chunk(chunk_id, blob)
    # The destination's ids are its own keyed hashes of its own cuts.
    assert dest.config.chunker == OTHER != source.config.chunker


def test_contents_already_in_the_destination_are_neither_read_nor_stored(tmp_path: Path) -> None:
    """A file the destination already holds is taken from its chunks: nothing read, no chunk sent."""
    data = os.urandom(20_000)
    source = source_vault()
    source.backup(stream(data), lineage="db", host="h", now=NOW + MINUTE)
    dest = dest_vault()
    dest.backup(stream(data, "other.sql"), lineage="elsewhere", host="h", now=NOW)
    before = {t.name: set(t.list(OBJECTS_PREFIX)) for t in dest.targets}
    report = dest.copy(source, now=NOW)
    assert report.bytes_read == 0
    assert all(o.chunks_uploaded == 0 and o.chunks_present > 0 for o in report.outcomes)
    assert {t.name: set(t.list(OBJECTS_PREFIX)) for t in dest.targets} == before
    assert dest.open_file(dest.find("latest:db"), "db.sql").read() == data


def test_a_second_copy_copies_nothing_and_writes_nothing(source: Vault) -> None:
    """Run again, copy finds every snapshot present: nothing copied, read or written."""
    dest = dest_vault()
    first = dest.copy(source, now=NOW)
    stored = objects(dest)
    again = dest.copy(source, now=NOW + MINUTE)
    assert again.copied == ()
    assert [s.name for s in again.skipped] == [c.name for c in first.copied]
    assert (again.bytes_read, again.bytes_written) == (0, 0)
    assert again.ok
    assert objects(dest) == stored


def test_the_report_sums_each_targets_share(source: Vault) -> None:
    """The report's per-target outcomes add up the copied snapshots' outcomes; bytes match."""
    dest = dest_vault()
    report = dest.copy(source, now=NOW)
    assert isinstance(report, CopyReport)
    assert report.source_repo_id == source.repo_id
    assert report.time == NOW
    assert report.ok
    for outcome in report.outcomes:
        mine = [o for info in report.copied for o in info.outcomes if o.target == outcome.target]
        assert outcome.chunks_uploaded == sum(o.chunks_uploaded for o in mine)
        assert outcome.bytes_uploaded == sum(o.bytes_uploaded for o in mine)
    assert report.bytes_written == sum(o.bytes_uploaded for o in report.outcomes)
    assert report.bytes_read == sum(info.bytes_read for info in report.copied) > 0


def test_a_source_with_prune_records_copies_what_is_kept(tmp_path: Path) -> None:
    """Prune records are not copied: the kept snapshots form a clean chain in the destination."""
    source = source_vault()
    for n in range(4):
        source.backup(stream(b"dump %d" % n), lineage="db", host="h", now=NOW + n * MINUTE)
    source.prune(Policy(last=2), now=NOW + 10 * MINUTE, grace=timedelta(0))
    dest = dest_vault()
    report = dest.copy(source, now=NOW + 11 * MINUTE)
    assert len(report.copied) == 2
    assert chains(dest) == {"db": sorted(s.name for s in source.snapshots())}
    assert dest.verify(read_data=True).ok


def test_a_file_larger_than_the_pipeline_is_streamed_not_held(tmp_path: Path) -> None:
    """Copying a 40 MiB file between folder targets holds a few chunks at once, never the file."""
    size = 40 * 2**20
    big = tmp_path / "big.bin"
    with big.open("wb") as out:
        for _ in range(size // 2**20):
            out.write(os.urandom(2**20))
    chunker = ChunkerParams(min_size=64 * 1024, avg_size=256 * 1024, max_size=1024 * 1024)
    # 1 MiB packs: the writer also holds the pack being built and those queued for writing.
    source = Vault.init(
        [Target.from_url(str(tmp_path / "src"))],
        key=SOURCE_KEY,
        now=NOW,
        chunker=chunker,
        pack_size=2**20,
    )
    source.backup(big, lineage="big", host="h", now=NOW)
    dest = Vault.init(
        [Target.from_url(str(tmp_path / "dst"))],
        key=DEST_KEY,
        now=NOW,
        chunker=chunker,
        pack_size=2**20,
    )
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        report = dest.copy(source, now=NOW)
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    assert report.bytes_read == size
    # The writer holds about depth (4) x 2 x max_size (1 MiB) at worst, plus the chunker's buffer.
    assert peak < 14 * 2**20, f"peak {peak} bytes for a {size}-byte file"
    assert dest.verify(read_data=True).ok


# -- choosing ------------------------------------------------------------------------------------


def test_references_and_lineages_choose_what_is_copied(source: Vault) -> None:
    """``snapshots`` takes refs and SnapshotInfo values; ``lineages`` narrows where refs look."""
    dest = dest_vault()
    oldest_db = min(source.snapshots("db"), key=lambda s: s.created)
    report = dest.copy(source, snapshots=[oldest_db, "latest:etc"], now=NOW)
    assert [c.snapshot_id for c in report.copied] == [
        oldest_db.snapshot_id,
        source.find("latest:etc").snapshot_id,
    ]
    report = dest.copy(source, snapshots="latest", lineages=["files"], now=NOW)
    assert [c.snapshot_id for c in report.copied] == [source.find("latest:files").snapshot_id]
    assert {s.lineage for s in dest.snapshots()} == {"db", "etc", "files"}
    report = dest.copy(source, lineages="db", now=NOW)
    assert len(report.copied) == 2
    assert [s.snapshot_id for s in report.skipped] == [oldest_db.snapshot_id]


def test_copying_a_subset_then_the_rest_equals_copying_everything(source: Vault) -> None:
    """The oldest snapshots of each lineage first, then all: the same catalog as one copy."""
    once, twice = dest_vault(), dest_vault()
    once.copy(source, now=NOW)
    first = [min(source.snapshots(name), key=lambda s: s.created) for name in ("files", "db")]
    twice.copy(source, snapshots=first, now=NOW)
    rest = twice.copy(source, now=NOW)
    assert {s.snapshot_id for s in rest.skipped} == {s.snapshot_id for s in first}
    assert catalog(twice) == catalog(once)
    assert chains(twice) == chains(once)


# -- interruptions -------------------------------------------------------------------------------


#: Where an interruption lands, as a share of the whole copy's writes or progress reports.
SHARES = [0.0, 0.02, 0.1, 0.25, 0.5, 0.75, 0.95]


def _full_copy_counts(source: Vault) -> tuple[int, int]:
    """The writes and the bytes reported as progress in one uninterrupted copy of ``source``.

    The bytes, not the number of reports: how a stream is cut into reads (and so how many
    reports there are) may vary from run to run, the bytes read do not.
    """
    faults = Faults()
    target = faulty_target(faults, "count")
    dest = Vault.init([target], key=DEST_KEY, now=NOW, chunker=OTHER)
    before = faults.writes
    reports = Stop(0)
    dest.copy(source, now=NOW, progress=reports)
    return faults.writes - before, reports.done


@pytest.fixture(scope="module")
def full_copy_counts(populated_source: Stored) -> tuple[int, int]:
    """`_full_copy_counts` of the module's source, counted once."""
    return _full_copy_counts(populated_source.reopened("count"))


@pytest.mark.parametrize("share", SHARES)
def test_a_copy_cut_by_a_dying_target_resumes_without_duplicates(
    source: Vault, share: float, full_copy_counts: tuple[int, int]
) -> None:
    """The destination dies part way; run again once it is back, the copy completes, once."""
    writes = int(full_copy_counts[0] * share)
    faults = Faults()
    target = faulty_target(faults, "dst")
    dest = Vault.init([target], key=DEST_KEY, now=NOW, chunker=OTHER)
    faults.writes_before_death = faults.writes + writes
    with pytest.raises(TargetsFailedError):
        dest.copy(source, now=NOW)
    faults.down = False
    faults.writes_before_death = None
    done_before = {s.snapshot_id for s in dest.snapshots()}
    report = dest.copy(source, now=NOW)
    assert {s.snapshot_id for s in report.skipped} == done_before
    assert {c.snapshot_id for c in report.copied}.isdisjoint(done_before)
    check_complete_copy(source, dest)


class Stop:
    """A progress callback that presses Ctrl-C once ``at`` bytes have been reported (0: never)."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.done = 0

    def __call__(self, read: int, _files: int) -> None:
        before = self.done
        self.done += read
        if before < self.at <= self.done:
            raise KeyboardInterrupt


@pytest.mark.parametrize("share", SHARES[1:])
def test_a_copy_interrupted_mid_snapshot_resumes_without_duplicates(
    source: Vault, share: float, full_copy_counts: tuple[int, int]
) -> None:
    """Ctrl-C in the middle of a snapshot: the snapshots before it stay, the rerun adds the rest."""
    at = max(1, int(full_copy_counts[1] * share))
    assert at < full_copy_counts[1]  # strictly inside the copy
    dest = dest_vault()
    with pytest.raises(KeyboardInterrupt):
        dest.copy(source, now=NOW, progress=Stop(at))
    before = {s.snapshot_id for s in dest.snapshots()}
    assert len(before) < len(source.snapshots())
    report = dest.copy(source, now=NOW)
    assert {s.snapshot_id for s in report.skipped} == before
    check_complete_copy(source, dest)


# -- refusals ------------------------------------------------------------------------------------


def test_copying_a_repository_into_itself_is_refused(source: Vault) -> None:
    """The same repository (the same object, or opened again) is a ConfigurationError."""
    again = Vault.open(source.targets, key=SOURCE_KEY)
    for other in (source, again):
        with pytest.raises(ConfigurationError, match="same repository") as caught:
            source.copy(other, now=NOW)
        assert type(caught.value) is ConfigurationError
    assert len(source.snapshots()) == 7


def test_a_reference_matching_nothing_is_refused_before_anything_is_copied(source: Vault) -> None:
    """An unknown ref or lineage is SnapshotNotFoundError; a malformed one ConfigurationError."""
    dest = dest_vault()
    stored = objects(dest)
    with pytest.raises(SnapshotNotFoundError) as caught:
        dest.copy(source, snapshots=["latest:db", "feedbeef"], now=NOW)
    assert type(caught.value) is SnapshotNotFoundError
    assert caught.value.key == "feedbeef"
    with pytest.raises(SnapshotNotFoundError) as caught:
        dest.copy(source, lineages=["db", "nope"], now=NOW)
    assert type(caught.value) is SnapshotNotFoundError
    assert caught.value.key == "latest:nope"
    with pytest.raises(SnapshotNotFoundError):  # a ref of another lineage than those given
        dest.copy(source, snapshots="latest:db", lineages="files", now=NOW)
    for bad in ("not a ref", "latest:"):
        with pytest.raises(ConfigurationError) as refused:
            dest.copy(source, snapshots=bad, now=NOW)
        assert type(refused.value) is ConfigurationError
    with pytest.raises(ConfigurationError):
        dest.copy(source, lineages=["bad name"], now=NOW)
    assert objects(dest) == stored


def test_an_ambiguous_prefix_is_refused(tmp_path: Path) -> None:
    """A prefix of several snapshot ids is an AmbiguousSnapshotError."""
    source = source_vault()
    for n in range(17):  # 17 hex ids: two share a first digit
        source.backup(stream(b"%d" % n), lineage="db", host="h", now=NOW + n * MINUTE)
    ids = [s.snapshot_id for s in source.snapshots()]
    digit = next(d for d in "0123456789abcdef" if sum(i.startswith(d) for i in ids) >= 2)
    with pytest.raises(AmbiguousSnapshotError):
        dest_vault().copy(source, snapshots=digit, now=NOW)


def test_a_snapshot_older_than_the_destination_head_is_refused_naming_the_lineage(
    source: Vault,
) -> None:
    """Copying before a newer head would break the chain's time order: ChainOrderError, nothing copied."""
    dest = dest_vault()
    dest.backup(stream(b"newer"), lineage="db", host="h", now=NOW + timedelta(days=1))
    stored = objects(dest)
    with pytest.raises(ChainOrderError) as caught:
        dest.copy(source, now=NOW + timedelta(days=2))
    err = caught.value
    assert type(err) is ChainOrderError
    assert isinstance(err, ValueError)
    assert err.lineage == "db"
    assert err.head == dest.find("latest:db").name
    assert err.snapshot == min(source.snapshots("db"), key=lambda s: s.created).name
    assert "lineage db" in str(err)
    assert objects(dest) == stored  # not even the other lineages were copied
    # The lineages whose heads are older copy fine on their own.
    report = dest.copy(source, lineages=["files", "etc"], now=NOW)
    assert len(report.copied) == 4


def test_copying_a_newest_snapshot_first_then_older_ones_is_refused(source: Vault) -> None:
    """Copy latest:db, then everything: the older db snapshots would go after it, refused."""
    dest = dest_vault()
    dest.copy(source, snapshots="latest:db", now=NOW)
    with pytest.raises(ChainOrderError) as caught:
        dest.copy(source, now=NOW)
    assert caught.value.lineage == "db"
    assert len(dest.snapshots()) == 1


def test_an_id_held_by_another_lineage_in_the_destination_is_refused(tmp_path: Path) -> None:
    """The destination has the id in another lineage: ObjectExistsError, nothing copied."""
    source = source_vault()
    source.backup(stream(b"a"), lineage="db", host="h", now=NOW + MINUTE)
    taken = source.find("latest:db").snapshot_id
    dest = dest_vault()
    Writer(dest.targets, sealer_of(dest, DEST_KEY)).backup(
        [stream(b"b")], lineage="other", host="h", now=NOW, snapshot_id=taken
    )
    with pytest.raises(ObjectExistsError) as caught:
        dest.copy(source, now=NOW)
    assert type(caught.value) is ObjectExistsError
    assert caught.value.key == taken
    assert [s.lineage for s in dest.snapshots()] == ["other"]


# -- properties ----------------------------------------------------------------------------------

LINEAGES = ("a", "b", "c")
#: One snapshot: its lineage and its files (name -> content).
Spec = tuple[str, dict[str, bytes]]


def specs() -> st.SearchStrategy[list[Spec]]:
    """Small repositories: up to six snapshots over three lineages, each with a few small files."""
    content = st.one_of(st.just(b""), st.binary(max_size=600), st.just(b"shared " * 80))
    files = st.dictionaries(st.sampled_from(["x.sql", "y/z.txt", "w.bin"]), content, max_size=3)
    return st.lists(st.tuples(st.sampled_from(LINEAGES), files), min_size=1, max_size=6)


def build(spec: list[Spec]) -> Vault:
    """A source repository holding ``spec``'s snapshots, one minute apart."""
    vault = source_vault(1)
    for n, (lineage, files) in enumerate(spec):
        sources = [stream(data, name) for name, data in sorted(files.items())]
        vault.backup(sources, lineage=lineage, host=f"h{n % 2}", now=NOW + n * MINUTE)
    return vault


def prefix_closed(chosen: set[str], listed: list[SnapshotInfo]) -> bool:
    """Whether, in every lineage, no unchosen snapshot is older than a chosen one."""
    for lineage in LINEAGES:
        mine = sorted((s for s in listed if s.lineage == lineage), key=lambda s: s.created)
        flags = [s.snapshot_id in chosen for s in mine]
        if flags != sorted(flags, reverse=True):
            return False
    return True


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs(), data=st.data())
def test_copy_all_is_idempotent_and_subsets_compose(spec: list[Spec], data: st.DataObject) -> None:
    """Copy all twice copies nothing the second time; a subset then the rest equals one copy.

    Unless the subset leaves out older snapshots of a lineage: then the rest is refused
    (ChainOrderError) and nothing changes.
    """
    source = build(spec)
    listed = source.snapshots()
    whole = dest_vault(1)
    assert len(whole.copy(source, now=NOW).copied) == len(listed)
    assert whole.copy(source, now=NOW).copied == ()
    check_complete_copy(source, whole)
    chosen = data.draw(st.sets(st.sampled_from([s.snapshot_id for s in listed])), label="subset")
    parts = dest_vault(1)
    if chosen:
        parts.copy(source, snapshots=sorted(chosen), now=NOW)
    if prefix_closed(chosen, listed):
        rest = parts.copy(source, now=NOW)
        assert {s.snapshot_id for s in rest.skipped} == chosen
        assert catalog(parts) == catalog(whole)
        assert chains(parts) == chains(whole)
    else:
        stored = objects(parts)
        with pytest.raises(ChainOrderError):
            parts.copy(source, now=NOW)
        assert objects(parts) == stored


# -- damaged sources and the writer's replayed entries -------------------------------------------


def first_chunk(vault: Vault, lineage: str) -> bytes:
    """The id of the first chunk of the newest snapshot of ``lineage``."""
    manifest = vault.manifest(vault.find(f"latest:{lineage}"))
    entry = next(e for e in manifest.files if e.chunks)
    return entry.chunks[0]


def test_a_chunk_damaged_on_one_source_target_is_read_from_the_next(source: Vault) -> None:
    """The source's reads fall back target by target: the copy is complete and verifies."""
    corrupt_in_pack(source, source.targets[0], first_chunk(source, "db"), SOURCE_KEY)
    dest = dest_vault()
    dest.copy(source, now=NOW)
    check_complete_copy(source, dest)


def test_a_chunk_damaged_everywhere_in_the_source_commits_nothing_of_that_snapshot(
    source: Vault,
) -> None:
    """A snapshot the source cannot give intact stops the copy there; earlier ones are kept."""
    chunk = first_chunk(source, "etc")  # the newest snapshot of all
    for target in source.targets:
        corrupt_in_pack(source, target, chunk, SOURCE_KEY)
    dest = dest_vault()
    with pytest.raises(TargetsFailedError):
        dest.copy(source, now=NOW)
    assert {s.snapshot_id for s in dest.snapshots()} == {
        s.snapshot_id for s in source.snapshots() if s.lineage != "etc"
    }
    assert dest.verify().ok


def test_a_replayed_file_whose_content_differs_from_its_entry_commits_nothing() -> None:
    """An EntrySource whose content does not match its size and SHA-256: IntegrityError."""
    source = source_vault(1)
    source.backup(stream(b"the original"), lineage="db", host="h", now=NOW)
    entry = source.manifest(source.find("latest:db")).files[0]
    dest = dest_vault(1)
    writer = Writer(dest.targets, sealer_of(dest, DEST_KEY), chunker=OTHER)
    forged = EntrySource(entry=entry, content=lambda: io.BytesIO(b"something else"))
    with pytest.raises(IntegrityError, match="does not match its entry"):
        writer.backup([forged], lineage="db", host="h", now=NOW)
    assert dest.snapshots() == []
    with pytest.raises(ConfigurationError):
        EntrySource(entry=entry)  # a file needs its content (or known chunks)
