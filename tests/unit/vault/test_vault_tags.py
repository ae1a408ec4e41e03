"""Tags changed by tag records: nothing rewritten, the chain whole, retention keeps by them."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctfy_vault.exceptions import ConfigurationError, FormatError, SnapshotNotFoundError
from ctfy_vault.manifest import Forgotten, TagRecord, decode, encode
from ctfy_vault.retention import Policy
from ctfy_vault.vault import Vault
from ctfy_vault.writer import StreamSource
from tests.support.vaults import KEY
from tests.support.writer_strategies import NOW, SMALL, memory_target

DAY = timedelta(days=1)


def _vault() -> Vault:
    return Vault.init([memory_target("a"), memory_target("b")], key=KEY, now=NOW, chunker=SMALL)


def _backup(vault: Vault, day: int, tags: tuple[str, ...] = ()) -> str:
    return vault.backup(
        StreamSource(name="d", stream=io.BytesIO(bytes([day]) * 2000)),
        lineage="db",
        host="h",
        now=NOW + day * DAY,
        tags=tags,
    ).snapshot_id


def test_tags_change_without_rewriting_the_manifest() -> None:
    """The manifest object's bytes stay; snapshots shows the new tags; verify is clean."""
    vault = _vault()
    first = _backup(vault, 0, ("nightly",))
    target = vault.targets[0]
    manifest_key = next(k for k in target.list("snapshots") if k.endswith(first))
    before = target.read(manifest_key)
    changed = vault.tag(first, now=NOW + DAY, add=["release"], remove=["nightly"])
    assert changed.tags == ("release",)
    assert target.read(manifest_key) == before
    assert vault.manifest(first).tags == ("nightly",)  # the manifest as stored
    again = Vault.open(vault.targets, key=KEY)
    (listed,) = again.snapshots()
    assert listed.tags == ("release",)
    assert again.verify().ok
    _backup(again, 2)
    assert again.verify().ok  # the next backup chains onto the tag record


def test_a_deleted_tag_record_leaves_a_gap_that_verify_reports() -> None:
    """It is a chain entry: a later entry names it."""
    vault = _vault()
    first = _backup(vault, 0)
    vault.tag(first, now=NOW + DAY, add=["keep"])
    _backup(vault, 2)
    for target in vault.targets:
        record = [k for k in target.list("snapshots") if not k.endswith(first)]
        names = sorted(record)
        target.delete(names[0])  # the tag record sorts before the later backup
    found = Vault.open(vault.targets, key=KEY).verify()
    assert any(p.kind == "chain" for p in found.problems), found.problems


def test_retention_keeps_by_the_tags_a_record_added() -> None:
    """``Policy(tags=...)`` keeps a snapshot tagged after it was taken."""
    vault = _vault()
    ids = [_backup(vault, day) for day in range(4)]
    vault.tag(ids[0], now=NOW + 4 * DAY, add=["audit"])
    report = vault.prune(Policy(last=1, tags=("audit",)), now=NOW + 5 * DAY, grace=timedelta(0))
    assert {s.snapshot_id for s in report.forgotten} == set(ids[1:3])
    assert {s.snapshot_id for s in vault.snapshots()} == {ids[0], ids[3]}
    vault.tag(ids[0], now=NOW + 6 * DAY, remove=["audit"])
    vault.prune(Policy(last=1, tags=("audit",)), now=NOW + 7 * DAY, grace=timedelta(0))
    assert [s.snapshot_id for s in vault.snapshots()] == [ids[3]]
    assert vault.verify().ok


def test_bad_tag_changes_are_refused_before_anything_is_written() -> None:
    """Nothing to do, a tag both ways, an unknown snapshot."""
    vault = _vault()
    first = _backup(vault, 0)
    before = sorted(vault.targets[0].list(""))
    with pytest.raises(ConfigurationError, match="at least one tag"):
        vault.tag(first, now=NOW)
    with pytest.raises(ConfigurationError, match="both added and removed"):
        vault.tag(first, now=NOW, add=["x"], remove=["x"])
    with pytest.raises(SnapshotNotFoundError):
        vault.tag("nope", now=NOW, add=["x"])
    assert sorted(vault.targets[0].list("")) == before


tag_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=8)


@given(
    add=st.frozensets(tag_text, max_size=4),
    remove=st.frozensets(tag_text, max_size=4),
    host=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=10),
)
def test_a_tag_record_round_trips_in_canonical_form(
    add: frozenset[str], remove: frozenset[str], host: str
) -> None:
    """Encode then decode gives the record back; its encoding is one canonical line."""
    remove = remove - add
    if not (add or remove):
        return
    record = TagRecord(
        record_id="r1",
        lineage="db",
        created=NOW,
        host=host,
        snapshot=Forgotten("s1", bytes(32)),
        add=add,
        remove=remove,
    )
    lines = list(encode(record))
    assert len(lines) == 1
    assert decode(lines)[0] == record
    assert record.apply(["keep", *remove]) == tuple(sorted({"keep", *add} - remove))


def test_a_tag_record_with_a_second_line_does_not_decode() -> None:
    """Exactly one line, as a prune record."""
    record = TagRecord(
        record_id="r1",
        lineage="db",
        created=NOW,
        host="h",
        snapshot=Forgotten("s1", bytes(32)),
        add=["a"],
    )
    line = b"".join(encode(record))
    with pytest.raises(FormatError):
        decode([line, line])
