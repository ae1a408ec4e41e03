"""Check a clean install: the wheel alone, with no test dependencies, serves every backend it claims.

Run by ``nox -s clean_install`` inside a new virtual environment that holds only the built wheel and
its runtime dependencies. Test dependencies (moto brings boto3 along) can hide a missing runtime
dependency, so this check refuses to run where moto is importable, and it starts its S3 server with
another interpreter (the test environment's, ``--server-python``).

What it runs, each through the installed package only:

- ``ctfy-vault probe`` of an ``s3://`` target on that moto server (create-only write, signing, the
  never-public check);
- :func:`ctfy_vault.presign` of an S3 object, then a GET of the link;
- :func:`ctfy_vault.links.check_not_public` on the bucket;
- with ``--azurite-env`` (and the ``azure`` extra installed), the same probe and a SAS link on
  Azurite.

Any failure exits non-zero with the step that failed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import s3fs

from ctfy_vault import Target, presign
from ctfy_vault.links import check_not_public

BIN = Path(sys.executable).parent
MOTO_BOOT = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
server.start()
print(f"port={server.get_host_and_port()[1]}", flush=True)
sys.stdin.read()
server.stop()
"""


def step(title: str) -> None:
    print(f"-- {title}", flush=True)


def require(condition: bool, failure: str) -> None:
    if not condition:
        raise SystemExit(f"clean install check failed: {failure}")


@contextmanager
def moto(server_python: str) -> Iterator[str]:
    """Run moto's S3 in another interpreter; yield its endpoint URL."""
    process = subprocess.Popen(  # noqa: S603 - the interpreter named on our own command line
        [server_python, "-c", MOTO_BOOT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        require(process.stdout is not None, "no pipe to moto")
        assert process.stdout is not None  # noqa: S101 - narrows the type for mypy
        port = ""
        for line in process.stdout:  # moto announces itself on stdout before our line
            if line.startswith("port="):
                port = line.removeprefix("port=").strip()
                break
        if not port.isdigit():
            raise SystemExit(f"moto did not start with {server_python}")
        yield f"http://127.0.0.1:{port}"
    finally:
        if process.stdin is not None:
            process.stdin.close()
        process.wait(timeout=30)


def cli(*args: str, env: dict[str, str]) -> dict[str, object]:
    """Run the installed ``ctfy-vault`` with ``--json``; return its parsed output."""
    done = subprocess.run(  # noqa: S603 - the installed console script
        [str(BIN / "ctfy-vault"), *args, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"ctfy-vault {args[0]} exited {done.returncode}:\n{done.stderr}")
    result: object = json.loads(done.stdout)
    if not isinstance(result, dict):
        raise SystemExit(f"ctfy-vault {args[0]} printed no JSON object")
    return result


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - a loopback test server
        return bytes(response.read())


def check_s3(endpoint: str) -> None:
    # moto accepts any credentials; these are not secrets.
    os.environ.update(AWS_ACCESS_KEY_ID="clean", AWS_SECRET_ACCESS_KEY="install")  # noqa: S106
    env = dict(os.environ)
    bucket = f"clean-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(endpoint_url=endpoint).mkdir(bucket)

    step("ctfy-vault probe s3:// on moto")
    report = cli("probe", f"s3://{bucket}/probe", "--endpoint-url", endpoint, env=env)
    print(json.dumps(report, indent=2, sort_keys=True))

    step("presign an S3 object and read it through the link")
    target = Target.from_url(f"s3://{bucket}/docs", endpoint_url=endpoint)
    target.write("contract.pdf", b"signed, sealed, delivered")
    link = presign(target, "contract.pdf", ttl=timedelta(minutes=5))
    require(fetch(link.url) == b"signed, sealed, delivered", "the S3 link served other bytes")

    step("the never-public check on the bucket")
    check = check_not_public(target, "contract.pdf")
    print(f"kept={check.kept} object_status={check.object_status} listing={check.listing_status}")


def check_azure(env_file: Path) -> None:
    settings = {}
    for line in env_file.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep:
            settings[name.strip()] = value.strip().strip("'\"")
    connection = settings["AZURITE_CONNECTION_STRING"]
    # Deferred: the first run has no azure extra installed.
    from azure.storage.blob import BlobServiceClient  # noqa: PLC0415

    container = f"clean-{uuid.uuid4().hex[:12]}"
    BlobServiceClient.from_connection_string(connection).create_container(container)
    env = dict(os.environ, AZURE_STORAGE_CONNECTION_STRING=connection)
    os.environ["AZURE_STORAGE_CONNECTION_STRING"] = connection

    step("ctfy-vault probe az:// on Azurite")
    report = cli("probe", f"az://{container}/probe", env=env)
    print(json.dumps(report, indent=2, sort_keys=True))

    step("a SAS link on Azurite")
    target = Target.from_url(f"az://{container}/docs")
    target.write("contract.pdf", b"azure copy")
    link = presign(target, "contract.pdf", ttl=timedelta(minutes=5))
    require(fetch(link.url) == b"azure copy", "the SAS link served other bytes")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-python", required=True, help="an interpreter that has moto")
    parser.add_argument("--azurite-env", type=Path, help="Azurite's env file (azure extra)")
    args = parser.parse_args()
    for module in ("moto", "pytest", "hypothesis"):
        if importlib.util.find_spec(module) is not None:
            raise SystemExit(f"{module} is importable: this is not a clean install")
    started = time.monotonic()
    with moto(args.server_python) as endpoint:
        check_s3(endpoint)
    if args.azurite_env is not None:
        check_azure(args.azurite_env)
    print(f"clean install ok ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
