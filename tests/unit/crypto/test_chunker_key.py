"""The chunker key: derived from the chunk-id key as documented, a permutation, and never shown."""

from __future__ import annotations

import hashlib
import hmac
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctfy_vault.crypto import CHUNKER_KEY_INFO, ChunkerKey, MasterKeys, derive_chunker_key
from ctfy_vault.crypto._chunker_key import _shuffle
from ctfy_vault.exceptions import ConfigurationError
from tests.support.crypto_strategies import FIXED_KEYS, chunker_keys, keys


def documented_derivation(chunk_id_key: bytes) -> tuple[int, bytes]:
    """The derivation as docs/crypto.md states it, built from the standard library alone."""
    prk = hmac.digest(bytes(32), chunk_id_key, hashlib.sha256)  # HKDF-Extract, no salt
    t1 = hmac.digest(prk, CHUNKER_KEY_INFO + b"\x01", hashlib.sha256)
    t2 = hmac.digest(prk, t1 + CHUNKER_KEY_INFO + b"\x02", hashlib.sha256)
    okm = (t1 + t2)[:40]
    seed = int.from_bytes(okm[:8], "big") & (2**63 - 1)
    stream = b"".join(hmac.digest(okm[8:], n.to_bytes(8, "big"), hashlib.sha256) for n in range(64))
    values = list(range(256))
    at = 0
    for top in range(255, 0, -1):
        while stream[at] >= 256 - 256 % (top + 1):
            at += 1
        pick = stream[at] % (top + 1)
        at += 1
        values[top], values[pick] = values[pick], values[top]
    return seed, bytes(values)


def test_known_answer() -> None:
    """Fixed master keys give the pinned seed and permutation, as the documented steps do."""
    key = derive_chunker_key(FIXED_KEYS)
    assert key.seed == 0x30F8A60A117AA3E0
    assert (
        hashlib.sha256(key.permutation).hexdigest()
        == "08632a3219727ad39b313ab5895422757218a7750f08fc8baf4d06c45100958e"
    )
    assert (key.seed, key.permutation) == documented_derivation(FIXED_KEYS.chunk_id_key)


@settings(max_examples=50, deadline=None)
@given(master=keys)
def test_derivation_is_deterministic_and_a_permutation(master: MasterKeys) -> None:
    """The same keys give the same key; its table holds each byte value once; inverse undoes it."""
    key = derive_chunker_key(master)
    assert key == derive_chunker_key(MasterKeys(**_fields(master)))
    assert sorted(key.permutation) == list(range(256))
    assert 0 <= key.seed < 2**63
    data = bytes(range(256))
    assert data.translate(key.permutation).translate(key.inverse) == data
    assert (key.seed, key.permutation) == documented_derivation(master.chunk_id_key)


def _fields(master: MasterKeys) -> dict[str, bytes]:
    return {"data_key": master.data_key, "chunk_id_key": master.chunk_id_key}


@settings(max_examples=30, deadline=None)
@given(master=keys, other=st.binary(min_size=32, max_size=32))
def test_only_the_chunk_id_key_matters_and_any_change_changes_the_key(
    master: MasterKeys, other: bytes
) -> None:
    """The data key plays no part; another chunk-id key gives another seed and permutation."""
    same_id_key = MasterKeys(data_key=other, chunk_id_key=master.chunk_id_key)
    assert derive_chunker_key(same_id_key) == derive_chunker_key(master)
    if other != master.chunk_id_key:
        changed = derive_chunker_key(MasterKeys(data_key=master.data_key, chunk_id_key=other))
        mine = derive_chunker_key(master)
        assert changed.seed != mine.seed
        assert changed.permutation != mine.permutation


@settings(max_examples=100, deadline=None)
@given(draws=st.binary(min_size=600, max_size=900))
def test_shuffle_of_any_draws_is_a_permutation(draws: bytes) -> None:
    """Whatever the random bytes, the shuffle gives each of the 256 byte values exactly once."""
    stream = iter(draws + bytes(10_000))
    assert sorted(_shuffle(stream)) == list(range(256))


def test_shuffle_rejects_draws_that_would_bias_the_pick() -> None:
    """A draw at or above the largest multiple of the span is skipped, not folded by modulo."""
    # top = 254: span 255, so the draw 255 would alias 0; it must be thrown away.
    plain = _shuffle(iter([7, 3] + [0] * 300))
    with_rejected = _shuffle(iter([7, 255, 3] + [0] * 300))
    assert with_rejected == plain
    # top = 127: span 128 accepts every byte (256 is a multiple), so 255 is used there.
    lead = [7] * 128
    assert _shuffle(iter([*lead, 255] + [0] * 300)) != _shuffle(iter([*lead, 0] + [0] * 300))


@given(key=chunker_keys)
def test_repr_and_str_show_nothing_secret(key: ChunkerKey) -> None:
    """The repr and str of any key are the bare class name: no seed, table or inverse."""
    assert repr(key) == str(key) == "ChunkerKey()"
    assert repr([key]) == "[ChunkerKey()]"


def test_a_bad_key_is_refused_without_echoing_it() -> None:
    """A seed out of range or a table that is not a permutation is refused; the text has no value."""
    secret_seed = 2**63 + 12345
    with pytest.raises(ConfigurationError) as seed_error:
        ChunkerKey(seed=secret_seed, permutation=bytes(range(256)))
    assert str(secret_seed) not in str(seed_error.value)
    table = bytes(range(255)) + b"\x00"
    with pytest.raises(ConfigurationError) as table_error:
        ChunkerKey(seed=1, permutation=table)
    assert table.hex()[:32] not in str(table_error.value)
    assert "\\x00\\x01" not in str(table_error.value)
    with pytest.raises(ConfigurationError):
        ChunkerKey(seed=True, permutation=bytes(range(256)))


def test_frozen_and_round_trips_through_pickle() -> None:
    """The key cannot be changed after construction and survives pickling whole, like MasterKeys."""
    key = derive_chunker_key(FIXED_KEYS)
    with pytest.raises(AttributeError):
        key.seed = 1  # type: ignore[misc]
    copy = pickle.loads(pickle.dumps(key))  # noqa: S301 - bytes this test just made
    assert copy == key
    assert copy.inverse == key.inverse
