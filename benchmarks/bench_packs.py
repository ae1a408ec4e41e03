"""Format v2 (packs): backups, restores and memory beside restic and ``cp``, in one run.

Datasets come from `datasets` (fixed seeds), every size multiplied by ``--scale`` (or
``BENCH_SCALE``; ``0.05`` is a smoke run of a couple of minutes, the published table is 1):
the mixed tree (10,000 files, 1 GiB: most small, a few large), 100,000 files of 1 KiB, a 2 GiB
and a 4 GiB incompressible file, a 100 MiB one (64 MiB at least, so it fills packs at any
scale), and the 1 GiB SQL dump of the suite.

=============  ==================================================  ==============================
scenario       ours                                                baseline (same run)
=============  ==================================================  ==============================
tree           first backup of the tree to 3 local targets and to  ``restic backup`` to 1
               1 (format 2); CPU seconds per GiB                   repository
objects        files stored per target by those backups            restic's data/, index/,
                                                                   snapshots/
fanout         the 2 GiB file to 3 targets (throughput)            3 x ``cp`` + ``sync``
restore        ``Vault.restore`` of the tree and of the dump       ``restic restore latest``
tiny           100,000 files of 1 KiB to 1 target, peak RSS        ``restic backup``
rss_flat       a 100 MiB file and a 4 GiB file to 1 target         each other (peak RSS)
v1             the tree scenario with ``Vault.init(format=1)``     restic, and format 2
rgw            the tree to an RGW bucket, S3 requests counted      restic to the same RGW
=============  ==================================================  ==============================

Each scenario runs ``--repeat`` (default 3) interleaved rounds, ours then the baseline, each
round on a fresh repository; the table shows medians and each ratio is median / median. Our
operations run in child processes (this script with ``--child``): the time is the operation
alone, timed in the child after opening the vault; peak RSS and CPU (user + system) are the
child's own, from ``wait4``, like restic's. ``sync`` runs before every timed step.

``BENCH_PROFILE=1`` profiles every child operation with cProfile in every thread (the writer's
threads included), writes ``results/profiles/<op>-<name>.prof`` and prints the top entries and
each thread group's share of time spent waiting (locks, queues, semaphores) to stderr.

The ``rgw`` scenario needs a running Ceph RGW: ``BENCH_RGW_ENV`` names an env file with
``RGW_ENDPOINT``, ``RGW_ACCESS_KEY``, ``RGW_SECRET_KEY`` and ``RGW_REGION`` (the format
``scripts/rgw.sh`` writes; ``CTFY_TEST_RGW_ENV``, the tests' variable, is read too); without it
the scenario is left out. Requests are counted by a
local pass-through proxy that both tools talk to in one extra, untimed round.

Results: ``benchmarks/results/packs[-<scale>].json`` and ``.md`` (printed too), with each
target's pass or fail. Run: ``nox -s bench -- packs`` or
``python benchmarks/bench_packs.py [--scale S] [--only tree,tiny] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import http.server
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import datasets
import suite

HERE: Final = Path(__file__).parent
RESULTS: Final = HERE / "results"
PROFILES: Final = RESULTS / "profiles"
MIB: Final = 2**20
GIB: Final = 2**30
NOW: Final = suite.NOW
SCENARIOS: Final = ("tree", "objects", "fanout", "restore", "tiny", "rss_flat", "v1", "rgw")
#: Row name -> the targets it is checked against: (figure, comparison, bound).
TARGETS: Final[dict[str, tuple[tuple[str, str, float], ...]]] = {
    "tree_3_targets": (("time_ratio", "<=", 1.0), ("cpu_ratio", "<=", 1.0)),
    "tree_1_target": (("time_ratio", "<=", 0.7), ("cpu_ratio", "<=", 1.0)),
    "fanout_3_targets": (("share_of_cp", ">=", 0.8),),
    "restore_tree": (("time_ratio", "<=", 1.0),),
    "restore_dump": (("time_ratio", "<=", 1.0),),
    "tiny_1_target": (("time_ratio", "<=", 1.0), ("rss_ratio", "<=", 1.0)),
    "rss_flat": (("rss_spread_mib", "<", 64.0),),
}


# -- the child: one of our operations ------------------------------------------------------------


def _targets(work: Path, name: str, count: int) -> list[Any]:
    from ctfy_vault.storage import Target

    return [Target.from_url(str(work / f"{name}-t{n}"), name=f"t{n}") for n in range(count)]


def _s3_targets(name: str) -> list[Any]:
    from ctfy_vault.storage import Target

    env = _rgw_env()
    assert env is not None
    endpoint = os.environ.get("BENCH_S3_ENDPOINT", env["RGW_ENDPOINT"])
    return [
        Target.from_url(
            f"s3://{os.environ['BENCH_S3_BUCKET']}/{name}",
            name="rgw",
            endpoint_url=endpoint,
            key=env["RGW_ACCESS_KEY"],
            secret=env["RGW_SECRET_KEY"],
            region=env.get("RGW_REGION", "default"),
        )
    ]


def child(op: str, work: Path, args: list[str]) -> dict[str, Any]:
    """Do one operation and return its figures (``seconds`` = the operation alone)."""
    from ctfy_vault.crypto import RawKey
    from ctfy_vault.vault import Vault

    key = RawKey(b"k" * 32)
    name, count = args[0], int(args[1])
    targets = _s3_targets(name) if count == 0 else _targets(work, name, count)
    if op == "init":
        Vault.init(targets, key=key, now=NOW, format=int(args[2]))
        return {"seconds": 0.0}
    vault = Vault.open(targets, key=key)
    if op == "backup":
        source, lineage = args[2], args[3]

        def task() -> dict[str, Any]:
            info = vault.backup(source, lineage=lineage, host="bench", now=NOW)
            return {"sealed": info.chunks_sealed, "read": info.bytes_read}

    elif op == "restore":
        lineage, dest = args[2], Path(args[3])

        def task() -> dict[str, Any]:
            vault.restore(vault.snapshots(lineage)[0], dest)
            return {}

    else:
        raise SystemExit(f"unknown child operation {op}")
    cpu0, start = time.process_time(), time.perf_counter()
    profile = os.environ.get("BENCH_PROFILE") == "1"
    figures = _profiled(task, f"{op}-{name}") if profile else task()
    figures["seconds"] = time.perf_counter() - start
    figures["op_cpu"] = time.process_time() - cpu0
    return figures


#: The C-level calls a thread blocks in (every lock, condition, semaphore, queue and future
#: wait of the standard library ends in one of them).
_BLOCKING: Final = (
    "<method 'acquire' of '_thread.lock' objects>",
    "<method 'acquire' of '_thread.RLock' objects>",
    "<method 'get' of '_queue.SimpleQueue' objects>",
    "<built-in method time.sleep>",
)
#: Standard-library frames a wait is attributed to (the first met walking up the callers).
_WAIT_SITES: Final = (
    ("queue.py", "put"),
    ("queue.py", "get"),
    ("threading.py", "acquire"),  # Semaphore / BoundedSemaphore
    ("threading.py", "join"),
    ("_base.py", "result"),  # Future.result
    ("_base.py", "wait"),  # concurrent.futures.wait
    ("thread.py", "_worker"),  # an idle pool thread waiting for work
    ("threading.py", "wait"),  # Condition.wait / Event.wait from elsewhere
)


def _wait_seconds(stats: Any) -> tuple[float, Counter[str]]:
    """Seconds spent blocked in one thread's profile, and the same split by where it waited."""
    blocked = 0.0
    sites: Counter[str] = Counter()
    for func, (_cc, _nc, tottime, _ct, callers) in stats.stats.items():
        if func[2] not in _BLOCKING:
            continue
        blocked += tottime
        for caller, caller_stats in callers.items():
            sites[_site(stats, caller)] += caller_stats[2]
    return blocked, sites


def _site(stats: Any, func: tuple[str, int, str], depth: int = 0) -> str:
    """The first `_WAIT_SITES` frame at or above ``func``, or ``func`` itself."""
    base = func[0].rsplit("/", 1)[-1]
    if (base, func[2]) in _WAIT_SITES and not (base == "threading.py" and func[2] == "wait"):
        return f"{base}:{func[2]}"
    callers = stats.stats.get(func, (0, 0, 0, 0, {}))[4]
    if depth < 3 and len(callers) == 1:
        return _site(stats, next(iter(callers)), depth + 1)
    if depth < 3 and callers:
        heaviest = max(callers.items(), key=lambda item: item[1][3])[0]
        return _site(stats, heaviest, depth + 1)
    return f"{base}:{func[2]}"


def _group(thread_name: str) -> str:
    """``ctfy-seal_3`` -> ``ctfy-seal``; ``ctfy-pack-t0-1`` -> ``ctfy-pack``."""
    stem = thread_name.split("_", maxsplit=1)[0]
    return "ctfy-pack" if stem.startswith("ctfy-pack-") else stem.rstrip("-0123456789") or stem


def _profiled(task: Callable[[], dict[str, Any]], label: str) -> dict[str, Any]:
    """Run ``task`` under cProfile in this thread and in every thread it starts; report waits."""
    import cProfile

    done: list[tuple[str, cProfile.Profile, float]] = []
    lock = threading.Lock()
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        profile = cProfile.Profile()
        start = time.perf_counter()
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()
            with lock:
                done.append((self.name, profile, time.perf_counter() - start))

    threading.Thread.run = run  # type: ignore[method-assign]
    main = cProfile.Profile()
    start = time.perf_counter()
    main.enable()
    try:
        figures = task()
    finally:
        main.disable()
        threading.Thread.run = original  # type: ignore[method-assign]
    done.append(("MainThread", main, time.perf_counter() - start))
    figures["waits"] = _report(done, main, label)
    return figures


def _report(done: list[tuple[str, Any, float]], main: Any, label: str) -> dict[str, Any]:
    """Write the merged profile; print its top entries and each thread group's waiting share."""
    import io
    import pstats

    groups: dict[str, dict[str, Any]] = {}
    merged = pstats.Stats(main)
    for thread_name, profile, wall in done:
        if profile is not main:
            merged.add(profile)
        blocked, sites = _wait_seconds(pstats.Stats(profile))
        group = groups.setdefault(
            _group(thread_name), {"threads": 0, "wall": 0.0, "waiting": 0.0, "sites": Counter()}
        )
        group["threads"] += 1
        group["wall"] += wall
        group["waiting"] += blocked
        group["sites"].update(sites)
    PROFILES.mkdir(parents=True, exist_ok=True)
    path = PROFILES / f"{label}.prof"
    merged.dump_stats(str(path))
    text = io.StringIO()
    merged.stream = text  # type: ignore[attr-defined]
    merged.sort_stats("cumulative").print_stats(25)
    merged.sort_stats("tottime").print_stats(25)
    print(f"== profile of {label} (all threads): {path}", file=sys.stderr)
    print(text.getvalue(), file=sys.stderr)
    waits = {}
    for group_name, group in sorted(groups.items()):
        share = group["waiting"] / group["wall"] if group["wall"] else 0.0
        top = ", ".join(f"{site} {sec:.2f}s" for site, sec in group["sites"].most_common(4))
        print(
            f"  {group_name}: {group['threads']} threads, {group['wall']:.2f} thread-s, "
            f"waiting {share:.0%} ({top})",
            file=sys.stderr,
        )
        waits[group_name] = {"threads": group["threads"], "wall": group["wall"], "wait": share}
    return waits


# -- the parent ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Figures:
    """One timed step: seconds (ours: the operation alone), peak RSS, CPU, the whole command."""

    seconds: float
    rss: int
    cpu: float
    command: float


class Ours:
    """Runs our operations in child processes (this script with ``--child``)."""

    def __init__(self, work: Path, env: dict[str, str] | None = None) -> None:
        self.work = work
        self.base = [sys.executable, str(Path(__file__).resolve()), "--work", str(work), "--child"]
        self.env = env

    def run(self, op: str, *args: str) -> Figures:
        """Run one child operation; return its figures."""
        got = suite.measured_usage([*self.base, op, *args], self.env)
        figures: dict[str, Any] = json.loads(got.stdout.strip().splitlines()[-1])
        return Figures(float(figures["seconds"]), got.rss, got.cpu, got.seconds)

    def backup(self, name: str, count: int, source: Path, *, fmt: int = 2) -> Figures:
        """A first backup of ``source`` into a new repository of ``count`` targets."""
        self.run("init", name, str(count), str(fmt))
        return self.run("backup", name, str(count), str(source), "bench")

    def drop(self, name: str, count: int) -> None:
        """Delete the repository's target folders."""
        for n in range(count):
            shutil.rmtree(self.work / f"{name}-t{n}", ignore_errors=True)


def restic_run(restic: suite.Restic, *args: str) -> Figures:
    """Run ``restic ARGS`` as a whole command."""
    got = suite.measured_usage(["restic", "--quiet", *args], restic.env)
    return Figures(got.seconds, got.rss, got.cpu, got.seconds)


def restic_backup(restic: suite.Restic, source: Path) -> Figures:
    """``restic init`` (not timed) and a first ``restic backup`` of ``source``."""
    shutil.rmtree(restic.repo, ignore_errors=True)
    shutil.rmtree(restic.repo.parent / f"{restic.repo.name}-cache", ignore_errors=True)
    restic_run(restic, "init")
    return restic_run(restic, "backup", "--host", "bench", str(source))


def median_of(runs: list[Figures]) -> Figures:
    """Each figure's median over the rounds."""
    return Figures(
        statistics.median(r.seconds for r in runs),
        int(statistics.median(r.rss for r in runs)),
        statistics.median(r.cpu for r in runs),
        statistics.median(r.command for r in runs),
    )


def count_objects(root: Path) -> dict[str, int]:
    """Files stored under each top-level folder of a repository (``config`` etc. as ``other``)."""
    counts: Counter[str] = Counter()
    for base, _dirs, files in os.walk(root):
        rel = Path(base).relative_to(root).parts
        for _name in files:
            counts[rel[0] if rel else "other"] += 1
    counts["total"] = sum(counts.values())
    return dict(sorted(counts.items()))


@dataclasses.dataclass
class Run:
    """What every scenario of one run shares."""

    data: Path
    work: Path
    scale: float
    repeat: int
    ours: Ours
    restic: suite.Restic
    rows: dict[str, dict[str, Any]]
    objects: dict[str, dict[str, int]]


def add_row(
    run: Run, name: str, ours: list[Figures], peer: list[Figures] | None, **extra: Any
) -> dict[str, Any]:
    """Record a row from each side's rounds (medians; ratios are median / median)."""
    mine = median_of(ours)
    row: dict[str, Any] = {
        "ours_s": mine.seconds,
        "ours_rss": mine.rss,
        "ours_cpu": mine.cpu,
        "ours_rounds": [r.seconds for r in ours],
    }
    if peer:
        theirs = median_of(peer)
        row.update(
            peer_s=theirs.seconds,
            peer_rss=theirs.rss,
            peer_cpu=theirs.cpu,
            peer_rounds=[r.seconds for r in peer],
            time_ratio=mine.seconds / theirs.seconds,
            rss_ratio=mine.rss / theirs.rss,
            cpu_ratio=mine.cpu / theirs.cpu,
            command_ratio=mine.command / theirs.command,
        )
    row.update(extra)
    run.rows[name] = row
    shown = ", ".join(
        f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
        for k, v in row.items()
        if not k.endswith("_rounds")
    )
    print(f"  {name}: {shown}", flush=True)
    return row


def _check_tree(root: Path, expected: tuple[int, int]) -> None:
    if datasets.tree_count(root) != expected:
        got = datasets.tree_count(root)
        raise SystemExit(f"{root}: restored {got} (files, bytes), expected {expected}")


def scenario_tree(run: Run, with_v1: bool, with_objects: bool) -> None:
    """First backups of the mixed tree: ours to 3 and 1 targets (v2, and v1), restic to 1."""
    tree = datasets.tree(run.data, run.scale)
    gib = datasets.tree_bytes(tree) / GIB
    sides: dict[str, list[Figures]] = {"restic": [], "v2x3": [], "v2x1": [], "v1x3": [], "v1x1": []}
    plan = [("v2x3", 2, 3), ("v2x1", 2, 1)]
    if with_v1:
        plan += [("v1x3", 1, 3), ("v1x1", 1, 1)]
    for round_no in range(run.repeat):
        last = round_no == run.repeat - 1
        for index, (side, fmt, count) in enumerate(plan):
            sides[side].append(run.ours.backup(side, count, tree, fmt=fmt))
            if last:
                run.objects[f"ours {side} (per target)"] = count_objects(run.work / f"{side}-t0")
            run.ours.drop(side, count)
            if index == 0:  # the baseline right after our first side: ours, peer, ours, ...
                sides["restic"].append(restic_backup(run.restic, tree))
                if last:
                    run.objects["restic"] = count_objects(run.restic.repo)
                shutil.rmtree(run.restic.repo)
    for side, fmt, count in plan:
        label = f"tree{'_v1' if fmt == 1 else ''}_{count}_target{'s' if count > 1 else ''}"
        v2 = median_of(sides[f"v2x{count}"]).seconds
        extra: dict[str, Any] = {
            "cpu_per_gib": median_of(sides[side]).cpu / gib,
            "peer_cpu_per_gib": median_of(sides["restic"]).cpu / gib,
            "mb_s": gib * GIB / median_of(sides[side]).seconds / 1e6,
        }
        if fmt == 1:
            extra["v1_over_v2"] = median_of(sides[side]).seconds / v2
        add_row(run, label, sides[side], sides["restic"], **extra)
    if not with_objects:
        run.objects.clear()


def scenario_fanout(run: Run) -> None:
    """The 2 GiB incompressible file to 3 targets beside three ``cp`` and a ``sync``."""
    blob = datasets.random_blob(run.data, "fanout.bin", int(2 * GIB * run.scale))
    copies = [run.work / f"cp-{n}" for n in range(3)]
    script = " && ".join(f"cp '{blob}' '{c}'" for c in copies) + " && sync"
    ours: list[Figures] = []
    peer: list[Figures] = []
    for _ in range(run.repeat):
        ours.append(run.ours.backup("fanout", 3, blob))
        run.ours.drop("fanout", 3)
        got = suite.measured_usage(["sh", "-c", script])
        peer.append(Figures(got.seconds, got.rss, got.cpu, got.seconds))
        for c in copies:
            c.unlink()
    size = blob.stat().st_size
    mine, theirs = median_of(ours).seconds, median_of(peer).seconds
    add_row(
        run,
        "fanout_3_targets",
        ours,
        peer,
        ours_mb_s=size / mine / 1e6,
        cp_mb_s=size / theirs / 1e6,
        share_of_cp=theirs / mine,
    )


def scenario_restore(run: Run) -> None:
    """Restores of the tree and of the dump (each backed up once, not timed), ours vs restic."""
    tree = datasets.tree(run.data, run.scale)
    dump, _ = datasets.sql(run.data, run.scale)
    for label, source in (("restore_tree", tree), ("restore_dump", dump.parent)):
        name = label.replace("_", "-")
        run.ours.backup(name, 1, source)
        restic_backup(run.restic, source)
        expected = datasets.tree_count(source)
        ours: list[Figures] = []
        peer: list[Figures] = []
        for _ in range(run.repeat):
            dest, peer_dest = run.work / "r-ours", run.work / "r-restic"
            ours.append(run.ours.run("restore", name, "1", "bench", str(dest)))
            peer.append(restic_run(run.restic, "restore", "latest", "--target", str(peer_dest)))
            _check_tree(dest, expected)
            _check_tree(peer_dest, expected)
            shutil.rmtree(dest)
            shutil.rmtree(peer_dest)
        size = expected[1]
        add_row(run, label, ours, peer, ours_mb_s=size / median_of(ours).seconds / 1e6)
        run.ours.drop(name, 1)
        shutil.rmtree(run.restic.repo)


def scenario_tiny(run: Run) -> None:
    """100,000 files of 1 KiB to 1 target, beside restic (time and peak RSS)."""
    tiny = datasets.tiny_files(run.data, run.scale)
    ours: list[Figures] = []
    peer: list[Figures] = []
    for _ in range(run.repeat):
        ours.append(run.ours.backup("tiny", 1, tiny))
        run.ours.drop("tiny", 1)
        peer.append(restic_backup(run.restic, tiny))
        shutil.rmtree(run.restic.repo)
    files = datasets.tree_count(tiny)[0]
    add_row(run, "tiny_1_target", ours, peer, files_per_s=files / median_of(ours).seconds)


def scenario_rss_flat(run: Run) -> None:
    """Peak RSS of backups of a 100 MiB and a 4 GiB file (ours, 1 target): flat in file size."""
    # At least 64 MiB, so that at a small scale the small file still fills packs (16 MiB each).
    small_size = max(int(100 * MIB * run.scale), 64 * MIB)
    small = datasets.random_blob(run.data, "flat-small.bin", small_size)
    large = datasets.big_file(run.data, run.scale)
    smalls: list[Figures] = []
    larges: list[Figures] = []
    for _ in range(run.repeat):
        smalls.append(run.ours.backup("flat-small", 1, small))
        run.ours.drop("flat-small", 1)
        larges.append(run.ours.backup("flat-large", 1, large))
        run.ours.drop("flat-large", 1)
    low, high = median_of(smalls), median_of(larges)
    add_row(
        run,
        "rss_flat",
        larges,
        None,
        small_s=low.seconds,
        small_rss=low.rss,
        large_bytes=large.stat().st_size,
        small_bytes=small.stat().st_size,
        rss_spread_mib=(high.rss - low.rss) / MIB,
    )


# -- RGW -----------------------------------------------------------------------------------------


def _rgw_env() -> dict[str, str] | None:
    path = os.environ.get("BENCH_RGW_ENV") or os.environ.get("CTFY_TEST_RGW_ENV")
    if not path or not Path(path).exists():
        return None
    values = {}
    for line in Path(path).read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            values[key.strip().removeprefix("export ")] = value.strip().strip("'\"")
    return values


class _CountingProxy(http.server.ThreadingHTTPServer):
    """A pass-through HTTP proxy to one upstream that counts requests by method."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.removeprefix("http://").rstrip("/")
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _CountingProxy

    def _forward(self) -> None:
        with self.server.lock:
            self.server.counts[self.command] += 1
        body = self._body()
        conn = http.client.HTTPConnection(self.server.upstream, timeout=300)
        # The Host header is passed unchanged, so the signature the client made still holds; a
        # chunked body is forwarded whole, with its length.
        dropped = ("connection", "transfer-encoding", "content-length")
        headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        conn.request(self.command, self.path, body=body, headers=headers)
        reply = conn.getresponse()
        data = reply.read()
        self.send_response_only(reply.status, reply.reason)
        for key, value in reply.getheaders():
            if key.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(key, value)
        # A HEAD reply's length is the object's, not that of its (empty) body.
        length = reply.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    def _body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers, up to the blank line
                pass
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def do_GET(self) -> None:
        """Forward a GET."""
        self._forward()

    def do_HEAD(self) -> None:
        """Forward a HEAD."""
        self._forward()

    def do_PUT(self) -> None:
        """Forward a PUT."""
        self._forward()

    def do_POST(self) -> None:
        """Forward a POST."""
        self._forward()

    def do_DELETE(self) -> None:
        """Forward a DELETE."""
        self._forward()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""


@contextmanager
def _proxy(upstream: str) -> Iterator[_CountingProxy]:
    server = _CountingProxy(upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _bucket(env: dict[str, str], name: str, *, create: bool) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=env["RGW_ENDPOINT"],
        aws_access_key_id=env["RGW_ACCESS_KEY"],
        aws_secret_access_key=env["RGW_SECRET_KEY"],
        region_name=env.get("RGW_REGION", "default"),
    )
    if create:
        client.create_bucket(Bucket=name)
        return
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=name):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
    client.delete_bucket(Bucket=name)


def scenario_rgw(run: Run) -> None:
    """The tree to an RGW bucket, ours (1 target) vs restic (``s3:http://...``), with requests."""
    env = _rgw_env()
    if env is None:
        print("  rgw: left out (BENCH_RGW_ENV names no env file)", flush=True)
        return
    tree = datasets.tree(run.data, run.scale)
    ours: list[Figures] = []
    peer: list[Figures] = []
    counts: dict[str, dict[str, int]] = {}
    for round_no in range(run.repeat + 1):
        counting = round_no == run.repeat  # one more round, through the counting proxy
        bucket = f"ctfy-bench-{uuid.uuid4().hex[:12]}"
        _bucket(env, bucket, create=True)
        try:
            with _proxy(env["RGW_ENDPOINT"]) as proxy:
                endpoint = f"http://127.0.0.1:{proxy.server_address[1]}"
                if not counting:
                    endpoint = env["RGW_ENDPOINT"]
                child_env = {**os.environ, "BENCH_S3_BUCKET": bucket}
                child_env["BENCH_S3_ENDPOINT"] = endpoint
                side = Ours(run.work, child_env)
                side.run("init", "ours", "0", "2")
                proxy.counts.clear()  # both sides count the backup alone, not the init
                got = side.run("backup", "ours", "0", str(tree), "bench")
                ours_counts = dict(proxy.counts)
                restic = suite.Restic(run.work / "unused")
                restic.env.update(
                    RESTIC_REPOSITORY=f"s3:{endpoint}/{bucket}/restic",
                    AWS_ACCESS_KEY_ID=env["RGW_ACCESS_KEY"],
                    AWS_SECRET_ACCESS_KEY=env["RGW_SECRET_KEY"],
                    AWS_DEFAULT_REGION=env.get("RGW_REGION", "default"),
                )
                restic_run(restic, "init")
                proxy.counts.clear()
                theirs = restic_run(restic, "backup", "--host", "bench", str(tree))
                if counting:
                    counts = {"ours": ours_counts, "restic": dict(proxy.counts)}
                else:
                    ours.append(got)
                    peer.append(theirs)
        finally:
            _bucket(env, bucket, create=False)
            shutil.rmtree(run.work / "unused-cache", ignore_errors=True)
    add_row(
        run,
        "rgw_1_target",
        ours,
        peer,
        requests=sum(counts["ours"].values()),
        peer_requests=sum(counts["restic"].values()),
        requests_by_method=counts,
    )


# -- output --------------------------------------------------------------------------------------


def _met(row: dict[str, Any], checks: tuple[tuple[str, str, float], ...]) -> list[str]:
    out = []
    for field, op, bound in checks:
        value = row.get(field)
        if value is None:
            continue
        ok = {"<=": value <= bound, "<": value < bound, ">=": value >= bound}[op]
        out.append(f"{field} {value:.2f} {op} {bound:g}: {'pass' if ok else 'FAIL'}")
    return out


def _cell(row: dict[str, Any], key: str, spec: str, unit: float = 1) -> str:
    value = row.get(key)
    return "-" if value is None else format(value / unit, spec)


def markdown(results: dict[str, Any]) -> str:
    """The tables: each row ours beside its baseline, then objects per target."""
    lines = [
        f"Scale {results['scale']:g}, {results['repeat']} interleaved rounds (medians).",
        "",
        "| scenario | ours s | baseline s | time ratio | ours CPU s/GiB | baseline CPU s/GiB "
        "| whole-command ratio | ours RSS MiB | baseline RSS MiB | other | targets |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, row in results["rows"].items():
        other = []
        for key in ("v1_over_v2", "share_of_cp", "ours_mb_s", "mb_s", "files_per_s"):
            if key in row:
                other.append(f"{key} {row[key]:.2f}")
        if "rss_spread_mib" in row:
            other.append(
                f"small file: {row['small_rss'] / MIB:.0f} MiB, large: "
                f"{row['ours_rss'] / MIB:.0f} MiB, spread {row['rss_spread_mib']:.0f} MiB"
            )
        if "requests" in row:
            other.append(f"requests {row['requests']} vs {row['peer_requests']}")
        cells = [
            _cell(row, "ours_s", ".3g"),
            _cell(row, "peer_s", ".3g"),
            _cell(row, "time_ratio", ".2f"),
            _cell(row, "cpu_per_gib", ".2f"),
            _cell(row, "peer_cpu_per_gib", ".2f"),
            _cell(row, "command_ratio", ".2f"),
            _cell(row, "ours_rss", ".0f", MIB),
            _cell(row, "peer_rss", ".0f", MIB),
            "; ".join(other) or "-",
            "; ".join(_met(row, TARGETS.get(name, ()))) or "-",
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if results["objects"]:
        folders = sorted({k for counts in results["objects"].values() for k in counts})
        lines += ["", "Files stored per target by one first backup of the tree:", ""]
        lines.append("| repository | " + " | ".join(folders) + " |")
        lines.append("|---|" + "---:|" * len(folders))
        for label, counts in results["objects"].items():
            lines.append(
                f"| {label} | " + " | ".join(str(counts.get(f, 0)) for f in folders) + " |"
            )
    return "\n".join(lines) + "\n"


def run_all(scale: float, repeat: int, data: Path, work: Path, only: set[str]) -> Run:
    """Generate the datasets the chosen scenarios need and run them."""
    data = datasets.scaled(data, scale)
    data.mkdir(parents=True, exist_ok=True)
    run = Run(data, work, scale, repeat, Ours(work), suite.Restic(work / "restic"), {}, {})
    t0 = time.perf_counter()
    if only & {"tree", "objects", "v1"}:
        print("# tree", flush=True)
        scenario_tree(run, with_v1="v1" in only, with_objects="objects" in only)
    steps: list[tuple[str, Callable[[Run], None]]] = [
        ("fanout", scenario_fanout),
        ("restore", scenario_restore),
        ("tiny", scenario_tiny),
        ("rss_flat", scenario_rss_flat),
        ("rgw", scenario_rgw),
    ]
    for name, step in steps:
        if name in only:
            print(f"# {name}", flush=True)
            step(run)
    print(f"done in {time.perf_counter() - t0:.0f} s (datasets included)", flush=True)
    return run


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments; run one child operation or the chosen scenarios."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", "1")))
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (>= 1)")
    parser.add_argument("--data", type=Path, default=None, help="where datasets are kept")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder")
    parser.add_argument("--only", default="", help="comma-separated scenarios")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.work, rest)))
        return 0
    only = set(args.only.split(",")) - {""} or set(SCENARIOS)
    if unknown := only - set(SCENARIOS):
        parser.error(f"unknown scenarios: {sorted(unknown)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if shutil.which("restic") is None:
        raise SystemExit("restic is missing: run scripts/bench_peers.sh (nox -s bench does)")
    data = args.data or Path(os.environ.get("BENCH_DATA", tempfile.gettempdir())) / "ctfy-bench"
    data.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="ctfy-packs-", dir=args.work) as tmp:
        run = run_all(args.scale, args.repeat, data, Path(tmp), only)
    results = {
        "scale": args.scale,
        "repeat": args.repeat,
        "started": started.isoformat(timespec="seconds"),
        "machine": suite.machine(),
        "rows": run.rows,
        "objects": run.objects,
    }
    suffix = "" if args.scale == 1 else f"-{args.scale:g}"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"packs{suffix}.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (RESULTS / f"packs{suffix}.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
