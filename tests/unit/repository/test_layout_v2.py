"""The format v2 keys: ``packs/<ab>/<id>`` and ``index/<id>`` round-trip; near-misses are strays."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctfy_vault.repository import (
    INDEX_PREFIX,
    PACKS_PREFIX,
    KeyKind,
    chunk_id_of,
    chunk_key,
    index_id_of,
    index_key,
    kind_of,
    pack_id_of,
    pack_key,
    unexpected_key,
)

ids = st.binary(min_size=32, max_size=32)


@given(ids)
def test_a_pack_key_parses_back_to_its_id(pack_id: bytes) -> None:
    """``pack_id_of(pack_key(id))`` is the id; the key is a pack's, fanned out like chunks."""
    key = pack_key(pack_id)
    assert key == f"{PACKS_PREFIX}/{pack_id.hex()[:2]}/{pack_id.hex()}"
    assert pack_id_of(key) == pack_id
    assert kind_of(key) is KeyKind.PACK
    assert not unexpected_key(key)
    assert chunk_id_of(key) is None


@given(ids)
def test_an_index_key_parses_back_to_its_id(index_id: bytes) -> None:
    """``index_id_of(index_key(id))`` is the id; the key is an index object's, not fanned out."""
    key = index_key(index_id)
    assert key == f"{INDEX_PREFIX}/{index_id.hex()}"
    assert index_id_of(key) == index_id
    assert kind_of(key) is KeyKind.INDEX
    assert not unexpected_key(key)


@given(ids)
def test_a_chunk_key_is_no_pack_key(chunk_id: bytes) -> None:
    """The v1 chunk keys keep their kind: the new parsers do not claim them."""
    key = chunk_key(chunk_id)
    assert pack_id_of(key) is None
    assert index_id_of(key) is None
    assert kind_of(key) is KeyKind.CHUNK


NAME = ("a" + "0123456789abcdef" * 4)[:64]


@pytest.mark.parametrize(
    "key",
    [
        f"packs/{NAME}",  # no fan-out folder
        f"packs/b0/{NAME}",  # wrong fan-out folder
        f"packs/{NAME[:2]}/{NAME.upper()}",  # upper-case hex
        f"packs/{NAME[:2]}/{NAME[:-1]}",  # too short
        f"packs/{NAME[:2]}/{NAME}0",  # too long
        f"packs/{NAME[:2]}/{NAME}/x",  # extra segment
        f"pack/{NAME[:2]}/{NAME}",  # wrong folder
        f"index/{NAME[:2]}/{NAME}",  # an index is not fanned out
        f"index/{NAME.upper()}",
        f"index/{NAME[:-1]}",
        f"index/{NAME}.tmp",
        "index/",
        "packs/",
    ],
)
def test_a_pack_or_index_near_miss_is_a_stray(key: str) -> None:
    """Anything but the exact form the builders write is no pack or index object: a stray."""
    assert pack_id_of(key) is None
    assert index_id_of(key) is None
    assert kind_of(key) is KeyKind.STRAY
