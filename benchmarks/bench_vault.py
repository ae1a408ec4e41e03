"""Vault benchmark: `Vault` backup, unchanged re-run and restore beside ``restic`` on the same tree.

A tree of 10,000 files totalling 1 GiB is generated from a fixed seed: sizes from a log-normal
spread (a few hundred bytes to several MiB), one third random bytes (incompressible), one third
text-like (compressible), one third half and half. Then, in the same run:

* ``Vault.backup`` of the tree to **3** local targets (encrypted, compressed), then again with
  nothing changed, then ``Vault.restore`` of the snapshot into an empty folder;
* ``restic backup`` of the tree into **1** local restic repository (Debian's ``restic``, installed
  with apt-get if missing; ``RESTIC_PASSWORD`` set here), again unchanged, then ``restic restore``;
* for reference, ``Vault.backup`` of the tree to 1 local target.

``*_ratio`` = our time / restic's time (issue 6's target: first backup <= 1.0 while writing three
targets to restic's one); ``repo_size_ratio`` = one of our targets' bytes on disk / restic's
repository bytes. Both restores are checked (file count and bytes) before their times count.

Results: printed as a Markdown table and written to ``benchmarks/results/vault.json`` (the full
size only; a smaller run writes ``vault-small.json``). Run: ``python benchmarks/bench_vault.py``
(a few minutes; about 4 GiB of temporary disk), or ``--small`` (64 MiB, 1,000 files) to smoke-test;
``BENCH_VAULT_MIB`` and ``BENCH_VAULT_FILES`` override the size. ``--repeat N`` runs N interleaved
rounds and keeps each step's best time (and its worst, to show the noise).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ctfy_vault.crypto import RawKey
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault

HERE = Path(__file__).parent
RESULTS = HERE / "results"
MIB = 2**20
NOW = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
KEY = RawKey(b"k" * 32)
SEED = 20261126
RESTIC_PASSWORD = "bench-only-password"  # noqa: S105 - a throwaway benchmark repository


def _text_block(rng: random.Random) -> bytes:
    """A 1 MiB text-like block (SQL rows and log lines) that zstd compresses about 4-6x."""
    words = [rng.randbytes(rng.randint(2, 9)).hex() for _ in range(400)]
    lines = []
    size = 0
    while size < MIB:
        n = rng.getrandbits(20)
        line = (
            f"INSERT INTO events VALUES ({n}, '{rng.choice(words)}', '{rng.choice(words)}', "  # noqa: S608 - generated text, not a query
            f"'2026-11-{n % 28 + 1:02d} {n % 24:02d}:{n % 60:02d}');\n"
        )
        lines.append(line)
        size += len(line)
    return "".join(lines).encode()[:MIB]


def _sizes(rng: random.Random, files: int, total: int) -> list[int]:
    """Log-normal file sizes scaled to sum to ``total`` exactly (each at least 1 byte)."""
    raw = [rng.lognormvariate(0.0, 1.6) for _ in range(files)]
    scale = total / sum(raw)
    sizes = [max(1, int(r * scale)) for r in raw]
    sizes[-1] = max(1, sizes[-1] + total - sum(sizes))
    return sizes


def _content(rng: random.Random, text: bytes, size: int, kind: int) -> Iterator[bytes]:
    """Yield ``size`` bytes: random (0), text-like (1) or alternating halves (2)."""
    left = size
    while left:
        n = min(left, MIB)
        if kind == 0 or (kind == 2 and left % 2 == 0):
            yield rng.randbytes(n)
        else:
            start = rng.randrange(0, MIB - n + 1) if n < MIB else 0
            yield text[start : start + n]
        left -= n


def make_tree(root: Path, files: int, total: int) -> None:
    """Generate the tree: ``files`` files in 100-file folders, ``total`` bytes, from ``SEED``."""
    rng = random.Random(SEED)
    text = _text_block(rng)
    for index, size in enumerate(_sizes(rng, files, total)):
        folder = root / f"d{index // 1000:02d}" / f"s{index // 100 % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / f"f{index:05d}.dat").open("wb") as out:
            for block in _content(rng, text, size, index % 3):
                out.write(block)
        # Fixed mtimes, so both tools see the same metadata in every run.
        stamp = (NOW - timedelta(days=1)).timestamp() + index
        os.utime(folder / f"f{index:05d}.dat", (stamp, stamp))


def _tree_stats(root: Path) -> tuple[int, int]:
    count = size = 0
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            count += 1
            size += path.stat().st_size
    return count, size


def _disk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _sync() -> None:
    # Flush the previous step's writeback so it does not slow the next timed step.
    subprocess.run(["sync"], check=True)


def _timed(fn: Callable[[], object]) -> float:
    _sync()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _restic_path() -> str:
    found = shutil.which("restic")
    if found is None:
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", "restic"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        found = shutil.which("restic")
    if found is None:
        raise SystemExit("restic is not installed and apt-get did not install it")
    return found


def _restic(restic: str, repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "RESTIC_PASSWORD": RESTIC_PASSWORD,
        "RESTIC_REPOSITORY": str(repo),
        "RESTIC_CACHE_DIR": str(repo.parent / "restic-cache"),
    }
    subprocess.run([restic, "--quiet", *args], check=True, env=env, stdout=subprocess.DEVNULL)


def _check_restore(tree: Path, restored: Path, who: str) -> None:
    expected, got = _tree_stats(tree), _tree_stats(restored)
    if expected != got:
        raise SystemExit(f"{who} restored {got} (files, bytes), expected {expected}")


def bench_ours(tree: Path, work: Path, targets: int) -> dict[str, float]:
    """Back up to ``targets`` local targets, re-run unchanged, restore; return the figures."""
    folders = [work / f"target{n}" for n in range(targets)]
    vault = Vault.init(
        [Target.from_url(str(f), name=f"t{n}") for n, f in enumerate(folders)], key=KEY, now=NOW
    )
    label = f"ours_{targets}t"
    infos = []
    first = _timed(lambda: infos.append(vault.backup(tree, lineage="b", host="h", now=NOW)))
    again = _timed(
        lambda: infos.append(
            vault.backup(tree, lineage="b", host="h", now=NOW + timedelta(hours=1))
        )
    )
    figures = {f"{label}_first_s": first, f"{label}_unchanged_s": again}
    if infos[1].chunks_sealed != 0:
        raise SystemExit(f"the unchanged re-run sealed {infos[1].chunks_sealed} chunk(s)")
    if targets > 1:
        dest = work / "restore"
        figures[f"{label}_restore_s"] = _timed(lambda: vault.restore(infos[0], dest))
        _check_restore(tree, dest / tree.name, "Vault.restore")
        shutil.rmtree(dest)
    figures[f"{label}_repo_bytes"] = _disk_bytes(folders[0])
    for folder in folders:
        shutil.rmtree(folder)
    return figures


def bench_restic(tree: Path, work: Path) -> dict[str, float]:
    """``restic backup`` into one local repository, again unchanged, then ``restic restore``."""
    restic = _restic_path()
    repo = work / "restic-repo"
    _restic(restic, repo, "init")
    first = _timed(lambda: _restic(restic, repo, "backup", "--host", "h", str(tree)))
    again = _timed(lambda: _restic(restic, repo, "backup", "--host", "h", str(tree)))
    dest = work / "restic-restore"
    restore = _timed(lambda: _restic(restic, repo, "restore", "latest", "--target", str(dest)))
    _check_restore(tree, dest / tree.relative_to(tree.anchor), "restic restore")
    figures = {
        "restic_first_s": first,
        "restic_unchanged_s": again,
        "restic_restore_s": restore,
        "restic_repo_bytes": _disk_bytes(repo),
    }
    shutil.rmtree(dest)
    shutil.rmtree(repo)
    shutil.rmtree(work / "restic-cache", ignore_errors=True)
    return figures


def main(argv: list[str] | None = None) -> None:
    """Generate the tree, run both tools, print a Markdown table and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="64 MiB in 1,000 files")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds (restic, then ours, in each); each time is the best of the rounds",
    )
    args = parser.parse_args(argv)
    mib = int(os.environ.get("BENCH_VAULT_MIB", "64" if args.small else "1024"))
    files = int(os.environ.get("BENCH_VAULT_FILES", "1000" if args.small else "10000"))
    with tempfile.TemporaryDirectory(prefix="bench-vault-") as tmp:
        work = Path(tmp)
        tree = work / "tree"
        start = time.perf_counter()
        make_tree(tree, files, mib * MIB)
        count, size = _tree_stats(tree)
        print(
            f"generated {count} files, {size / MIB:.0f} MiB in {time.perf_counter() - start:.1f} s"
        )
        results: dict[str, float] = {"files": count, "tree_bytes": size}
        # Interleaved rounds, so a burst of other work on the machine hits both tools alike.
        rounds: list[dict[str, float]] = []
        for _ in range(max(1, args.repeat)):
            round_ = bench_restic(tree, work)
            round_.update(bench_ours(tree, work, 3))
            round_.update(bench_ours(tree, work, 1))
            rounds.append(round_)
        for key in rounds[0]:
            results[key] = min(r[key] for r in rounds)
            if key.endswith("_s") and len(rounds) > 1:
                results[key.removesuffix("_s") + "_worst_s"] = max(r[key] for r in rounds)
        results["rounds"] = len(rounds)
    for step in ("first", "unchanged", "restore"):
        results[f"{step}_ratio"] = results[f"ours_3t_{step}_s"] / results[f"restic_{step}_s"]
    results["first_1t_ratio"] = results["ours_1t_first_s"] / results["restic_first_s"]
    results["repo_size_ratio"] = results["ours_3t_repo_bytes"] / results["restic_repo_bytes"]
    results["cpus"] = os.cpu_count() or 0
    RESULTS.mkdir(exist_ok=True)
    name = "vault.json" if (mib, files) == (1024, 10000) else "vault-small.json"
    (RESULTS / name).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print("| measure | value |\n|---|---|")
    for key, value in results.items():
        shown = (
            f"{value:,.0f}"
            if key.endswith("bytes") or float(value).is_integer()
            else f"{value:.3f}"
        )
        print(f"| {key} | {shown} |")
    if not math.isfinite(results["first_ratio"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
