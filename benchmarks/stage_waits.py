"""Share of time each backup stage is busy, waits, or has no work, from py-spy samples.

Record a backup with every thread sampled, idle ones included, in py-spy's raw format, then read
the samples::

    py-spy record --idle --threads -f raw -o backup.txt -- python my_backup.py
    python benchmarks/stage_waits.py backup.txt

Threads are told apart by what they run: the reader (the thread calling ``Writer.backup``), the
sealers (``_pack_chunk`` / ``_store_chunk`` in the sealing pool), format 2's pack writers
(``Packer._drain``), format 1's chunk writers (``Writer._put`` in the writing pool) and the hashing
thread. A sample is *idle* when its thread waits for work (an empty pool or queue), *waiting*
when it is blocked in the pipeline (the in-flight limiter, a full pack queue, a chunk's writes),
and *busy* otherwise. py-spy is not a dependency of the project; install it where you profile.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from pathlib import Path

#: Frames that mean a thread is blocked inside the pipeline rather than waiting for work.
_IN_PIPELINE = (
    "_store_chunk",
    "_pack_chunk",
    "Writer._chunk_all",
    "Writer._put",
    "_store_pack",
    "Packer.add",
    "_settle_chunks",
    "_Run.drain",
    "_commit",
)


def _stage(names: str) -> str | None:
    if "Packer._drain" in names:
        return "pack writers"
    if "Thread._bootstrap" in names and ("_store_chunk" in names or "_pack_chunk" in names):
        return "sealers"
    if "Thread._bootstrap" in names and "Writer._put" in names:
        return "chunk writers"
    if "_Hasher._run" in names:
        return "hasher"
    if "Writer.backup" in names and "Thread._bootstrap" not in names:
        return "reader"
    return None


def _state(frames: list[str]) -> str:
    leaf = frames[-1] if frames else ""
    joined = ";".join(frames)
    blocked = "Condition.wait" in leaf or "acquire" in leaf or "wait (concurrent" in joined
    if leaf.startswith("_worker") or (
        ("Queue.get" in joined or "Condition.wait" in leaf)
        and not any(name in joined for name in _IN_PIPELINE)
    ):
        return "idle"
    if blocked or "Queue.put" in joined:
        return "waiting"
    return "busy"


def shares(raw: Path) -> dict[str, Counter[str]]:
    """Samples per stage and state (``busy``, ``waiting``, ``idle``) from a py-spy raw file."""
    threads: dict[str, list[tuple[list[str], int]]] = defaultdict(list)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        thread, *frames = stack.split(";")
        threads[thread].append((frames, int(count)))
    found: dict[str, Counter[str]] = defaultdict(Counter)
    for samples in threads.values():
        stage = _stage(";".join(";".join(frames) for frames, _ in samples))
        if stage is None:
            continue
        for stack_frames, samples_taken in samples:
            if stage == "reader" and not any("Writer.backup" in f for f in stack_frames):
                continue  # the main thread before and after the backup
            found[stage][_state(stack_frames)] += samples_taken
    return found


def main(argv: list[str]) -> int:
    """Print each stage's shares for the py-spy raw file named in ``argv``."""
    if len(argv) != 1:
        print("usage: stage_waits.py PY-SPY-RAW-FILE", file=sys.stderr)
        return 2
    for stage, counts in sorted(shares(Path(argv[0])).items()):
        total = sum(counts.values())
        parts = "  ".join(
            f"{state} {counts[state] / total:6.1%}" for state in ("busy", "waiting", "idle")
        )
        print(f"{stage:14s} {parts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
