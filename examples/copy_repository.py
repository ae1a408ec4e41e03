r"""Move a repository: copy every snapshot into a new repository on other targets, then verify.

This is how a customer moves provider and how the master keys are replaced: the new repository
has its own keys and chunk-id key, every file is re-chunked and re-sealed, and each snapshot keeps
its lineage, id, time and chain (with a ``copied-from=...`` tag naming where it came from).

Run ``python examples/copy_repository.py`` to see it on temporary folders (an old repository with
two lineages is made first). To move a real repository::

    CTFY_OLD_KEY=<64 hex digits> CTFY_NEW_KEY=<64 hex digits> python examples/copy_repository.py \\
        --from s3://backups-old/app --to s3://backups-ams/app --to az://backups/app [--init]

S3 URLs take their endpoint from ``AWS_ENDPOINT_URL`` and credentials from the environment. An
interrupted run is resumed by running it again: snapshots already copied are skipped.
Exit codes: 0 copied and verified; 1 a failure; 2 bad usage.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ctfy_vault import RawKey, Target, Vault
from ctfy_vault.exceptions import ConfigurationError, VaultError
from ctfy_vault.writer import StreamSource


def build(url: str) -> Target:
    """Make a target from a URL, passing an S3 endpoint from the environment if one is set."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if url.startswith("s3://") and endpoint:
        return Target.from_url(url, endpoint_url=endpoint)
    return Target.from_url(url)


def copy_and_verify(old: Vault, new: Vault, now: datetime) -> int:
    """Copy everything from ``old`` into ``new``, verify every chunk, and show a rerun is a no-op."""
    report = new.copy(old, now=now)
    print(
        f"copied {len(report.copied)} snapshot(s), {len(report.skipped)} already there; "
        f"read {report.bytes_read} bytes, wrote {report.bytes_written}"
    )
    for info in report.copied:
        print(f"  {info.lineage:12} {info.name}  tags: {', '.join(info.tags)}")
    checked = new.verify(read_data=True)
    print(f"verify --read-data: {'ok' if checked.ok else 'PROBLEMS'}")
    again = new.copy(old, now=now)
    print(f"run again: copied {len(again.copied)}, skipped {len(again.skipped)}")
    return 0 if checked.ok and report.ok else 1


def demo() -> int:
    """Make an old repository on two folders, then move it to a third with new keys."""
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        old = Vault.init(
            [Target.from_url(str(root / "old-ams")), Target.from_url(str(root / "old-dub"))],
            key=RawKey(os.urandom(32)),
            now=now,
        )
        (root / "uploads" / "tenant-1").mkdir(parents=True)
        (root / "uploads" / "tenant-1" / "contract.pdf").write_bytes(os.urandom(50_000))
        for day in range(3, 0, -1):
            moment = now - timedelta(days=day)
            dump = io.BytesIO(b"INSERT INTO contracts VALUES (%d);\n" % day * 2000)
            old.backup(StreamSource(name="app.sql", stream=dump), lineage="db", now=moment)
            old.backup(root / "uploads", lineage="server-files", now=moment)
        new = Vault.init(
            [Target.from_url(str(root / "new-fra"))], key=RawKey(os.urandom(32)), now=now
        )
        return copy_and_verify(old, new, now)


def main(argv: list[str]) -> int:
    """Copy ``--from`` targets into ``--to`` targets (or run the demo without arguments)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="sources", action="append", default=[], metavar="URL")
    parser.add_argument("--to", dest="dests", action="append", default=[], metavar="URL")
    parser.add_argument("--init", action="store_true", help="create the new repository first")
    args = parser.parse_args(argv)
    if not args.sources and not args.dests:
        return demo()
    if not args.sources or not args.dests:
        print("give both --from and --to (or neither, for the demo)", file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    try:
        old_key = RawKey.from_env("CTFY_OLD_KEY", os.environ)
        new_key = RawKey.from_env("CTFY_NEW_KEY", os.environ)
        old = Vault.open([build(url) for url in args.sources], key=old_key)
        targets = [build(url) for url in args.dests]
        if args.init:
            Vault.init(targets, key=new_key, now=now)
        new = Vault.open(targets, key=new_key)
        return copy_and_verify(old, new, now)
    except ConfigurationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except VaultError as err:
        print(f"failed: {type(err).__name__}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
