"""Mirror a documents bucket (or folder) to replicas, never deleting, and print what happened.

Run it as ``python examples/mirror_documents.py SOURCE REPLICA [REPLICA ...]``; with no arguments it
builds a temporary source folder, mirrors it to two replica folders, changes and deletes a document,
and mirrors again, to show kept versions and deletions left in place. S3 URLs take their endpoint
from ``AWS_ENDPOINT_URL`` and credentials from the environment.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from ctfy_vault import Target
from ctfy_vault.mirror import MirrorReport, MirrorState, mirror


def build(url: str) -> Target:
    """Make a target from a URL, passing an S3 endpoint from the environment if one is set."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if url.startswith("s3://") and endpoint:
        return Target.from_url(url, endpoint_url=endpoint)
    return Target.from_url(url)


def show(report: MirrorReport) -> None:
    counts = report.to_dict()
    print(
        f"listed {report.listed}: copied {counts['copied']}, updated {counts['updated']}, "
        f"unchanged {report.unchanged}, failed {counts['failed']}"
    )
    for outcome in report.outcomes:
        kept = f" (previous kept at {outcome.previous})" if outcome.previous else ""
        print(f"  {outcome.action:<8} {outcome.key} -> {outcome.replica}{kept}")
    for key in report.deleted_at_source:
        print(f"  deleted at source, still on the replicas: {key}")


def demo() -> None:
    folder = Path(tempfile.mkdtemp(prefix="ctfy-mirror-"))
    source = Target.from_url(str(folder / "documents"))
    replicas = [Target.from_url(str(folder / name)) for name in ("amsterdam", "ireland")]
    source.write("tenant-42/contract.pdf", b"version 1")
    source.write("tenant-42/invoice.pdf", b"invoice")
    state = MirrorState()
    show(mirror(source, replicas, state=state))
    time.sleep(0.01)  # a new modification time, as a real edit has
    (folder / "documents" / "tenant-42" / "contract.pdf").write_bytes(b"version 2")
    (folder / "documents" / "tenant-42" / "invoice.pdf").unlink()
    show(mirror(source, replicas, state=state))
    for replica in replicas:
        print(f"{replica.name} holds: {', '.join(sorted(replica.list()))}")


def main() -> None:
    if len(sys.argv) < 3:
        demo()
        return
    source, *replicas = (build(url) for url in sys.argv[1:])
    report = mirror(source, replicas)
    show(report)
    raise SystemExit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
