"""`Target`: one fsspec filesystem plus a root path, with append-only operations on object keys."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import attrs

from ctfy_vault.exceptions import (
    InvalidObjectKeyError,
    ObjectExistsError,
    StorageError,
    VaultError,
)
from ctfy_vault.storage._backends import (
    DEFAULT_PART_SIZE,
    AzureBackend,
    Backend,
    FsspecBackend,
    LocalBackend,
    MemoryBackend,
    Reader,
    S3Backend,
)
from ctfy_vault.storage._errors import (
    Kind,
    RetryPolicy,
    call_with_retry,
    classify,
    describe,
    is_backend_error,
    translate,
)
from ctfy_vault.storage._keys import MAX_KEY_BYTES, RESERVED_PREFIXES, validate_key, validate_prefix
from ctfy_vault.storage._probe import Capabilities
from ctfy_vault.storage._url import S3Settings, azure_filesystem, parse_url, s3_filesystem

T = TypeVar("T")

_PROBE_FIRST = b"ctfy-vault probe: first write"
_PROBE_SECOND = b"ctfy-vault probe: second write must be refused"


class _IterReader:
    """Adapts an iterable of byte blocks to ``read(n)`` (a short read is fine, as from a pipe)."""

    def __init__(self, blocks: Iterable[bytes]) -> None:
        self._blocks = iter(blocks)
        self._pending = b""

    def read(self, size: int, /) -> bytes:
        while not self._pending:
            block = next(self._blocks, None)
            if block is None:
                return b""
            self._pending = bytes(block)  # no copy when it is bytes already
        if len(self._pending) <= size:
            out, self._pending = self._pending, b""
            return out
        out, self._pending = self._pending[:size], self._pending[size:]
        return out


def _as_reader(stream: Reader | Iterable[bytes]) -> Reader:
    if hasattr(stream, "read"):
        return stream  # type: ignore[return-value]
    if isinstance(stream, bytes | bytearray | memoryview):
        raise TypeError("write_stream takes a file object or an iterable of blocks; use write()")
    return _IterReader(stream)


@attrs.define
class Target:
    """One storage location: an fsspec filesystem and a root path inside it.

    Keys are ``/``-separated paths relative to the root, checked before any I/O (see
    `validate_key`). Every failure is raised as a `StorageError` subclass naming the target and the
    key; transient failures are retried first according to ``retry``.

    Atomicity of create-only writes (`write`, `write_stream`), per backend:

    * local disk: temporary file, ``fsync``, then ``link(2)`` to the final name: atomic and durable;
      readers never see a partial object.
    * S3 / S3-compatibles: ``If-None-Match: *`` on PUT and on multipart completion: atomic where the
      endpoint honours the condition (`probe` checks; otherwise check-then-write is used).
    * Azure Blob: ``overwrite=False`` uploads and ``If-None-Match: *`` block-list commits: atomic.
    * memory: atomic within the process (a lock).
    * any other fsspec filesystem: check-then-write, not atomic.

    Use `from_url` or `from_filesystem` rather than the constructor.
    """

    fs: Any = attrs.field(repr=False)
    root: str
    name: str
    _backend: Backend = attrs.field(repr=False, alias="backend", kw_only=True)
    retry: RetryPolicy = attrs.field(factory=RetryPolicy, repr=False, kw_only=True)
    part_size: int = attrs.field(default=DEFAULT_PART_SIZE, repr=False, kw_only=True)
    _s3: S3Settings | None = attrs.field(default=None, repr=False, alias="s3", kw_only=True)
    _capabilities: Capabilities | None = attrs.field(default=None, repr=False, init=False)

    @part_size.validator
    def _check_part_size(self, _attribute: object, value: int) -> None:
        if value < 5 * 2**20:
            raise ValueError("part_size must be at least 5 MiB (S3's smallest multipart part)")

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        **options: Any,
    ) -> Target:
        """Build a target from a URL and backend options.

        Args:
            url: ``file:///path`` (or a plain path), ``memory://name/prefix``,
                ``s3://bucket/prefix``, ``az://container/prefix`` or ``abfs://container/prefix``.
            name: what errors and reports call this target; defaults to the URL.
            retry: how transient failures are retried.
            part_size: the streaming block size, which bounds memory per stream.
            **options: for S3: ``endpoint_url``, ``key``, ``secret``, ``token``, ``region``,
                ``addressing_style``, ``anon``, ``profile``; for Azure: ``account_name``,
                ``account_key``, ``connection_string``, ``sas_token``, ``credential``, ``anon``.
                Omitted credentials come from the usual environment variables.

        Raises:
            InvalidURLError: the URL or an option is wrong; nothing was contacted.
            UnsupportedError: the backend's optional dependency is missing.
        """
        parsed = parse_url(url)
        retry = retry or RetryPolicy()
        shown = name or parsed.display
        if parsed.scheme == "file":
            _no_options(options, "file")
            from fsspec.implementations.local import LocalFileSystem  # noqa: PLC0415

            fs = LocalFileSystem()
            backend = LocalBackend(fs, parsed.prefix)
            return cls(fs, parsed.prefix, shown, retry=retry, part_size=part_size, backend=backend)
        if parsed.scheme == "memory":
            _no_options(options, "memory")
            from fsspec.implementations.memory import MemoryFileSystem  # noqa: PLC0415

            fs = MemoryFileSystem()
            root = _join("/" + parsed.container, parsed.prefix)
            return cls(fs, root, shown, retry=retry, part_size=part_size, backend=MemoryBackend(fs))
        root = _join(parsed.container, parsed.prefix)
        if parsed.scheme == "s3":
            fs, settings = s3_filesystem(options)
            if name is None and settings.endpoint_url:
                shown = f"{parsed.display} at {settings.endpoint_url}"
            return cls(
                fs,
                root,
                shown,
                retry=retry,
                part_size=part_size,
                backend=S3Backend(fs),
                s3=settings,
            )
        fs = azure_filesystem(options)
        return cls(fs, root, shown, retry=retry, part_size=part_size, backend=AzureBackend(fs))

    @classmethod
    def from_filesystem(
        cls,
        fs: Any,
        root: str,
        *,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        part_size: int = DEFAULT_PART_SIZE,
    ) -> Target:
        """Wrap a ready fsspec filesystem; ``root`` is a path in that filesystem's own syntax.

        The backend strategy follows the filesystem's class (local, memory, s3fs, adlfs); any other
        filesystem gets check-then-write, which `probe` reports as not atomic.
        """
        root = root.rstrip("/") or "/"
        backend = _backend_for(fs, root)
        return cls(
            fs,
            root,
            name or f"{_protocol(fs)}://{root.lstrip('/')}",
            retry=retry or RetryPolicy(),
            part_size=part_size,
            backend=backend,
        )

    # -- keys --------------------------------------------------------------------------------

    def _path(self, key: str, *, internal: bool = False) -> str:
        validate_key(key, allow_reserved=internal)
        path = _join(self.root, key)
        if self._backend.kind in ("s3", "azure"):
            object_key = path.split("/", 1)[1] if "/" in path else ""
            size = len(object_key.encode("utf-8"))
            if size > MAX_KEY_BYTES:
                raise InvalidObjectKeyError(
                    f"object key is {size} bytes long with the target's prefix; "
                    f"the limit is {MAX_KEY_BYTES}"
                )
        return path

    def _key_of(self, path: str) -> str:
        root = self.root.rstrip("/") + "/"
        return path[len(root) :] if path.startswith(root) else path

    def _retrying(self, key: str | None) -> Callable[[str, Callable[[], T]], T]:
        def run(op: str, fn: Callable[[], T]) -> T:
            return call_with_retry(fn, policy=self.retry, op=op, target=self.name, key=key)

        return run

    def _once(self, op: str, key: str | None, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except StorageError:
            raise
        except Exception as err:
            if classify(err) is Kind.OTHER and not is_backend_error(err):
                raise
            raise translate(err, op=op, target=self.name, key=key) from err

    # -- writes ------------------------------------------------------------------------------

    def write(self, key: str, data: bytes | bytearray | memoryview) -> None:
        """Store ``data`` under ``key`` only if no object is there (create-only).

        A transient failure is retried; if a retry then finds the object, the stored bytes are
        compared with ``data`` and an identical object counts as this write's success.

        Raises:
            ObjectExistsError: an object is already stored under ``key`` (left unchanged).
            NotAFolderError: on a folder target, a parent of ``key`` is an object (a file).
            InvalidObjectKeyError: ``key`` is not a safe key (before any I/O).
            StorageError: any other failure, after retries for transient ones.
        """
        path = self._path(key)
        payload = bytes(data)
        tries = 0

        def once() -> None:
            nonlocal tries
            tries += 1
            self._precheck(path, key)
            self._backend.create(path, payload, _direct)

        try:
            call_with_retry(once, policy=self.retry, op="write", target=self.name, key=key)
        except ObjectExistsError:
            if tries > 1 and self._stored_equals(path, key, payload):
                return
            raise

    def write_stream(self, key: str, stream: Reader | Iterable[bytes]) -> int:
        """Store a stream of unknown length under ``key``, create-only, in bounded memory.

        Memory use is about one ``part_size`` block whatever the stream's length. The stream is read
        once; on S3 each part is retried on its own, elsewhere a failure ends the write.

        Args:
            key: where to store it.
            stream: a binary file object (``read(n)``) or an iterable of ``bytes`` blocks.

        Returns:
            The number of bytes stored.

        Raises:
            ObjectExistsError: an object is already stored under ``key`` (left unchanged).
            NotAFolderError: on a folder target, a parent of ``key`` is an object (a file).
            StorageError: any other failure; nothing is stored under ``key``.
        """
        path = self._path(key)
        reader = _as_reader(stream)

        def run() -> int:
            self._precheck(path, key)
            return self._backend.create_stream(path, reader, self.part_size, self._retrying(key))

        return self._once("write", key, run)

    def _precheck(self, path: str, key: str) -> None:
        # Only when the endpoint was found to ignore conditional writes: a best effort, not atomic.
        caps = self._capabilities
        if caps is not None and not caps.atomic_create and self._backend.head(path) is not None:
            raise ObjectExistsError("write: already exists", target=self.name, key=key)

    def _stored_equals(self, path: str, key: str, payload: bytes) -> bool:
        try:
            stored = call_with_retry(
                lambda: self.fs.cat_file(path),
                policy=self.retry,
                op="read",
                target=self.name,
                key=key,
            )
        except StorageError:
            return False
        return bytes(stored) == payload

    # -- reads -------------------------------------------------------------------------------

    def read(self, key: str) -> bytes:
        """Return the whole object.

        Raises:
            ObjectNotFoundError: nothing is stored under ``key``.
        """
        path = self._path(key)
        return bytes(self._retrying(key)("read", lambda: self.fs.cat_file(path)))

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Return bytes ``start`` (inclusive) to ``end`` (exclusive); shorter at the object's end.

        Raises:
            ValueError: ``start`` is negative or ``end`` is before ``start``.
            ObjectNotFoundError: nothing is stored under ``key``.
        """
        if start < 0 or end < start:
            raise ValueError(f"bad range [{start}, {end}): need 0 <= start <= end")
        path = self._path(key)
        if end == start:
            self.size(key)  # a missing object still fails
            return b""
        return bytes(
            self._retrying(key)("read", lambda: self.fs.cat_file(path, start=start, end=end))
        )

    def read_stream(self, key: str, *, block_size: int | None = None) -> Iterator[bytes]:
        """Yield the object in blocks of ``block_size`` (default ``part_size``), each read retried.

        Memory stays at one block whatever the object's size.
        """
        step = block_size or self.part_size
        total = self.size(key)
        for start in range(0, total, step):
            yield self.read_range(key, start, min(start + step, total))

    def exists(self, key: str) -> bool:
        """Tell whether an object is stored under ``key``."""
        path = self._path(key)
        return self._retrying(key)("exists", lambda: self._backend.head(path)) is not None

    def size(self, key: str) -> int:
        """Return the object's size in bytes.

        Raises:
            ObjectNotFoundError: nothing is stored under ``key``.
        """
        path = self._path(key)
        size = self._retrying(key)("size", lambda: self._backend.head(path))
        if size is None:
            raise translate(FileNotFoundError(path), op="size", target=self.name, key=key)
        return size

    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield every key under ``prefix`` (a folder key, ``""`` for all), lazily, in no set order.

        On S3 this pages through the listing 1,000 keys at a time; on other backends it walks one
        folder at a time. The library's own folders (temporary files, probes) are never listed.
        """
        validate_prefix(prefix)
        base = _join(self.root, prefix) if prefix else self.root
        reserved = tuple(_join(self.root, name) + "/" for name in RESERVED_PREFIXES)
        paths = self._backend.walk(base, self._retrying(prefix or None))
        while True:
            # Page requests are retried inside the walk; a generator that raised cannot resume,
            # so anything escaping here is translated and ends the listing loudly.
            path = self._once("list", prefix or None, lambda: next(paths, None))
            if path is None:
                return
            if not path.startswith(reserved):
                yield self._key_of(path)

    # -- the one privileged operation ---------------------------------------------------------

    def delete(self, key: str) -> None:
        """Remove one object. Privileged: only ``prune`` calls this; writer, heal and mirror never do.

        Deleting a missing object is not an error (prune must be re-runnable).
        """
        path = self._path(key)
        self._retrying(key)("delete", lambda: self._backend.delete(path))

    # -- capabilities ------------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities | None:
        """The last `probe` result, or ``None`` if the target was never probed."""
        return self._capabilities

    def probe(self, *, refresh: bool = False) -> Capabilities:
        """Find out what this target can do; cached until ``refresh=True``.

        Writes one small object under ``.ctfy-probe/`` twice with create-only semantics (the second
        write must be refused), then deletes it where the credentials allow; reads bucket versioning
        and Object Lock settings where the backend has them. A handful of requests in all.

        Raises:
            StorageError: the target cannot be reached or written to.
        """
        if self._capabilities is not None and not refresh:
            return self._capabilities
        notes: list[str] = []
        atomic, multipart, public = self._probe_with_object(notes)
        if not atomic:
            notes.append(
                "the endpoint ignored the create-only condition: writes now check first, which a "
                "concurrent writer can race"
            )
        extra = _probe_extra(self, notes)
        settings = self._s3
        caps = Capabilities(
            backend=self._backend.kind,
            atomic_create=atomic,
            create_method=self._backend.create_method if atomic else "check-then-write",
            atomic_create_multipart=multipart,
            public_read=public,
            endpoint=settings.endpoint_url if settings else None,
            addressing_style=settings.addressing_style if settings else None,
            checksum_mode=settings.checksum_mode if settings else None,
            notes=tuple(notes),
            **extra,
        )
        self._capabilities = caps
        return caps

    def _probe_with_object(
        self, notes: builtins.list[str]
    ) -> tuple[bool, bool | None, bool | None]:
        key = f"{RESERVED_PREFIXES[1]}/{uuid.uuid4().hex}"
        path = _join(self.root, key)
        run = self._retrying(key)
        run("probe write", lambda: self._backend.create(path, _PROBE_FIRST, _direct))
        try:
            try:
                run("probe write", lambda: self._backend.create(path, _PROBE_SECOND, _direct))
                atomic = False
            except ObjectExistsError:
                stored = run("probe read", lambda: bytes(self.fs.cat_file(path)))
                # A refusal proves the condition is honoured; check-then-write refuses too, but
                # only when nobody races it, so the mechanism must be atomic as well.
                atomic = stored == _PROBE_FIRST and self._backend.atomic_create
            multipart = None
            if isinstance(self._backend, S3Backend):
                multipart = self._backend.conditional_multipart(path, run)
                if not multipart:
                    notes.append(
                        "the endpoint ignores If-None-Match on multipart completion: large "
                        "streamed writes check with a HEAD just before completing (a narrow race)"
                    )
            return atomic, multipart, self._probe_public(key, notes)
        finally:
            try:
                run("probe delete", lambda: self._backend.delete(path))
            except StorageError:
                notes.append(f"probe object {key} left in place: deleting it was refused")

    def _probe_public(self, key: str, notes: builtins.list[str]) -> bool | None:
        """Ask the endpoint for the probe object and a listing without signing; None off-network."""
        if self._backend.kind not in ("s3", "azure"):
            return None
        from ctfy_vault.storage._anonymous import anonymous_access  # noqa: PLC0415 - cycle

        try:
            seen = anonymous_access(self, key, internal=True)
        except VaultError as err:
            notes.append(f"anonymous access unknown ({type(err).__name__})")
            return None
        statuses = (seen.object_status, seen.listing_status)
        public = any(status is not None and 200 <= status < 300 for status in statuses)
        if public:
            notes.append(
                "FILES ARE PUBLIC: an unsigned GET or listing was served; documents must only be "
                "reachable through signed links"
            )
        return public


def _direct(_op: str, fn: Callable[[], T]) -> T:
    return fn()


def _join(root: str, key: str) -> str:
    if not key:
        return root
    return f"{root.rstrip('/')}/{key}"


def _no_options(options: dict[str, Any], scheme: str) -> None:
    if options:
        from ctfy_vault.exceptions import InvalidURLError  # noqa: PLC0415

        raise InvalidURLError(f"{scheme} targets take no options; got {', '.join(sorted(options))}")


def _protocol(fs: Any) -> str:
    protocol = getattr(fs, "protocol", "fsspec")
    return str(protocol[0] if isinstance(protocol, tuple | list) else protocol)


def _backend_for(fs: Any, root: str) -> Backend:
    from fsspec.implementations.local import LocalFileSystem  # noqa: PLC0415
    from fsspec.implementations.memory import MemoryFileSystem  # noqa: PLC0415

    if isinstance(fs, LocalFileSystem):
        return LocalBackend(fs, root)
    if isinstance(fs, MemoryFileSystem):
        return MemoryBackend(fs)
    module = type(fs).__module__
    if module.startswith("s3fs"):
        return S3Backend(fs)
    if module.startswith("adlfs"):
        return AzureBackend(fs)
    return FsspecBackend(fs)


def _probe_extra(target: Target, notes: list[str]) -> dict[str, Any]:
    kind = target._backend.kind  # noqa: SLF001 - module-private helper of Target
    if kind == "local":
        return {"signed_links": "hmac", "versioning": False, "object_lock": False}
    if kind == "s3":
        return _probe_s3(target, notes)
    if kind == "azure":
        return _probe_azure(target, notes)
    return {"versioning": False if kind == "memory" else None}


def _probe_s3(target: Target, notes: list[str]) -> dict[str, Any]:
    bucket = target.root.split("/", 1)[0]
    call = target.fs.call_s3
    out: dict[str, Any] = {"signed_links": "sigv4"}
    try:
        status = call("get_bucket_versioning", Bucket=bucket).get("Status")
        out["versioning"] = status == "Enabled"
        if status == "Suspended":
            notes.append("versioning is suspended on the bucket")
    except Exception as err:  # noqa: BLE001 - a capability we could not read is reported unknown
        notes.append(f"versioning unknown ({describe(err)})")
    try:
        lock = call("get_object_lock_configuration", Bucket=bucket)["ObjectLockConfiguration"]
        out["object_lock"] = lock.get("ObjectLockEnabled") == "Enabled"
        rule = lock.get("Rule", {}).get("DefaultRetention")
        if rule:
            span = f"{rule['Days']} days" if "Days" in rule else f"{rule.get('Years')} years"
            out["object_lock_default"] = f"{rule.get('Mode')} {span}"
    except Exception as err:  # noqa: BLE001 - see above
        if "ObjectLockConfigurationNotFound" in _error_code(err):
            out["object_lock"] = False
        else:
            notes.append(f"object lock unknown ({describe(err)})")
    return out


def _probe_azure(target: Target, notes: list[str]) -> dict[str, Any]:
    container = target.root.split("/", 1)[0]
    out: dict[str, Any] = {"signed_links": "sas"}
    try:
        from fsspec.asyn import sync  # noqa: PLC0415

        client = target.fs.service_client.get_container_client(container)
        props = sync(target.fs.loop, client.get_container_properties)
        immutable = bool(
            getattr(props, "has_immutability_policy", False)
            or getattr(props, "immutable_storage_with_versioning_enabled", False)
        )
        out["object_lock"] = immutable
    except Exception as err:  # noqa: BLE001 - reported as unknown
        notes.append(f"immutability unknown ({describe(err)})")
    notes.append("blob versioning is an account setting the container cannot report")
    return out


def _error_code(err: BaseException) -> str:
    current: BaseException | None = err
    while current is not None:
        response = getattr(current, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code", ""))
        current = current.__cause__ or current.__context__
    return ""
