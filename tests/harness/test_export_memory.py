"""Bounded memory: an export far larger than the memory it may use, measured in its own process.

Run as ``python -m tests.test_export_memory`` (by the test below) with a JSON spec on stdin; it
exports once small to warm up, records its peak RSS, exports the big tenant, and prints the peaks.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT

SMALL_FILES = 2000
SMALL_SIZE = 64 * 2**10
LARGE_FILES = 4
LARGE_SIZE = 32 * 2**20
#: What the export may add to the process's peak RSS: a fraction of the ~250 MiB it archives.
BOUND = 48 * 2**20


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def main() -> None:
    """Export the tenants described on stdin and print the measurement."""
    from ctfy_vault.export import export  # measured after the imports settle
    from ctfy_vault.storage import Target

    spec = json.load(sys.stdin)
    source = Target.from_url(spec["source"])
    dest = Target.from_url(spec["dest"])
    export(source, dest, tenant="warmup", link=False, level=1)
    baseline = _peak_rss()
    summary = export(source, dest, tenant="acme", link=False, level=1)
    json.dump(
        {
            "key": summary.key,
            "files": summary.files,
            "bytes": summary.bytes,
            "archive_size": summary.archive_size,
            "baseline_rss": baseline,
            "peak_rss": _peak_rss(),
        },
        sys.stdout,
    )


@pytest.mark.slow
def test_export_memory_stays_bounded(tmp_path: Path) -> None:
    """Archiving ~250 MiB in 2,004 files raises the peak RSS by less than 48 MiB."""
    docs = tmp_path / "docs"
    for tenant, count, size in (("warmup", 3, 2**20), ("acme", SMALL_FILES, SMALL_SIZE)):
        folder = docs / tenant / "small"
        folder.mkdir(parents=True)
        for i in range(count):
            (folder / f"{i:05d}.bin").write_bytes(os.urandom(size))
    (docs / "acme" / "large").mkdir()
    for i in range(LARGE_FILES):
        with (docs / "acme" / "large" / f"{i}.bin").open("wb") as out:
            for _ in range(LARGE_SIZE // 2**20):
                out.write(os.urandom(2**20))
    spec = {"source": str(docs), "dest": str(tmp_path / "out")}
    done = subprocess.run(
        [sys.executable, "-m", __name__],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=True,
        timeout=600,
    )
    report = json.loads(done.stdout)
    total = SMALL_FILES * SMALL_SIZE + LARGE_FILES * LARGE_SIZE
    assert report["files"] == SMALL_FILES + LARGE_FILES
    assert report["bytes"] == total
    assert report["archive_size"] > total
    grew = report["peak_rss"] - report["baseline_rss"]
    assert grew < BOUND, f"peak RSS grew by {grew / 2**20:.1f} MiB"
    archive = tmp_path / "out" / report["key"]
    with zipfile.ZipFile(archive) as unpacked:
        assert len(unpacked.infolist()) == SMALL_FILES + LARGE_FILES + 3


if __name__ == "__main__":
    main()
