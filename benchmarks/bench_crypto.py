"""Crypto benchmark: sealing overhead, compression on a SQL dump, scrypt cost, manifest memory.

* 4 MiB random chunks: `Sealer.seal` vs a bare ``AESGCM.encrypt`` of the same bytes, `Sealer.open`
  vs ``AESGCM.decrypt``, and the round trip vs encrypt + decrypt, interleaved in the same run:
  ``*_ratio`` = baseline time / our time, i.e. our throughput as a fraction of the raw AEAD's
  (target >= 0.9). The full chunk path (keyed id + seal, open + id check) is reported beside it.
* A generated SQL dump (``INSERT`` lines, 64 MiB) cut into 4 MiB chunks: compression ratio
  (plaintext / sealed bytes) and seal / open throughput.
* The default scrypt parameters of a passphrase slot: seconds per derivation (floor 0.25 s).
* A manifest of ``--files`` files (default 1,000,000), sealed in one fresh process and opened in
  another: wall time and peak RSS above the process's starting point, plus the model's own size.

Results: printed as a Markdown table and written to ``benchmarks/results/crypto.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ctfy_vault.crypto import DEFAULT_SCRYPT, Kind, MasterKeys, Passphrase, Sealer, new_repo_id

HERE = Path(__file__).parent
RESULTS = HERE / "results"
MIB = 2**20
CHUNK = 4 * MIB


def best_of(runs: int, *fns: Callable[[], object]) -> list[float]:
    """Time each function ``runs`` times, interleaved, and return each one's fastest time."""
    best = [float("inf")] * len(fns)
    for _ in range(runs):
        for index, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[index] = min(best[index], time.perf_counter() - start)
    return best


def bench_overhead(runs: int) -> dict[str, float]:
    """Compare sealing and opening a 4 MiB random chunk with the bare AEAD calls."""
    keys = MasterKeys.generate()
    sealer = Sealer(repo_id=new_repo_id(), keys=keys)
    aead = AESGCM(keys.data_key)
    data = os.urandom(CHUNK)
    nonce = os.urandom(12)
    ad = b"x" * 64  # about the size of the real associated data
    ciphertext = aead.encrypt(nonce, data, ad)
    blob = sealer.seal(Kind.CHUNK, "name", data)
    chunk = sealer.seal_chunk(data)
    # Each comparison interleaves only its own pair, so both sides see the same allocator state.
    raw_enc, seal = best_of(
        runs, lambda: aead.encrypt(nonce, data, ad), lambda: sealer.seal(Kind.CHUNK, "name", data)
    )
    raw_dec, opened = best_of(
        runs,
        lambda: aead.decrypt(nonce, ciphertext, ad),
        lambda: sealer.open(Kind.CHUNK, "name", blob),
    )
    raw_trip, trip = best_of(
        runs,
        lambda: aead.decrypt(nonce, aead.encrypt(nonce, data, ad), ad),
        lambda: sealer.open(Kind.CHUNK, "name", sealer.seal(Kind.CHUNK, "name", data)),
    )
    chunk_seal, chunk_open = best_of(
        runs, lambda: sealer.seal_chunk(data), lambda: sealer.open_chunk(chunk.id, chunk.blob)
    )
    mib = CHUNK / MIB
    return {
        "raw_encrypt_mib_s": mib / raw_enc,
        "seal_mib_s": mib / seal,
        "seal_ratio": raw_enc / seal,
        "raw_decrypt_mib_s": mib / raw_dec,
        "open_mib_s": mib / opened,
        "open_ratio": raw_dec / opened,
        "round_trip_ratio": raw_trip / trip,
        "chunk_seal_with_id_mib_s": mib / chunk_seal,
        "chunk_open_with_id_check_mib_s": mib / chunk_open,
    }


def sql_dump(size: int, seed: int = 7) -> bytes:
    """Generate a plausible SQL dump of about ``size`` bytes: INSERT lines with varied values."""
    rng = random.Random(seed)
    words = [
        "contract", "renewal", "supplier", "lease", "licence", "amendment", "annex", "notice",
        "Amsterdam", "Ghent", "Dublin", "Frankfurt", "active", "expired", "draft", "signed",
    ]  # fmt: skip
    lines: list[bytes] = []
    total = 0
    row = 0
    while total < size:
        row += 1
        title = " ".join(rng.choice(words) for _ in range(rng.randint(2, 6)))
        # Test data for a compression measurement, never executed against a database.
        line = (
            f"INSERT INTO contracts (id, tenant_id, title, status, value_cents, signed_on, "  # noqa: S608
            f"owner_email) VALUES ({row}, {rng.randint(1, 400)}, '{title}', "
            f"'{rng.choice(words[-4:])}', {rng.randint(0, 10**9)}, "
            f"'20{rng.randint(10, 26)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}', "
            f"'user{rng.randint(1, 5000)}@tenant{rng.randint(1, 400)}.example');\n"
        ).encode()
        lines.append(line)
        total += len(line)
    return b"".join(lines)[:size]


def bench_sql(size: int) -> dict[str, float]:
    """Compression ratio and throughput of sealing a SQL dump in 4 MiB chunks."""
    sealer = Sealer(repo_id=new_repo_id(), keys=MasterKeys.generate())
    dump = sql_dump(size)
    pieces = [dump[i : i + CHUNK] for i in range(0, len(dump), CHUNK)]
    start = time.perf_counter()
    chunks = [sealer.seal_chunk(piece) for piece in pieces]
    sealed_s = time.perf_counter() - start
    start = time.perf_counter()
    for chunk in chunks:
        sealer.open_chunk(chunk.id, chunk.blob)
    opened_s = time.perf_counter() - start
    stored = sum(len(chunk.blob) for chunk in chunks)
    return {
        "sql_dump_mib": len(dump) / MIB,
        "sql_compression_ratio": len(dump) / stored,
        "sql_seal_mib_s": len(dump) / MIB / sealed_s,
        "sql_open_mib_s": len(dump) / MIB / opened_s,
    }


def bench_scrypt() -> dict[str, float]:
    """Seconds for one derivation with the default scrypt parameters (best of three)."""
    passphrase = Passphrase("benchmark passphrase")
    (seconds,) = best_of(3, lambda: passphrase.derive(b"s" * 16, DEFAULT_SCRYPT))
    return {"scrypt_default_n": DEFAULT_SCRYPT.n, "scrypt_default_s": seconds}


# The manifest runs in fresh processes so that peak RSS belongs to one operation only.
_MANIFEST_CHILD = r"""
import gc, hashlib, json, resource, sys, time
from datetime import datetime, timezone
import psutil
from ctfy_vault.crypto import MasterKeys, Sealer
from ctfy_vault.manifest import FileEntry, FileType, Manifest, open_entry, seal_entry

mode, count, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sealer = Sealer(repo_id=bytes(16), keys=MasterKeys(data_key=bytes(32), chunk_id_key=bytes(32)))
rss = lambda: psutil.Process().memory_info().rss

def reset_peak():
    # Linux: writing 5 to clear_refs resets VmHWM, so each phase's peak is its own.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")

def peak():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

gc.collect()
reset_peak()
start_rss = rss()
out = {}
if mode == "seal":
    t = time.perf_counter()
    files = []
    for i in range(count):
        digest = hashlib.sha256(i.to_bytes(8, "little")).digest()
        files.append(FileEntry(
            path=f"srv/app/uploads/{i % 1000:03d}/{i:07d}-document.pdf", type=FileType.FILE,
            mode=0o640, mtime_ns=1_761_966_000_000_000_000 + i * 1_000_003, size=100_000 + i,
            chunks=(digest,), sha256=digest,
        ))
    manifest = Manifest(snapshot_id="bench", lineage="files", host="app-1",
                        created=datetime(2026, 11, 1, tzinfo=timezone.utc), files=files)
    del files
    gc.collect()
    out["build_s"] = time.perf_counter() - t
    model_rss = rss()
    out["model_mib"] = (model_rss - start_rss) / 2**20
    out["model_bytes_per_file"] = (model_rss - start_rss) / count
    reset_peak()
    t = time.perf_counter()
    sealed = seal_entry(sealer, manifest)
    out["seal_s"] = time.perf_counter() - t
    out["seal_peak_above_model_mib"] = (peak() - model_rss) / 2**20
    out["sealed_mib"] = len(sealed.blob) / 2**20
    with open(path, "wb") as f:
        f.write(sealed.blob)
    with open(path + ".name", "w") as f:
        f.write(sealed.name)
else:
    with open(path, "rb") as f:
        blob = f.read()
    with open(path + ".name") as f:
        name = f.read()
    reset_peak()
    start_rss = rss()
    out["blob_mib"] = len(blob) / 2**20
    t = time.perf_counter()
    opened = open_entry(sealer, name, blob)
    out["open_s"] = time.perf_counter() - t
    del blob
    gc.collect()
    out["open_peak_mib"] = (peak() - start_rss) / 2**20
    out["opened_model_mib"] = (rss() - start_rss) / 2**20
    out["open_peak_above_model_mib"] = (peak() - rss()) / 2**20
    assert opened.entry.totals.files == count
print(json.dumps(out))
"""


def _child(mode: str, count: int, path: str) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", _MANIFEST_CHILD, mode, str(count), path],
        check=True,
        capture_output=True,
        text=True,
    )
    values: dict[str, float] = json.loads(result.stdout)
    return values


def bench_manifest(count: int) -> dict[str, float]:
    """Seal a ``count``-file manifest in one process and open it in another, measuring memory."""
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "manifest.bin")
        sealed = _child("seal", count, path)
        opened = _child("open", count, path)
    return {"manifest_files": count} | {f"manifest_{k}": v for k, v in (sealed | opened).items()}


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run every crypto scenario, print a Markdown table and write ``results/crypto.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=30, help="timing repetitions (best is kept)")
    parser.add_argument("--sql-mib", type=int, default=64, help="size of the generated SQL dump")
    parser.add_argument("--files", type=int, default=1_000_000, help="files in the manifest")
    args = parser.parse_args(argv)
    results: dict[str, float] = {}
    results.update(bench_overhead(args.runs))
    results.update(bench_sql(args.sql_mib * MIB))
    results.update(bench_scrypt())
    results.update(bench_manifest(args.files))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "crypto.json").write_text(json.dumps(results, indent=2) + "\n")
    print("| measure | value |\n|---|---|")
    for name, value in results.items():
        print(f"| {name} | {value:,.3f} |")
    return results


if __name__ == "__main__":
    main()
