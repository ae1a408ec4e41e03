"""Reproducible datasets for the issue-10 suite (`benchmarks/suite.py`), generated from fixed seeds.

* ``sql/day1.sql``: a PostgreSQL-style dump (``COPY ... FROM stdin`` blocks of tab-separated rows,
  about 110 bytes a row) of ``1 GiB * scale``; compressible like a real dump (zstd about 3-4x).
* ``sql/day2.sql``: the next day's dump of the same table: 1% of the rows changed in place, in
  runs of `CHANGE_RUN` consecutive rows at seeded positions (a batch update touches neighbouring
  rows; a change spread row by row over the whole dump would defeat every chunker alike).
* ``docs/``: ``10,000 * scale`` documents, PDF-sized (log-uniform 50 KB-2 MB), incompressible
  bodies after a small PDF-like header, in 100-document folders.
* ``big.bin``: one file of ``4 GiB * scale``, incompressible (media, archives, images).
* ``history/dayNN.sql`` (built on demand): 30 daily versions of a dump of ``64 MiB * scale``,
  each with its own 1% of rows changed, for the prune scenario.

Every byte is a function of the seed, the scale and the row/document index, so two machines
generate identical files. Each scale has its own folder (`scaled`), and a ``.done`` stamp per
dataset lets a later run reuse them.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Final

MIB: Final = 2**20
GIB: Final = 2**30
SEED: Final = 20261126
#: Consecutive rows changed together in the next-day dump.
CHANGE_RUN: Final = 100
#: Share of rows changed from one day to the next.
CHANGE_SHARE: Final = 0.01
DOCS: Final = 10_000
DOC_MIN: Final = 50_000
DOC_MAX: Final = 2_000_000
HISTORY_DAYS: Final = 30

_WORDS: Final = (
    *("service", "agreement", "renewal", "amendment", "lease", "supply", "licence"),
    *("framework", "employment", "confidentiality", "maintenance", "purchase", "consultancy"),
    *("subscription", "partnership", "escrow", "hosting", "support", "loan", "guarantee"),
    *("settlement", "addendum", "termination", "pricing", "annex", "processing", "data"),
    *("security", "audit", "insurance", "delivery", "warranty", "option", "distribution"),
)
_STATUS: Final = ("draft", "review", "signed", "active", "expired", "terminated")
_HEADER: Final = (
    "--\n-- PostgreSQL database dump\n--\n\n"
    "COPY public.contracts (id, tenant_id, title, status, signed_on, value_eur, owner, "
    "checksum) FROM stdin;\n"
)
_ROWS_PER_COPY: Final = 1_000_000


def _row(index: int, version: int) -> str:
    h = hashlib.blake2b(
        index.to_bytes(8, "little") + version.to_bytes(4, "little"), digest_size=20
    ).digest()
    title = f"{_WORDS[h[2] % len(_WORDS)]} {_WORDS[h[3] % len(_WORDS)]} {h[4] * 7 + h[5]}"
    return (
        f"{index}\t{h[0] * 256 + h[1]}\t{title}\t{_STATUS[h[6] % len(_STATUS)]}\t"
        f"20{10 + h[7] % 16}-{h[8] % 12 + 1:02d}-{h[9] % 28 + 1:02d}\t"
        f"{int.from_bytes(h[10:13], 'little') / 100:.2f}\tuser{h[13] * 64 + h[14] % 64}"
        f"@tenant.example\t{h[15:].hex()}\n"
    )


def _changed_rows(rows: int, day: int) -> set[int]:
    """Rows changed on ``day``: runs of `CHANGE_RUN` rows covering `CHANGE_SHARE` of the table."""
    rng = random.Random(SEED * 100 + day)
    runs = max(1, round(rows * CHANGE_SHARE / CHANGE_RUN))
    starts = rng.sample(range(max(1, rows - CHANGE_RUN)), runs)
    return {start + k for start in starts for k in range(CHANGE_RUN)}


def row_count(size: int) -> int:
    """How many rows make a dump of about ``size`` bytes (rows average ~110 bytes)."""
    sample = sum(len(_row(i, 0)) for i in range(2000)) / 2000
    return max(CHANGE_RUN * 2, int(size / sample))


def write_dump(path: Path, rows: int, day: int) -> None:
    """Write the dump of ``rows`` rows as of ``day`` (day 0: the base; day d: 1% changed)."""
    changed = _changed_rows(rows, day) if day else set()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="ascii", newline="") as out:
        out.write(_HEADER)
        batch: list[str] = []
        for index in range(rows):
            batch.append(_row(index, day if index in changed else 0))
            if len(batch) == 10_000:
                out.write("".join(batch))
                batch.clear()
            if index % _ROWS_PER_COPY == _ROWS_PER_COPY - 1:
                out.write("".join(batch))
                batch.clear()
                out.write("\\.\n\n" + _HEADER.split("\n\n")[1])
        out.write("".join(batch))
        out.write("\\.\n\n--\n-- PostgreSQL database dump complete\n--\n")


def _random_file(path: Path, size: int, seed: int, header: bytes = b"") -> None:
    rng = random.Random(seed)
    with path.open("wb") as out:
        out.write(header[:size])
        left = size - min(size, len(header))
        while left:
            n = min(left, 4 * MIB)
            out.write(rng.randbytes(n))
            left -= n


def _stamp(folder: Path, name: str, scale: float) -> Path:
    return folder / f".{name}-{scale:g}.done"


def scaled(folder: Path, scale: float) -> Path:
    """Return the folder that holds the datasets of one scale (each scale has its own)."""
    return folder / f"scale-{scale:g}"


def sql(folder: Path, scale: float) -> tuple[Path, Path]:
    """Return (day 1, day 2) dumps of ``1 GiB * scale``, generating them if needed."""
    day1, day2 = folder / "sql" / "day1.sql", folder / "sql" / "day2.sql"
    stamp = _stamp(folder, "sql", scale)
    if not stamp.exists():
        rows = row_count(int(GIB * scale))
        write_dump(day1, rows, 0)
        write_dump(day2, rows, 1)
        stamp.write_text(json.dumps({"rows": rows}))
    return day1, day2


def documents(folder: Path, scale: float) -> Path:
    """Return the documents folder (``10,000 * scale`` files), generating it if needed."""
    root = folder / "docs"
    stamp = _stamp(folder, "docs", scale)
    if not stamp.exists():
        count = max(10, round(DOCS * scale))
        rng = random.Random(SEED + 1)
        sizes = [round(DOC_MIN * (DOC_MAX / DOC_MIN) ** rng.random()) for _ in range(count)]
        for index, size in enumerate(sizes):
            sub = root / f"tenant{index // 100:03d}"
            sub.mkdir(parents=True, exist_ok=True)
            header = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + f"1 0 obj <</Doc {index}>>\n".encode()
            _random_file(sub / f"contract-{index:05d}.pdf", size, SEED + 10 + index, header)
        stamp.write_text(json.dumps({"files": count, "bytes": sum(sizes)}))
    return root


def big_file(folder: Path, scale: float) -> Path:
    """Return the ``4 GiB * scale`` incompressible file, generating it if needed."""
    path = folder / "big" / "big.bin"
    stamp = _stamp(folder, "big", scale)
    if not stamp.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _random_file(path, int(4 * GIB * scale), SEED + 2)
        stamp.write_text("{}")
    return path


def history(folder: Path, scale: float) -> list[Path]:
    """Return 30 daily dumps of ``64 MiB * scale`` (day d has its own 1% changed)."""
    days = [folder / "history" / f"day{day:02d}.sql" for day in range(1, HISTORY_DAYS + 1)]
    stamp = _stamp(folder, "history", scale)
    if not stamp.exists():
        rows = row_count(int(64 * MIB * scale))
        for day, path in enumerate(days, start=1):
            write_dump(path, rows, day)
        stamp.write_text(json.dumps({"rows": rows}))
    return days


def tree_bytes(root: Path) -> int:
    """Sum of the sizes of the regular files under ``root`` (the bytes a repository stores)."""
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            total += os.lstat(os.path.join(folder, name)).st_size
    return total


# -- format v2 (packs) datasets, for `bench_packs` ---------------------------------------------

#: The mixed tree: file count and total bytes at scale 1.
TREE_FILES: Final = 10_000
TREE_BYTES: Final = GIB
#: Share of the tree's files that are large; they hold what the small and medium files leave.
TREE_LARGE_SHARE: Final = 0.01
TINY_FILES: Final = 100_000
TINY_SIZE: Final = 1024
#: A fixed modification time for generated trees, so every tool sees the same metadata.
TREE_MTIME: Final = 1_793_500_000


def _text_block(rng: random.Random, size: int = MIB) -> bytes:
    """``size`` bytes of log-like text that zstd compresses about 4-6x."""
    words = [rng.randbytes(rng.randint(2, 9)).hex() for _ in range(400)]
    lines: list[str] = []
    total = 0
    while total < size:
        n = rng.getrandbits(20)
        line = (
            f"{2026}-11-{n % 28 + 1:02d}T{n % 24:02d}:{n % 60:02d}:00Z {rng.choice(words)} "
            f"{_STATUS[n % len(_STATUS)]} user={rng.choice(words)} bytes={n}\n"
        )
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


def tree_sizes(count: int, total: int, seed: int = SEED + 3) -> list[int]:
    """File sizes of the mixed tree: ``count`` sizes summing to ``total`` exactly.

    90% small (log-uniform 200 B-64 KiB), 9% medium (64 KiB-1 MiB), `TREE_LARGE_SHARE` large:
    the large files share what the others leave, log-normally. Sizes are shuffled (seeded), so
    large files sit in random folders.
    """
    rng = random.Random(seed)
    large = max(1, round(count * TREE_LARGE_SHARE))
    medium = round(count * 0.09)
    small = count - large - medium
    sizes = [round(200 * (65536 / 200) ** rng.random()) for _ in range(small)]
    sizes += [round(65536 * 16 ** rng.random()) for _ in range(medium)]
    left = total - sum(sizes)
    if left < large:  # a tiny scale: shrink the small and medium files to leave room
        shrink = max(1, total // 2) / max(1, sum(sizes))
        sizes = [max(1, int(s * shrink)) for s in sizes]
        left = total - sum(sizes)
    weights = [rng.lognormvariate(0.0, 0.8) for _ in range(large)]
    big = [max(1, int(left * w / sum(weights))) for w in weights]
    big[-1] += left - sum(big)
    sizes += big
    rng.shuffle(sizes)
    return sizes


def tree(folder: Path, scale: float) -> Path:
    """Return the mixed tree (``10,000 * scale`` files, ``1 GiB * scale``), generating it if needed.

    Files sit in 100-file folders under ``tree/``; each is random bytes (incompressible), text
    (compressible) or half of each, in turn (by index); every mtime is `TREE_MTIME` plus the file's index.
    """
    root = folder / "tree"
    stamp = _stamp(folder, "tree", scale)
    if not stamp.exists():
        count = max(20, round(TREE_FILES * scale))
        sizes = tree_sizes(count, int(TREE_BYTES * scale))
        rng = random.Random(SEED + 4)
        text = _text_block(rng)
        for index, size in enumerate(sizes):
            sub = root / f"d{index // 1000:02d}" / f"s{index // 100 % 10}"
            sub.mkdir(parents=True, exist_ok=True)
            path = sub / f"f{index:05d}.dat"
            kind = index % 3
            randoms = size if kind == 0 else size // 2 if kind == 2 else 0
            with path.open("wb") as out:
                for part, is_random in ((randoms, True), (size - randoms, False)):
                    left = part
                    while left:
                        n = min(left, MIB)
                        if is_random:
                            out.write(rng.randbytes(n))
                        else:
                            start = rng.randrange(0, MIB - n + 1)
                            out.write(text[start : start + n])
                        left -= n
            os.utime(path, (TREE_MTIME + index, TREE_MTIME + index))
        stamp.write_text(json.dumps({"files": count, "bytes": sum(sizes)}))
    return root


def tiny_files(folder: Path, scale: float) -> Path:
    """Return ``100,000 * scale`` files of 1 KiB (random bytes) in 1,000-file folders under ``tiny/``."""
    root = folder / "tiny"
    stamp = _stamp(folder, "tiny", scale)
    if not stamp.exists():
        count = max(100, round(TINY_FILES * scale))
        rng = random.Random(SEED + 5)
        for index in range(count):
            sub = root / f"d{index // 1000:03d}"
            if index % 1000 == 0:
                sub.mkdir(parents=True, exist_ok=True)
            path = sub / f"f{index:06d}.bin"
            path.write_bytes(rng.randbytes(TINY_SIZE))
            os.utime(path, (TREE_MTIME + index, TREE_MTIME + index))
        stamp.write_text(json.dumps({"files": count, "bytes": count * TINY_SIZE}))
    return root


def random_blob(folder: Path, name: str, size: int) -> Path:
    """Return ``blobs/<name>``: ``size`` incompressible bytes (seeded by the name), generated if needed."""
    path = folder / "blobs" / name
    stamp = folder / "blobs" / f".{name}-{size}.done"
    if not stamp.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        seed = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")
        _random_file(path, size, SEED + seed)
        stamp.write_text("{}")
    return path


def tree_count(root: Path) -> tuple[int, int]:
    """(regular files, their bytes) under ``root``."""
    count = total = 0
    for base, _dirs, files in os.walk(root):
        for name in files:
            info = os.lstat(os.path.join(base, name))
            if not os.path.islink(os.path.join(base, name)):
                count += 1
                total += info.st_size
    return count, total
