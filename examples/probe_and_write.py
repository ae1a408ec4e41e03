"""Probe two targets, then write one object create-only to both and show a refused overwrite.

Run it as ``python examples/probe_and_write.py [URL ...]``; with no URL it uses two temporary folders.
S3 targets take their endpoint and credentials from the environment (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``).
"""

from __future__ import annotations

import os
import sys
import tempfile

from ctfy_vault import Target
from ctfy_vault.exceptions import ObjectExistsError, VaultError


def build(url: str) -> Target:
    """Make a target from a URL, passing an S3 endpoint from the environment if one is set."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if url.startswith("s3://") and endpoint:
        return Target.from_url(url, endpoint_url=endpoint)
    return Target.from_url(url)


def main(urls: list[str]) -> int:
    """Probe every target, write to each once, and show that a second write is refused."""
    with tempfile.TemporaryDirectory() as scratch:
        urls = urls or [f"{scratch}/amsterdam", f"{scratch}/ireland"]
        targets = [build(url) for url in urls]
        for target in targets:
            print(f"== {target.name}\n{target.probe().describe()}\n")
        for target in targets:
            try:
                target.write("hello.txt", b"written once\n")
                target.write("hello.txt", b"and never again\n")
            except ObjectExistsError as err:
                print(f"refused as promised: {err}")
            except VaultError as err:
                print(f"failed: {err}", file=sys.stderr)
                return 1
            print(f"{target.name} holds {target.read('hello.txt')!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
