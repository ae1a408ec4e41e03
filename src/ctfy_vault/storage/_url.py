"""Target URLs: parsed and checked before any I/O, then turned into a configured fsspec filesystem."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from ctfy_vault.exceptions import InvalidURLError, UnsupportedError
from ctfy_vault.storage._keys import validate_prefix

SCHEMES = ("file", "memory", "s3", "az", "abfs", "abfss")

_S3_OPTIONS = frozenset(
    {"endpoint_url", "key", "secret", "token", "region", "addressing_style", "anon", "profile"}
)
_AZURE_OPTIONS = frozenset(
    {"account_name", "account_key", "connection_string", "sas_token", "credential", "anon"}
)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CONTAINER = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
_ADDRESSING = ("path", "virtual", "auto")


@attrs.frozen
class ParsedURL:
    """A target URL split into what the storage layer needs; holds no credentials."""

    scheme: str
    container: str  # bucket, container or memory namespace; "" for local disk
    prefix: str  # folder inside the container ("" for its top), or the absolute local path
    display: str  # the URL as shown to users and in errors


def parse_url(url: str) -> ParsedURL:  # noqa: PLR0912 - one check per URL rule, in order
    """Split and check a target URL.

    Accepted: ``file:///abs/path`` (or a plain path), ``memory://name/prefix``, ``s3://bucket/prefix``,
    ``az://container/prefix`` and ``abfs[s]://container/prefix`` (also ``container@account.host``).

    Raises:
        InvalidURLError: unknown scheme, missing bucket, credentials or a query in the URL, bad names.
    """
    if not url.strip():
        raise InvalidURLError("target URL is empty")
    if "://" not in url:
        return _local(os.path.abspath(os.path.expanduser(url)), url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidURLError(
            f"unknown scheme {parts.scheme!r} in target URL; expected one of {', '.join(SCHEMES)}"
        )
    if parts.query or parts.fragment:
        raise InvalidURLError(
            "target URLs may not carry a query or fragment (tokens belong in options or the "
            "environment, never in a URL that could be logged)"
        )
    if "@" in parts.netloc and scheme not in ("abfs", "abfss"):
        raise InvalidURLError(
            "credentials in a target URL are not accepted; pass them as options or through the "
            "environment"
        )
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InvalidURLError(f"file URLs name a local path; got host {parts.netloc!r}")
        return _local(parts.path or "/", f"file://{parts.path}")
    container = parts.netloc
    if scheme in ("abfs", "abfss") and "@" in container:
        container = container.split("@", 1)[0]
    prefix = parts.path.strip("/")
    try:
        validate_prefix(prefix)
    except InvalidURLError:
        raise
    except ValueError as err:
        raise InvalidURLError(f"bad path in target URL: {err}") from err
    if scheme == "memory":
        if not container:
            raise InvalidURLError("memory URLs need a name: memory://name[/prefix]")
        return ParsedURL(scheme, container, prefix, _display(scheme, container, prefix))
    if scheme == "s3":
        _check_bucket(container)
    else:
        _check_container(container)
    kind = "s3" if scheme == "s3" else "az"
    return ParsedURL(kind, container, prefix, _display(scheme, container, prefix))


def _local(path: str, shown: str) -> ParsedURL:
    if not os.path.isabs(path):
        raise InvalidURLError(f"file URLs need an absolute path; got {shown!r}")
    normal = os.path.normpath(path)
    return ParsedURL("file", "", normal, f"file://{normal}")


def _display(scheme: str, container: str, prefix: str) -> str:
    return f"{scheme}://{container}/{prefix}" if prefix else f"{scheme}://{container}"


def _check_bucket(bucket: str) -> None:
    if not bucket:
        raise InvalidURLError("s3 URLs need a bucket: s3://bucket[/prefix]")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise InvalidURLError(
            f"invalid S3 bucket name {bucket!r}: 3-63 lowercase letters, digits, '.' or '-', "
            "starting and ending with a letter or digit"
        )


def _check_container(container: str) -> None:
    if not container:
        raise InvalidURLError("Azure URLs need a container: az://container[/prefix]")
    if not _CONTAINER.match(container):
        raise InvalidURLError(
            f"invalid Azure container name {container!r}: 3-63 lowercase letters, digits or "
            "single '-', starting with a letter or digit"
        )


def _unknown(options: Mapping[str, Any], known: frozenset[str], scheme: str) -> None:
    extra = sorted(set(options) - known)
    if extra:
        raise InvalidURLError(
            f"unknown option(s) {', '.join(extra)} for {scheme} targets; "
            f"known: {', '.join(sorted(known))}"
        )


def is_aws_endpoint(endpoint_url: str | None) -> bool:
    """Tell whether requests go to Amazon S3 itself rather than an S3-compatible service."""
    if endpoint_url is None:
        return True
    host = urlsplit(endpoint_url).hostname or ""
    return host == "amazonaws.com" or host.endswith(".amazonaws.com")


@attrs.frozen
class S3Settings:
    """The S3 settings a target was built with (no secrets), for probing and display."""

    endpoint_url: str | None
    region: str | None
    addressing_style: str
    checksum_mode: str


def s3_filesystem(options: Mapping[str, Any]) -> tuple[Any, S3Settings]:
    """Build an ``s3fs.S3FileSystem`` configured for the endpoint.

    AWS keeps botocore's defaults. Any other endpoint (Spaces, Ceph RGW, MinIO) gets path-style
    addressing and checksums only when required, because newer botocore sends CRC checksums that
    several S3-compatibles reject. SigV4 always. Retries are left to `Target` (one layer, not three).
    """
    _unknown(options, _S3_OPTIONS, "s3")
    import s3fs  # noqa: PLC0415 - keeps ``import ctfy_vault`` light

    endpoint = options.get("endpoint_url")
    if endpoint is not None:
        parts = urlsplit(str(endpoint))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidURLError("endpoint_url must be an http(s) URL with a host")
    aws = is_aws_endpoint(endpoint)
    style = str(options.get("addressing_style") or ("auto" if aws else "path"))
    if style not in _ADDRESSING:
        raise InvalidURLError(f"addressing_style must be one of {', '.join(_ADDRESSING)}")
    checksum = "when_supported" if aws else "when_required"
    config: dict[str, Any] = {
        "signature_version": "s3v4",
        "s3": {"addressing_style": style},
        "retries": {"total_max_attempts": 1},
        "connect_timeout": 10,
        "read_timeout": 60,
        "request_checksum_calculation": checksum,
        "response_checksum_validation": checksum,
    }
    client: dict[str, Any] = {}
    if options.get("region"):
        client["region_name"] = options["region"]
    fs = s3fs.S3FileSystem(
        key=options.get("key"),
        secret=options.get("secret"),
        token=options.get("token"),
        anon=bool(options.get("anon", False)),
        **({"profile": options["profile"]} if options.get("profile") else {}),
        endpoint_url=endpoint,
        client_kwargs=client,
        config_kwargs=config,
        skip_instance_cache=True,
        use_listings_cache=False,
    )
    fs.retries = 1  # s3fs's own retry loop; ours in `Target` is the only one
    return fs, S3Settings(endpoint, options.get("region"), style, checksum)


def azure_filesystem(options: Mapping[str, Any]) -> Any:
    """Build an ``adlfs.AzureBlobFileSystem`` (needs the ``azure`` extra).

    Raises:
        UnsupportedError: adlfs is not installed.
        InvalidURLError: unknown options, or no account given.
    """
    _unknown(options, _AZURE_OPTIONS, "Azure")
    try:
        import adlfs  # noqa: PLC0415 - optional dependency
    except ImportError as err:
        raise UnsupportedError(
            "az:// and abfs:// targets need the 'azure' extra: pip install 'ctfy-vault[azure]'"
        ) from err
    given = options.get("account_name") or options.get("connection_string")
    from_env = os.environ.get("AZURE_STORAGE_CONNECTION_STRING") or os.environ.get(
        "AZURE_STORAGE_ACCOUNT_NAME"
    )
    if not (given or from_env):
        raise InvalidURLError(
            "Azure targets need account_name or connection_string (or the AZURE_STORAGE_* "
            "environment variables)"
        )
    fs = adlfs.AzureBlobFileSystem(
        **{k: v for k, v in options.items() if v is not None},
        skip_instance_cache=True,
        use_listings_cache=False,
    )
    fs.service_client = _azure_client(fs)
    return fs


def _azure_client(fs: Any) -> Any:
    """Rebuild adlfs's service client without azure-core's own retries.

    adlfs takes the SDK default (three retries, 15 s backoff growing threefold), which makes an
    unreachable endpoint take minutes to report and stacks under `Target`'s retry loop.
    """
    from azure.storage.blob.aio import BlobServiceClient  # noqa: PLC0415 - optional dependency

    settings: dict[str, Any] = {"retry_total": 0, "connection_timeout": 10, "read_timeout": 120}
    if fs.connection_string is not None:
        return BlobServiceClient.from_connection_string(fs.connection_string, **settings)
    url = fs.account_url
    credential = fs.credential or fs.account_key
    if credential is None and fs.sas_token:
        url += fs.sas_token if fs.sas_token.startswith("?") else f"?{fs.sas_token}"
    return BlobServiceClient(account_url=url, credential=credential, **settings)
