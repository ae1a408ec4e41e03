"""The keyed chunker: FastCDC over a secretly permuted image, cuts applied to the data itself."""

from __future__ import annotations

import io
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from pyfastcdc import FastCDC

from ctfy_vault.crypto import ChunkerKey, MasterKeys, derive_chunker_key
from ctfy_vault.writer import ChunkerParams
from ctfy_vault.writer._chunker import iter_chunks
from tests.support.crypto_strategies import chunker_keys

PARAMS = ChunkerParams(min_size=256, avg_size=1024, max_size=4096)

sources = st.one_of(st.binary(max_size=5000), st.binary(min_size=3000, max_size=40000))
steps = st.lists(st.integers(1, 9000), min_size=1, max_size=5)


class Trickle:
    """A pipe-like source that returns short reads of the given sizes, cycling."""

    def __init__(self, data: bytes, steps: list[int]) -> None:
        """Serve ``data`` in reads no longer than the next step."""
        self._data = io.BytesIO(data)
        self._steps = steps
        self._turn = 0

    def read(self, size: int, /) -> bytes:
        """Return at most ``size`` bytes, fewer when the step says so."""
        step = self._steps[self._turn % len(self._steps)]
        self._turn += 1
        return self._data.read(min(size, step))


def sample(seed: int, size: int) -> bytes:
    """Reproducible random test data."""
    return random.Random(seed).randbytes(size)  # noqa: S311 - test data, not secrets


def reference(data: bytes, key: ChunkerKey, params: ChunkerParams = PARAMS) -> list[bytes]:
    """The keyed boundaries by definition: seeded FastCDC over the whole permuted buffer."""
    cdc = FastCDC(
        params.avg_size, min_size=params.min_size, max_size=params.max_size, seed=key.seed
    )
    cuts = cdc.cut_buf(data.translate(key.permutation))
    return [data[chunk.offset : chunk.offset + chunk.length] for chunk in cuts]


def cut(data: bytes, key: ChunkerKey | None, params: ChunkerParams = PARAMS) -> list[bytes]:
    """Chunk ``data`` through `iter_chunks` from an in-memory file."""
    return list(iter_chunks(io.BytesIO(data), params, key))


@settings(max_examples=150, deadline=None)
@given(data=sources, read_steps=steps, key=chunker_keys)
def test_buffer_and_stream_paths_give_the_defined_boundaries(
    data: bytes, read_steps: list[int], key: ChunkerKey
) -> None:
    """Small (one buffer) and large (streamed, short reads) sources both cut as the definition."""
    expected = reference(data, key)
    assert cut(data, key) == expected
    assert list(iter_chunks(Trickle(data, read_steps), PARAMS, key)) == expected


@settings(max_examples=100, deadline=None)
@given(data=sources, key=chunker_keys)
def test_chunks_cover_the_input_within_the_size_bounds(data: bytes, key: ChunkerKey) -> None:
    """Chunks concatenate to the input, are bytes, and all but the last lie in [min, max]."""
    chunks = cut(data, key)
    assert b"".join(chunks) == data
    assert all(type(chunk) is bytes and chunk for chunk in chunks)
    for chunk in chunks[:-1]:
        assert PARAMS.min_size <= len(chunk) <= PARAMS.max_size
    if chunks:
        assert len(chunks[-1]) <= PARAMS.max_size


@settings(max_examples=50, deadline=None)
@given(data=sources, key=chunker_keys)
def test_keyed_chunking_is_deterministic(data: bytes, key: ChunkerKey) -> None:
    """The same key cuts the same data the same way, and an equal key built anew does too."""
    again = ChunkerKey(seed=key.seed, permutation=bytes(key.permutation))
    assert cut(data, key) == cut(data, key) == cut(data, again)


def test_exact_sizes_at_the_switch() -> None:
    """Sources of max_size - 1, max_size and max_size + 1 bytes cut as the definition, keyed."""
    key = derive_chunker_key(MasterKeys.generate())
    for size in (PARAMS.max_size - 1, PARAMS.max_size, PARAMS.max_size + 1):
        data = sample(size, size)
        assert cut(data, key) == reference(data, key)


def test_no_key_keeps_the_unkeyed_boundaries() -> None:
    """``key=None`` cuts exactly as plain default-table FastCDC, streamed or not (format v1)."""
    data = sample(1, 40_000)
    cdc = FastCDC(PARAMS.avg_size, min_size=PARAMS.min_size, max_size=PARAMS.max_size)
    for source in (data, data[:4000]):  # streamed, then one buffer
        expected = [bytes(chunk.data) for chunk in cdc.cut_buf(source)]
        assert cut(source, None) == expected


def test_different_keys_give_different_boundaries() -> None:
    """On 1 MiB of random data, two repositories' keys share almost no cut point."""
    data = sample(2, 2**20)
    unkeyed = _cut_points(cut(data, None))
    first = _cut_points(cut(data, derive_chunker_key(MasterKeys.generate())))
    second = _cut_points(cut(data, derive_chunker_key(MasterKeys.generate())))
    # About 800 cuts each; independent keys share a cut point with odds of about 1 in 1,300 per
    # cut (about one shared point expected), so a bound of 5% cannot fail by chance.
    for one, other in ((first, second), (first, unkeyed), (second, unkeyed)):
        assert len(one & other) < len(one) // 20


def test_large_random_stream_with_default_parameters() -> None:
    """A 20 MiB source with the default parameters streams to the defined boundaries."""
    key = derive_chunker_key(MasterKeys.generate())
    data = sample(3, 20 * 2**20)
    params = ChunkerParams()
    expected = reference(data, key, params)
    assert cut(data, key, params) == expected
    assert list(iter_chunks(Trickle(data, [65536, 1 << 20, 7]), params, key)) == expected


def _cut_points(chunks: list[bytes]) -> set[int]:
    points = set()
    at = 0
    for chunk in chunks[:-1]:
        at += len(chunk)
        points.add(at)
    return points
