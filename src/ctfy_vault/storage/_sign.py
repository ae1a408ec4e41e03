"""Backend signing for expiring read links: S3 SigV4 query signatures and Azure SAS tokens.

The policy (the one-hour cap, which methods, the download name) lives in `ctfy_vault.links`; this
module only turns a checked request into a URL with the target's own endpoint, credentials and
addressing style. Nothing here logs or raises a URL: a signed URL is a secret until it expires.
"""

from __future__ import annotations

import threading
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any

from ctfy_vault.exceptions import ConfigurationError, UnsupportedError
from ctfy_vault.storage._target import Target

_S3_METHODS = {"GET": "get_object", "HEAD": "head_object"}
# `ctfy_vault.links.MAX_TTL` in seconds (storage may not import links): a last line of defence,
# so no signature this module makes is valid for longer, whoever calls it.
MAX_EXPIRES_IN = 3600

# One botocore client per s3fs filesystem: building a client costs milliseconds, signing with a
# warm one costs microseconds, and links are signed far more often than targets are built.
_clients: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_clients_lock = threading.Lock()


def backend_kind(target: Target) -> str:
    """Return the target's backend kind (``s3``, ``azure``, ``local``, ``memory``, ...)."""
    return str(target._backend.kind)  # noqa: SLF001 - storage-internal helper


def object_path(target: Target, key: str, *, internal: bool = False) -> tuple[str, str]:
    """Return (bucket or container, object name) for ``key`` after checking the key.

    Raises:
        InvalidObjectKeyError: ``key`` is unsafe (``..``, absolute, control characters...).
    """
    path = target._path(key, internal=internal)  # noqa: SLF001 - validates and joins the root
    container, _, name = path.partition("/")
    return container, name


def _s3_client(target: Target) -> Any:
    fs = target.fs
    client = _clients.get(fs)  # lock-free fast path: a lookup never sees a half-built client
    if client is not None:
        return client
    with _clients_lock:
        client = _clients.get(fs)
        if client is not None:
            return client
        # botocore, not boto3: s3fs's aiobotocore pins botocore exactly, so botocore is always
        # installed and matches; boto3 would be one more pin to keep in step with it.
        import botocore.session  # noqa: PLC0415 - keeps ``import ctfy_vault`` light
        from botocore.config import Config  # noqa: PLC0415

        settings = target._s3  # noqa: SLF001 - the settings the target was built with
        style = settings.addressing_style if settings else "auto"
        region = (settings.region if settings else None) or _fs_region(fs) or "us-east-1"
        session = botocore.session.get_session()
        # SigV4 always: SigV2 is deprecated, and its links cannot carry a region-bound signature.
        client = session.create_client(
            "s3",
            region_name=region,
            endpoint_url=settings.endpoint_url if settings else None,
            aws_access_key_id=getattr(fs, "key", None),
            aws_secret_access_key=getattr(fs, "secret", None),
            aws_session_token=getattr(fs, "token", None),
            config=Config(signature_version="s3v4", s3={"addressing_style": style}),
        )
        _clients[fs] = client
        return client


def _check_expires_in(expires_in: object) -> int:
    if type(expires_in) is not int or not 1 <= expires_in <= MAX_EXPIRES_IN:
        raise ConfigurationError(
            f"a signed link lives 1 to {MAX_EXPIRES_IN} whole seconds (an int)"
        )
    return expires_in


def _fs_region(fs: Any) -> str | None:
    kwargs = getattr(fs, "client_kwargs", None) or {}
    region = kwargs.get("region_name")
    return str(region) if region else None


def presign_s3(
    target: Target,
    key: str,
    *,
    expires_in: int,
    method: str = "GET",
    content_disposition: str | None = None,
    content_type: str | None = None,
    internal: bool = False,
) -> str:
    """Return a SigV4 query-signed URL for one object of an S3 (or S3-compatible) target.

    Args:
        target: an ``s3://`` target.
        key: the object key, relative to the target's root.
        internal: allow the library's reserved prefixes (its own probe objects).
        expires_in: whole seconds the signature stays valid after its ``X-Amz-Date`` (the
            signing time on the system clock), 1 to `MAX_EXPIRES_IN`.
        method: ``GET`` or ``HEAD``.
        content_disposition: value the server must send as ``Content-Disposition``.
        content_type: value the server must send as ``Content-Type``.

    Returns:
        The URL, in the endpoint's addressing style. Signing is local: no request is made.

    Raises:
        ConfigurationError: ``expires_in`` is not an int from 1 to `MAX_EXPIRES_IN`.
        UnsupportedError: the target is not S3 or the method is not a read.
        InvalidObjectKeyError: ``key`` is unsafe.
    """
    expires_in = _check_expires_in(expires_in)
    if backend_kind(target) != "s3":
        raise UnsupportedError(f"{target.name} is not an S3 target")
    if method not in _S3_METHODS:
        raise UnsupportedError(f"signed links are read-only (GET or HEAD), not {method}")
    bucket, name = object_path(target, key, internal=internal)
    params: dict[str, Any] = {"Bucket": bucket, "Key": name}
    if content_disposition is not None and method == "GET":
        params["ResponseContentDisposition"] = content_disposition
    if content_type is not None and method == "GET":
        params["ResponseContentType"] = content_type
    url: str = _s3_client(target).generate_presigned_url(
        _S3_METHODS[method], Params=params, ExpiresIn=expires_in, HttpMethod=method
    )
    return url


def presign_azure(
    target: Target,
    key: str,
    *,
    start: datetime,
    expires_in: int,
    client_ip: str | None = None,
    content_disposition: str | None = None,
    content_type: str | None = None,
    internal: bool = False,
) -> str:
    """Return a read-only, blob-scoped SAS URL for one object of an Azure Blob target.

    Needs the account's shared key (from ``account_key`` or the connection string); a target
    reached with a SAS token or an Azure AD credential cannot sign.

    Args:
        target: an ``az://`` or ``abfs://`` target.
        key: the object key, relative to the target's root.
        internal: allow the library's reserved prefixes (its own probe objects).
        start: when the SAS starts working (``st``): a plain aware UTC `datetime` of whole
            seconds, no later than the system clock.
        expires_in: whole seconds after ``start`` at which it stops working (``se``), 1 to
            `MAX_EXPIRES_IN`.
        client_ip: only this address (or ``a-b`` range) may use the link.
        content_disposition: value the service must send as ``Content-Disposition``.
        content_type: value the service must send as ``Content-Type``.

    Raises:
        ConfigurationError: ``start`` is not such a time, or ``expires_in`` is out of range.
        UnsupportedError: the target is not Azure, or no shared key is available.
    """
    expires_in = _check_expires_in(expires_in)
    # An exact datetime only: a subclass could format or convert itself to another time.
    if type(start) is not datetime or start.tzinfo is not UTC or start.microsecond:
        raise ConfigurationError("a SAS start must be an aware UTC datetime of whole seconds")
    if start > datetime.now(UTC):
        raise ConfigurationError("a SAS may not start in the future")
    if backend_kind(target) != "azure":
        raise UnsupportedError(f"{target.name} is not an Azure Blob target")
    from azure.storage.blob import (  # noqa: PLC0415 - optional dependency
        BlobSasPermissions,
        generate_blob_sas,
    )

    container, name = object_path(target, key, internal=internal)
    service = target.fs.service_client
    credential: Any = getattr(service, "credential", None)
    account_key = getattr(credential, "account_key", None)
    if not account_key:
        raise UnsupportedError(
            f"{target.name}: signing SAS links needs the account's shared key "
            "(account_key or a connection string with AccountKey)"
        )
    sas = generate_blob_sas(
        account_name=credential.account_name,
        container_name=container,
        blob_name=name,
        account_key=account_key,
        permission=BlobSasPermissions(read=True),
        # Both ends signed: without ``st`` the SAS would work from any earlier time.
        start=start,
        expiry=start + timedelta(seconds=expires_in),
        ip=client_ip,
        protocol=None,
        content_disposition=content_disposition,
        content_type=content_type,
    )
    blob_url: str = service.get_blob_client(container, name).url
    return f"{blob_url}?{sas}"
