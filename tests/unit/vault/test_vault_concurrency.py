"""Several processes at once: two backing up into one repository, and a prune running beside them.

Backups take no lock; prune takes the exclusive one and only deletes chunks marked a grace period
earlier. The processes here are real (``subprocess``) and share local folder targets.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ctfy_vault.crypto import RawKey
from ctfy_vault.retention import Policy
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault
from ctfy_vault.writer import ChunkerParams

KEY_HEX = "5a" * 32
CHUNKS = ChunkerParams(min_size=4096, avg_size=16384, max_size=65536)
START = datetime(2026, 11, 1, tzinfo=UTC)

#: One backing-up process: ``ROUNDS`` snapshots of its lineage, content from a seeded generator,
#: sharing a common block with the other process so both race to store the same chunks.
BACKUP_SCRIPT = textwrap.dedent(
    """
    import hashlib, io, sys
    from datetime import datetime, timedelta, UTC
    from ctfy_vault.crypto import RawKey
    from ctfy_vault.storage import Target
    from ctfy_vault.vault import Vault
    from ctfy_vault.writer import StreamSource

    lineage, rounds, *urls = sys.argv[1:]
    vault = Vault.open([Target.from_url(u) for u in urls], key=RawKey(bytes.fromhex("5a" * 32)))
    shared = b"".join(hashlib.sha256(b"shared%d" % n).digest() for n in range(8000))
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for n in range(int(rounds)):
        own = b"".join(hashlib.sha256(f"{lineage}{n}-{i}".encode()).digest() for i in range(4000))
        data = shared + own
        info = vault.backup(
            StreamSource(name="dump", stream=io.BytesIO(data)),
            lineage=lineage, host=lineage, now=start + timedelta(minutes=n),
        )
        print(info.snapshot_id, hashlib.sha256(data).hexdigest(), flush=True)
    """
)

#: A process pruning in a loop on the real clock while the backups run, with a one-hour grace
#: period: it forgets nothing the policy keeps and marks what the running backups have not yet
#: committed, but must delete none of it.
PRUNE_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime, timedelta, UTC
    from ctfy_vault.crypto import RawKey
    from ctfy_vault.retention import Policy
    from ctfy_vault.storage import Target
    from ctfy_vault.vault import Vault

    rounds, *urls = sys.argv[1:]
    vault = Vault.open([Target.from_url(u) for u in urls], key=RawKey(bytes.fromhex("5a" * 32)))
    for n in range(int(rounds)):
        report = vault.prune(Policy(last=100), now=datetime.now(UTC), grace=timedelta(hours=1))
        assert report.ok, report.errors
        assert report.chunks_deleted == 0
        print(report.chunks_deleted, report.chunks_pending, flush=True)
        time.sleep(0.05)
    """
)


def _targets(root: Path) -> list[str]:
    return [str(root / "amsterdam"), str(root / "ireland")]


def _run_together(scripts: list[list[str]]) -> list[str]:
    """Start every command at once; wait for all; return their outputs (each must succeed)."""
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for cmd in scripts
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        outputs.append(out)
    return outputs


def _check_all_restore(vault: Vault, written: dict[str, str]) -> None:
    for snapshot_id, digest in written.items():
        data = vault.open_file(snapshot_id, "dump").read()
        assert hashlib.sha256(data).hexdigest() == digest


def _parse(output: str) -> dict[str, str]:
    return dict(line.split() for line in output.splitlines())


@pytest.mark.slow  # subprocesses; the whole suite runs it
def test_two_processes_back_up_at_once_then_prune_loses_nothing(tmp_path: Path) -> None:
    """Two hosts back up into one repository concurrently; a prune afterwards keeps all it should."""
    urls = _targets(tmp_path)
    Vault.init(
        [Target.from_url(u) for u in urls],
        key=RawKey(bytes.fromhex(KEY_HEX)),
        now=START,
        chunker=CHUNKS,
    )
    outputs = _run_together(
        [[sys.executable, "-c", BACKUP_SCRIPT, lineage, "4", *urls] for lineage in ("db", "files")]
    )
    written = {sid: digest for out in outputs for sid, digest in _parse(out).items()}
    assert len(written) == 8
    vault = Vault.open([Target.from_url(u) for u in urls], key=RawKey(bytes.fromhex(KEY_HEX)))
    assert {s.snapshot_id for s in vault.snapshots()} == set(written)
    _check_all_restore(vault, written)
    report = vault.prune(Policy(last=2), now=START + timedelta(days=1), grace=timedelta(0))
    assert report.ok
    assert len(report.forgotten) == 4
    kept = {s.snapshot_id for s in vault.snapshots()}
    assert len(kept) == 4
    _check_all_restore(vault, {sid: written[sid] for sid in kept})
    verified = vault.verify(read_data=True)
    assert verified.ok, verified.problems


@pytest.mark.slow  # subprocesses; the whole suite runs it
def test_prune_running_beside_backups_never_robs_them(tmp_path: Path) -> None:
    """A prune loop running during two backups (grace 1 h) leaves every snapshot restorable."""
    urls = _targets(tmp_path)
    Vault.init(
        [Target.from_url(u) for u in urls],
        key=RawKey(bytes.fromhex(KEY_HEX)),
        now=START,
        chunker=CHUNKS,
    )
    outputs = _run_together(
        [
            [sys.executable, "-c", BACKUP_SCRIPT, "db", "3", *urls],
            [sys.executable, "-c", BACKUP_SCRIPT, "files", "3", *urls],
            [sys.executable, "-c", PRUNE_SCRIPT, "6", *urls],
        ]
    )
    written = {sid: digest for out in outputs[:2] for sid, digest in _parse(out).items()}
    vault = Vault.open([Target.from_url(u) for u in urls], key=RawKey(bytes.fromhex(KEY_HEX)))
    _check_all_restore(vault, written)
    later = datetime.now(UTC) + timedelta(hours=2)
    for _ in range(2):  # anything marked is referenced by now: nothing may go
        assert (
            vault.prune(Policy(last=100), now=later, grace=timedelta(hours=1)).chunks_deleted == 0
        )
    _check_all_restore(vault, written)
    verified = vault.verify(read_data=True)
    assert verified.ok, verified.problems
