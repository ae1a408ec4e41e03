"""Storage benchmark: create-only writes, streaming memory and listing, as ratios to same-run baselines.

* local streamed write (temporary file, fsync, link) vs a plain ``open(..., "wb")`` + fsync of the
  same bytes: ``write_ratio`` = our time / baseline time (target <= 1.25);
* peak RSS growth while streaming 100 MiB and 1 GiB into a local target, each in a fresh process:
  ``rss_growth_ratio`` = growth(1 GiB) / growth(100 MiB) (target: about 1, i.e. independent of size);
* listing 10,000 keys vs ``os.walk`` over the same folder: ``list_ratio`` (target <= 3).

Results: printed as a Markdown table and written to ``benchmarks/results/storage.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ctfy_vault import Target

HERE = Path(__file__).parent
RESULTS = HERE / "results"
MIB = 2**20


def blocks(total: int, block: int = MIB) -> Iterator[bytes]:
    """Yield ``total`` bytes in ``block``-sized pieces without holding them all."""
    pattern = os.urandom(block)
    sent = 0
    while sent < total:
        size = min(block, total - sent)
        yield pattern[:size]
        sent += size


def best_of(
    runs: int, baseline: Callable[[int], None], ours: Callable[[int], None]
) -> tuple[float, float]:
    """Time both functions ``runs`` times, interleaved (so disk writeback hits both alike).

    Returns the fastest time of each, baseline first.
    """
    times: tuple[list[float], list[float]] = ([], [])
    for run in range(runs):
        for fn, out in ((baseline, times[0]), (ours, times[1])):
            start = time.perf_counter()
            fn(run)
            out.append(time.perf_counter() - start)
    return min(times[0]), min(times[1])


def bench_write(folder: Path, size: int) -> dict[str, float]:
    """Time a local streamed create-only write against a plain buffered write + fsync."""
    target = Target.from_url(str(folder / "target"))

    def ours(run: int) -> None:
        target.write_stream(f"obj-{run}", blocks(size))

    def baseline(run: int) -> None:
        with open(folder / f"plain-{run}", "wb") as out:
            for block in blocks(size):
                out.write(block)
            out.flush()
            os.fsync(out.fileno())

    base, mine = best_of(5, baseline, ours)
    return {
        "write_mib": size / MIB,
        "write_baseline_s": base,
        "write_ours_s": mine,
        "write_ratio": mine / base,
        "write_mib_per_s": size / MIB / mine,
    }


CHILD = """
import json, resource, sys
from ctfy_vault import Target
sys.path.insert(0, {here!r})
from bench_storage import blocks
target = Target.from_url({url!r})
target.write_stream("warmup", blocks(9 * 2**20))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
target.write_stream("big", blocks({size}))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"growth_kib": after - before, "peak_kib": after}}))
"""


def rss_growth(folder: Path, size: int) -> dict[str, int]:
    """Stream ``size`` bytes into a local target in a fresh process; return its RSS growth."""
    code = CHILD.format(here=str(HERE), url=str(folder), size=size)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600
    )
    result: dict[str, int] = json.loads(out.stdout)
    return result


def bench_memory(folder: Path) -> dict[str, float]:
    """Compare peak RSS growth for a 100 MiB and a 1 GiB stream."""
    small = rss_growth(folder / "small", 100 * MIB)
    large = rss_growth(folder / "large", 1024 * MIB)
    return {
        "rss_growth_100mib_kib": small["growth_kib"],
        "rss_growth_1gib_kib": large["growth_kib"],
        "rss_peak_1gib_mib": large["peak_kib"] / 1024,
        "rss_growth_difference_mib": (large["growth_kib"] - small["growth_kib"]) / 1024,
    }


def bench_list(folder: Path, count: int) -> dict[str, float]:
    """Time listing ``count`` keys against ``os.walk`` of the same tree."""
    target = Target.from_url(str(folder / "many"))
    for n in range(count):
        target.write(f"objects/{n % 256:02x}/{n:06d}", b"x")

    def ours(_run: int) -> None:
        assert sum(1 for _ in target.list("objects")) == count

    def baseline(_run: int) -> None:
        found = sum(len(files) for _, _, files in os.walk(folder / "many" / "objects"))
        assert found == count

    base, mine = best_of(3, baseline, ours)
    return {
        "list_keys": count,
        "list_baseline_s": base,
        "list_ours_s": mine,
        "list_ratio": mine / base,
    }


def main() -> dict[str, float]:
    """Run every storage scenario and write the results."""
    with tempfile.TemporaryDirectory(prefix="ctfy-bench-") as scratch:
        folder = Path(scratch)
        results: dict[str, float] = {}
        results.update(bench_write(folder, 256 * MIB))
        results.update(bench_memory(folder))
        results.update(bench_list(folder, 10_000))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "storage.json").write_text(json.dumps(results, indent=2) + "\n")
    print("| storage measure | value |\n|---|---|")
    for name, value in results.items():
        print(f"| {name} | {value:.3f} |")
    return results


if __name__ == "__main__":
    main()
