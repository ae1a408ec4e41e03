"""Chunker benchmark: keyed (format v2) against unkeyed (format v1) FastCDC throughput.

Both ways through `iter_chunks` with the default parameters, interleaved in one run:

* the buffer path: 32 sources of 8 MiB (``max_size``), each cut in one buffer call;
* the stream path: one 256 MiB source, read in 1 MiB blocks.

``ratio`` = keyed throughput / unkeyed throughput (target >= 0.8). Results are printed as a Markdown
table and written to ``benchmarks/results/chunker.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from ctfy_vault.crypto import ChunkerKey, MasterKeys, derive_chunker_key
from ctfy_vault.writer import DEFAULT_CHUNKER, iter_chunks

HERE = Path(__file__).parent
RESULTS = HERE / "results"
MIB = 2**20
TOTAL = 256 * MIB


class Blocks(io.RawIOBase):
    """A source over ``data`` that returns at most ``block`` bytes per read, like a pipe."""

    def __init__(self, data: memoryview, block: int) -> None:
        """Serve ``data`` in reads of at most ``block`` bytes."""
        self._data = data
        self._block = block
        self._at = 0

    def read(self, size: int = -1, /) -> bytes:
        """Return up to ``min(size, block)`` bytes."""
        size = self._block if size < 0 else min(size, self._block)
        piece = self._data[self._at : self._at + size].tobytes()
        self._at += len(piece)
        return piece


def drain(chunks: Iterator[bytes]) -> int:
    """Consume the chunks, returning how many bytes they hold."""
    return sum(len(chunk) for chunk in chunks)


def buffer_path(data: memoryview, key: ChunkerKey | None) -> int:
    """Cut ``data`` as sources of ``max_size`` bytes, each through the one-buffer path."""
    step = DEFAULT_CHUNKER.max_size
    return sum(
        drain(iter_chunks(io.BytesIO(data[at : at + step]), DEFAULT_CHUNKER, key))
        for at in range(0, len(data), step)
    )


def stream_path(data: memoryview, key: ChunkerKey | None) -> int:
    """Cut ``data`` as one source, through the stream path."""
    return drain(iter_chunks(Blocks(data, MIB), DEFAULT_CHUNKER, key))


def best(runs: int, fn: Callable[[], int]) -> float:
    """The fastest of ``runs`` calls, in seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        assert fn() == TOTAL
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    """Measure and report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(16)
    data = memoryview(b"".join(rng.randbytes(MIB) for _ in range(TOTAL // MIB)))
    key = derive_chunker_key(MasterKeys.generate())
    results: dict[str, dict[str, float]] = {}
    for name, path in (("buffer", buffer_path), ("stream", stream_path)):
        plain = keyed = float("inf")
        for _ in range(args.runs):  # interleaved, so both see the same machine load
            plain = min(plain, best(1, partial(path, data, None)))
            keyed = min(keyed, best(1, partial(path, data, key)))
        results[name] = {
            "unkeyed_mb_s": TOTAL / plain / 1e6,
            "keyed_mb_s": TOTAL / keyed / 1e6,
            "ratio": plain / keyed,
        }
    print("| path | unkeyed MB/s | keyed MB/s | keyed / unkeyed |")
    print("|---|---|---|---|")
    for name, row in results.items():
        print(
            f"| {name} | {row['unkeyed_mb_s']:.0f} | {row['keyed_mb_s']:.0f} | {row['ratio']:.2f} |"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "chunker.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
