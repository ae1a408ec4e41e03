"""Real storage servers on loopback for the test suite: moto, Ceph RADOS Gateway and Azurite.

Each server comes as a context manager that yields a frozen endpoint value:

- :func:`moto_server` runs moto's S3 in this process. It does not check signatures, presigned-link
  expiry or Object Lock shortening: never use it to test those.
- :func:`rgw_server` and :func:`azurite_server` use an already running server when the environment
  variable ``CTFY_TEST_RGW_ENV`` / ``CTFY_TEST_AZURITE_ENV`` names its env file (CI starts them once
  with ``scripts/rgw.sh`` / ``scripts/azurite.sh``); otherwise they run the script themselves, in a
  temporary folder on free ports, and stop the server on exit.

A server that cannot be started raises :class:`ServerStartError` carrying the tail of the script's
output, so the tests that need it fail rather than skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from tests.support.paths import REPO_ROOT

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient

SCRIPTS = REPO_ROOT / "scripts"

RGW_ENV_VAR = "CTFY_TEST_RGW_ENV"
AZURITE_ENV_VAR = "CTFY_TEST_AZURITE_ENV"

# Seconds a script may take, installs included (a cold `apt-get install` of Ceph takes about a minute).
SCRIPT_TIMEOUT = 900
# Lines of script output quoted in a ServerStartError.
TAIL_LINES = 80


class ServerStartError(RuntimeError):
    """A test server could not be started or reached."""


@attrs.frozen
class S3Endpoint:
    """An S3-compatible endpoint and the credentials of its test user.

    Attributes:
        endpoint_url: Base URL, e.g. ``http://127.0.0.1:17480``.
        key: Access key id.
        secret: Secret access key.
        region: Region to sign with (``us-east-1`` on moto, ``default`` on RGW).
        writer_key: Access key id of a second user that owns nothing (RGW only), for
            least-privilege tests; bucket policies grant it rights.
        writer_secret: Its secret key.
    """

    endpoint_url: str
    key: str
    secret: str = attrs.field(repr=False)
    region: str
    writer_key: str | None = None
    writer_secret: str | None = attrs.field(default=None, repr=False)

    def as_writer(self) -> S3Endpoint:
        """The same endpoint with the least-privilege writer user's keys (RGW only).

        Raises:
            ServerStartError: the server has no writer user.
        """
        if self.writer_key is None or self.writer_secret is None:
            raise ServerStartError(f"{self.endpoint_url} has no writer user")
        return attrs.evolve(self, key=self.writer_key, secret=self.writer_secret)


@attrs.frozen
class AzureEndpoint:
    """An Azure Blob endpoint (Azurite) and its account.

    Attributes:
        account_name: Storage account name (``devstoreaccount1``).
        account_key: Shared key of the account (Azurite's published development key).
        blob_endpoint: Blob service URL including the account, e.g.
            ``http://127.0.0.1:10100/devstoreaccount1``.
        connection_string: Connection string with all of the above.
    """

    account_name: str
    account_key: str = attrs.field(repr=False)
    blob_endpoint: str
    connection_string: str = attrs.field(repr=False)


# --------------------------------------------------------------------------------------------------
# env files written by the scripts


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a ``KEY=value`` / ``KEY='value'`` file as written by the server scripts.

    Args:
        path: The env file.

    Returns:
        The variables it sets.
    """
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def _require(values: dict[str, str], path: Path, *names: str) -> list[str]:
    missing = [name for name in names if not values.get(name)]
    if missing:
        raise ServerStartError(f"{path} lacks {', '.join(missing)}")
    return [values[name] for name in names]


def s3_endpoint_from_env_file(path: Path) -> S3Endpoint:
    """Read the env file that ``scripts/rgw.sh start`` writes.

    Args:
        path: The env file.

    Returns:
        The RGW endpoint.
    """
    values = read_env_file(path)
    url, key, secret, region = _require(
        values, path, "RGW_ENDPOINT", "RGW_ACCESS_KEY", "RGW_SECRET_KEY", "RGW_REGION"
    )
    return S3Endpoint(
        endpoint_url=url,
        key=key,
        secret=secret,
        region=region,
        writer_key=values.get("RGW_WRITER_ACCESS_KEY"),
        writer_secret=values.get("RGW_WRITER_SECRET_KEY"),
    )


def azure_endpoint_from_env_file(path: Path) -> AzureEndpoint:
    """Read the env file that ``scripts/azurite.sh start`` writes.

    Args:
        path: The env file.

    Returns:
        The Azurite endpoint.
    """
    blob, name, key, conn = _require(
        read_env_file(path),
        path,
        "AZURITE_BLOB_ENDPOINT",
        "AZURITE_ACCOUNT_NAME",
        "AZURITE_ACCOUNT_KEY",
        "AZURITE_CONNECTION_STRING",
    )
    return AzureEndpoint(
        account_name=name, account_key=key, blob_endpoint=blob, connection_string=conn
    )


# --------------------------------------------------------------------------------------------------
# running the scripts


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _run_script(script: str, action: str, env: dict[str, str]) -> str:
    """Run ``scripts/<script> <action>``; return its output or raise with the output's tail."""
    path = SCRIPTS / script
    try:
        done = subprocess.run(
            ["bash", str(path), action],
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=SCRIPT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.output if isinstance(exc.output, str) else ""
        raise ServerStartError(
            f"scripts/{script} {action} did not finish within {SCRIPT_TIMEOUT}s; "
            f"last output:\n{_tail(output)}"
        ) from exc
    if done.returncode != 0:
        raise ServerStartError(
            f"scripts/{script} {action} failed with exit code {done.returncode}; "
            f"last output:\n{_tail(done.stdout)}"
        )
    return done.stdout


def _check_reachable(url: str, what: str, timeout: float = 10.0) -> None:
    """Raise unless something accepts TCP connections at ``url``'s host and port."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=2):
                return
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise ServerStartError(f"{what} at {url} does not answer: {exc}") from exc
            time.sleep(0.2)


@contextmanager
def _script_server(script: str, dir_var: str, ports: dict[str, str]) -> Iterator[Path]:
    """Start a server with ``scripts/<script>`` in a temporary folder; yield its env file."""
    workdir = Path(tempfile.mkdtemp(prefix=f"ctfy-{script.removesuffix('.sh')}-"))
    env = {dir_var: str(workdir), **ports}
    failed = False
    try:
        _run_script(script, "start", env)
        env_file = workdir / "env"
        if not env_file.is_file():
            raise ServerStartError(f"scripts/{script} start succeeded but wrote no {env_file}")
        yield env_file
    except BaseException:
        failed = True
        raise
    finally:
        try:
            _run_script(script, "stop", env)
        except ServerStartError:
            if not failed:  # a failing stop must not hide the error that got us here
                raise
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def _given_env_file(var: str) -> Path | None:
    value = os.environ.get(var, "").strip()
    if not value:
        return None
    path = Path(value)
    if not path.is_file():
        raise ServerStartError(f"{var}={value} names no file; is the server running?")
    return path


# --------------------------------------------------------------------------------------------------
# the servers


@contextmanager
def moto_server() -> Iterator[S3Endpoint]:
    """Run moto's S3 server in this process on a free loopback port.

    Yields:
        Its endpoint (any credentials are accepted; region ``us-east-1``).
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Endpoint(
            endpoint_url=f"http://{host}:{port}",
            key="moto-test-access",
            secret="moto-test-secret",
            region="us-east-1",
        )
    finally:
        server.stop()


@contextmanager
def rgw_server() -> Iterator[S3Endpoint]:
    """Use or start a Ceph RADOS Gateway.

    Yields:
        Its endpoint (region ``default``).

    Raises:
        ServerStartError: The server could not be started or reached.
    """
    given = _given_env_file(RGW_ENV_VAR)
    if given is not None:
        endpoint = s3_endpoint_from_env_file(given)
        _check_reachable(endpoint.endpoint_url, "the RGW named by " + RGW_ENV_VAR)
        yield endpoint
        return
    ports = {"RGW_PORT": "auto", "RGW_MON_V2_PORT": "auto", "RGW_MON_V1_PORT": "auto"}
    with _script_server("rgw.sh", "RGW_DIR", ports) as env_file:
        yield s3_endpoint_from_env_file(env_file)


@contextmanager
def azurite_server() -> Iterator[AzureEndpoint]:
    """Use or start Azurite (blob service).

    Yields:
        Its endpoint.

    Raises:
        ServerStartError: The server could not be started or reached.
    """
    given = _given_env_file(AZURITE_ENV_VAR)
    if given is not None:
        endpoint = azure_endpoint_from_env_file(given)
        _check_reachable(endpoint.blob_endpoint, "the Azurite named by " + AZURITE_ENV_VAR)
        yield endpoint
        return
    with _script_server("azurite.sh", "AZURITE_DIR", {"AZURITE_PORT": "auto"}) as env_file:
        yield azure_endpoint_from_env_file(env_file)


# --------------------------------------------------------------------------------------------------
# clients


def s3_client(endpoint: S3Endpoint, **config: Any) -> Any:
    """Make a boto3 S3 client with the settings S3-compatible servers need.

    Checksums only when an operation requires them (boto3 >= 1.36 otherwise sends CRC checksums some
    servers reject), path-style addressing (no DNS for bucket names on loopback), SigV4.

    Args:
        endpoint: The server.
        **config: Overrides for ``botocore.config.Config``.

    Returns:
        A ``botocore`` S3 client.
    """
    import boto3
    from botocore.config import Config

    settings: dict[str, Any] = {
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
        "s3": {"addressing_style": "path"},
        "signature_version": "s3v4",
        "retries": {"max_attempts": 2, "mode": "standard"},
        **config,
    }
    return boto3.client(
        "s3",
        endpoint_url=endpoint.endpoint_url,
        aws_access_key_id=endpoint.key,
        aws_secret_access_key=endpoint.secret,
        region_name=endpoint.region,
        config=Config(**settings),
    )


def make_bucket(endpoint: S3Endpoint, name: str) -> str:
    """Create a bucket.

    No LocationConstraint in ``us-east-1`` (moto refuses one there) nor in RGW's ``default`` region
    (RGW places new buckets in its default zonegroup); any other region is named explicitly.

    Args:
        endpoint: The server.
        name: Bucket name.

    Returns:
        ``name``.
    """
    client = s3_client(endpoint)
    if endpoint.region in ("us-east-1", "default"):
        client.create_bucket(Bucket=name)
    else:
        client.create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": endpoint.region}
        )
    return name


def blob_service_client(endpoint: AzureEndpoint) -> BlobServiceClient:
    """Make an ``azure.storage.blob.BlobServiceClient`` for the endpoint.

    Args:
        endpoint: The server.

    Returns:
        The client.
    """
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(endpoint.connection_string)


def make_container(endpoint: AzureEndpoint, name: str) -> str:
    """Create a blob container.

    Args:
        endpoint: The server.
        name: Container name (3-63 lowercase letters, digits and dashes).

    Returns:
        ``name``.
    """
    blob_service_client(endpoint).create_container(name)
    return name


def s3_target(endpoint: S3Endpoint, bucket: str, prefix: str = "root", **options: Any) -> Any:
    """A `ctfy_vault.storage.Target` on ``bucket/prefix`` of the endpoint, with its credentials."""
    from ctfy_vault.storage import Target

    return Target.from_url(
        f"s3://{bucket}/{prefix}",
        endpoint_url=endpoint.endpoint_url,
        key=endpoint.key,
        secret=endpoint.secret,
        region=endpoint.region,
        **options,
    )
