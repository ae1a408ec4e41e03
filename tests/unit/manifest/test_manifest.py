"""The manifest model, its canonical encoding, sealing, bad input, and ``verify_chain``."""

from __future__ import annotations

import ast
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

from ctfy_vault import manifest as manifest_package
from ctfy_vault.crypto import Kind, MasterKeys, Sealer
from ctfy_vault.exceptions import ConfigurationError, FormatError, IntegrityError
from ctfy_vault.manifest import (
    Entry,
    FileEntry,
    FileType,
    Forgotten,
    Manifest,
    PruneRecord,
    _codec,
    check_known_heads,
    decode,
    encode,
    entry_hash,
    open_entry,
    seal_entry,
    verify_chain,
)
from tests.support.crypto_strategies import FIXED_KEYS, FIXED_REPO_ID
from tests.support.paths import DATA

T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
SEALER = Sealer(repo_id=FIXED_REPO_ID, keys=FIXED_KEYS)
DIGEST = hashlib.sha256(b"file").digest()


def file(path: str, size: int = 10, chunks: int = 1) -> FileEntry:
    """A regular file entry with ``chunks`` made-up chunk ids."""
    ids = tuple(
        hashlib.sha256(f"{path}{i}".encode(errors="surrogatepass")).digest() for i in range(chunks)
    )
    return FileEntry(
        path=path,
        type=FileType.FILE,
        mode=0o644,
        mtime_ns=1_700_000_000_000_000_000,
        size=size,
        chunks=ids,
        sha256=DIGEST,
    )


def snapshot(
    snapshot_id: str, *, previous: bytes | None = None, at: int = 0, lineage: str = "db"
) -> Manifest:
    """A small manifest ``at`` days after T0."""
    return Manifest(
        snapshot_id=snapshot_id,
        lineage=lineage,
        created=T0 + timedelta(days=at),
        host="db-1",
        tags={"daily"},
        labels={"tenant": "acme"},
        sources=("/var/backups/db.sql",),
        files=(file("var/backups/db.sql", size=100, chunks=3), file("etc/db.conf")),
        previous=previous,
    )


def chain(count: int, lineage: str = "db") -> list[Manifest]:
    """``count`` linked snapshots of one lineage, a day apart."""
    entries: list[Manifest] = []
    previous = None
    for day in range(count):
        entry = snapshot(f"s{day}", previous=previous, at=day, lineage=lineage)
        entries.append(entry)
        previous = entry_hash(entry)
    return entries


# -- model -------------------------------------------------------------------------------------


def test_files_are_sorted_and_totals_derived() -> None:
    """Files are kept in path order and totals count entries, bytes and chunk references."""
    manifest = snapshot("a")
    assert [f.path for f in manifest.files] == ["etc/db.conf", "var/backups/db.sql"]
    assert (manifest.totals.files, manifest.totals.size, manifest.totals.chunks) == (2, 110, 4)


def test_created_is_normalised_to_utc() -> None:
    """An aware time in another zone is stored in UTC; a naive time is refused."""
    cet = timezone(timedelta(hours=1))
    manifest = Manifest(
        snapshot_id="a", lineage="db", created=datetime(2026, 1, 1, 4, tzinfo=cet), host="h"
    )
    assert manifest.created == datetime(2026, 1, 1, 3, tzinfo=UTC)
    assert manifest.created.tzinfo is UTC
    with pytest.raises(ConfigurationError, match="aware"):
        Manifest(snapshot_id="a", lineage="db", created=datetime(2026, 1, 1), host="h")


def test_name_sorts_by_time() -> None:
    """Entry names start with the UTC creation time, so they sort by time."""
    assert snapshot("abc").name == "20261101T030000.000000Z-abc"
    names = [entry.name for entry in chain(3)]
    assert names == sorted(names)


@pytest.mark.parametrize(
    "path", ["", "/abs", "a//b", "a/./b", "../x", "a/..", "trail/", "nul\x00", "\ud800"]
)
def test_bad_paths_refused(path: str) -> None:
    """Absolute, traversing, empty-segment, NUL and non-Unicode paths are refused."""
    with pytest.raises(ConfigurationError):
        file(path)


def test_duplicate_paths_refused() -> None:
    """Two entries with one path are ambiguous and refused."""
    with pytest.raises(ConfigurationError, match="unique"):
        Manifest(
            snapshot_id="a",
            lineage="db",
            created=T0,
            host="h",
            files=[file("b"), file("a"), file("b")],
        )


@pytest.mark.parametrize(
    "changes",
    [
        {"type": FileType.DIR},  # a directory with size and chunks
        {"sha256": None},
        {"sha256": b"short"},
        {"chunks": (b"x",)},
        {"mode": 0o10000},
        {"size": -1},
        {"mtime_ns": 1.5},
        {"link": "target"},
        {"mode": True},
    ],
)
def test_bad_file_entries_refused(changes: dict[str, object]) -> None:
    """Entries whose fields contradict their type or range are refused."""
    fields: dict[str, object] = {
        "path": "a",
        "type": FileType.FILE,
        "mode": 0o644,
        "mtime_ns": 0,
        "size": 1,
        "chunks": (DIGEST,),
        "sha256": DIGEST,
    }
    with pytest.raises(ConfigurationError):
        FileEntry(**{**fields, **changes})  # type: ignore[arg-type]


def test_symlink_needs_a_target() -> None:
    """A symlink carries its target; other types may not."""
    link = FileEntry(path="l", type=FileType.SYMLINK, mode=0o777, mtime_ns=0, link="../x")
    assert link.link == "../x"
    with pytest.raises(ConfigurationError):
        FileEntry(path="l", type=FileType.SYMLINK, mode=0o777, mtime_ns=0)
    with pytest.raises(ConfigurationError):
        FileEntry(path="d", type=FileType.DIR, mode=0o755, mtime_ns=0, link="x")


@pytest.mark.parametrize("ident", ["", "-x", "a b", "a/b", "x" * 65, "é"])
def test_bad_ids_refused(ident: str) -> None:
    """Snapshot ids and lineages are 1-64 characters of A-Z, a-z, 0-9, '-' and '_'."""
    with pytest.raises(ConfigurationError):
        Manifest(snapshot_id=ident, lineage="db", created=T0, host="h")
    with pytest.raises(ConfigurationError):
        Manifest(snapshot_id="a", lineage=ident, created=T0, host="h")


def test_prune_record_forgotten_unique_and_sorted() -> None:
    """A prune record lists each forgotten snapshot once, sorted by id."""
    record = PruneRecord(
        record_id="p",
        lineage="db",
        created=T0,
        host="h",
        forgotten=[Forgotten("b", DIGEST), Forgotten("a", DIGEST)],
    )
    assert [f.snapshot_id for f in record.forgotten] == ["a", "b"]
    with pytest.raises(ConfigurationError):
        PruneRecord(
            record_id="p",
            lineage="db",
            created=T0,
            host="h",
            forgotten=[Forgotten("a", DIGEST), Forgotten("a", bytes(32))],
        )


# -- canonical encoding ------------------------------------------------------------------------


def test_encoding_is_canonical_json_lines() -> None:
    """The header and file lines are compact JSON with sorted keys, one per line."""
    lines = list(encode(snapshot("a")))
    assert len(lines) == 3
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)
    header = json.loads(lines[0])
    assert list(header) == sorted(header)
    assert header["kind"] == "snapshot"
    assert header["format"] == 1
    assert header["created"] == "2026-11-01T03:00:00.000000Z"
    assert lines[0] == json.dumps(header, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def test_equal_manifests_encode_identically() -> None:
    """Equal manifests built in different orders give byte-identical encodings and hashes."""
    one = snapshot("a")
    two = Manifest(
        snapshot_id="a",
        lineage="db",
        created=T0.astimezone(timezone(timedelta(hours=-5))),
        host="db-1",
        tags=["daily", "daily"],
        labels=[("tenant", "acme")],
        sources=["/var/backups/db.sql"],
        files=[file("etc/db.conf"), file("var/backups/db.sql", size=100, chunks=3)],
    )
    assert one == two
    assert b"".join(encode(one)) == b"".join(encode(two))
    assert entry_hash(one) == entry_hash(two)


def test_unicode_is_written_as_utf8() -> None:
    """Non-ASCII text is stored as UTF-8, not escaped."""
    manifest = Manifest(
        snapshot_id="a", lineage="db", created=T0, host="hôte", files=[file("données/été.sql")]
    )
    data = b"".join(encode(manifest))
    assert "données/été.sql".encode() in data
    assert decode([data])[0] == manifest


def test_decode_any_piece_boundaries() -> None:
    """Decoding does not depend on how the bytes are split."""
    data = b"".join(encode(snapshot("a")))
    for size in (1, 7, 100, len(data)):
        pieces = [data[i : i + size] for i in range(0, len(data), size)]
        entry, digest = decode(pieces)
        assert entry == snapshot("a")
        assert digest == hashlib.sha256(data).digest()


# -- sealing -----------------------------------------------------------------------------------


def test_seal_open_round_trip() -> None:
    """A sealed manifest opens to the same value, with its hash and name."""
    manifest = snapshot("a", previous=DIGEST)
    sealed = seal_entry(SEALER, manifest)
    assert sealed.name == manifest.name
    assert sealed.hash == entry_hash(manifest)
    opened = open_entry(SEALER, sealed.name, sealed.blob)
    assert opened.entry == manifest
    assert opened.hash == sealed.hash
    assert sealed.blob[1] == Kind.MANIFEST


def test_prune_record_round_trip() -> None:
    """A prune record seals as its own kind and opens back."""
    record = PruneRecord(
        record_id="p1",
        lineage="db",
        created=T0,
        host="h",
        forgotten=[Forgotten("s1", DIGEST)],
        previous=DIGEST,
    )
    sealed = seal_entry(SEALER, record)
    assert sealed.blob[1] == Kind.PRUNE_RECORD
    assert open_entry(SEALER, sealed.name, sealed.blob).entry == record


def test_sealed_manifest_bound_to_name() -> None:
    """A sealed manifest read from another name fails with the integrity error."""
    one, two = seal_entry(SEALER, snapshot("a")), seal_entry(SEALER, snapshot("b"))
    with pytest.raises(IntegrityError):
        open_entry(SEALER, two.name, one.blob)


def test_manifest_is_compressed() -> None:
    """A manifest of many similar files seals far smaller than its encoding."""
    files = [file(f"data/part-{i:06d}.csv", chunks=1) for i in range(2000)]
    manifest = Manifest(snapshot_id="a", lineage="db", created=T0, host="h", files=files)
    plain = sum(len(line) for line in encode(manifest))
    assert len(seal_entry(SEALER, manifest).blob) < plain / 2


# -- garbage inside a valid seal (a buggy writer) ----------------------------------------------


def _sealed_lines(name: str, *lines: bytes, kind: Kind = Kind.MANIFEST) -> bytearray:
    return SEALER.seal_stream(kind, name, iter(lines))


NAME = snapshot("a").name
GOOD = list(encode(snapshot("a")))


def _header(**changes: object) -> bytes:
    header = {**json.loads(GOOD[0]), **changes}
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode() + b"\n"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ((b"",), "empty"),
        ((b"not json\n",), "not JSON"),
        ((b'{"format":1,"kind":"prune\xff"}\n',), "line 1 is not JSON"),
        ((b"[1,2]\n",), "JSON object"),
        ((b'{"format":2}\n',), "format 2"),
        ((b'{"format":1,"kind":"mystery"}\n',), "kind"),
        ((_header(extra=1),), "unexpected"),
        ((_header(files=1),), "totals"),
        ((_header(files=10**15), *GOOD[1:]), "totals"),
        ((_header(files=0), *GOOD[1:]), "more file lines"),
        ((_header(size=-5), *GOOD[1:]), "totals"),
        ((_header(created="yesterday"), *GOOD[1:]), "invalid values"),
        ((_header(previous="zz" * 32), *GOOD[1:]), "invalid values"),
        ((_header(id="../etc"), *GOOD[1:]), "invalid values"),
        ((_header(tags="daily"), *GOOD[1:]), "invalid values"),
        ((_header(labels=[1]), *GOOD[1:]), "invalid values"),
        ((GOOD[0], b"{}\n", GOOD[2]), "line 2 has unexpected"),
        ((GOOD[0], GOOD[1].replace(b'"file"', b'"fifo"'), GOOD[2]), "line 2 holds an invalid"),
        ((GOOD[0], GOOD[1].replace(b'"mode":420', b'"mode":"420"'), GOOD[2]), "line 2"),
        ((GOOD[0], GOOD[1].replace(b'"mode":420', b'"mode":true'), GOOD[2]), "line 2"),
        ((GOOD[0], GOOD[1].replace(b'"size":10', b'"size":1' + b"0" * 5000), GOOD[2]), "line 2"),
        ((GOOD[0], GOOD[1], GOOD[2].rstrip(b"\n")), "newline"),
        ((GOOD[0], b"[" * 100_000 + b"\n", GOOD[2]), "line 2 is not JSON"),
        ((GOOD[0], b"\xff\xfe\n", GOOD[2]), "line 2 is not JSON"),
        ((json.dumps(json.loads(GOOD[0])).encode() + b"\n", *GOOD[1:]), "line 1 is not in canon"),
        ((_header(created="2026-11-1T3:00:00.0Z"), *GOOD[1:]), "line 1 is not in canonical"),
        ((_header(tags=["z", "daily"]), *GOOD[1:]), "line 1 is not in canonical"),
        ((GOOD[0], GOOD[1].replace(b'{"chunks"', b'{ "chunks"'), GOOD[2]), "line 2 is not in"),
        ((GOOD[0], GOOD[1].replace(b'"mode":420', b'"mode":420.0'), GOOD[2]), "line 2"),
    ],
)
def test_garbage_in_valid_seal_is_a_format_error(lines: tuple[bytes, ...], message: str) -> None:
    """Malformed content inside an authentic seal gives a clear format error."""
    blob = _sealed_lines(NAME, *lines)
    with pytest.raises(FormatError, match=message):
        open_entry(SEALER, NAME, blob)


def test_prune_record_with_extra_lines_is_a_format_error() -> None:
    """A prune record is exactly one line."""
    record = PruneRecord(record_id="p", lineage="db", created=T0, host="h")
    lines = [*encode(record), GOOD[1]]
    blob = _sealed_lines(record.name, *lines, kind=Kind.PRUNE_RECORD)
    with pytest.raises(FormatError, match="one line"):
        open_entry(SEALER, record.name, blob)


def test_content_must_match_kind_and_name() -> None:
    """A valid seal whose content names another entry, or is of the other kind, is refused."""
    other = snapshot("b")
    blob = _sealed_lines(NAME, *encode(other))
    with pytest.raises(FormatError, match="kind or name"):
        open_entry(SEALER, NAME, blob)
    blob = _sealed_lines(NAME, *GOOD, kind=Kind.PRUNE_RECORD)
    with pytest.raises(FormatError, match="kind or name"):
        open_entry(SEALER, NAME, blob)


def test_overlong_line_refused_without_reading_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """A line longer than the limit is refused as soon as the limit is passed."""
    monkeypatch.setattr(_codec, "MAX_LINE_BYTES", 1000)
    blob = _sealed_lines(NAME, GOOD[0], b'{"path":"' + b"a" * 5000 + b'"}\n')
    with pytest.raises(FormatError, match="longer than"):
        open_entry(SEALER, NAME, blob)


# -- the chain ---------------------------------------------------------------------------------


def test_linear_chain_is_ok() -> None:
    """An unbroken chain has no gap, fork or rollback, and one head."""
    entries = chain(4)
    report = verify_chain(entries)
    assert report.ok
    assert report.heads == (("db", entry_hash(entries[-1])),)


def test_opened_entries_use_their_stored_hashes() -> None:
    """Opened entries are checked with the hashes computed while opening."""
    opened = [open_entry(SEALER, s.name, s.blob) for s in (seal_entry(SEALER, e) for e in chain(3))]
    assert verify_chain(opened).ok


def test_deleted_snapshot_is_a_gap() -> None:
    """A snapshot deleted from the middle leaves a gap naming its hash."""
    entries = chain(4)
    report = verify_chain([entries[0], entries[2], entries[3]])
    assert not report.ok
    assert [(g.missing, g.referenced_by) for g in report.gaps] == [
        (entry_hash(entries[1]), entries[2].name)
    ]


def test_prune_record_explains_the_gap() -> None:
    """A prune record naming the removed snapshot makes the chain whole again."""
    entries = chain(4)
    record = PruneRecord(
        record_id="p1",
        lineage="db",
        created=T0 + timedelta(days=5),
        host="h",
        forgotten=[Forgotten(entries[1].snapshot_id, entry_hash(entries[1]))],
        previous=entry_hash(entries[3]),
    )
    after = snapshot("s5", previous=entry_hash(record), at=6)
    assert verify_chain([entries[0], entries[2], entries[3], record, after]).ok


def test_deleted_prune_record_is_a_gap() -> None:
    """Removing the prune record itself is detected (its successor names it)."""
    entries = chain(3)
    record = PruneRecord(
        record_id="p1",
        lineage="db",
        created=T0 + timedelta(days=5),
        host="h",
        forgotten=[Forgotten("s0", entry_hash(entries[0]))],
        previous=entry_hash(entries[2]),
    )
    after = snapshot("s9", previous=entry_hash(record), at=9)
    report = verify_chain([entries[1], entries[2], after])
    assert [g.missing for g in report.gaps] == [entry_hash(entries[0]), entry_hash(record)]


def test_prune_record_of_another_lineage_explains_nothing() -> None:
    """Only a prune record of the same lineage explains a gap."""
    entries = chain(3)
    record = PruneRecord(
        record_id="p1",
        lineage="files",
        created=T0,
        host="h",
        forgotten=[Forgotten("s1", entry_hash(entries[1]))],
    )
    assert len(verify_chain([entries[0], entries[2], record]).gaps) == 1


def test_fork_is_reported() -> None:
    """Two entries naming the same predecessor are a fork."""
    entries = chain(2)
    rival = snapshot("rival", previous=entry_hash(entries[0]), at=1)
    report = verify_chain([*entries, rival])
    assert [(f.previous, f.entries) for f in report.forks] == [
        (entry_hash(entries[0]), tuple(sorted([entries[1].name, rival.name])))
    ]
    assert len(report.heads) == 2


def test_two_first_entries_are_a_fork() -> None:
    """Two entries without a predecessor in one lineage are a fork at the root."""
    report = verify_chain([snapshot("a"), snapshot("b", at=1)])
    assert [f.previous for f in report.forks] == [None]


def test_known_head_missing_is_a_rollback() -> None:
    """Deleting the newest snapshot is caught when the previous head is known."""
    entries = chain(3)
    head = entry_hash(entries[-1])
    assert verify_chain(entries[:2]).ok  # invisible from the chain alone
    report = verify_chain(entries[:2], known_heads={"db": head})
    assert [(r.expected, r.reason) for r in report.rollbacks] == [(head, "a known head is missing")]
    assert verify_chain(entries, known_heads={"db": head}).ok


def test_whole_lineage_deleted_is_a_rollback() -> None:
    """A known lineage with no entries left is a rollback."""
    report = verify_chain([], known_heads={"db": DIGEST})
    assert [r.lineage for r in report.rollbacks] == ["db"]


def test_vanished_lineage_is_named_as_such() -> None:
    """A known lineage with no entry left says it vanished, beside lineages that are fine."""
    files = chain(2, "files")
    report = verify_chain(files, known_heads={"db": DIGEST, "files": entry_hash(files[-1])})
    assert [(r.lineage, r.reason) for r in report.rollbacks] == [
        ("db", "the lineage has vanished: no entry of it is left")
    ]


def _prune(
    forgotten: list[Manifest], previous: bytes, at: int, record_id: str = "p1"
) -> PruneRecord:
    return PruneRecord(
        record_id=record_id,
        lineage="db",
        created=T0 + timedelta(days=at),
        host="h",
        forgotten=[Forgotten(e.snapshot_id, entry_hash(e)) for e in forgotten],
        previous=previous,
    )


def test_known_head_forgotten_by_a_prune_is_explained() -> None:
    """A prune record that forgot the known head itself (chained after it) explains it."""
    entries = chain(4)
    known = entry_hash(entries[1])
    record = _prune(entries[:3], entry_hash(entries[3]), at=5)
    report = verify_chain([entries[3], record], known_heads={"db": known})
    assert report.ok, report
    assert check_known_heads([entries[3], record], {"db": known}) == ()


def test_known_head_with_forgotten_ancestors_stays_clean() -> None:
    """A prune that forgot only the known head's ancestors leaves it present and descended from."""
    entries = chain(4)
    record = _prune(entries[:2], entry_hash(entries[3]), at=5)
    kept: list[Entry] = [entries[2], entries[3], record]
    assert verify_chain(kept, known_heads={"db": entry_hash(entries[2])}).ok
    assert verify_chain(kept, known_heads={"db": entry_hash(record)}).ok


def test_prune_of_middle_snapshots_keeps_the_known_head_clean() -> None:
    """The entry before a pruned run is no head: only the newest unnamed entry must descend."""
    entries = chain(4)
    record = _prune([entries[1]], entry_hash(entries[3]), at=5)
    kept: list[Entry] = [entries[0], entries[2], entries[3], record]
    assert verify_chain(kept, known_heads={"db": entry_hash(entries[3])}).ok


def test_prune_record_chained_before_the_known_head_does_not_explain_it() -> None:
    """A record that forgets the known head but follows an older entry is a head off its line."""
    entries = chain(3)
    known = entry_hash(entries[2])
    forged = _prune([entries[2]], entry_hash(entries[1]), at=4)
    report = verify_chain([entries[0], entries[1], forged], known_heads={"db": known})
    assert report.gaps == ()
    assert report.forks == ()
    assert [(r.lineage, r.expected, r.reason) for r in report.rollbacks] == [
        ("db", known, f"head {forged.name} does not descend from the known head")
    ]


def test_check_known_heads_ignores_other_chain_problems() -> None:
    """check_known_heads reports lost known heads only, not gaps or forks of the chain."""
    entries = chain(4)
    holed = [entries[0], entries[2], entries[3]]
    assert verify_chain(holed).gaps
    assert check_known_heads(holed, {"db": entry_hash(entries[3])}) == ()
    lost = check_known_heads(holed[:2], {"db": entry_hash(entries[3]), "files": DIGEST})
    assert [(r.lineage, r.reason) for r in lost] == [
        ("db", "a known head is missing"),
        ("files", "the lineage has vanished: no entry of it is left"),
    ]


def test_entry_older_than_predecessor_is_a_rollback() -> None:
    """An entry dated before the one it follows is reported."""
    first = snapshot("a", at=5)
    second = snapshot("b", previous=entry_hash(first), at=1)
    report = verify_chain([first, second])
    assert [r.expected for r in report.rollbacks] == [entry_hash(second)]


def test_lineages_are_independent() -> None:
    """Each lineage is checked on its own; cross-lineage links are gaps."""
    db, files = chain(2, "db"), chain(2, "files")
    assert verify_chain([*db, *files]).ok
    stray = snapshot("x", previous=entry_hash(db[1]), at=3, lineage="files")
    report = verify_chain([*db, *files, stray])
    assert [g.lineage for g in report.gaps] == ["files"]


def test_duplicates_are_harmless() -> None:
    """The same entry given twice is counted once."""
    entries: list[Entry] = [*chain(2), *chain(2)]
    assert verify_chain(entries).ok


# -- golden vectors (format v1, frozen) --------------------------------------------------------

VECTORS = json.loads((DATA / "format-v1" / "vectors.json").read_text())
GOLDEN = Sealer(
    repo_id=bytes.fromhex(VECTORS["repo_id"]),
    keys=MasterKeys(
        data_key=bytes.fromhex(VECTORS["data_key"]),
        chunk_id_key=bytes.fromhex(VECTORS["chunk_id_key"]),
    ),
)


@pytest.mark.parametrize("vector", VECTORS["entries"], ids=lambda v: str(v["kind"]))
def test_golden_entry(vector: dict[str, Any]) -> None:
    """Frozen manifests open, re-encode byte for byte, hash and re-seal identically."""
    encoding = vector["encoding"].encode()
    opened = open_entry(GOLDEN, vector["name"], bytes.fromhex(vector["sealed"]))
    assert opened.hash.hex() == vector["hash"] == hashlib.sha256(encoding).hexdigest()
    assert b"".join(encode(opened.entry)) == encoding
    assert decode([encoding]) == (opened.entry, opened.hash)
    nonce = bytes.fromhex(vector["nonce"])
    resealer = attrs.evolve(GOLDEN, randbytes=lambda n: nonce[:n])
    assert bytes(seal_entry(resealer, opened.entry).blob).hex() == vector["sealed"]


def test_golden_chain() -> None:
    """The frozen prune record follows the frozen snapshot in one verified chain."""
    opened = [open_entry(GOLDEN, v["name"], bytes.fromhex(v["sealed"])) for v in VECTORS["entries"]]
    assert verify_chain(opened).ok


# -- surface and layering ----------------------------------------------------------------------


def test_all_is_sorted_and_resolves() -> None:
    """``manifest.__all__`` is sorted (constants first), unique, and every name resolves."""
    names = list(manifest_package.__all__)
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(manifest_package, name), name


def test_manifest_imports_no_io_library_nor_cryptography() -> None:
    """The manifest package's sources import neither ``cryptography`` nor any I/O library."""
    forbidden = ("cryptography", "fsspec", "s3fs", "boto3", "botocore", "adlfs", "socket")
    folder = Path(manifest_package.__file__).parent
    for source in folder.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                assert module.split(".")[0] not in forbidden, (source.name, module)
                assert not module.startswith("ctfy_vault.storage"), (source.name, module)
