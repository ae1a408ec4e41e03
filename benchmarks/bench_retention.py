"""Retention benchmark: ``plan`` over 100,000 and 1,000,000 snapshots.

* time of ``plan`` for a few policies, best of several runs, on snapshots in listing order
  (oldest first, created in that order, as a repository lists its time-sortable manifests)
  and in random order (the worst case: the sort does real work and every pass over the sorted
  snapshots jumps around memory);
* ``ratio`` = time(1,000,000) / time(100,000); an n log n engine stays at or below 12. For
  scale, the same ratio is measured for Python's own ``sorted()`` of the snapshots'
  timestamps: on a machine whose caches hold 100,000 snapshots but not 1,000,000, even that
  built-in n log n sort shows a ratio above 12;
* peak memory that ``plan(1,000,000)`` allocates on top of its input (tracemalloc), and the
  process's peak resident size.

Results: printed as a Markdown table and written to ``benchmarks/results/retention.json``.
Run it as ``python benchmarks/bench_retention.py``.
"""

from __future__ import annotations

import gc
import json
import platform
import random
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ctfy_vault.retention import Policy, plan, unlimited

HERE = Path(__file__).parent
RESULTS = HERE / "results"
SIZES = (100_000, 1_000_000)
RUNS = 5
TARGET_RATIO = 12.0
SPAN = timedelta(days=10 * 365)
START = datetime(2016, 1, 1, tzinfo=UTC)

POLICIES = {
    "contractify": Policy.contractify(),
    "restic-style counts": Policy(last=10, hourly=48, daily=14, weekly=8, monthly=12, yearly=5),
    "contractify, Europe/Brussels": Policy.contractify(tz="Europe/Brussels"),
    "daily=unlimited, Europe/Brussels": Policy(daily=unlimited, tz="Europe/Brussels"),
    "within=20y (keeps all)": Policy(within="20y"),
}
# The policies also timed on snapshots in listing order; the others only in random order.
LISTED = ("contractify",)


def snapshots(count: int, seed: int, *, listing: bool = False) -> list[datetime]:
    """Return ``count`` aware snapshot times spread over ten years.

    In random order by default; with ``listing``, oldest first and created in that order, as
    a repository listing (sorted by name) would create them.
    """
    rng = random.Random(seed)
    seconds = int(SPAN.total_seconds())
    offsets = [rng.randrange(seconds) for _ in range(count)]
    if listing:
        offsets.sort()
    return [START + timedelta(seconds=offset) for offset in offsets]


def best_times(
    data: dict[int, list[datetime]], run: Callable[[list[datetime]], int]
) -> dict[int, Any]:
    """Return, per size, the best wall and CPU seconds of ``RUNS`` calls of ``run``.

    Sizes alternate within each round, so a burst of load on a shared machine hits both.
    """
    walls: dict[int, list[float]] = {size: [] for size in data}
    cpus: dict[int, list[float]] = {size: [] for size in data}
    kept: dict[int, int] = {}
    for _ in range(RUNS):
        for size, times in data.items():
            gc.collect()
            wall, cpu = time.perf_counter(), time.process_time()
            kept[size] = run(times)
            walls[size].append(time.perf_counter() - wall)
            cpus[size].append(time.process_time() - cpu)
    return {
        size: {
            "seconds": round(min(walls[size]), 4),
            "cpu_seconds": round(min(cpus[size]), 4),
            "kept": kept[size],
        }
        for size in data
    }


def planner(policy: Policy) -> Callable[[list[datetime]], int]:
    """Return a function that plans a history with ``policy`` and counts what it keeps."""

    def run(times: list[datetime]) -> int:
        return len(plan(times, policy).keep)

    return run


def builtin_sort(times: list[datetime]) -> int:
    """Sort the timestamps with Python's own sort: the reference n log n cost."""
    return len(sorted([moment.timestamp() for moment in times], reverse=True))


def peak_allocated(times: list[datetime], policy: Policy) -> int:
    """Return the most bytes ``plan`` holds at once beyond its input (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    result = plan(times, policy)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return peak


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "seconds_100k": row[str(SIZES[0])]["seconds"],
        "seconds_1m": row[str(SIZES[1])]["seconds"],
        "ratio": row["ratio"],
        "within_target": row["ratio"] <= TARGET_RATIO,
    }


def measure() -> dict[str, Any]:
    """Run every measurement and return the results."""
    inputs = {size: snapshots(size, seed=size) for size in SIZES}
    listed = {size: snapshots(size, seed=size, listing=True) for size in SIZES}
    rows: list[dict[str, Any]] = []
    cases: list[tuple[str, str, str, Callable[[list[datetime]], int], dict[int, list[datetime]]]]
    cases = [("reference: sorted() of the timestamps", "-", "random", builtin_sort, inputs)]
    for name, policy in POLICIES.items():
        cases.append((name, str(policy), "random", planner(policy), inputs))
        if name in LISTED:
            cases.append((name, str(policy), "listing", planner(policy), listed))
    for name, spec, order, run, data in cases:
        row: dict[str, Any] = {"policy": name, "spec": spec, "order": order}
        row.update({str(size): result for size, result in best_times(data, run).items()})
        small, large = row[str(SIZES[0])], row[str(SIZES[1])]
        row["ratio"] = round(large["seconds"] / small["seconds"], 2)
        row["cpu_ratio"] = round(large["cpu_seconds"] / small["cpu_seconds"], 2)
        rows.append(row)
        print(f"  {name} ({order}): {large['seconds']:.3f} s, ratio {row['ratio']}", flush=True)
    peak = peak_allocated(inputs[SIZES[-1]], POLICIES["contractify"])
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_bytes = rss if sys.platform == "darwin" else rss * 1024
    contractify = [row for row in rows if row["policy"] == "contractify"]
    return {
        "benchmark": "retention plan",
        "sizes": list(SIZES),
        "runs": RUNS,
        "target_ratio": TARGET_RATIO,
        "headline": {
            "policy": "contractify",
            **{row["order"]: _summary(row) for row in contractify},
            "builtin_sort": _summary(rows[0]),
        },
        "peak_plan_mib_1m": round(peak / 2**20, 1),
        "peak_rss_mib": round(rss_bytes / 2**20, 1),
        "rows": rows,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
        },
    }


def table(results: dict[str, Any]) -> str:
    """Return the results as a Markdown table."""
    small, large = (str(size) for size in SIZES)
    lines = [
        "| policy | order | 100k (s) | 1M (s) | ratio | CPU ratio | kept of 1M |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['policy']} | {row['order']} | {row[small]['seconds']:.3f} | "
            f"{row[large]['seconds']:.3f} | {row['ratio']:.2f} | {row['cpu_ratio']:.2f} | "
            f"{row[large]['kept']:,} |"
        )
    lines.append("")
    lines.append(
        f"Peak memory of plan(1M) beyond its input: {results['peak_plan_mib_1m']} MiB "
        f"(tracemalloc); peak RSS of the benchmark process: {results['peak_rss_mib']} MiB."
    )
    headline = results["headline"]
    for order in ("listing", "random"):
        figures = headline[order]
        verdict = "within" if figures["within_target"] else "above"
        lines.append(
            f"contractify, {order} order: {figures['seconds_1m']:.3f} s for 1M, ratio "
            f"{figures['ratio']} ({verdict} the target of {TARGET_RATIO:g})."
        )
    lines.append(
        f"Python's own sorted() of the same timestamps scales by "
        f"{headline['builtin_sort']['ratio']} on this machine."
    )
    return "\n".join(lines)


def main() -> int:
    """Measure, print the table and write ``results/retention.json``."""
    print(f"Timing plan() over {', '.join(f'{size:,}' for size in SIZES)} snapshots...")
    results = measure()
    print()
    print(table(results))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "retention.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
