"""Links benchmark: signing rate of `presign` as a ratio to raw botocore in the same run.

* ``presign(target, key)`` on an S3 target vs ``generate_presigned_url("get_object", ...)`` on one
  reused botocore client with the same endpoint, credentials, region and SigV4: ``s3_ratio`` = our
  rate / botocore's rate (target >= 0.9).
* local HMAC links: `presign` + `verify_link` round trips per second (no baseline; for scale).

Signing is local: no server is contacted. Results: printed as a Markdown table and written to
``benchmarks/results/links.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ctfy_vault.links import LinkSigner, presign, verify_link
from ctfy_vault.storage import Target

HERE = Path(__file__).parent
RESULTS = HERE / "results"
ENDPOINT = "http://127.0.0.1:9"
KEY_ID = "AKIDBENCHMARK"
SECRET = "bench/secret/key/not/used/anywhere/else"  # noqa: S105 - dummy; signing is offline


def rate(fn: Callable[[int], object], seconds: float = 2.0) -> float:
    """Return calls per second of ``fn(i)``, best of five timed windows after a warm-up."""
    for i in range(200):
        fn(i)
    best = 0.0
    for _ in range(5):
        count = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 5:
            for _ in range(100):
                fn(count)
                count += 1
        best = max(best, count / elapsed)
    return best


def bench_s3() -> dict[str, float]:
    """Presign rate vs a reused botocore client, interleaved to share machine noise."""
    import boto3
    from botocore.config import Config

    target = Target.from_url(
        "s3://documents/tenant", endpoint_url=ENDPOINT, key=KEY_ID, secret=SECRET, region="default"
    )
    client = boto3.session.Session(
        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, region_name="default"
    ).client(
        "s3",
        endpoint_url=ENDPOINT,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    ttl = timedelta(minutes=15)

    def ours(i: int) -> object:
        return presign(target, f"contracts/{i}.pdf", ttl=ttl)

    def raw(i: int) -> object:
        return client.generate_presigned_url(
            "get_object",
            Params={"Bucket": "documents", "Key": f"tenant/contracts/{i}.pdf"},
            ExpiresIn=900,
        )

    ours_rates, raw_rates = [], []
    for _ in range(4):
        raw_rates.append(rate(raw))
        ours_rates.append(rate(ours))
    best_ours, best_raw = max(ours_rates), max(raw_rates)
    return {
        "s3_presign_per_s": best_ours,
        "botocore_presign_per_s": best_raw,
        "s3_ratio": best_ours / best_raw,
    }


def bench_hmac() -> dict[str, float]:
    """Local HMAC link sign + verify round trips per second."""
    target = Target.from_url("memory://bench/links")
    signer = LinkSigner(b"s" * 32, "https://app.example/download")
    now = datetime(2026, 11, 26, tzinfo=UTC)

    def round_trip(i: int) -> object:
        link = presign(target, f"contracts/{i}.pdf", signer=signer, now=now)
        return verify_link(link.url, signer, now=now)

    return {"hmac_sign_verify_per_s": rate(round_trip)}


def main() -> dict[str, float]:
    """Run the link benchmarks and write the results."""
    results = {**bench_s3(), **bench_hmac()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "links.json").write_text(json.dumps(results, indent=2) + "\n")
    print("| links measure | value |\n|---|---|")
    for name, value in results.items():
        print(f"| {name} | {value:.3f} |")
    return results


if __name__ == "__main__":
    main()
