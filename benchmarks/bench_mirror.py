"""Mirror benchmark: `mirror` vs ``rclone copy`` on the same data in the same run.

Data in one Ceph RGW bucket: 2,000 objects of 1 KiB and 20 objects of 20 MiB. Each is copied to
another RGW bucket and to a local folder, once by `mirror` and once by Debian's ``rclone copy``
(installed with apt-get if missing), each into its own fresh destination. Then both run again over
the unchanged data (the incremental case). ``*_ratio`` = our time / rclone's time (target <= 1.0).

The RGW server comes from ``tests/support/servers.py`` (``CTFY_TEST_RGW_ENV`` names a running one; otherwise
one is started and stopped). Results: printed as a Markdown table and written to
``benchmarks/results/mirror.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE.parent))

from tests.support.servers import S3Endpoint, make_bucket, rgw_server, s3_client, s3_target  # noqa: E402

from ctfy_vault.mirror import MirrorState, mirror  # noqa: E402
from ctfy_vault.storage import Target  # noqa: E402

SMALL = (2000, 1024)
LARGE = (20, 20 * 2**20)
WORKERS = 16


def ensure_rclone() -> str | None:
    """Return rclone's path, installing Debian's package if it is missing; None if impossible."""
    found = shutil.which("rclone")
    if found:
        return found
    print("rclone missing: apt-get install -y rclone", flush=True)
    subprocess.run(["apt-get", "install", "-y", "rclone"], check=False)
    return shutil.which("rclone")


def seed(endpoint: S3Endpoint, bucket: str) -> None:
    """Upload the benchmark data (untimed)."""
    client = s3_client(endpoint)
    jobs: list[tuple[str, bytes]] = [
        (f"small/{i:05d}.txt", os.urandom(SMALL[1])) for i in range(SMALL[0])
    ]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda job: client.put_object(Bucket=bucket, Key=job[0], Body=job[1]), jobs))
        big = [(f"large/{i:02d}.bin", os.urandom(LARGE[1])) for i in range(LARGE[0])]
        list(pool.map(lambda job: client.upload_file(*_spill(job), bucket, job[0]), big))


def _spill(job: tuple[str, bytes]) -> tuple[str]:
    fd, path = tempfile.mkstemp(prefix="ctfy-bench-")
    with os.fdopen(fd, "wb") as out:
        out.write(job[1])
    return (path,)


def timed(fn: Callable[[], object]) -> float:
    """Return the seconds ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def rclone_env(endpoint: S3Endpoint) -> dict[str, str]:
    """An rclone remote named ``rgw`` configured through the environment (no config file)."""
    # rclone's AWS SDK cannot combine a custom CA bundle with its own HTTP transport; the endpoint
    # is plain HTTP on loopback, so the bundle is not needed.
    inherited = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    return {
        **inherited,
        "RCLONE_CONFIG": os.devnull,
        "RCLONE_CONFIG_RGW_TYPE": "s3",
        "RCLONE_CONFIG_RGW_PROVIDER": "Ceph",
        "RCLONE_CONFIG_RGW_ENDPOINT": endpoint.endpoint_url,
        "RCLONE_CONFIG_RGW_ACCESS_KEY_ID": endpoint.key,
        "RCLONE_CONFIG_RGW_SECRET_ACCESS_KEY": endpoint.secret,
        "RCLONE_CONFIG_RGW_REGION": endpoint.region,
    }


def rclone_copy(rclone: str, env: dict[str, str], source: str, dest: str) -> None:
    """Run ``rclone copy`` with as many transfers (and checkers) as our workers."""
    concurrency = str(WORKERS)
    subprocess.run(
        [
            rclone,
            "copy",
            source,
            dest,
            "--transfers",
            concurrency,
            "--checkers",
            concurrency,
            "--s3-no-check-bucket",
            "-q",
        ],
        env=env,
        check=True,
    )


def scenario(
    endpoint: S3Endpoint, rclone: str, src_bucket: str, prefix: str, scratch: Path
) -> dict[str, Any]:
    """Time ours vs rclone for one data set, to a bucket and to a folder, first and again."""
    env = rclone_env(endpoint)
    ours_bucket = make_bucket(endpoint, f"bench-ours-{uuid.uuid4().hex[:12]}")
    theirs_bucket = make_bucket(endpoint, f"bench-rclone-{uuid.uuid4().hex[:12]}")
    source = s3_target(endpoint, src_bucket, prefix)
    replica = s3_target(endpoint, ours_bucket, prefix)
    folder = Target.from_url(str(scratch / f"ours-{prefix}"))
    state = MirrorState()
    out: dict[str, Any] = {}
    report = None

    def ours_bucket_run() -> None:
        nonlocal report
        report = mirror(source, [replica], state=state, workers=WORKERS)

    out["to_bucket_ours_s"] = timed(ours_bucket_run)
    assert report is not None
    assert report.ok
    assert report.count("copied") == report.listed
    out["to_bucket_rclone_s"] = timed(
        lambda: rclone_copy(
            rclone, env, f"rgw:{src_bucket}/{prefix}", f"rgw:{theirs_bucket}/{prefix}"
        )
    )
    local_state = MirrorState()
    out["to_folder_ours_s"] = timed(
        lambda: mirror(source, [folder], state=local_state, workers=WORKERS)
    )
    out["to_folder_rclone_s"] = timed(
        lambda: rclone_copy(
            rclone, env, f"rgw:{src_bucket}/{prefix}", str(scratch / f"rclone-{prefix}")
        )
    )
    out["again_bucket_ours_s"] = timed(ours_bucket_run)
    assert report is not None
    assert report.outcomes == ()
    out["again_bucket_rclone_s"] = timed(
        lambda: rclone_copy(
            rclone, env, f"rgw:{src_bucket}/{prefix}", f"rgw:{theirs_bucket}/{prefix}"
        )
    )
    for name in ("to_bucket", "to_folder", "again_bucket"):
        out[f"{name}_ratio"] = out[f"{name}_ours_s"] / out[f"{name}_rclone_s"]
    return out


def main() -> dict[str, Any]:
    """Run every mirror scenario and write the results."""
    rclone = ensure_rclone()
    results: dict[str, Any] = {}
    if rclone is None:
        print("SKIPPED: rclone is not installed and apt-get could not install it")
        return results
    with rgw_server() as endpoint, tempfile.TemporaryDirectory(prefix="ctfy-bench-") as scratch:
        src_bucket = make_bucket(endpoint, f"bench-src-{uuid.uuid4().hex[:12]}")
        seed(endpoint, src_bucket)
        for prefix, (count, size) in (("small", SMALL), ("large", LARGE)):
            measured = scenario(endpoint, rclone, src_bucket, prefix, Path(scratch))
            results.update({f"{prefix}_{k}": v for k, v in measured.items()})
            results[f"{prefix}_objects"] = count
            results[f"{prefix}_object_bytes"] = size
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "mirror.json").write_text(json.dumps(results, indent=2) + "\n")
    print("| mirror measure | value |\n|---|---|")
    for name, value in results.items():
        print(f"| {name} | {value:.3f} |" if isinstance(value, float) else f"| {name} | {value} |")
    return results


if __name__ == "__main__":
    main()
