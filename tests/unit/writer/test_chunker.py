"""The chunker: a small source is cut in one buffer call, a large one streamed, same boundaries."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st
from pyfastcdc import FastCDC

from ctfy_vault.writer import ChunkerParams
from ctfy_vault.writer._chunker import iter_chunks

PARAMS = ChunkerParams(min_size=256, avg_size=1024, max_size=4096)


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


def reference(data: bytes) -> list[bytes]:
    """The boundaries FastCDC's stream cutter gives on the whole input."""
    cdc = FastCDC(PARAMS.avg_size, min_size=PARAMS.min_size, max_size=PARAMS.max_size)
    return [bytes(chunk.data) for chunk in cdc.cut_stream(io.BytesIO(data))]


@settings(max_examples=200, deadline=None)
@given(
    data=st.one_of(st.binary(max_size=5000), st.binary(min_size=3000, max_size=40000)),
    steps=st.lists(st.integers(1, 9000), min_size=1, max_size=5),
)
def test_boundaries_match_the_stream_cutter_whatever_the_reads(
    data: bytes, steps: list[int]
) -> None:
    """Around ``max_size`` and with short reads, chunks equal the stream cutter's and cover all."""
    expected = reference(data)
    assert list(iter_chunks(io.BytesIO(data), PARAMS)) == expected
    got = list(iter_chunks(Trickle(data, steps), PARAMS))
    assert got == expected
    assert b"".join(got) == data


def test_exact_sizes_at_the_switch() -> None:
    """Sources of max_size - 1, max_size and max_size + 1 bytes cut alike both ways."""
    for size in (PARAMS.max_size - 1, PARAMS.max_size, PARAMS.max_size + 1):
        data = bytes((n * 7919) % 251 for n in range(size))
        assert list(iter_chunks(io.BytesIO(data), PARAMS)) == reference(data)
