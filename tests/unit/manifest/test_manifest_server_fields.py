"""Owners, extended attributes, hard links and special files in manifests: model, encoding, refusals."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctfy_vault.exceptions import ConfigurationError, FormatError
from ctfy_vault.manifest import FileEntry, FileType, Manifest, decode, encode, entry_hash
from tests.support.crypto_strategies import manifests

T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
DIGEST = hashlib.sha256(b"file").digest()
BASE_KEYS = {"chunks", "link", "mode", "mtime_ns", "path", "sha256", "size", "type"}
OPTIONAL = ("uid", "gid", "user", "group", "xattrs", "device")


def owned(path: str = "a", **changes: Any) -> FileEntry:
    """A regular file with every optional field but ``device``, changed by ``changes``."""
    fields: dict[str, Any] = {
        "path": path,
        "type": FileType.FILE,
        "mode": 0o4755,
        "mtime_ns": 1_700_000_000_000_000_000,
        "sha256": DIGEST,
        "uid": 1234,
        "gid": 2345,
        "user": "app",
        "group": "staff",
        "xattrs": {"user.origin": b"\x00\xffscan", "system.posix_acl_access": b"\x02\x00\x00\x00"},
        **changes,
    }
    return FileEntry(**fields)


def snapshot(*files: FileEntry) -> Manifest:
    """A snapshot of the given entries."""
    return Manifest(snapshot_id="s", lineage="full-server", created=T0, host="h", files=files)


def lines(manifest: Manifest) -> list[dict[str, Any]]:
    """The manifest's file lines as JSON values."""
    return [json.loads(line) for line in list(encode(manifest))[1:]]


def planted(line: dict[str, Any]) -> bytes:
    """A snapshot encoding whose one file line is ``line``, canonical JSON, past the model."""
    header = json.loads(next(encode(snapshot())))
    header.update(files=1, size=line.get("size", 0), chunks=len(line.get("chunks", [])))
    return b"".join(
        json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        + b"\n"
        for value in (header, line)
    )


def test_an_entry_without_the_new_fields_keeps_the_eight_keys() -> None:
    """An entry with no owner, attributes or device encodes with exactly the old key set."""
    plain = owned(uid=None, gid=None, user=None, group=None, xattrs={})
    (line,) = lines(snapshot(plain))
    assert set(line) == BASE_KEYS


def test_the_new_fields_are_written_and_read_back() -> None:
    """Owner numbers and names, xattrs (base64) and device numbers round-trip exactly."""
    device = FileEntry(
        path="dev/null", type=FileType.CHARDEV, mode=0o666, mtime_ns=0, uid=0, gid=0, device=(1, 3)
    )
    manifest = snapshot(owned(), device)
    first, second = lines(manifest)
    assert first["uid"] == 1234
    assert first["group"] == "staff"
    assert base64.b64decode(first["xattrs"]["user.origin"]) == b"\x00\xffscan"
    assert second["device"] == [1, 3]
    assert "xattrs" not in second
    decoded, digest = decode(encode(manifest))
    assert decoded == manifest
    assert digest == entry_hash(manifest)


def test_xattrs_are_kept_sorted_whatever_the_input_order() -> None:
    """A mapping or pairs in any order give one value, sorted by name."""
    one = owned(xattrs=[("user.b", b"2"), ("user.a", b"1")])
    other = owned(xattrs={"user.a": b"1", "user.b": b"2"})
    assert one == other
    assert one.xattrs == (("user.a", b"1"), ("user.b", b"2"))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"uid": -1}, "uid"),
        ({"gid": 2**32}, "gid"),
        ({"uid": True}, "uid"),
        ({"uid": None}, "user"),  # a name without its number
        ({"gid": None}, "group"),
        ({"user": ""}, "user"),
        ({"group": "a\x00b"}, "group"),
        ({"xattrs": {"": b"x"}}, "xattrs"),
        ({"xattrs": {"user.a": "text"}}, "xattrs"),
        ({"xattrs": {"user." + "a" * 251: b""}}, "xattrs"),
        ({"xattrs": {"user.a": b"x" * 65537}}, "xattrs"),
        ({"xattrs": [("user.a", b"1"), ("user.a", b"2")]}, "xattrs"),
        ({"xattrs": "user.a"}, "xattrs"),
        ({"device": (1, 3)}, "device"),  # a regular file has no device numbers
    ],
)
def test_bad_new_fields_are_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    """Out-of-range or contradictory owners, attributes and devices are refused at construction."""
    with pytest.raises(ConfigurationError, match=field):
        owned(**changes)


@pytest.mark.parametrize(
    "fields",
    [
        {"type": FileType.CHARDEV},  # no device numbers
        {"type": FileType.BLOCKDEV, "device": (8, -1)},
        {"type": FileType.BLOCKDEV, "device": (8,)},
        {"type": FileType.FIFO, "device": (1, 3)},
        {"type": FileType.FIFO, "link": "x"},
        {"type": FileType.CHARDEV, "device": (1, 3), "size": 1},
        {"type": FileType.HARDLINK},  # no link
        {"type": FileType.HARDLINK, "link": "a"},  # to itself
        {"type": FileType.HARDLINK, "link": "../x"},
        {"type": FileType.HARDLINK, "link": "b", "xattrs": {"user.a": b"1"}},
        {"type": FileType.HARDLINK, "link": "b", "sha256": DIGEST},
    ],
)
def test_bad_special_entries_are_refused(fields: dict[str, Any]) -> None:
    """Device numbers only on devices, a hard link only to another valid path, nothing else."""
    with pytest.raises(ConfigurationError):
        FileEntry(**{"path": "a", "mode": 0o644, "mtime_ns": 0, **fields})


def test_a_hardlink_names_an_earlier_linkable_entry() -> None:
    """A hard link to a later, missing, folder or hard-link path is refused by the manifest."""
    data = owned("b")
    link = FileEntry(path="c", type=FileType.HARDLINK, mode=0o644, mtime_ns=0, link="b")
    assert snapshot(data, link).files[1].link == "b"
    later = FileEntry(path="a", type=FileType.HARDLINK, mode=0o644, mtime_ns=0, link="b")
    folder = FileEntry(path="d", type=FileType.DIR, mode=0o755, mtime_ns=0)
    to_folder = FileEntry(path="e", type=FileType.HARDLINK, mode=0o644, mtime_ns=0, link="d")
    chained = FileEntry(path="f", type=FileType.HARDLINK, mode=0o644, mtime_ns=0, link="c")
    for files in ([data, later], [link], [folder, to_folder], [data, link, chained]):
        with pytest.raises(ConfigurationError, match="hardlink"):
            snapshot(*files)


LINE: dict[str, Any] = {
    "chunks": [],
    "link": None,
    "mode": 420,
    "mtime_ns": 0,
    "path": "a",
    "sha256": None,
    "size": 0,
    "type": "fifo",
}


def test_a_valid_planted_fifo_line_decodes() -> None:
    """The hand-written line the refusals below alter is itself valid."""
    entry, _digest = decode([planted(LINE)])
    assert isinstance(entry, Manifest)
    assert entry.files[0].type is FileType.FIFO


@pytest.mark.parametrize(
    "changes",
    [
        {"uid": None},  # null is a second spelling of "absent"
        {"user": None, "uid": 1},
        {"xattrs": {}},
        {"xattrs": None},
        {"xattrs": {"user.a": "AQ"}},  # no padding
        {"xattrs": {"user.a": "AR=="}},  # trailing bits set: decodes like "AQ=="
        {"xattrs": {"user.a": "A Q=="}},
        {"xattrs": ["user.a", "AQ=="]},
        {"device": [1, 3]},  # on a fifo
        {"device": [1, 3, 0], "type": "chardev"},
        {"device": None, "type": "chardev"},
        {"uid": "0"},
        {"uid": 1.0},
        {"owner": 1},  # an unknown key
        {"type": "socket"},
        {"type": "hardlink"},  # without a link
        {"type": "hardlink", "link": "z"},  # to nothing earlier
    ],
)
def test_non_canonical_or_invalid_new_keys_are_format_errors(changes: dict[str, Any]) -> None:
    """Each entry has one encoding: empty or null optional keys and odd base64 are refused."""
    with pytest.raises(FormatError):
        decode([planted({**LINE, **changes})])


@given(manifests())
def test_optional_keys_are_written_exactly_when_they_carry_something(manifest: Manifest) -> None:
    """Every file line has the eight keys plus only the optional ones whose value is not empty."""
    for entry, line in zip(manifest.files, lines(manifest), strict=True):
        carried = {key for key in OPTIONAL if getattr(entry, key) not in (None, ())}
        assert set(line) == BASE_KEYS | carried


@given(manifests(), st.data())
def test_dropping_the_new_fields_gives_the_older_encoding(
    manifest: Manifest, data: st.DataObject
) -> None:
    """Without owners and attributes an entry hashes as it would have before the keys existed."""
    stripped = [
        attrs.evolve(entry, uid=None, gid=None, user=None, group=None, xattrs=())
        for entry in manifest.files
        if entry.type not in (FileType.CHARDEV, FileType.BLOCKDEV)
    ]
    linked = {entry.path for entry in stripped}
    kept = [
        entry
        for entry in stripped
        if entry.type is not FileType.HARDLINK or (entry.link or "") in linked
    ]
    older = attrs.evolve(manifest, files=kept)
    for line in lines(older):
        assert set(line) == BASE_KEYS
    decoded, digest = decode(encode(older))
    assert decoded == older
    assert digest == entry_hash(older)
    split = data.draw(st.integers(1, 64))
    blob = b"".join(encode(older))
    pieces = [blob[i : i + split] for i in range(0, len(blob), split)]
    assert decode(pieces) == (older, digest)


@given(manifests())
def test_entries_with_random_new_fields_round_trip_in_canonical_form(manifest: Manifest) -> None:
    """Random owners, xattrs, devices and hard links decode to the value and re-encode byte-equal."""
    blob = b"".join(encode(manifest))
    decoded, digest = decode([blob])
    assert decoded == manifest
    assert b"".join(encode(decoded)) == blob
    assert digest == hashlib.sha256(blob).digest()
    for line in blob.splitlines():
        value = json.loads(line)
        canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert canonical.encode() == line
