"""Deposit source code in escrow for a notary, verify the deposit, and open it as the notary would.

Run it as ``python examples/escrow_deposit.py [GIT_REPOSITORY_OR_FOLDER [TARGET_URL]]``. With no
arguments it builds a small git repository in a temporary folder (with an uncommitted edit that must
not be deposited) and uses a folder target; generated keys go to the same temporary folder. S3 URLs
take their endpoint from ``AWS_ENDPOINT_URL`` and credentials from the environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from ctfy_vault import Target
from ctfy_vault.escrow import (
    deposit,
    generate_key_files,
    open_deposit,
    read_identity,
    read_signing_key,
    recipient_key,
    verify_deposit,
    verify_key,
)


def build(url: str) -> Target:
    """Make a target from a URL, passing an S3 endpoint from the environment if one is set."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if url.startswith("s3://") and endpoint:
        return Target.from_url(url, endpoint_url=endpoint)
    return Target.from_url(url)


def sample_repository(folder: Path) -> Path:
    """A git repository with one commit and an uncommitted edit."""
    repo = folder / "product"
    repo.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Example",
        "GIT_AUTHOR_EMAIL": "example@example.invalid",
        "GIT_COMMITTER_NAME": "Example",
        "GIT_COMMITTER_EMAIL": "example@example.invalid",
    }

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env)  # noqa: S603, S607

    git("init", "-q")
    (repo / "app.py").write_text("print('contract management')\n")
    git("add", "app.py")
    git("commit", "-q", "-m", "release 1.0")
    (repo / "app.py").write_text("print('work in progress')\n")  # never deposited
    return repo


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="ctfy-escrow-example-"))
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else sample_repository(work)
    target = build(sys.argv[2] if len(sys.argv) > 2 else str(work / "escrow-store"))
    now = datetime.now(UTC)

    # The notary makes its key pair and sends only the .pub file; the company makes a signing key.
    notary = generate_key_files(work / "notary.key", now=now)
    signer = generate_key_files(work / "depositor.key", role="signing", now=now)
    print(f"notary public key {notary.key_id}: {notary.public_key}")

    receipt = deposit(
        source,
        target,
        recipients=[recipient_key(str(notary.public_path))],
        signing_key=read_signing_key(signer.private_path),
        now=now,
    )
    print(f"deposited {receipt.deposit}: {receipt.source}")
    print(f"  archive sha256 {receipt.archive_sha256} ({receipt.archive_size} bytes)")

    # Anyone with the depositor's public key can check the deposit, with no private key.
    verify_deposit(target, receipt.deposit, signer=verify_key(str(signer.public_path)))
    print("verified: signature and ciphertext match the receipt")

    # The notary, on release of the escrow.
    opened = open_deposit(
        target,
        receipt.deposit,
        read_identity(notary.private_path),
        out=work / "released",
        extract=True,
    )
    print(f"opened into {opened.path}: {sorted(p.name for p in opened.path.iterdir())}")


if __name__ == "__main__":
    main()
