"""Hypothesis properties of manifests: canonical round trips, tamper detection, chain checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctfy_vault.crypto import Sealer
from ctfy_vault.exceptions import FormatError, IntegrityError
from ctfy_vault.manifest import (
    Entry,
    Forgotten,
    Manifest,
    PruneRecord,
    decode,
    encode,
    entry_hash,
    open_entry,
    parse_entry_name,
    seal_entry,
    verify_chain,
)
from tests.support.crypto_strategies import (
    FIXED_KEYS,
    FIXED_REPO_ID,
    entries,
    ident,
    manifests,
    sealers,
)

SEALER = Sealer(repo_id=FIXED_REPO_ID, keys=FIXED_KEYS)


@given(entries)
def test_encode_decode_round_trip(entry: Entry) -> None:
    """Decoding the canonical encoding gives back an equal value and the same hash."""
    data = b"".join(encode(entry))
    decoded, digest = decode([data])
    assert decoded == entry
    assert digest == entry_hash(entry)
    assert b"".join(encode(decoded)) == data


@given(entries, st.integers(1, 64))
def test_decode_is_independent_of_splitting(entry: Entry, size: int) -> None:
    """Any split of the bytes into pieces decodes the same."""
    data = b"".join(encode(entry))
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    assert decode(pieces) == decode([data])


@given(sealers(), entries)
def test_seal_open_round_trip(sealer: Sealer, entry: Entry) -> None:
    """Every sealed kind (snapshot, prune record) opens back with its hash."""
    sealed = seal_entry(sealer, entry)
    opened = open_entry(sealer, sealed.name, sealed.blob)
    assert opened.entry == entry
    assert opened.hash == sealed.hash == entry_hash(entry)


@given(entries, st.data())
def test_any_flipped_bit_fails(entry: Entry, data: st.DataObject) -> None:
    """Any single flipped bit in a sealed manifest or prune record fails to open."""
    sealed = seal_entry(SEALER, entry)
    blob = sealed.blob
    position = data.draw(st.integers(0, len(blob) - 1), label="byte")
    blob[position] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    with pytest.raises(FormatError if position == 0 else IntegrityError):
        open_entry(SEALER, sealed.name, blob)


@given(entries, st.data())
def test_truncation_and_extension_fail(entry: Entry, data: st.DataObject) -> None:
    """Any strict prefix or any appended bytes fail to open."""
    sealed = seal_entry(SEALER, entry)
    length = data.draw(st.integers(1, len(sealed.blob) - 1), label="length")
    with pytest.raises(IntegrityError):
        open_entry(SEALER, sealed.name, sealed.blob[:length])
    extra = data.draw(st.binary(min_size=1, max_size=16), label="extra")
    with pytest.raises(IntegrityError):
        open_entry(SEALER, sealed.name, bytes(sealed.blob) + extra)


@given(entries, entries)
def test_swapped_names_fail(first: Entry, second: Entry) -> None:
    """Two sealed entries swapped between their names both fail."""
    one, two = seal_entry(SEALER, first), seal_entry(SEALER, second)
    if one.name == two.name:
        return
    with pytest.raises(IntegrityError):
        open_entry(SEALER, two.name, one.blob)
    with pytest.raises(IntegrityError):
        open_entry(SEALER, one.name, two.blob)


@settings(max_examples=50)
@given(manifests(max_files=2), st.integers(2, 8), st.data())
def test_pruned_chain_verifies_and_unexplained_deletions_are_gaps(
    base: Manifest, count: int, data: st.DataObject
) -> None:
    """Deleting snapshots with a prune record keeps the chain ok; without one, each is a gap."""
    chain: list[Manifest] = []
    previous = None
    for n in range(count):
        entry = Manifest(
            snapshot_id=f"s{n}",
            lineage=base.lineage,
            created=base.created + timedelta(hours=n),
            host=base.host,
            files=base.files,
            previous=previous,
        )
        chain.append(entry)
        previous = entry_hash(entry)
    # Retention always keeps the newest snapshot, so prune from the older ones only.
    doomed = data.draw(st.sets(st.integers(0, count - 2), min_size=1), label="deleted")
    kept = [entry for n, entry in enumerate(chain) if n not in doomed]
    record = PruneRecord(
        record_id="prune",
        lineage=base.lineage,
        created=base.created + timedelta(hours=count),
        host=base.host,
        forgotten=[Forgotten(chain[n].snapshot_id, entry_hash(chain[n])) for n in doomed],
        previous=entry_hash(chain[-1]),
    )
    assert verify_chain([*kept, record]).ok
    report = verify_chain(kept)
    # Each run of deleted snapshots is one gap: its successor names the last of the run.
    expected = {entry_hash(chain[n]) for n in doomed if n + 1 not in doomed}
    assert {gap.missing for gap in report.gaps} == expected
    assert not report.forks


def _linked(base: Manifest, count: int) -> list[Manifest]:
    chain: list[Manifest] = []
    previous = None
    for n in range(count):
        entry = attrs.evolve(
            base, snapshot_id=f"s{n}", created=base.created + timedelta(hours=n), previous=previous
        )
        chain.append(entry)
        previous = entry_hash(entry)
    return chain


@settings(max_examples=50)
@given(manifests(max_files=1), st.integers(1, 8), st.data())
def test_known_head_is_lost_only_by_an_unexplained_deletion(
    base: Manifest, count: int, data: st.DataObject
) -> None:
    """Keeping the first ``m`` entries loses known head ``k`` iff ``k >= m``; a prune never does."""
    chain = _linked(base, count)
    known = data.draw(st.integers(0, count - 1), label="known head")
    kept = data.draw(st.integers(1, count), label="entries kept")
    heads = {base.lineage: entry_hash(chain[known])}
    report = verify_chain(chain[:kept], known_heads=heads)
    assert report.ok == (known < kept)
    assert not report.gaps
    assert not report.forks
    doomed = data.draw(st.sets(st.integers(0, count - 1)), label="pruned")
    record = PruneRecord(
        record_id="prune",
        lineage=base.lineage,
        created=base.created + timedelta(hours=count),
        host=base.host,
        forgotten=[Forgotten(chain[n].snapshot_id, entry_hash(chain[n])) for n in doomed],
        previous=entry_hash(chain[-1]),
    )
    left = [entry for n, entry in enumerate(chain) if n not in doomed]
    assert verify_chain([*left, record], known_heads=heads).ok
    assert verify_chain([*left, record], known_heads={base.lineage: entry_hash(record)}).ok
    assert not verify_chain(left, known_heads={base.lineage: entry_hash(record)}).ok


@given(entries)
def test_every_entry_name_parses_back_to_its_time_and_id(entry: Entry) -> None:
    """The name an entry is stored under parses to exactly its creation time and id."""
    assert parse_entry_name(entry.name) == (entry.created, entry.id)


@given(st.datetimes(timezones=st.just(UTC)), ident)
def test_names_of_any_year_parse_back(created: datetime, snapshot_id: str) -> None:
    """Any aware time from year 1 to 9999 (the C library pads no year) survives the name."""
    manifest = Manifest(snapshot_id=snapshot_id, lineage="db", created=created, host="h")
    assert parse_entry_name(manifest.name) == (manifest.created, snapshot_id)


@given(st.one_of(st.text(max_size=60), st.from_regex(r"[0-9]{1,9}T[0-9]{6}\.[0-9]{6}Z-.{0,8}")))
def test_only_names_an_entry_could_have_parse(name: str) -> None:
    """Whatever parses is exactly the name of an entry with that time and id; junk does not."""
    parsed = parse_entry_name(name)
    if parsed is not None:
        created, snapshot_id = parsed
        entry = Manifest(snapshot_id=snapshot_id, lineage="db", created=created, host="h")
        assert entry.name == name
