"""`Target`: one fsspec filesystem plus a root path, with append-only operations on object keys."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

import attrs

from ctfy_vault.exceptions import (
    ConfigurationError,
    InvalidObjectKeyError,
    InvalidURLError,
    ObjectExistsError,
    StorageError,
    UnsupportedError,
    VaultError,
)
from ctfy_vault.storage._anonymous import AnonymousProbe, ask_anonymously
from ctfy_vault.storage._azure import AzureBackend
from ctfy_vault.storage._backends import (
    DEFAULT_PART_SIZE,
    MAX_EXPIRES_IN,
    Backend,
    Entry,
    FsspecBackend,
    LinkRequest,
    LocalBackend,
    LockMode,
    MemoryBackend,
    Reader,
    Support,
)
from ctfy_vault.storage._errors import (
    Kind,
    RetryPolicy,
    call_with_retry,
    classify,
    is_backend_error,
    translate,
)
from ctfy_vault.storage._keys import RESERVED_PREFIXES, validate_key, validate_prefix
from ctfy_vault.storage._probe import Capabilities
from ctfy_vault.storage._s3 import S3Backend
from ctfy_vault.storage._url import azure_filesystem, parse_url, s3_filesystem

T = TypeVar("T")

_PROBE_FIRST = b"ctfy-vault probe: first write"
_PROBE_SECOND = b"ctfy-vault probe: second write must be refused"
_READ_METHODS = ("GET", "HEAD")
#: The key the anonymous-access probe asks for when it is given none (it need not exist).
_ANONYMOUS_PROBE_KEY = "ctfy-anonymous-probe"


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

    Beyond create, read, list and delete, backends differ: `supports` says, without a request,
    which of `entries`, `stat`, `replace`, `copy_from`, `presign_url`, `anonymous_access`,
    `retain_until` and `versioning_enabled` work here; the others raise `UnsupportedError`.

    Use `from_url` or `from_filesystem` rather than the constructor.
    """

    fs: Any = attrs.field(repr=False)
    root: str
    name: str
    _backend: Backend = attrs.field(repr=False, alias="backend", kw_only=True)
    retry: RetryPolicy = attrs.field(factory=RetryPolicy, repr=False, kw_only=True)
    part_size: int = attrs.field(default=DEFAULT_PART_SIZE, repr=False, kw_only=True)
    lock_mode: LockMode = attrs.field(default="COMPLIANCE", repr=False, kw_only=True)
    _capabilities: Capabilities | None = attrs.field(default=None, repr=False, init=False)
    _object_lock: bool | None = attrs.field(default=None, repr=False, init=False)

    @lock_mode.validator
    def _check_lock_mode(self, _attribute: object, value: object) -> None:
        if value not in ("COMPLIANCE", "GOVERNANCE"):
            raise InvalidURLError(f"lock_mode must be 'COMPLIANCE' or 'GOVERNANCE', not {value!r}")

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
        lock_mode: str = "COMPLIANCE",
        data_storage_class: str | None = None,
        **options: Any,
    ) -> Target:
        """Build a target from a URL and backend options.

        Args:
            url: ``file:///path`` (or a plain path), ``memory://name/prefix``,
                ``s3://bucket/prefix``, ``az://container/prefix`` or ``abfs://container/prefix``.
            name: what errors and reports call this target; defaults to the URL.
            retry: how transient failures are retried.
            part_size: the streaming block size, which bounds memory per stream.
            lock_mode: the Object Lock mode of the locks this target's objects get where its
                bucket has Object Lock: ``COMPLIANCE`` (nobody can shorten or remove a lock) or
                ``GOVERNANCE`` (a user with ``s3:BypassGovernanceRetention`` can); either case.
            data_storage_class: S3 only: the storage class of the bulk data (packs, and format
                1 chunk objects), one that reads at once: ``STANDARD_IA``, ``ONEZONE_IA``,
                ``INTELLIGENT_TIERING``, ``GLACIER_IR`` or ``STANDARD``. The config, key
                slots, index objects and manifests always stay in the standard class.
            **options: for S3: ``endpoint_url``, ``key``, ``secret``, ``token``, ``region``,
                ``addressing_style``, ``anon``, ``profile``; for Azure: ``account_name``,
                ``account_key``, ``connection_string``, ``sas_token``, ``credential``, ``anon``.
                Omitted credentials come from the usual environment variables.

        Raises:
            InvalidURLError: the URL or an option is wrong; nothing was contacted.
            UnsupportedError: the backend's optional dependency is missing.
        """
        mode: object = lock_mode
        if isinstance(mode, str):
            mode = mode.upper()
        target = cls._from_url(url, name=name, retry=retry, part_size=part_size, **options)
        target.lock_mode = mode  # type: ignore[assignment]  # checked by its validator
        if data_storage_class is not None:
            target._store_data_in(data_storage_class)  # noqa: SLF001 - its own kind
        return target

    def _store_data_in(self, storage_class: object) -> None:
        backend = self._backend
        if not isinstance(backend, S3Backend):
            raise InvalidURLError(
                f"data_storage_class is for S3 targets; {self.name} is {backend.kind}"
            )
        if storage_class not in DATA_STORAGE_CLASSES:
            archive = " (an archive class needs a restore request before each read)"
            known = ", ".join(sorted(DATA_STORAGE_CLASSES))
            raise InvalidURLError(
                f"data_storage_class {storage_class!r} is not one that reads at once "
                f"({known}){archive if storage_class in ('GLACIER', 'DEEP_ARCHIVE') else ''}"
            )
        prefixes = tuple(_join(self.root, f"{prefix}/") for prefix in _DATA_PREFIXES)
        backend.store_data_in(str(storage_class), prefixes)

    @classmethod
    def _from_url(
        cls,
        url: str,
        *,
        name: str | None,
        retry: RetryPolicy | None,
        part_size: int,
        **options: Any,
    ) -> Target:
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
            s3 = S3Backend(fs, settings)
            return cls(fs, root, shown, retry=retry, part_size=part_size, backend=s3)
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

    def _path(self, key: str) -> str:
        validate_key(key)
        path = _join(self.root, key)
        limit = self.supports.key_byte_limit
        if limit is not None:
            object_key = path.split("/", 1)[1] if "/" in path else ""
            size = len(object_key.encode("utf-8"))
            if size > limit:
                raise InvalidObjectKeyError(
                    f"object key is {size} bytes long with the target's prefix; "
                    f"the limit is {limit}"
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
        # Kept unchanged across retries; an immutable ``bytes`` (a pack) is not copied.
        payload = data if isinstance(data, bytes) else bytes(data)
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
                lambda: self._backend.read(path),
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
        """Return the whole object (on S3 with one ``GET``, no ``HEAD`` first).

        Raises:
            ObjectNotFoundError: nothing is stored under ``key``.
        """
        path = self._path(key)
        return self._retrying(key)("read", lambda: self._backend.read(path))

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

    def entries(self, prefix: str = "") -> Iterator[Entry]:
        """Yield an `Entry` (key, size, modification time, ETag) for every object under ``prefix``.

        A detailed `list`: lazily, in no set order, never the library's own folders. Keys are
        yielded as stored, unchecked, so a caller can report keys it will not read (check them
        with `validate_key`). S3 pages ``ListObjectsV2`` (1,000 keys a request, each retried on
        its own) and skips folder placeholders; local disk costs one ``stat`` per file; other
        backends one detailed fsspec ``find``.

        Raises:
            UnsupportedError: the backend has no detailed listing (`Support.detailed_listing`).
            StorageError: a listing request failed (after retries).
        """
        validate_prefix(prefix)
        base = _join(self.root, prefix) if prefix else self.root
        reserved = tuple(name + "/" for name in RESERVED_PREFIXES)
        found = self._backend.entries(base, self._retrying(prefix or None))
        while True:
            # As in `list`: pages are retried inside; what escapes is translated and ends it.
            entry = self._once("list", prefix or None, lambda: next(found, None))
            if entry is None:
                return
            key = self._key_of(entry.key)
            if not key.startswith(reserved):
                yield attrs.evolve(entry, key=key)

    def stat(self, key: str) -> Entry | None:
        """Return the object's `Entry` (one ``HEAD``-like request), or ``None`` if there is none.

        Raises:
            UnsupportedError: the backend cannot (`Support.stat`).
        """
        path = self._path(key)
        entry = self._retrying(key)("stat", lambda: self._backend.stat(path))
        return None if entry is None else attrs.evolve(entry, key=key)

    # -- operations not every backend has -----------------------------------------------------

    @property
    def supports(self) -> Support:
        """What this target's backend can do, known without a request (see `Support`)."""
        return self._backend.supports

    def replace(self, key: str, stream: Reader | Iterable[bytes]) -> int:
        """Overwrite ``key`` with a stream: the one overwriting write, the mirror's.

        The mirror calls this only once the previous bytes are kept (by bucket versioning or a
        copy of their own); nothing else in the library overwrites. Readers see the old or the
        new object, never a mix: local disk writes a temporary file next to it, ``fsync``, then
        ``rename`` over it; S3 and Azure upload anew (multipart / block list); memory stores
        directly. The stream is read once, so a failure is not retried.

        Returns:
            The number of bytes written.

        Raises:
            UnsupportedError: the backend cannot (`Support.replace`).
            StorageError: the write failed; the previous object may still be there.
        """
        path = self._path(key)
        reader = _as_reader(stream)
        blocks = iter(lambda: reader.read(self.part_size), b"")
        return self._once(
            "replace",
            key,
            lambda: self._backend.replace(path, blocks, self.part_size, self._retrying(key)),
        )

    def can_copy_from(self, source: Target) -> bool:
        """Tell whether `copy_from` can copy ``source``'s objects here server-side."""
        return self._backend.can_copy_from(source._backend)

    def copy_from(self, source: Target, key: str) -> str | None:
        """Copy ``key`` from ``source`` to the same key here without the bytes passing through.

        One ``CopyObject`` on S3 (objects up to 5 GiB) when both targets are buckets of one
        endpoint with the same credentials (`can_copy_from`). Not create-only: the caller checks
        that the key is free (the mirror copies only what the listing lacks).

        Returns:
            The new copy's ETag, as the service reported it.

        Raises:
            UnsupportedError: the backend cannot (`Support.server_side_copy`), or ``source`` is
                on another service.
        """
        source_path = source._path(key)
        path = self._path(key)
        if not self.supports.server_side_copy:
            raise self._backend.unsupported("server-side copy")
        return self._retrying(key)(
            "copy",
            lambda: self._backend.copy(
                source._backend,
                source_path,
                path,
                _direct,
            ),
        )

    def presign_url(
        self,
        key: str,
        *,
        expires_in: int,
        method: str = "GET",
        start: datetime | None = None,
        client_ip: str | None = None,
        content_disposition: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """Return the backend's own signed, read-only URL for one object (no request is made).

        The low-level half of `ctfy_vault.links.presign`, which adds the one-hour policy, download
        names and HMAC links for backends without an endpoint. S3: a SigV4 query signature in the
        endpoint's addressing style, dated by the system clock. Azure: a blob-scoped read SAS
        signed with the account key, valid from ``start`` (default: the system clock).

        Args:
            key: the object key.
            expires_in: whole seconds the link works, 1 to `MAX_EXPIRES_IN`.
            method: ``GET`` or ``HEAD``.
            start: when the link starts working, where the backend signs a start
                (`Support.presign_start`): an aware UTC `datetime` of whole seconds, no later
                than the system clock.
            client_ip: only this address may use the link (`Support.presign_client_ip`).
            content_disposition: what the server must send as ``Content-Disposition``.
            content_type: what the server must send as ``Content-Type``.

        Raises:
            ConfigurationError: ``expires_in`` or ``start`` is out of range.
            UnsupportedError: the backend cannot sign (`Support.presign`), cannot take
                ``start`` or ``client_ip``, has no shared key (Azure), or ``method`` is not a read.
            InvalidObjectKeyError: ``key`` is unsafe.
        """
        path = self._path(key)
        if type(expires_in) is not int or not 1 <= expires_in <= MAX_EXPIRES_IN:
            raise ConfigurationError(
                f"a signed link lives 1 to {MAX_EXPIRES_IN} whole seconds (an int)"
            )
        if method not in _READ_METHODS:
            raise UnsupportedError(f"signed links are read-only (GET or HEAD), not {method}")
        if start is not None:
            # An exact datetime only: a subclass could format or convert itself to another time.
            if type(start) is not datetime or start.tzinfo is not UTC or start.microsecond:
                raise ConfigurationError(
                    "a link's start must be an aware UTC datetime of whole seconds"
                )
            if start > datetime.now(UTC):
                raise ConfigurationError("a link may not start in the future")
        elif self.supports.presign_start:
            start = datetime.now(UTC).replace(microsecond=0)
        request = LinkRequest(
            expires_in=expires_in,
            method=method,
            start=start,
            client_ip=client_ip,
            content_disposition=content_disposition,
            content_type=content_type,
        )
        return self._backend.presign(path, request)

    def anonymous_access(self, key: str | None = None) -> AnonymousProbe:
        """Send an unsigned GET of ``key`` and an unsigned listing to the target's endpoint.

        The object's plain address is a signed link's with the signature stripped, so it follows
        the endpoint and addressing style exactly. Two requests in all (one without ``key``).

        Returns:
            The statuses; any 2xx means anonymous readers were served.

        Raises:
            UnsupportedError: the backend has no endpoint to ask (`Support.anonymous_probe`).
            TargetUnreachableError: the endpoint did not answer.
        """
        path = self._path(key if key is not None else _ANONYMOUS_PROBE_KEY)
        return self._anonymous(path, try_object=key is not None)

    def _anonymous(self, path: str, *, try_object: bool) -> AnonymousProbe:
        object_url, listing_url = self._backend.anonymous_urls(path)
        return ask_anonymously(object_url, listing_url, try_object=try_object, target=self.name)

    def retain_until(self, key: str, until: datetime, *, mode: LockMode = "COMPLIANCE") -> None:
        """Give a stored object an Object Lock retain-until date (one ``PutObjectRetention``).

        Atomicity: the retention applies to the object's current version as a whole, or not at
        all. In COMPLIANCE mode no credentials can delete that version or shorten the date before
        ``until``; GOVERNANCE mode can be bypassed by a user holding
        ``s3:BypassGovernanceRetention``. Whether the bucket has Object Lock is
        `Capabilities.object_lock`.

        Raises:
            ConfigurationError: ``until`` is naive, or ``mode`` is unknown.
            UnsupportedError: the backend has no Object Lock (`Support.retain_until`).
            StorageError: the request failed (e.g. the bucket has no Object Lock, or a shorter
                date was asked for a COMPLIANCE-locked object), after retries.
        """
        if until.utcoffset() is None:
            raise ConfigurationError("until must be an aware datetime")
        if mode not in ("COMPLIANCE", "GOVERNANCE"):
            raise ConfigurationError("mode must be 'COMPLIANCE' or 'GOVERNANCE'")
        until = whole_second(until)
        path = self._path(key)
        if not self.supports.retain_until:
            raise self._backend.unsupported("Object Lock retention")
        self._retrying(key)("retain", lambda: self._backend.retain_until(path, until, mode))

    def object_lock(self) -> bool:
        """Whether this target's objects can be locked: its bucket has Object Lock.

        Two bucket-setting reads at most (``GetBucketVersioning``,
        ``GetObjectLockConfiguration``), once per target object; none when `probe` already ran
        or the backend has no Object Lock. A setting that cannot be read counts as no lock.
        """
        if self._object_lock is None:
            if not self.supports.retain_until:
                self._object_lock = False
            elif self._capabilities is not None:
                self._object_lock = bool(self._capabilities.object_lock)
            else:
                notes: list[str] = []
                settings = self._backend.probe_settings(self.root, notes)
                self._object_lock = bool(settings.get("object_lock"))
        return self._object_lock

    def retention(self, key: str) -> tuple[LockMode, datetime] | None:
        """Read a stored object's Object Lock retention (one ``HeadObject``).

        Returns:
            The mode and the retain-until date (aware, UTC) of the object's current version, or
            ``None`` when it has no retention.

        Raises:
            UnsupportedError: the backend has no Object Lock (`Support.retain_until`).
            ObjectNotFoundError: there is no such object.
            StorageError: the request failed (after retries).
        """
        path = self._path(key)
        if not self.supports.retain_until:
            raise self._backend.unsupported("Object Lock retention")
        return self._retrying(key)("retention", lambda: self._backend.retention(path))

    def extend_retention(self, key: str, until: datetime, *, mode: LockMode = "COMPLIANCE") -> bool:
        """Make an object locked at least until ``until``: never shortened, one or two requests.

        Reads the retention first; an object already locked as long (in either mode) is left
        alone, else it gets ``until`` in its own mode if it has one, ``mode`` if not.

        Returns:
            Whether the date was raised.

        Raises:
            as `retention` and `retain_until`.
        """
        if until.utcoffset() is None:
            raise ConfigurationError("until must be an aware datetime")
        until = whole_second(until)
        current = self.retention(key)
        if current is not None and current[1] >= until:
            return False
        self.retain_until(key, until, mode=current[0] if current is not None else mode)
        return True

    def versioning_enabled(self) -> bool:
        """Tell whether the bucket keeps the previous version of an overwritten object.

        Raises:
            UnsupportedError: the backend cannot tell (`Support.versioning`).
            StorageError: the request failed (after retries).
        """
        return self._backend.versioning(self.root, self._retrying(None))

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
        extra = self._backend.probe_settings(self.root, notes)
        if extra.get("object_lock") and self.supports.retain_until:
            extra["lock_holds"] = self._probe_lock(notes)
        caps = Capabilities(
            backend=self._backend.kind,
            atomic_create=atomic,
            create_method=self._backend.create_method if atomic else "check-then-write",
            atomic_create_multipart=multipart,
            public_read=public,
            signed_links=self.supports.signed_links,
            supports=self.supports,
            notes=tuple(notes),
            **extra,
        )
        self._capabilities = caps
        return caps

    def _probe_lock(self, notes: builtins.list[str]) -> bool | None:
        """Lock a probe object for a minute in `lock_mode`, then try to undo the lock."""
        key = f"{RESERVED_PREFIXES[1]}/lock-{uuid.uuid4().hex}"
        path = _join(self.root, key)
        now = datetime.now(UTC)
        try:
            run = self._retrying(key)
            run("probe write", lambda: self._backend.create(path, b"", _direct))
            until = whole_second(now + timedelta(minutes=1))
            run("probe lock", lambda: self._backend.retain_until(path, until, self.lock_mode))
            shortened, removed = self._backend.undo_lock(path, now + timedelta(seconds=30))
        except (StorageError, UnsupportedError) as err:
            notes.append(f"whether a lock holds is unknown ({type(err).__name__})")
            return None
        if shortened or removed:
            done = " and ".join(
                what for what, did in (("shortened", shortened), ("removed", removed)) if did
            )
            notes.append(
                f"a {self.lock_mode} lock set here was {done} with this credential: whoever "
                "holds it can undo the locks (use COMPLIANCE, or a credential without "
                "s3:BypassGovernanceRetention)"
            )
        else:
            notes.append(f"a locked probe object stays under {RESERVED_PREFIXES[1]}/ for a minute")
        return not (shortened or removed)

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
                stored = run("probe read", lambda: self._backend.read(path))
                # A refusal proves the condition is honoured; check-then-write refuses too, but
                # only when nobody races it, so the mechanism must be atomic as well.
                atomic = stored == _PROBE_FIRST and self._backend.atomic_create
            multipart = self._backend.probe_multipart(path, run)
            if multipart is False:
                notes.append(
                    "the endpoint ignores If-None-Match on multipart completion: large "
                    "streamed writes check with a HEAD just before completing (a narrow race)"
                )
            return atomic, multipart, self._probe_public(path, notes)
        finally:
            try:
                run("probe delete", lambda: self._backend.delete(path))
            except StorageError:
                notes.append(f"probe object {key} left in place: deleting it was refused")

    def _probe_public(self, path: str, notes: builtins.list[str]) -> bool | None:
        """Ask the endpoint for the probe object and a listing without signing; None off-network."""
        if not self.supports.anonymous_probe:
            return None
        try:
            seen = self._anonymous(path, try_object=True)
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


#: S3 storage classes the bulk data may use: each reads at once (no restore request first).
DATA_STORAGE_CLASSES: Final = frozenset(
    {"STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR"}
)
#: Where the bulk data lives: packs (format 2) and chunk objects (format 1).
_DATA_PREFIXES: Final = ("packs", "objects")


def whole_second(moment: datetime) -> datetime:
    """``moment`` in UTC, rounded up to a whole second (S3 keeps retain-until dates so)."""
    utc = moment.astimezone(UTC)
    if utc.microsecond:
        utc = utc.replace(microsecond=0) + timedelta(seconds=1)
    return utc


def set_retain_until(
    target: Target, key: str, until: datetime, *, mode: LockMode = "COMPLIANCE"
) -> None:
    """Set an Object Lock retention on one stored object: `Target.retain_until` as a function."""
    target.retain_until(key, until, mode=mode)
