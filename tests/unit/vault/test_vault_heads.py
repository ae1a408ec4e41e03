"""Known heads: the frozen values, the versioned JSON document and the atomic state file."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctfy_vault.exceptions import ConfigurationError, FormatError
from ctfy_vault.vault import HEADS_FORMAT, KnownHeads, LineageHead
from tests.support.paths import DATA
from tests.support.strategies import known_heads, lineage_heads

GOLDEN = DATA / "known-heads-v1" / "heads.json"
REPO_ID = bytes.fromhex("00112233445566778899aabbccddeeff")
DB = LineageHead("db", "20261102T021500.123456Z-0b7d4e2a", hashlib.sha256(b"db").digest())
FILES = LineageHead(
    "server-files", "20261102T030000.000000Z-5f3c9a1e", hashlib.sha256(b"server-files").digest()
)


def document(*, drop: str = "", **changes: object) -> dict[str, Any]:
    """The golden document as a dict, with top-level keys replaced, and ``drop`` removed."""
    raw: dict[str, Any] = json.loads(GOLDEN.read_text())
    raw.update(changes)
    raw.pop(drop, None)
    return raw


def encoded(raw: object) -> bytes:
    """A JSON value as document bytes."""
    return json.dumps(raw).encode()


class TestValues:
    def test_heads_are_sorted_one_per_lineage(self) -> None:
        """Heads are kept sorted by lineage; two heads of one lineage are refused."""
        known = KnownHeads(repo_id=REPO_ID, heads=[FILES, DB])
        assert [head.lineage for head in known] == ["db", "server-files"]
        assert len(known) == 2
        assert known.get("db") == DB
        assert known.get("other") is None
        assert known.hashes() == {"db": DB.hash, "server-files": FILES.hash}
        with pytest.raises(ConfigurationError, match="one head per lineage"):
            KnownHeads(repo_id=REPO_ID, heads=[DB, DB])

    def test_advance_replaces_only_its_lineage(self) -> None:
        """`advance` gives a new value with the lineage's head replaced; the original is unchanged."""
        known = KnownHeads(repo_id=REPO_ID, heads=[DB])
        newer = LineageHead("db", "20261103T021500.000000Z-next", b"\x01" * 32)
        advanced = known.advance(newer).advance(FILES)
        assert list(advanced) == [newer, FILES]
        assert list(known) == [DB]

    def test_invalid_values_are_refused(self) -> None:
        """A bad lineage, object name, hash or repository id is a ConfigurationError."""
        with pytest.raises(ConfigurationError, match="lineage"):
            LineageHead("-db", DB.name, DB.hash)
        with pytest.raises(ConfigurationError, match="name"):
            LineageHead("db", "0b7d4e2a", DB.hash)
        with pytest.raises(ConfigurationError, match="32 bytes"):
            LineageHead("db", DB.name, b"short")
        with pytest.raises(ConfigurationError, match="16 bytes"):
            KnownHeads(repo_id=b"short")

    def test_id_is_the_entry_id_and_repr_hides_the_hash(self) -> None:
        """A head's id comes from its object name; its repr names the entry, not the hash."""
        assert DB.id == "0b7d4e2a"
        assert DB.hash.hex() not in repr(DB)
        assert "20261102T021500.123456Z-0b7d4e2a" in repr(DB)


class TestDocument:
    def test_golden_document(self) -> None:
        """The frozen format-1 file decodes to its value and the value encodes to it byte for byte."""
        known = KnownHeads(repo_id=REPO_ID, heads=[DB, FILES])
        assert KnownHeads.from_json(GOLDEN.read_bytes()) == known
        assert known.to_json() == GOLDEN.read_bytes()
        assert document()["format"] == HEADS_FORMAT == 1

    @given(known_heads())
    def test_round_trip(self, known: KnownHeads) -> None:
        """Any value survives encoding, as bytes and as text."""
        data = known.to_json()
        assert KnownHeads.from_json(data) == known
        assert KnownHeads.from_json(data.decode()) == known

    @given(st.binary(max_size=200))
    def test_any_bytes_decode_or_give_a_format_error(self, data: bytes) -> None:
        """Arbitrary bytes never raise anything but FormatError."""
        with contextlib.suppress(FormatError):
            KnownHeads.from_json(data)

    @given(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=8), inner, max_size=3)
            ),
            max_leaves=10,
        ),
        st.sampled_from(["format", "kind", "repository", "heads"]),
    )
    def test_a_wrong_value_anywhere_is_a_format_error(self, value: object, key: str) -> None:
        """Replacing a top-level value by any other JSON value is refused, naming the file."""
        raw = document()
        raw[key] = value
        if json.dumps(value) == json.dumps(document()[key]) or (key == "heads" and value == {}):
            return  # unchanged, or a valid empty set of heads
        with pytest.raises(FormatError, match=r"state\.json"):
            KnownHeads.from_json(encoded(raw), source="state.json")

    @given(lineage_heads(), st.sampled_from(["name", "hash"]), st.text(max_size=70))
    def test_a_wrong_head_field_is_a_format_error(
        self, head: LineageHead, field: str, text: str
    ) -> None:
        """A head whose name or hash is some other text is refused unless that text is valid."""
        entry = {"name": head.name, "hash": head.hash.hex(), field: text}
        raw = document(heads={head.lineage: entry})
        try:
            decoded = KnownHeads.from_json(encoded(raw))
        except FormatError:
            return
        assert decoded.get(head.lineage) is not None

    @pytest.mark.parametrize(
        ("text", "match"),
        [
            ("", "not a JSON document"),
            ("[]", "must be an object"),
            ('{"format": 1, "format": 1}', "appears twice"),
            (json.dumps(document(format=2)), "format 2 is not 1"),
            (json.dumps(document(format=True)), "format must be an integer"),
            (json.dumps(document(kind="ctfy-vault mirror state")), "kind"),
            (json.dumps(document(extra=1)), "unknown extra"),
            (json.dumps(document(drop="heads")), "missing heads"),
            (json.dumps(document(repository=REPO_ID.hex().upper())), "lowercase hex"),
            (json.dumps(document(heads={"db": {"name": DB.name}})), "missing hash"),
            (
                json.dumps(document(heads={"d b": {"name": DB.name, "hash": DB.hash.hex()}})),
                r"heads\['d b'\].*lineage",
            ),
            (GOLDEN.read_text().replace('"format": 1', '"format": NaN'), "NaN"),
        ],
    )
    def test_strict_parsing_names_the_problem(self, text: str, match: str) -> None:
        """Each malformed document is a FormatError naming the source and what is wrong."""
        with pytest.raises(FormatError, match=match) as caught:
            KnownHeads.from_json(text.encode(), source="/var/state/heads.json")
        assert str(caught.value).startswith("/var/state/heads.json: ")

    def test_not_utf8_is_a_format_error(self) -> None:
        """Bytes that are not UTF-8 are refused."""
        with pytest.raises(FormatError, match="not a JSON document"):
            KnownHeads.from_json(b"\xff\xfe{}")


class TestFile:
    def test_missing_file_is_none(self, tmp_path: Path) -> None:
        """`load` gives None when there is no file yet (the first run)."""
        assert KnownHeads.load(tmp_path / "absent.json") is None

    def test_save_is_private_atomic_and_loads_back(self, tmp_path: Path) -> None:
        """`save` creates folders, writes mode 600 with no temporary left, and replaces the file."""
        path = tmp_path / "state" / "ctfy-vault" / "repo.heads.json"
        known = KnownHeads(repo_id=REPO_ID, heads=[DB])
        known.save(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert KnownHeads.load(path) == known
        known.advance(FILES).save(path)
        assert KnownHeads.load(path) == known.advance(FILES)
        assert sorted(p.name for p in path.parent.iterdir()) == ["repo.heads.json"]

    def test_failed_save_keeps_the_previous_file(self, tmp_path: Path) -> None:
        """A save that cannot rename leaves the previous file and no temporary behind."""
        path = tmp_path / "heads.json"
        KnownHeads(repo_id=REPO_ID, heads=[DB]).save(path)
        blocked = tmp_path / "blocked.json"
        blocked.mkdir()
        (blocked / "inside").write_text("a folder in the way")
        with pytest.raises(OSError):  # noqa: PT011 - the platform decides which OSError
            KnownHeads(repo_id=REPO_ID).save(blocked)
        assert KnownHeads.load(path) == KnownHeads(repo_id=REPO_ID, heads=[DB])
        assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked.json", "heads.json"]

    def test_corrupt_or_huge_file_is_a_format_error(self, tmp_path: Path) -> None:
        """A damaged file is an error naming it, never an empty state."""
        path = tmp_path / "heads.json"
        path.write_bytes(GOLDEN.read_bytes()[:-20])
        with pytest.raises(FormatError, match=str(path)):
            KnownHeads.load(path)
        path.write_bytes(b" " * (16 * 1024 * 1024 + 1))
        with pytest.raises(FormatError, match="larger"):
            KnownHeads.load(path)


def test_a_fifo_or_folder_as_the_heads_file_is_refused_at_once(tmp_path: Path) -> None:
    """A FIFO at the state file's path is refused without blocking; a folder is named as one."""
    fifo = tmp_path / "heads.json"
    os.mkfifo(fifo)
    with pytest.raises(ConfigurationError, match="FIFO"):
        KnownHeads.load(fifo)  # a plain open would wait forever for a writer
    with pytest.raises(ConfigurationError, match="folder"):
        KnownHeads.load(tmp_path)
