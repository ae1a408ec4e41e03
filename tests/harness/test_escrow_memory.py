"""Escrow deposits stream: a 200 MiB deposit, verify and open grow the process by a few MiB only."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TOTAL = 200 * 2**20
LIMIT = 40 * 2**20  # a few 8 MiB target parts (24 MiB measured for verify); the data is 200 MiB

# Runs in its own process so that the measurement sees only this deposit.
SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    from datetime import datetime, timezone
    from pathlib import Path

    import psutil

    from ctfy_vault.crypto import RecipientIdentity, SigningKey
    from ctfy_vault.escrow import deposit, open_deposit, verify_deposit
    from ctfy_vault.storage import Target

    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB

    work = Path(sys.argv[1])
    notary, signer = RecipientIdentity.generate(), SigningKey.generate()
    target = Target.from_url(str(work / "store"))
    now = datetime.now(timezone.utc)
    # Warm up code paths, imports and allocator pools on the small folder first.
    small = deposit(work / "small", target, recipients=[notary.public], signing_key=signer, now=now)
    verify_deposit(target, small.deposit)
    open_deposit(target, small.deposit, notary, out=work / "small.tar")
    baseline = peak()
    big = deposit(
        work / "big", target, recipients=[notary.public], signing_key=signer,
        now=now.replace(microsecond=0, second=(now.second + 1) % 60),
    )
    after_deposit = peak()
    verify_deposit(target, big.deposit)
    after_verify = peak()
    opened = open_deposit(target, big.deposit, notary, out=work / "big.tar")
    json.dump({
        "baseline": baseline, "deposit": after_deposit, "verify": after_verify, "open": peak(),
        "rss_now": psutil.Process().memory_info().rss,
        "archive_size": big.archive_size, "opened": opened.size,
    }, sys.stdout)
    """
)


@pytest.mark.slow
def test_large_deposit_has_bounded_memory(tmp_path: Path) -> None:
    """Deposit, verify and open of 200 MiB keep peak RSS within a few target parts."""
    big = tmp_path / "big"
    big.mkdir()
    block = bytes(range(256)) * 4096  # 1 MiB
    for index in range(4):
        with (big / f"part-{index}.bin").open("wb") as handle:
            for _ in range(TOTAL // 4 // len(block)):
                handle.write(block)
    (tmp_path / "small").mkdir()
    (tmp_path / "small" / "a.txt").write_bytes(b"small")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(done.stdout)
    assert report["archive_size"] > TOTAL
    assert report["opened"] == report["archive_size"]
    for stage in ("deposit", "verify", "open"):
        assert report[stage] - report["baseline"] < LIMIT, (stage, report)
