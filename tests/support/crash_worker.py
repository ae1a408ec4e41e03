"""The body of the crash harness's killed processes: a fork server running one job per child.

`tests/test_crash.py` starts this module once (``python -m tests.support.crash_worker``), so the imports
(about two seconds with s3fs) are paid once rather than once per kill. For each job, one JSON line
on stdin, the server forks a child that opens the vault, prepares the job's data, tells the server
it is ready and runs the backup or the prune. The server sleeps the job's ``delay`` (drawn by the
test from a seeded generator) after ready, sends the child SIGKILL if it still runs, reaps it and
answers one JSON line on stdout: ``{"killed": bool, "elapsed": seconds, "status": exit status}``.
The child is a real process killed with SIGKILL: no ``finally``, no ``atexit``, no flush runs.

The server itself starts no thread before forking (no filesystem is created in it), so a forked
child inherits no lock held by a thread that does not exist in the child.

The content of every snapshot is a pure function of its seed (recorded in the snapshot's labels),
so the test recomputes what each listed snapshot must restore to.
"""

from __future__ import annotations

import io
import json
import os
import random
import signal
import sys
import time
import traceback
from datetime import UTC, datetime, timedelta
from typing import Any

from ctfy_vault.crypto import RawKey, Sealer
from ctfy_vault.repository import unlock
from ctfy_vault.retention import Policy
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault
from ctfy_vault.writer import ChunkerParams, StreamSource

KEY = RawKey(bytes.fromhex("c7" * 32))
#: Small chunks, so a backup of a few MiB writes hundreds of objects and kills land between them.
CHUNKS = ChunkerParams(min_size=2048, avg_size=8192, max_size=32768)
#: Format 2: small packs (a few chunks each), so a backup writes dozens and kills land between.
PACK_SIZE = 32 * 1024
START = datetime(2026, 11, 1, tzinfo=UTC)
LINEAGE = "db"
#: Bytes of the file every snapshot shares (deduplicated) and of each snapshot's own files.
SHARED_BYTES = 384 * 1024
OWN_BYTES = 256 * 1024
OWN_FILES = 2

Job = dict[str, Any]


def content(seed: int, scale: float = 1.0) -> dict[str, bytes]:
    """The files a backup with ``seed`` stores: one shared, one lightly edited, several its own.

    ``scale`` shrinks (or grows) every file; the test uses less data on slower targets.
    """
    size = int(SHARED_BYTES * scale)
    shared = random.Random(1).randbytes(size)  # noqa: S311 - test data, not secrets
    edit = random.Random(seed).randbytes(4096)  # noqa: S311 - test data, not secrets
    files = {"static.bin": shared, "db.sql": shared[: size // 2] + edit + shared[size // 2 :]}
    for n in range(OWN_FILES):
        own = random.Random(seed * 100 + n + 7)  # noqa: S311 - test data, not secrets
        files[f"own-{n}.bin"] = own.randbytes(int(OWN_BYTES * scale))
    return files


def targets(specs: list[dict[str, Any]]) -> list[Target]:
    """Build the targets a job names: ``{"url": ..., "options": {...}}`` each."""
    return [
        Target.from_url(spec["url"], name=spec["name"], **spec.get("options", {})) for spec in specs
    ]


def prepare(job: Job, given: list[Target] | None = None) -> tuple[Vault, Any]:
    """Open the vault and build the job's action (all the work before the part that is killed).

    ``given`` reuses targets already built for ``job["targets"]`` (building an S3 target costs a
    botocore session, most of a second).
    """
    vault = Vault.open(given if given is not None else targets(job["targets"]), key=KEY)
    if job["op"] == "backup":
        seed = int(job["seed"])
        files = content(seed, float(job.get("scale", 1.0)))
        now = datetime.fromisoformat(job["now"])

        def run_backup() -> None:
            vault.backup(
                [StreamSource(name=name, stream=io.BytesIO(data)) for name, data in files.items()],
                lineage=LINEAGE,
                host="crash",
                now=now,
                labels={"seed": str(seed), "scale": str(job.get("scale", 1.0))},
            )

        return vault, run_backup
    if job["op"] == "prune":
        policy = Policy(last=int(job["last"]))
        now = datetime.fromisoformat(job["now"])

        def run_prune() -> None:
            report = vault.prune(
                policy,
                now=now,
                grace=timedelta(0),
                host="crash",
                repack_below=float(job.get("repack_below", 0.5)),
            )
            if not report.ok:
                raise RuntimeError(f"prune reported errors: {report.errors}")

        return vault, run_prune
    raise ValueError(f"unknown op {job['op']!r}")


def run(job: Job, given: list[Target] | None = None) -> None:
    """Run one job to completion in this process (the test's re-run after a kill)."""
    _vault, action = prepare(job, given)
    action()


def _child(job: Job, ready_fd: int) -> None:
    try:
        _vault, action = prepare(job)
        os.write(ready_fd, b"r")
        os.close(ready_fd)
        action()
    except BaseException:  # noqa: BLE001 - the child reports any failure by its exit status
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    os._exit(0)


def _serve(job: Job) -> dict[str, Any]:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(job, write_fd)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as ready:
        if ready.read(1) != b"r":  # the child failed before it was ready
            _pid, status = os.waitpid(pid, 0)
            return {"killed": False, "elapsed": 0.0, "status": os.waitstatus_to_exitcode(status)}
    began = time.monotonic()
    delay = job.get("delay")
    killed = False
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if delay is not None and time.monotonic() - began >= delay:
            os.kill(pid, signal.SIGKILL)  # our unreaped child: the pid cannot have been reused
            killed = True
            _pid, status = os.waitpid(pid, 0)
            break
        time.sleep(0.002)
    elapsed = time.monotonic() - began
    code = os.waitstatus_to_exitcode(status)
    return {"killed": killed and code == -signal.SIGKILL, "elapsed": elapsed, "status": code}


def main() -> None:
    """Serve jobs from stdin until it closes."""
    for line in sys.stdin:
        if not line.strip():
            continue
        answer = _serve(json.loads(line))
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()


def sealer(target: Target, vault: Vault) -> Sealer:
    """The repository's sealer, unlocked from ``target``'s key slot with `KEY`."""
    return Sealer(repo_id=vault.repo_id, keys=unlock(target, repo_id=vault.repo_id, credential=KEY))
