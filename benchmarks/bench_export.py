"""Export benchmark: `export` to a local target vs ``zip -r`` of the same files in the same run.

Data on local disk, one tenant: 2,000 documents of 64 KiB and 8 of 32 MiB (381 MiB), each half
random bytes and half text, so deflate has work to do but cannot shrink everything. Each tool
archives the tenant's folder into a fresh file on the same disk:

* deflate: `export` (zip, level 6) vs ``zip -r -q -6``;
* store: `export(compression="store")` vs ``zip -r -q -0``;
* tar.gz: `export(format="tar.gz")` vs ``tar -czf`` (for reference).

Each pair runs twice, alternating, and the faster run counts. ``*_ratio`` = our time / theirs
(1.0 = as fast; below is faster). Our time includes what ``zip`` does not do: SHA-256 of every file
and of the archive, the inventory and the register record. ``zip`` is installed with apt-get if
missing. Results: a Markdown table and ``benchmarks/results/export.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE.parent))

from ctfy_vault.export import export  # noqa: E402
from ctfy_vault.storage import Target  # noqa: E402

SMALL = (2000, 64 * 2**10)
LARGE = (8, 32 * 2**20)
TEXT = b"Artikel 7. De verwerker bewaart de documenten van de klant in de EU. " * 64


def ensure(tool: str) -> str | None:
    """Return the tool's path, installing Debian's package if it is missing; None if impossible."""
    found = shutil.which(tool)
    if found:
        return found
    print(f"{tool} missing: apt-get install -y {tool}", flush=True)
    subprocess.run(["apt-get", "install", "-y", tool], check=False)
    return shutil.which(tool)


def _content(size: int) -> bytes:
    half = size // 2
    text = (TEXT * (half // len(TEXT) + 1))[: size - half]
    return os.urandom(half) + text


def seed(folder: Path) -> int:
    """Write the tenant's documents (untimed); return their total size."""
    total = 0
    for sub, (count, size) in (("small", SMALL), ("large", LARGE)):
        (folder / sub).mkdir(parents=True)
        for i in range(count):
            data = _content(size)
            (folder / sub / f"{i:05d}.bin").write_bytes(data)
            total += len(data)
    return total


def timed(fn: Callable[[], object]) -> float:
    """Return the seconds ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _drop_caches_hint(folder: Path) -> None:
    # Read everything once so both tools start with the same (warm) page cache.
    for path in folder.rglob("*"):
        if path.is_file():
            path.read_bytes()


def main() -> dict[str, Any]:
    """Run every export scenario and write the results."""
    zip_tool = ensure("zip")
    results: dict[str, Any] = {}
    if zip_tool is None:
        print("SKIPPED: zip is not installed and apt-get could not install it")
        return results
    with tempfile.TemporaryDirectory(prefix="ctfy-bench-export-") as scratch:
        root = Path(scratch)
        docs = root / "docs"
        total = seed(docs / "acme")
        _drop_caches_hint(docs)
        source = Target.from_url(str(docs))
        runs = 0

        def ours(**options: Any) -> Callable[[], object]:
            def run() -> object:
                nonlocal runs
                runs += 1
                dest = Target.from_url(str(root / f"ours-{runs}"))
                return export(source, dest, tenant="acme", link=False, **options)

            return run

        def theirs(*argv: str, suffix: str) -> Callable[[], object]:
            def run() -> object:
                nonlocal runs
                runs += 1
                out = root / f"theirs-{runs}{suffix}"
                return subprocess.run([*argv, str(out), "acme"], cwd=docs, check=True)

            return run

        scenarios = {
            "deflate": (ours(level=6), theirs(zip_tool, "-r", "-q", "-6", suffix=".zip")),
            "store": (ours(compression="store"), theirs(zip_tool, "-r", "-q", "-0", suffix=".zip")),
            "targz": (ours(format="tar.gz", level=6), theirs("tar", "-czf", suffix=".tar.gz")),
        }
        for name, (mine, other) in scenarios.items():
            mine_s: list[float] = []
            other_s: list[float] = []
            for _ in range(2):
                mine_s.append(timed(mine))
                other_s.append(timed(other))
            results[f"{name}_ours_s"] = min(mine_s)
            results[f"{name}_reference_s"] = min(other_s)
            results[f"{name}_ours_mib_s"] = total / 2**20 / min(mine_s)
            results[f"{name}_reference_mib_s"] = total / 2**20 / min(other_s)
            results[f"{name}_ratio"] = min(mine_s) / min(other_s)
            for path in root.glob("ours-*"):
                shutil.rmtree(path)
            for path in root.glob("theirs-*"):
                path.unlink()
        results["files"] = SMALL[0] + LARGE[0]
        results["bytes"] = total
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "export.json").write_text(json.dumps(results, indent=2) + "\n")
    print("| export measure | value |\n|---|---|")
    for name, value in results.items():
        print(f"| {name} | {value:.3f} |" if isinstance(value, float) else f"| {name} | {value} |")
    return results


if __name__ == "__main__":
    main()
