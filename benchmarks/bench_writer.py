"""Writer benchmark: fan-out to three local targets vs ``tee``, second-backup cost, streaming memory.

* 1 GiB file to 3 local-disk targets vs ``tee`` of the same file into 3 files followed by
  ``sync`` of those files (the targets fsync every object, so the baseline makes its copies durable
  too). Plaintext mode (no encryption, no compression attempt): ``plaintext_vs_tee`` (target
  <= 1.3). Encrypted + compressed mode: ``encrypted_vs_tee``, with a single-thread breakdown of the
  stages (read + chunk, chunk ids, whole-file SHA-256, zstd + AES-GCM seal).
* Second backup of the unchanged file: time ratio to the first (target < 0.1) and bytes uploaded
  (target 0), without and with a parent manifest (which skips reading unchanged files).
* Peak RSS while streaming 100 MiB and 2 GiB of non-repeating data into 2 local targets, each in a
  fresh process (target: the same figure, within a small constant).

Results: printed as a Markdown table and written to ``benchmarks/results/writer.json``.
Run: ``python benchmarks/bench_writer.py`` (about three minutes; ~8 GiB of temporary disk).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from ctfy_vault.crypto import Kind, MasterKeys, Sealer
from ctfy_vault.storage import Target
from ctfy_vault.writer import DEFAULT_CHUNKER, BackupResult, StreamSource, Writer, iter_chunks

HERE = Path(__file__).parent
RESULTS = HERE / "results"
MIB = 2**20
GIB = 2**30
NOW = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
REPO_ID = bytes(16)
KEYS = MasterKeys(data_key=b"d" * 32, chunk_id_key=b"c" * 32)
#: One write at a time per local disk: concurrent fsyncs on one disk only contend (see docs).
LOCAL = 1


class _Generated:
    """A non-repeating stream of ``total`` bytes, produced block by block (never held whole)."""

    def __init__(self, total: int, seed: int = 1) -> None:
        self.left = total
        self.rng = random.Random(seed)

    def read(self, size: int, /) -> bytes:
        size = min(size, self.left, 4 * MIB)
        self.left -= size
        return self.rng.randbytes(size)


def _make_file(path: Path, size: int) -> None:
    source = _Generated(size)
    with path.open("wb") as out:
        while block := source.read(4 * MIB):
            out.write(block)


def _targets(folder: Path, count: int) -> list[Target]:
    return [Target.from_url(str(folder / f"t{n}")) for n in range(count)]


def _clean(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    # Flush the previous run's writeback so it does not slow the next timed run.
    subprocess.run(["sync"], check=True)


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _tee(source: Path, folder: Path) -> None:
    outputs = [str(folder / f"copy{n}") for n in range(3)]
    with source.open("rb") as stdin:
        subprocess.run(["tee", *outputs], stdin=stdin, stdout=subprocess.DEVNULL, check=True)
    subprocess.run(["sync", *outputs], check=True)


def _backup(writer: Writer, source: Path, parent: BackupResult | None = None) -> BackupResult:
    return writer.backup(
        [source],
        lineage="bench",
        host="bench",
        now=NOW,
        parent=parent.manifest if parent else None,
    )


def bench_fanout(source: Path, work: Path) -> dict[str, float]:
    """Fan out the file to three targets in both modes, interleaved with ``tee`` runs."""
    plain = Sealer.plaintext(repo_id=REPO_ID)
    sealed = Sealer(repo_id=REPO_ID, keys=KEYS)
    times: dict[str, list[float]] = {"tee": [], "plaintext": [], "encrypted": []}
    for _ in range(3):
        _clean(work)
        times["tee"].append(_timed(lambda: _tee(source, work)))
        _clean(work)
        plain_writer = Writer(_targets(work, 3), plain, compress=False, connections=LOCAL)
        times["plaintext"].append(_timed(partial(_backup, plain_writer, source)))
        _clean(work)
        sealed_writer = Writer(_targets(work, 3), sealed, connections=LOCAL)
        times["encrypted"].append(_timed(partial(_backup, sealed_writer, source)))
    tee, ours, enc = min(times["tee"]), min(times["plaintext"]), min(times["encrypted"])
    return {
        "tee_s": tee,
        "plaintext_s": ours,
        "encrypted_s": enc,
        "plaintext_vs_tee": ours / tee,
        "encrypted_vs_tee": enc / tee,
        # The slowest run of each, to show how noisy the disk is.
        "tee_worst_s": max(times["tee"]),
        "plaintext_worst_s": max(times["plaintext"]),
        "encrypted_worst_s": max(times["encrypted"]),
    }


def bench_second(source: Path, work: Path) -> dict[str, float]:
    """Back up the same file twice (three targets, encrypted); compare the second to the first."""
    _clean(work)
    writer = Writer(_targets(work, 3), Sealer(repo_id=REPO_ID, keys=KEYS), connections=LOCAL)
    start = time.perf_counter()
    first = _backup(writer, source)
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    again = _backup(writer, source)
    again_s = time.perf_counter() - start
    start = time.perf_counter()
    with_parent = _backup(writer, source, parent=first)
    parent_s = time.perf_counter() - start
    chunk_bytes = sum(o.bytes_uploaded for o in again.outcomes) - sum(
        len(t.read(f"snapshots/{again.name}")) for t in writer.targets
    )
    return {
        "first_s": first_s,
        "second_s": again_s,
        "second_ratio": again_s / first_s,
        "second_with_parent_s": parent_s,
        "second_with_parent_ratio": parent_s / first_s,
        "second_chunks_uploaded": sum(o.chunks_uploaded for o in again.outcomes),
        "second_chunk_bytes_uploaded": chunk_bytes,
        "second_with_parent_chunks_uploaded": sum(o.chunks_uploaded for o in with_parent.outcomes),
    }


def bench_stages(source: Path, work: Path) -> dict[str, float]:
    """Single-thread cost of each stage over the file in MiB/s, and the storage floor in seconds.

    The floor writes the file's 4 MiB blocks to the three local targets with one thread per target
    and nothing else: what the targets' create-only, fsync-per-object writes cost on their own.
    """
    size = source.stat().st_size
    sealer = Sealer(repo_id=REPO_ID, keys=KEYS)
    spent = {"chunk": 0.0, "ids": 0.0, "sha": 0.0, "seal": 0.0}
    with source.open("rb") as handle:
        chunks = iter_chunks(handle, DEFAULT_CHUNKER)
        while True:
            start = time.perf_counter()
            chunk = next(chunks, None)
            spent["chunk"] += time.perf_counter() - start
            if chunk is None:
                break
            spent["ids"] += _timed(partial(hmac.digest, KEYS.chunk_id_key, chunk, "sha256"))
            spent["sha"] += _timed(partial(hashlib.sha256, chunk))
            spent["seal"] += _timed(partial(sealer.seal, Kind.CHUNK, "00" * 32, chunk))
    _clean(work)
    targets = _targets(work, 3)

    def floor() -> None:
        with source.open("rb") as handle, ThreadPoolExecutor(max_workers=3) as pool:
            index = 0
            while block := handle.read(4 * MIB):
                key = f"objects/{index:08d}"
                list(pool.map(lambda t, k=key, b=block: t.write(k, b), targets))
                index += 1

    mib = size / MIB
    return {
        "stage_read_and_chunk_mib_s": mib / spent["chunk"],
        "stage_chunk_ids_mib_s": mib / spent["ids"],
        "stage_file_sha256_mib_s": mib / spent["sha"],
        "stage_seal_zstd_aes_mib_s": mib / spent["seal"],
        "storage_floor_s": _timed(floor),
    }


def rss_child(total: int, folder: str) -> None:
    """Stream ``total`` generated bytes into two local targets and print the peak RSS in KiB."""
    writer = Writer(_targets(Path(folder), 2), Sealer(repo_id=REPO_ID, keys=KEYS))
    warm = writer.backup(
        [StreamSource(name="warm", stream=io.BytesIO(b"w" * MIB))],
        lineage="bench",
        host="bench",
        now=NOW,
    )
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = writer.backup(
        [StreamSource(name="stream", stream=_Generated(total, seed=total))],
        lineage="bench",
        host="bench",
        now=NOW,
        previous=warm.hash,
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"read": result.bytes_read, "baseline_kib": baseline, "peak_kib": peak}))


def bench_rss(work: Path) -> dict[str, float]:
    """Peak RSS of 100 MiB vs 2 GiB streamed, each in a fresh process."""
    figures = {}
    for label, total in (("100mib", 100 * MIB), ("2gib", 2 * GIB)):
        _clean(work)
        out = subprocess.run(
            [sys.executable, __file__, "--rss", str(total), str(work)],
            check=True,
            capture_output=True,
            text=True,
        )
        report = json.loads(out.stdout)
        figures[f"rss_peak_{label}_mib"] = report["peak_kib"] / 1024
        figures[f"rss_growth_{label}_mib"] = (report["peak_kib"] - report["baseline_kib"]) / 1024
    figures["rss_peak_difference_mib"] = (
        figures["rss_peak_2gib_mib"] - figures["rss_peak_100mib_mib"]
    )
    return figures


def main() -> None:
    """Run every measurement, print a Markdown table and write ``results/writer.json``."""
    if len(sys.argv) == 4 and sys.argv[1] == "--rss":
        rss_child(int(sys.argv[2]), sys.argv[3])
        return
    with tempfile.TemporaryDirectory(prefix="bench-writer-") as tmp:
        folder = Path(tmp)
        source = folder / "source.bin"
        _make_file(source, GIB)
        results: dict[str, float] = {}
        # Memory first, while this process is small (a child starts from a copy of its parent).
        results.update(bench_rss(folder / "work"))
        results.update(bench_fanout(source, folder / "work"))
        results.update(bench_second(source, folder / "work"))
        results.update(bench_stages(source, folder / "work"))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "writer.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print("| measure | value |\n|---|---|")
    for name, value in results.items():
        print(f"| {name} | {value:.3f} |")


if __name__ == "__main__":
    main()
