"""Backend errors enter here and leave as the library's error tree; transient ones are retried here.

fsspec, s3fs, botocore, aiohttp and azure-core each raise their own exceptions, sometimes wrapped in
one another (s3fs turns a botocore ``ClientError`` into an ``OSError`` chained to it). `classify` walks
the chain and decides what the failure means; `call_with_retry` retries the transient ones with capped
exponential backoff and full jitter.
"""

from __future__ import annotations

import errno
import random
import socket
import time
import urllib.parse
from collections.abc import Callable, Iterator
from enum import Enum
from typing import TypeVar

import attrs
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    IncompleteReadError,
    NoCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from ctfy_vault.exceptions import (
    AccessDeniedError,
    NotAFolderError,
    ObjectExistsError,
    ObjectNotFoundError,
    StorageError,
    TargetUnreachableError,
    TransientStorageError,
    VaultError,
)

T = TypeVar("T")


class Kind(Enum):
    """What a backend failure means to the library."""

    EXISTS = "exists"
    NOT_FOUND = "not found"
    NOT_A_FOLDER = "parent is an object"
    DENIED = "access denied"
    TRANSIENT = "transient"
    UNREACHABLE = "unreachable"
    OTHER = "failed"


_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "Throttling",
        "ThrottlingException",
        "TooManyRequests",
        "OperationAborted",
        "ConditionalRequestConflict",
    }
)
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchUpload", "NoSuchVersion", "404"})
_DENIED_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled", "403"}
)
_TRANSIENT_ERRNOS = frozenset(
    {
        errno.EBUSY,  # s3fs maps 503 SlowDown / ServiceUnavailable here
        errno.EREMOTEIO,  # s3fs maps 500 InternalError here
        errno.ETIMEDOUT,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.EAGAIN,
    }
)


def _chain(err: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def classify(err: BaseException) -> Kind:
    """Decide what a backend exception means, looking through its chain of causes."""
    for link in _chain(err):
        kind = _classify_one(link)
        if kind is not None:
            return kind
    return Kind.OTHER


def _classify_one(err: BaseException) -> Kind | None:  # noqa: PLR0911 - one exit per family
    if isinstance(err, ClientError):
        return _classify_client_error(err)
    if isinstance(err, NoCredentialsError):
        return Kind.DENIED
    if isinstance(err, EndpointConnectionError | ConnectTimeoutError):
        return Kind.UNREACHABLE
    if isinstance(err, ConnectionClosedError | ReadTimeoutError | IncompleteReadError):
        return Kind.TRANSIENT
    if isinstance(err, ResponseStreamingError):
        return Kind.TRANSIENT
    azure = _classify_azure(err)
    if azure is not None:
        return azure
    aio = _classify_aiohttp(err)
    if aio is not None:
        return aio
    return _classify_builtin(err)


def _classify_client_error(err: ClientError) -> Kind:
    error = err.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code == "PreconditionFailed" or status == 412:
        return Kind.EXISTS
    if code in _TRANSIENT_CODES or status >= 500 or status in (408, 429):
        return Kind.TRANSIENT
    if code in _NOT_FOUND_CODES or status == 404:
        return Kind.NOT_FOUND
    if code in _DENIED_CODES or status == 403:
        return Kind.DENIED
    return Kind.OTHER


def _classify_azure(err: BaseException) -> Kind | None:  # noqa: PLR0911 - one exit per family
    try:
        from azure.core import exceptions as az  # noqa: PLC0415 - optional dependency
    except ImportError:  # pragma: no cover - the azure extra is not installed
        return None
    if isinstance(err, az.ResourceExistsError):
        return Kind.EXISTS
    if isinstance(err, az.ResourceNotFoundError):
        return Kind.NOT_FOUND
    if isinstance(err, az.ClientAuthenticationError):
        return Kind.DENIED
    if isinstance(err, az.ServiceRequestError):
        return Kind.UNREACHABLE
    if isinstance(err, az.ServiceResponseError):
        return Kind.TRANSIENT
    if isinstance(err, az.HttpResponseError):
        status = err.status_code or 0
        if status >= 500 or status in (408, 429):
            return Kind.TRANSIENT
        if status == 412:
            return Kind.EXISTS
        if status == 403:
            return Kind.DENIED
        return Kind.OTHER
    return None


def _classify_aiohttp(err: BaseException) -> Kind | None:
    import aiohttp  # noqa: PLC0415 - comes with s3fs; imported late to keep import time low

    if isinstance(err, aiohttp.ClientConnectorError):
        return Kind.UNREACHABLE
    if isinstance(err, aiohttp.ClientError):
        return Kind.TRANSIENT
    return None


def _classify_builtin(err: BaseException) -> Kind | None:  # noqa: PLR0911 - one exit per family
    if isinstance(err, FileExistsError):
        return Kind.EXISTS
    if isinstance(err, FileNotFoundError):
        return Kind.NOT_FOUND
    if isinstance(err, NotADirectoryError):
        return Kind.NOT_A_FOLDER
    if isinstance(err, PermissionError):
        return Kind.DENIED
    if isinstance(err, ConnectionRefusedError | socket.gaierror):
        return Kind.UNREACHABLE
    if isinstance(err, ConnectionError | TimeoutError):
        return Kind.TRANSIENT
    if isinstance(err, OSError) and err.errno in _TRANSIENT_ERRNOS:
        return Kind.TRANSIENT
    return None


_BACKEND_MODULES = ("botocore", "aiobotocore", "s3fs", "adlfs", "azure", "fsspec", "aiohttp")


def is_backend_error(err: BaseException) -> bool:
    """Tell an I/O or backend failure (translated) from a programming error (left alone)."""
    for link in _chain(err):
        if isinstance(link, OSError):
            return True
        if type(link).__module__.split(".", 1)[0] in _BACKEND_MODULES:
            return True
    return False


def describe(err: BaseException) -> str:
    """Say what went wrong without quoting the backend's text (which may carry URLs or tokens)."""
    for link in _chain(err):
        if isinstance(link, ClientError):
            error = link.response.get("Error", {})
            status = link.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = error.get("Code", "?")
            return f"HTTP {status} {code}" if status else str(code)
        status_code = getattr(link, "status_code", None)
        error_code = getattr(link, "error_code", None)
        if isinstance(status_code, int):
            return f"HTTP {status_code} {error_code or ''}".rstrip()
    if isinstance(err, NoCredentialsError):
        return "no credentials found: set them as options or in the environment"
    errno_text = ""
    if isinstance(err, OSError) and err.errno is not None:
        errno_text = f" ({errno.errorcode.get(err.errno, err.errno)})"
    return f"{type(err).__name__}{errno_text}"


_KIND_TO_ERROR: dict[Kind, type[StorageError]] = {
    Kind.EXISTS: ObjectExistsError,
    Kind.NOT_FOUND: ObjectNotFoundError,
    Kind.NOT_A_FOLDER: NotAFolderError,
    Kind.DENIED: AccessDeniedError,
    Kind.TRANSIENT: TransientStorageError,
    Kind.UNREACHABLE: TargetUnreachableError,
    Kind.OTHER: StorageError,
}

_KIND_TO_TEXT: dict[Kind, str] = {
    Kind.EXISTS: "already exists",
    Kind.NOT_FOUND: "not found",
    Kind.NOT_A_FOLDER: "a parent of the key is an object (a file), not a folder",
    Kind.DENIED: "access denied",
    Kind.TRANSIENT: "failed with a transient error",
    Kind.UNREACHABLE: "cannot reach the endpoint",
    Kind.OTHER: "failed",
}


#: The codes S3 and Azure answer when the bucket or container itself is missing.
_NO_BUCKET_CODES = frozenset({"NoSuchBucket", "ContainerNotFound"})
#: s3fs turns NoSuchBucket into FileNotFoundError with this text (and sometimes no cause).
_NO_BUCKET_TEXT = "bucket does not exist"


def missing_bucket(err: BaseException) -> bool:
    """Whether the failure says the bucket (Azure: the container) does not exist at all."""
    for link in _chain(err):
        if isinstance(link, ClientError):
            code = str(link.response.get("Error", {}).get("Code", ""))
        else:
            code = str(getattr(link, "error_code", "") or "")
        said = isinstance(link, FileNotFoundError) and _NO_BUCKET_TEXT in str(link).lower()
        if code in _NO_BUCKET_CODES or said:
            return True
    return False


def endpoint_of(err: BaseException) -> str | None:
    """The endpoint a connection failed to reach, as ``scheme://host:port`` (no path, no query).

    The path and query are left out: they name keys, and a signed request's query would carry
    a signature.
    """
    for link in _chain(err):
        kwargs = getattr(link, "kwargs", None)
        url = kwargs.get("endpoint_url") if isinstance(kwargs, dict) else None
        if isinstance(url, str) and url:
            parts = urllib.parse.urlsplit(url)
            if parts.hostname:
                suffix = f":{parts.port}" if parts.port else ""
                return f"{parts.scheme}://{parts.hostname}{suffix}"
        host: object = getattr(link, "host", None)
        port: object = getattr(link, "port", None)
        if isinstance(host, str) and host:
            return f"{host}:{port}" if isinstance(port, int) else host
    return None


def translate(
    err: BaseException, *, op: str, target: str, key: str | None, attempts: int = 1
) -> StorageError:
    """Build the library's error for a backend failure (the caller raises it ``from err``).

    A missing bucket or container is said as such (not as a missing object); an endpoint
    that cannot be reached is named.
    """
    if isinstance(err, StorageError):
        return err
    kind = classify(err)
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    plain = (Kind.EXISTS, Kind.NOT_FOUND, Kind.NOT_A_FOLDER)
    cause = "" if kind in plain else f" ({describe(err)})"
    text = _KIND_TO_TEXT[kind]
    if kind is Kind.NOT_FOUND and missing_bucket(err):
        text = "the bucket (or container) does not exist: create it, or check the URL"
    elif kind is Kind.UNREACHABLE:
        endpoint = endpoint_of(err)
        if endpoint is not None:
            text = f"cannot reach the endpoint {endpoint}"
    message = f"{op}: {text}{tries}{cause}"
    return _KIND_TO_ERROR[kind](message, target=target, key=key)


def _default_sleep(seconds: float) -> None:
    time.sleep(seconds)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How transient failures are retried: capped exponential backoff with full jitter.

    Args:
        attempts: total tries per operation, the first included (>= 1).
        initial: the first backoff ceiling in seconds.
        maximum: the cap on any single backoff, in seconds.
        multiplier: growth of the ceiling per attempt.
        sleep: the function that waits; tests inject a fake one.
        rng: the randomness for jitter; tests inject a seeded one.
    """

    attempts: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    initial: float = attrs.field(default=0.2, validator=attrs.validators.ge(0))
    maximum: float = attrs.field(default=5.0, validator=attrs.validators.ge(0))
    multiplier: float = attrs.field(default=2.0, validator=attrs.validators.ge(1))
    sleep: Callable[[float], None] = attrs.field(default=_default_sleep, repr=False, eq=False)
    rng: random.Random = attrs.field(factory=random.Random, repr=False, eq=False)

    def delays(self) -> Iterator[float]:
        """Yield the wait before each retry (``attempts - 1`` values)."""
        ceiling = self.initial
        for _ in range(self.attempts - 1):
            yield self.rng.uniform(0, min(ceiling, self.maximum))
            ceiling *= self.multiplier


def call_with_retry(
    fn: Callable[[], T], *, policy: RetryPolicy, op: str, target: str, key: str | None
) -> T:
    """Run ``fn``, retrying transient failures; translate whatever escapes into the error tree.

    Raises:
        StorageError: a subclass matching the failure, naming ``target`` and ``key``.
    """
    delays = policy.delays()
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except VaultError:
            raise
        except Exception as err:
            kind = classify(err)
            if kind is Kind.OTHER and not is_backend_error(err):
                raise  # a bug (TypeError, AttributeError...) must surface as itself
            if kind in (Kind.TRANSIENT, Kind.UNREACHABLE):
                delay = next(delays, None)
                if delay is not None:
                    policy.sleep(delay)
                    continue
            raise translate(err, op=op, target=target, key=key, attempts=attempt) from err
