"""Issue 10: the library side by side with restic and rclone, and against the machine's own limits.

Datasets come from `datasets` (fixed seeds): a 1 GiB SQL dump and its next-day version (1% of rows
changed), 10,000 PDF-sized documents, one 4 GiB file, and a 30-day history of a 64 MiB dump.
Every size is multiplied by ``--scale`` (or ``BENCH_SCALE``; e.g. ``0.0625`` for a smoke run);
the published table is ``--scale 1``.

Scenarios, each ours beside a peer on the same data in the same run:

=====================  ======================================  ==================================
scenario               ours                                    peer
=====================  ======================================  ==================================
first_backup           ``Vault.backup`` of day 1 to 3 targets  ``restic backup`` to 1 repository
next_day               day 2 (1% of rows changed), 3 targets   ``restic backup``
restore                ``Vault.restore`` of day 2              ``restic restore latest``
verify_data            ``Vault.verify(read_data=True)``, one   ``restic check --read-data``
                       target
fanout_4g              the 4 GiB file to 3 targets             ``restic backup`` to 1 repository
prune_30               ``Vault.prune`` (daily=7, grace 0) of   ``restic forget --keep-daily 7
                       30 daily snapshots                      --prune``
mirror_docs            ``mirror`` of the documents folder      ``rclone copy``
presign                ``presign`` rate on an S3 target        botocore ``generate_presigned_url``
retention_plan         ``plan`` of 1,000,000 snapshots         ``plan`` of 100,000 (the ratio)
=====================  ======================================  ==================================

The machine's raw figures are measured in the same run: ``cat`` of the day-1 dump to /dev/null
(read), ``cp`` of the 4 GiB file plus ``sync`` (write), ``openssl speed -evp aes-256-gcm``
(cipher). Each of our scenarios runs in a child process: its time is the operation alone (the
child times it), its peak RSS is the child's (``wait4``). Peers are timed as whole commands with
their own peak RSS. ``sync`` runs before every timed step, so one step's writeback does not land
on the next.

Results: ``benchmarks/results/suite[-<scale>].json`` and ``.md`` (printed too).
Run: ``nox -s bench -- suite`` or ``python benchmarks/suite.py [--scale S] [--only a,b]``.
Peers come from Debian's packages (``scripts/bench_peers.sh`` installs them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import datasets

HERE: Final = Path(__file__).parent
RESULTS: Final = HERE / "results"
MIB: Final = 2**20
NOW: Final = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
RESTIC_PASSWORD: Final = "bench-only-password"  # noqa: S105 - a throwaway benchmark repository
SCENARIOS: Final = (
    "first_backup",
    "next_day",
    "restore",
    "verify_data",
    "fanout_4g",
    "prune_30",
    "mirror_docs",
    "presign",
    "retention_plan",
)
#: The issue's targets: (figure, comparison, bound).
TARGETS: Final = {
    "first_backup": ("time_ratio", "<=", 1.0),
    "next_day": ("time_ratio", "<=", 1.0),
    "next_day_stored": ("stored_ratio", "<=", 1.2),
    "restore": ("time_ratio", "<=", 1.0),
    "mirror_docs": ("time_ratio", "<=", 1.0),
    "fanout_4g": ("share_of_raw", ">=", 0.6),
    "retention_plan": ("time_ratio", "<=", 12.0),
}


# -- processes -----------------------------------------------------------------------------------


def _sync() -> None:
    subprocess.run(["sync"], check=True)


@dataclasses.dataclass(frozen=True)
class Usage:
    """What one command cost: wall seconds, peak RSS, CPU (user + system) and its stdout."""

    seconds: float
    rss: int
    cpu: float
    stdout: str


def measured_usage(argv: Sequence[str], env: dict[str, str] | None = None) -> Usage:
    """Run a command after a ``sync``; return its wall time and its own ``wait4`` figures."""
    _sync()
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} {' '.join(argv[1:3])} failed ({proc.returncode})")
    return Usage(seconds, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime, text)


def measured(argv: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Run a command; return (wall seconds, peak RSS in bytes, stdout)."""
    got = measured_usage(argv, env)
    return got.seconds, got.rss, got.stdout


class Restic:
    """One restic repository driven through its command line."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.env = {
            **os.environ,
            "RESTIC_PASSWORD": RESTIC_PASSWORD,
            "RESTIC_REPOSITORY": str(repo),
            "RESTIC_CACHE_DIR": str(repo.parent / f"{repo.name}-cache"),
        }

    def run(self, *args: str) -> tuple[float, int]:
        """Run ``restic ARGS``; return (seconds, peak RSS in bytes)."""
        seconds, rss, _ = measured(["restic", "--quiet", *args], self.env)
        return seconds, rss


class Ours:
    """Runs one of our operations in a child process (`child`) and reads its figures."""

    def __init__(self, work: Path, data: Path, scale: float) -> None:
        self.base = [sys.executable, str(Path(__file__).resolve()), "--work", str(work)]
        self.base += ["--data", str(data), "--scale", str(scale)]

    def run(self, op: str, *args: str) -> tuple[float, int, dict[str, Any]]:
        """Run one child operation; return (its own seconds, peak RSS in bytes, other figures)."""
        _wall, rss, out = measured([*self.base, "--child", op, *args])
        figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return float(figures.pop("seconds")), rss, figures


# -- our side (in the child) ---------------------------------------------------------------------


def _vault_targets(work: Path, name: str, count: int) -> list[Any]:
    from ctfy_vault.storage import Target

    return [Target.from_url(str(work / f"{name}-t{n}"), name=f"t{n}") for n in range(count)]


def _chunker() -> dict[str, Any]:
    """``BENCH_CHUNK_AVG`` (bytes) overrides the default chunker, restic-style (min avg/2, max 8x)."""
    from ctfy_vault.writer import ChunkerParams

    avg = int(os.environ.get("BENCH_CHUNK_AVG", "0"))
    if not avg:
        return {}
    return {"chunker": ChunkerParams(min_size=avg // 2, avg_size=avg, max_size=8 * avg)}


def child(op: str, work: Path, data: Path, scale: float, args: list[str]) -> dict[str, Any]:
    """Do one of our operations and return its figures (``seconds`` = the operation alone)."""
    from ctfy_vault import Policy, plan
    from ctfy_vault.crypto import RawKey
    from ctfy_vault.vault import Vault

    key = RawKey(b"k" * 32)
    figures: dict[str, Any] = {}
    if op in ("init", "backup"):
        name, count, source = args[0], int(args[1]), args[2]
        targets = _vault_targets(work, name, count)
        if op == "init":
            Vault.init(targets, key=key, now=NOW, **_chunker())
            return {"seconds": 0.0}
        when = datetime.fromisoformat(args[3])
        vault = Vault.open(targets, key=key)
        start = time.perf_counter()
        info = vault.backup(source, lineage="db", host="bench", now=when)
        figures["sealed"] = info.chunks_sealed
    elif op == "restore":
        name, dest = args[0], Path(args[1])
        vault = Vault.open(_vault_targets(work, name, 3), key=key)
        start = time.perf_counter()
        vault.restore(vault.snapshots("db")[0], dest)
    elif op == "verify":
        vault = Vault.open(_vault_targets(work, args[0], 1), key=key)
        start = time.perf_counter()
        report = vault.verify(read_data=True)
        if not report.ok:
            raise SystemExit(f"verify found problems: {report.problems}")
    elif op == "prune":
        vault = Vault.open(_vault_targets(work, args[0], 1), key=key)
        when = datetime.fromisoformat(args[1])
        start = time.perf_counter()
        pruned = vault.prune(Policy(daily=7), now=when, grace=timedelta(0))
        figures["forgotten"] = len(pruned.forgotten)
    elif op == "mirror":
        from ctfy_vault.mirror import mirror
        from ctfy_vault.storage import Target

        origin, replica = Target.from_url(args[0]), Target.from_url(args[1], name="replica")
        start = time.perf_counter()
        mirrored = mirror(origin, [replica])
        if not mirrored.ok:
            raise SystemExit("mirror reported failures")
        figures["bytes"] = mirrored.bytes_copied
    elif op == "presign":
        return _presign_rates()
    elif op == "plan":
        return _plan_times(plan, Policy)
    else:
        raise SystemExit(f"unknown child operation {op}")
    figures["seconds"] = time.perf_counter() - start
    return figures


def _rate(fn: Callable[[int], object], seconds: float = 1.0) -> float:
    for i in range(200):
        fn(i)
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            fn(count)
            count += 1
    return count / elapsed


def _presign_rates() -> dict[str, Any]:
    import boto3
    from botocore.config import Config

    from ctfy_vault.links import presign
    from ctfy_vault.storage import Target

    endpoint, key_id, secret = "http://127.0.0.1:9", "AKIDBENCH", "bench/secret/offline/only"
    target = Target.from_url(
        "s3://documents/tenant", endpoint_url=endpoint, key=key_id, secret=secret, region="default"
    )
    client = boto3.session.Session(
        aws_access_key_id=key_id, aws_secret_access_key=secret, region_name="default"
    ).client(
        "s3",
        endpoint_url=endpoint,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    ttl = timedelta(minutes=15)
    ours, raw = [], []
    for _ in range(3):  # interleaved, so both share the machine's noise
        raw.append(
            _rate(
                lambda i: client.generate_presigned_url(
                    "get_object",
                    Params={"Bucket": "documents", "Key": f"tenant/contracts/{i}.pdf"},
                    ExpiresIn=900,
                )
            )
        )
        ours.append(_rate(lambda i: presign(target, f"contracts/{i}.pdf", ttl=ttl)))
    return {"seconds": 1 / max(ours), "peer_seconds": 1 / max(raw), "ours_per_s": max(ours)}


def _plan_times(plan: Callable[..., Any], policy_type: Callable[..., Any]) -> dict[str, Any]:
    """Best of five ``plan`` runs over 100,000 and 1,000,000 random-order snapshot times.

    Timed in this thread's CPU time: on a shared machine a 1-second run is preempted far more
    often than a 0.1-second one, which inflates a wall-clock ratio. Wall times are reported too.
    """
    import random

    policy = policy_type(hourly=48, daily=14, weekly=8, monthly=6, yearly=1)
    rng = random.Random(datasets.SEED)
    span = 10 * 365 * 86400
    start_time = datetime(2016, 1, 1, tzinfo=UTC)
    items = [start_time + timedelta(seconds=rng.randrange(span)) for _ in range(1_000_000)]
    small = items[:100_000]
    cpu: dict[int, float] = {}
    wall: dict[int, float] = {}
    for _ in range(5):
        for data in (small, items):
            w0, c0 = time.perf_counter(), time.thread_time()
            plan(data, policy)
            took_cpu, took_wall = time.thread_time() - c0, time.perf_counter() - w0
            cpu[len(data)] = min(cpu.get(len(data), took_cpu), took_cpu)
            wall[len(data)] = min(wall.get(len(data), took_wall), took_wall)
    return {
        "seconds": cpu[1_000_000],
        "peer_seconds": cpu[100_000],
        "wall_1m": wall[1_000_000],
        "wall_100k": wall[100_000],
    }


# -- the parent ----------------------------------------------------------------------------------


def raw_figures(day1: Path, big: Path, work: Path) -> dict[str, float]:
    """Read (``cat``), write (``cp`` + ``sync``) and cipher (``openssl speed``) speeds, in MB/s."""
    size = day1.stat().st_size
    read_s, _, _ = measured(["sh", "-c", f"cat '{day1}' > /dev/null"])
    copy = work / "cp-copy"
    _sync()
    t0 = time.perf_counter()
    subprocess.run(["cp", str(big), str(copy)], check=True)
    subprocess.run(["sync", str(copy)], check=True)
    write_s = time.perf_counter() - t0
    copy.unlink()
    out = subprocess.run(
        ["openssl", "speed", "-evp", "aes-256-gcm", "-seconds", "2"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    row = next(line for line in out.splitlines() if line.upper().startswith("AES-256-GCM"))
    cipher_kbs = float(row.split()[-1].rstrip("k"))  # 16 KiB blocks, in 1000s of bytes/s
    return {
        "read_mb_s": size / read_s / 1e6,
        "write_mb_s": big.stat().st_size / write_s / 1e6,
        "aes_gcm_mb_s": cipher_kbs / 1000,
    }


def _row(
    rows: dict[str, dict[str, Any]],
    name: str,
    ours: tuple[float, int],
    peer: tuple[float, int] | None,
    **extra: Any,
) -> None:
    row: dict[str, Any] = {"ours_s": ours[0], "ours_rss": ours[1]}
    if peer is not None:
        row.update(peer_s=peer[0], peer_rss=peer[1], time_ratio=ours[0] / peer[0])
    row.update(extra)
    rows[name] = row
    shown = ", ".join(
        f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
    )
    print(f"  {name}: {shown}", flush=True)


def _same_file(a: Path, b: Path) -> None:
    if subprocess.run(["cmp", "-s", str(a), str(b)], check=False).returncode != 0:
        raise SystemExit(f"{b} differs from {a}")


@dataclasses.dataclass
class _Run:
    """What every scenario of one run shares."""

    data: Path
    work: Path
    ours: Ours
    restic: Restic
    live: Path
    rows: dict[str, dict[str, Any]]
    raw: dict[str, float]


def _sql_scenarios(run: _Run, day1: Path, day2: Path) -> None:
    """First backup, next-day backup, restore and verify of the SQL dump."""
    ours, restic, live, work, rows = run.ours, run.restic, run.live, run.work, run.rows
    sql_bytes = day1.stat().st_size
    shutil.copy(day1, live)
    os.utime(live, (NOW.timestamp(), NOW.timestamp()))
    ours.run("init", "sql", "3", str(live))
    restic.run("init")
    first = ours.run("backup", "sql", "3", str(live), NOW.isoformat())
    peer = restic.run("backup", "--host", "bench", "--time", "2026-11-01 02:00:00", str(live))
    stored = datasets.tree_bytes(work / "sql-t0")
    peer_stored = datasets.tree_bytes(restic.repo)
    _row(
        rows,
        "first_backup",
        first[:2],
        peer,
        stored=stored,
        peer_stored=peer_stored,
        stored_ratio=stored / peer_stored,
        ours_mb_s=sql_bytes / first[0] / 1e6,
    )
    shutil.copy(day2, live)
    later = NOW + timedelta(days=1)
    os.utime(live, (later.timestamp(), later.timestamp()))
    second = ours.run("backup", "sql", "3", str(live), later.isoformat())
    peer = restic.run("backup", "--host", "bench", "--time", "2026-11-02 02:00:00", str(live))
    added = datasets.tree_bytes(work / "sql-t0") - stored
    peer_added = datasets.tree_bytes(restic.repo) - peer_stored
    _row(
        rows,
        "next_day",
        second[:2],
        peer,
        stored=added,
        peer_stored=peer_added,
        stored_ratio=added / peer_added,
    )
    dest, peer_dest = work / "restore-ours", work / "restore-restic"
    got = ours.run("restore", "sql", str(dest))
    peer = restic.run("restore", "latest", "--target", str(peer_dest))
    _same_file(day2, dest / "dump.sql")
    _same_file(day2, peer_dest / live.relative_to(live.anchor))
    _row(rows, "restore", got[:2], peer, ours_mb_s=sql_bytes / got[0] / 1e6)
    shutil.rmtree(dest)
    shutil.rmtree(peer_dest)
    got = ours.run("verify", "sql")
    peer = restic.run("check", "--read-data")
    _row(rows, "verify_data", got[:2], peer, ours_mb_s=2 * sql_bytes / got[0] / 1e6)
    for folder in (restic.repo, *(work / f"sql-t{n}" for n in range(3))):
        shutil.rmtree(folder)


def _fanout(run: _Run, big: Path) -> None:
    """The 4 GiB file to 3 targets, beside restic to 1 and the raw ``cp`` figure."""
    run.ours.run("init", "big", "3", str(big))
    run.restic.run("init")
    got = run.ours.run("backup", "big", "3", str(big), NOW.isoformat())
    peer = run.restic.run("backup", "--host", "bench", str(big))
    throughput = big.stat().st_size / got[0] / 1e6
    _row(
        run.rows,
        "fanout_4g",
        got[:2],
        peer,
        ours_mb_s=throughput,
        share_of_raw=throughput / run.raw["write_mb_s"],
        share_of_cipher=throughput / run.raw["aes_gcm_mb_s"],
    )
    for folder in (run.restic.repo, *(run.work / f"big-t{n}" for n in range(3))):
        shutil.rmtree(folder)


def _prune(run: _Run, scale: float) -> None:
    """30 daily backups with each tool (not timed), then one timed prune keeping 7 days."""
    ours, restic, live, work = run.ours, run.restic, run.live, run.work
    days = datasets.history(run.data, scale)
    ours.run("init", "hist", "1", str(days[0]))
    restic.run("init")
    for number, day in enumerate(days):
        when = NOW + timedelta(days=number)
        shutil.copy(day, live)
        os.utime(live, (when.timestamp(), when.timestamp()))
        ours.run("backup", "hist", "1", str(live), when.isoformat())
        stamp = f"{when:%Y-%m-%d %H:%M:%S}"
        restic.run("backup", "--host", "bench", "--time", stamp, str(live))
    before = datasets.tree_bytes(work / "hist-t0"), datasets.tree_bytes(restic.repo)
    last = NOW + timedelta(days=len(days) - 1)
    got = ours.run("prune", "hist", last.isoformat())
    peer = restic.run("forget", "--keep-daily", "7", "--prune")
    after = datasets.tree_bytes(work / "hist-t0"), datasets.tree_bytes(restic.repo)
    _row(
        run.rows,
        "prune_30",
        got[:2],
        peer,
        forgotten=got[2].get("forgotten"),
        stored=after[0],
        peer_stored=after[1],
        stored_ratio=after[0] / after[1],
        freed=before[0] - after[0],
        peer_freed=before[1] - after[1],
    )
    shutil.rmtree(restic.repo)
    shutil.rmtree(work / "hist-t0")


def _mirror(run: _Run, scale: float) -> None:
    """``mirror`` of the documents folder into an empty one, beside ``rclone copy``."""
    docs = datasets.documents(run.data, scale)
    docs_bytes = datasets.tree_bytes(docs)
    ours_copy, peer_copy = run.work / "mirror-ours", run.work / "mirror-rclone"
    got = run.ours.run("mirror", str(docs), str(ours_copy))
    peer_s, peer_rss, _ = measured(["rclone", "copy", str(docs), str(peer_copy)])
    # rclone does not fsync what it writes; ours is durable when mirror returns. The time of the
    # ``sync`` that makes rclone's copy durable too gives the like-for-like figure.
    t0 = time.perf_counter()
    _sync()
    durable_s = peer_s + time.perf_counter() - t0
    if datasets.tree_bytes(ours_copy) < docs_bytes:
        raise SystemExit("the mirror copied less than the documents")
    _row(
        run.rows,
        "mirror_docs",
        got[:2],
        (peer_s, peer_rss),
        ours_mb_s=docs_bytes / got[0] / 1e6,
        peer_mb_s=docs_bytes / peer_s / 1e6,
        peer_durable_s=durable_s,
        durable_ratio=got[0] / durable_s,
    )
    shutil.rmtree(ours_copy)
    shutil.rmtree(peer_copy)


def run_suite(
    scale: float, data: Path, work: Path, only: set[str]
) -> tuple[dict[str, Any], dict[str, float]]:
    """Generate what is needed, measure the raw figures, then run the chosen scenarios."""
    data = datasets.scaled(data, scale)
    data.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    day1, day2 = datasets.sql(data, scale)
    big = datasets.big_file(data, scale)
    print(f"datasets ready in {time.perf_counter() - t0:.0f} s", flush=True)
    raw = raw_figures(day1, big, work)
    print(f"  raw: {raw}", flush=True)
    live = work / "live" / "dump.sql"
    live.parent.mkdir(parents=True)
    run = _Run(
        data=data,
        work=work,
        ours=Ours(work, data, scale),
        restic=Restic(work / "restic"),
        live=live,
        rows={},
        raw=raw,
    )
    if only & {"first_backup", "next_day", "restore", "verify_data"}:
        _sql_scenarios(run, day1, day2)
    if "fanout_4g" in only:
        _fanout(run, big)
    if "prune_30" in only:
        _prune(run, scale)
    if "mirror_docs" in only:
        _mirror(run, scale)
    if "presign" in only:
        got = run.ours.run("presign")
        _row(run.rows, "presign", got[:2], (got[2]["peer_seconds"], got[1]), per_s=1 / got[0])
    if "retention_plan" in only:
        got = run.ours.run("plan")
        wall = got[2]["wall_1m"] / got[2]["wall_100k"]
        _row(run.rows, "retention_plan", got[:2], (got[2]["peer_seconds"], got[1]), wall_ratio=wall)
    return run.rows, raw


def machine() -> dict[str, Any]:
    """Cores, memory, disk and Python of this machine, from /proc and the standard library."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        model = found.group(1) if found else model
    mem = Path("/proc/meminfo").read_text().split("\n")[0] if Path("/proc/meminfo").exists() else ""
    total_kib = int(mem.split()[1]) if mem else 0
    disk = shutil.disk_usage(HERE)
    versions = {}
    for tool in ("restic", "rclone", "openssl"):
        if shutil.which(tool) is None:
            versions[tool] = "missing"
            continue
        out = subprocess.run([tool, "version"], capture_output=True, text=True, check=False)
        versions[tool] = out.stdout.splitlines()[0] if out.stdout else "?"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "ram_gib": round(total_kib / 2**20, 1),
        "disk_gib": round(disk.total / 2**30),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_1min_at_end": os.getloadavg()[0],
        **versions,
    }


def markdown(results: dict[str, Any]) -> str:
    """The table: time, stored bytes, peak RSS and throughput, ours beside the peer."""
    lines = [
        f"Scale {results['scale']:g}; raw figures of this run: read (cat) "
        f"{results['raw']['read_mb_s']:.0f} MB/s, write (cp + sync) "
        f"{results['raw']['write_mb_s']:.0f} MB/s, AES-256-GCM (openssl, 16 KiB) "
        f"{results['raw']['aes_gcm_mb_s']:.0f} MB/s.",
        "",
        "| scenario | ours s | peer s | time ratio | stored ratio | ours RSS MiB "
        "| peer RSS MiB | ours MB/s | target | met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, row in results["rows"].items():
        checks = [(key, spec) for key, spec in TARGETS.items() if key.startswith(name)]
        goal = "; ".join(f"{spec[0]} {spec[1]} {spec[2]:g}" for _key, spec in checks) or "-"
        met = []
        for _key, (field, op, bound) in checks:
            value = row.get(field)
            if value is not None:
                met.append("yes" if (value <= bound if op == "<=" else value >= bound) else "no")
        ratio = row.get("time_ratio")
        stored = row.get("stored_ratio")
        speed = row.get("ours_mb_s")
        share = row.get("share_of_raw")
        ratio_text = f"{ratio:.2f}"
        if "durable_ratio" in row:
            ratio_text += f" ({row['durable_ratio']:.2f} vs peer + sync)"
        if "wall_ratio" in row:
            ratio_text += f" (wall {row['wall_ratio']:.2f})"
        speed_text = f"{speed:.0f}" if speed else "-"
        if share is not None:
            speed_text += f" ({share:.0%} of cp)"
        lines.append(
            f"| {name} | {row['ours_s']:.3g} | {row.get('peer_s', float('nan')):.3g} "
            f"| {ratio_text} | {f'{stored:.2f}' if stored else '-'} "
            f"| {row['ours_rss'] / MIB:.0f} | {row.get('peer_rss', 0) / MIB:.0f} "
            f"| {speed_text} | {goal} | {', '.join(met) or '-'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments; run one child operation or the whole suite."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", "1")))
    parser.add_argument("--data", type=Path, default=None, help="where datasets are kept")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder")
    parser.add_argument("--only", default="", help="comma-separated scenarios")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.child:
        figures = child(args.child, args.work, args.data, args.scale, rest)
        print(json.dumps(figures))
        return 0
    only = set(args.only.split(",")) - {""} or set(SCENARIOS)
    unknown = only - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {sorted(unknown)}")
    for tool in ("restic", "rclone", "openssl"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: run scripts/bench_peers.sh (nox -s bench does)")
    data = args.data or Path(os.environ.get("BENCH_DATA", tempfile.gettempdir())) / "ctfy-bench"
    data.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="ctfy-suite-", dir=args.work) as tmp:
        rows, raw = run_suite(args.scale, data, Path(tmp), only)
    results = {
        "scale": args.scale,
        "started": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "raw": raw,
        "rows": rows,
    }
    suffix = "" if args.scale == 1 else f"-{args.scale:g}"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"suite{suffix}.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (RESULTS / f"suite{suffix}.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
