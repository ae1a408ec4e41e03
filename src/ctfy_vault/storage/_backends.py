"""The backend contract (`Backend`, `Support`, `Entry`) and the filesystem backends.

Each backend gets the filesystem and full paths (root already joined) and raises whatever its library
raises; `Target` validates keys, translates and retries. The memory, local-disk and generic fsspec
backends live here; S3 in `_s3`, Azure Blob in `_azure`. Together with `_url` these are the only
modules that know backend quirks: callers ask `Support` flags, never a backend's name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import re
import socket
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeVar

import attrs

from ctfy_vault.exceptions import UnsupportedError
from ctfy_vault.storage._keys import RESERVED_PREFIXES

T = TypeVar("T")

#: Wraps one backend request with retries and translation (supplied by `Target`).
Retrying = Callable[[str, Callable[[], T]], T]

#: S3 multipart parts must be >= 5 MiB (but the last); 8 MiB keeps memory low and requests few.
DEFAULT_PART_SIZE = 8 * 2**20
#: S3 refuses more than 10,000 parts; grow the part size well before that.
PARTS_PER_SIZE_STEP = 1000
#: The longest any signed link this package makes may live, in seconds (`ctfy_vault.links.MAX_TTL`;
#: storage may not import links): a last line of defence, whoever calls.
MAX_EXPIRES_IN = 3600
#: S3 Object Lock retention modes.
LockMode = Literal["COMPLIANCE", "GOVERNANCE"]
#: Temporary files of a local `replace`, next to the object they replace (never listed).
REPLACE_TEMP_PREFIX = ".ctfy-replace-"

_NO_HARD_LINKS = frozenset(
    {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}
)


def _raise_unless_gone(err: OSError) -> None:
    """Let a walk skip a folder removed meanwhile, and fail on any other listing error."""
    if not isinstance(err, FileNotFoundError):
        raise err


class Reader(Protocol):
    """Anything with a ``read(n)`` that returns at most ``n`` bytes and ``b""`` at the end."""

    def read(self, size: int, /) -> bytes: ...


def read_full(reader: Reader, size: int) -> bytes:
    """Read up to ``size`` bytes, looping over short reads (pipes return what they have)."""
    first = reader.read(size)
    if len(first) == size or not first:
        return first
    parts = [first]
    missing = size - len(first)
    while missing:
        more = reader.read(missing)
        if not more:
            break
        parts.append(more)
        missing -= len(more)
    return b"".join(parts)


@attrs.frozen(kw_only=True)
class Support:
    """What a backend can do, known without a request (`Target.supports`).

    Each flag says whether the matching `Target` operation works on this backend; where a flag is
    false the operation raises `UnsupportedError`. Whether a bucket *has* versioning or Object
    Lock enabled is the bucket's setting, found by `Target.probe` (`Capabilities`).

    Attributes:
        detailed_listing: `Target.entries` lists sizes, modification times and ETags.
        stat: `Target.stat` returns one object's entry.
        replace: `Target.replace` overwrites an object (the one overwriting write: the mirror's).
        server_side_copy: `Target.copy_from` copies within one service without moving the bytes
            through this process (same endpoint and credentials; `Target.can_copy_from` tells).
        presign: `Target.presign_url` signs a read link with the backend's own scheme.
        presign_start: the link's start time is signed (Azure SAS ``st``); otherwise the
            signature carries the system clock at signing (SigV4's ``X-Amz-Date``).
        presign_client_ip: a link can be bound to one client address.
        hmac_links: the backend has no endpoint of its own: `ctfy_vault.links` signs HMAC links
            to the application's download endpoint instead (local disk, memory).
        anonymous_probe: `Target.anonymous_access` can ask the endpoint without credentials.
        retain_until: `Target.retain_until` sets an Object Lock retain-until date.
        versioning: `Target.versioning_enabled` can tell whether the bucket keeps versions.
        etag_is_md5: an object's ETag is derived from its bytes alone (the MD5 for one-part
            uploads, ``<md5 of part md5s>-<parts>`` for multipart), so equal ETags and sizes
            mean equal bytes.
        signed_links: how links to its objects are signed: ``sigv4``, ``sas``, ``hmac`` or
            ``None`` (no links).
        key_byte_limit: the longest object name in UTF-8 bytes, root prefix included (``None``:
            no limit beyond the filesystem's).
    """

    detailed_listing: bool = True
    stat: bool = True
    replace: bool = False
    server_side_copy: bool = False
    presign: bool = False
    presign_start: bool = False
    presign_client_ip: bool = False
    hmac_links: bool = False
    anonymous_probe: bool = False
    retain_until: bool = False
    versioning: bool = False
    etag_is_md5: bool = False
    signed_links: str | None = None
    key_byte_limit: int | None = None

    def operations(self) -> tuple[str, ...]:
        """Return the names of the optional operations this backend supports, for display."""
        flags = (
            "detailed_listing",
            "stat",
            "replace",
            "server_side_copy",
            "presign",
            "anonymous_probe",
            "retain_until",
            "versioning",
        )
        return tuple(name for name in flags if getattr(self, name))


@attrs.frozen
class Entry:
    """One stored object as a detailed listing (or `Target.stat`) shows it.

    Attributes:
        key: the key relative to the target's root (a backend's own entries carry full paths).
        size: bytes.
        etag: the backend's entity tag without quotes (S3: see `Support.etag_is_md5`).
        stamp: another change marker where there is no ETag (local: mtime in nanoseconds).
        modified: the last modification time (aware, UTC) where the backend reports one.
        version: the object version id where the backend reports one (S3 ``stat`` on a
            versioned bucket).
    """

    key: str
    size: int
    etag: str | None = None
    stamp: str | None = None
    modified: datetime | None = attrs.field(default=None, kw_only=True)
    version: str | None = attrs.field(default=None, kw_only=True)


@attrs.frozen(kw_only=True)
class LinkRequest:
    """A checked request for a signed, read-only link to one object (see `Target.presign_url`).

    Attributes:
        expires_in: whole seconds the link works, 1 to `MAX_EXPIRES_IN`.
        method: ``GET`` or ``HEAD``.
        start: when the link starts working, where the backend signs a start.
        client_ip: the only address that may use the link.
        content_disposition: what the server must send as ``Content-Disposition``.
        content_type: what the server must send as ``Content-Type``.
    """

    expires_in: int
    method: str = "GET"
    start: datetime | None = None
    client_ip: str | None = None
    content_disposition: str | None = None
    content_type: str | None = None


def strip_etag(etag: object) -> str | None:
    """Return an ETag without its quotes (``None`` for none)."""
    return str(etag).strip('"') if etag else None


def as_utc(value: object) -> datetime | None:
    """Turn a listing's time (aware or naive datetime, or POSIX seconds) into aware UTC."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    return None


class Backend:
    """What `Target` needs from a storage backend.

    Paths are full (the root already joined). Methods raise whatever the backend's library raises;
    `Target` validates keys, retries and translates. The required operations (create, stream,
    head, read, walk, entries, stat, delete) are implemented by every backend; the optional ones
    raise `UnsupportedError` naming the backend and the operation unless a backend overrides
    them, and `supports` says which ones it does.
    """

    kind: str = "backend"
    create_method: str = "none"
    atomic_create: bool = False
    supports: Support = Support(detailed_listing=False, stat=False)

    def unsupported(self, operation: str) -> UnsupportedError:
        """Build the error for an operation this backend cannot do."""
        return UnsupportedError(f"the {self.kind} backend does not support {operation}")

    # -- required --------------------------------------------------------------------------

    def create(self, path: str, data: bytes, retrying: Retrying[Any]) -> None:
        """Store ``data`` at ``path`` only if nothing is there (raise ``FileExistsError`` if so)."""
        raise self.unsupported("create-only writes")

    def create_stream(
        self, path: str, reader: Reader, part_size: int, retrying: Retrying[Any]
    ) -> int:
        """Store a stream create-only with memory bounded by ``part_size``; return the byte count."""
        raise self.unsupported("streamed writes")

    def head(self, path: str) -> int | None:
        """Return the object's size, or ``None`` if there is none (one `stat`)."""
        entry = self.stat(path)
        return None if entry is None else entry.size

    def read(self, path: str) -> bytes:
        """Return the whole object (``FileNotFoundError`` if there is none)."""
        raise self.unsupported("read")

    def walk(self, path: str, retrying: Retrying[Any]) -> Iterator[str]:
        """Yield the full path of every object under ``path`` (recursively, lazily).

        ``retrying`` wraps each request that can be repeated on its own (a page of a listing).
        """
        raise self.unsupported("listing")

    def entries(self, path: str, retrying: Retrying[Any]) -> Iterator[Entry]:
        """Yield an `Entry` (``key`` = full path) for every object under the folder ``path``."""
        raise self.unsupported("detailed listing")

    def stat(self, path: str) -> Entry | None:
        """Return the object's `Entry` (``key`` = full path), or ``None`` if there is none."""
        raise self.unsupported("stat")

    def delete(self, path: str) -> None:
        """Remove one object; a missing object is not an error."""
        raise self.unsupported("delete")

    # -- probing (answers "unknown" unless a backend knows better) --------------------------

    def probe_multipart(self, path: str, retrying: Retrying[Any]) -> bool | None:
        """Tell whether a conditional multipart completion over ``path`` is refused (S3 only)."""
        return None

    def probe_settings(self, root: str, notes: list[str]) -> dict[str, Any]:
        """Read what the bucket or container says of itself, as `Capabilities` fields."""
        return {"versioning": None}

    # -- optional ----------------------------------------------------------------------------

    def replace(
        self, path: str, blocks: Iterable[bytes], part_size: int, retrying: Retrying[Any]
    ) -> int:
        """Overwrite ``path`` with ``blocks``; return the byte count."""
        raise self.unsupported("replace")

    def can_copy_from(self, other: Backend) -> bool:
        """Tell whether `copy` can take ``other``'s objects without moving their bytes here."""
        return False

    def copy(self, other: Backend, source: str, path: str, retrying: Retrying[Any]) -> str | None:
        """Copy ``source`` (on ``other``) to ``path`` server-side; return the new copy's ETag."""
        raise self.unsupported("server-side copy")

    def presign(self, path: str, request: LinkRequest) -> str:
        """Return a signed read URL for ``path`` (the request is checked by `Target`)."""
        raise self.unsupported("signed links")

    def anonymous_urls(self, path: str) -> tuple[str, str]:
        """Return the unsigned URLs of ``path`` and of its bucket's listing."""
        raise self.unsupported("the anonymous-access probe")

    def retain_until(self, path: str, until: datetime, mode: LockMode) -> None:
        """Give the object an Object Lock retain-until date."""
        raise self.unsupported("Object Lock retention")

    def retention(self, path: str) -> tuple[LockMode, datetime] | None:
        """The object's Object Lock mode and retain-until date, or ``None`` if it has none."""
        raise self.unsupported("Object Lock retention")

    def undo_lock(self, path: str, shorter: datetime) -> tuple[bool, bool]:
        """Try to shorten a locked object's date to ``shorter``, then to delete its version.

        Both bypass governance where the credential may. Returns whether each succeeded.
        """
        raise self.unsupported("Object Lock retention")

    def versioning(self, root: str, retrying: Retrying[Any]) -> bool:
        """Tell whether the bucket keeps previous versions of overwritten objects."""
        raise self.unsupported("reading bucket versioning")


class FsspecBackend(Backend):
    """Any other fsspec filesystem: check, then write (not atomic; `Target.probe` says so)."""

    kind = "fsspec"
    create_method = "check-then-write (not atomic)"
    atomic_create = False
    supports = Support()
    _write_mode = "wb"

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    def create(self, path: str, data: bytes, retrying: Retrying[Any]) -> None:
        """Refuse if the object exists, then write it (a race can still overwrite)."""
        if self.head(path) is not None:
            raise FileExistsError(errno.EEXIST, "object exists", path)
        self.fs.makedirs(posixpath.dirname(path), exist_ok=True)  # a no-op on object stores
        retrying("write", lambda: self.fs.pipe_file(path, data))

    def create_stream(
        self, path: str, reader: Reader, part_size: int, retrying: Retrying[Any]
    ) -> int:
        """Store a stream through ``fs.open``; the filesystem bounds its own buffers."""
        first = read_full(reader, part_size)
        if len(first) < part_size:
            self.create(path, first, retrying)
            return len(first)
        if self._write_mode == "wb" and self.head(path) is not None:
            raise FileExistsError(errno.EEXIST, "object exists", path)
        total = 0
        with self.fs.open(path, self._write_mode, block_size=part_size) as out:
            block = first
            while block:
                out.write(block)
                total += len(block)
                block = read_full(reader, part_size)
        return total

    def walk(self, path: str, retrying: Retrying[Any]) -> Iterator[str]:
        """Walk folder by folder (each folder listed once, lazily across folders).

        Each folder's listing is retried on its own, and one that still fails fails the walk:
        fsspec's ``isdir`` and ``walk`` would treat a failed request as an empty folder, and an
        empty ``snapshots/`` listing makes every chunk look unreferenced to prune.
        """
        try:
            info = retrying("list", lambda: self.fs.info(path))
        except FileNotFoundError:
            return
        if info.get("type") != "directory":
            return
        pending = [path.rstrip("/")]
        while pending:
            folder = pending.pop()
            try:
                entries = retrying(
                    "list",
                    lambda folder=folder: self.fs.ls(folder, detail=True),  # type: ignore[misc]
                )
            except FileNotFoundError:
                continue  # removed since its parent was listed
            for entry in entries:
                name = entry["name"].rstrip("/")
                if entry.get("type") == "directory":
                    if name != folder:
                        pending.append(name)
                else:
                    yield name

    def delete(self, path: str) -> None:
        """Remove with ``rm_file``; already gone is fine."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(path)

    def read(self, path: str) -> bytes:
        """One ``cat_file``."""
        return bytes(self.fs.cat_file(path))

    def entries(self, path: str, retrying: Retrying[Any]) -> Iterator[Entry]:
        """One ``find`` with details (after dropping any listing fsspec cached), sorted by path."""
        base = path.rstrip("/")

        def find() -> dict[str, dict[str, Any]]:
            self.fs.invalidate_cache(base)  # never trust a listing cached by an earlier call
            found = self.fs.find(base, detail=True, withdirs=False)
            # adlfs answers a file path with a list of that one name, whatever ``detail`` says:
            # the file is not under the folder, so there is nothing to list.
            return found if isinstance(found, dict) else {}

        for name, info in sorted(retrying("list", find).items()):
            if info.get("type") == "directory" or not name.startswith(base + "/"):
                continue  # ``find`` on a file path answers the file itself: not under the folder
            yield _fsspec_entry(name, info)

    def stat(self, path: str) -> Entry | None:
        """One ``info``; folders and missing paths give ``None``."""
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            return None
        if info.get("type") != "file":
            return None
        return _fsspec_entry(path, info)


def _fsspec_entry(path: str, info: dict[str, Any]) -> Entry:
    # The stamp's text is part of the mirror's saved fingerprints: keep its form.
    stamp = info.get("last_modified") or info.get("created") or info.get("mtime")
    return Entry(
        path,
        int(info.get("size") or info.get("Size") or 0),
        strip_etag(info.get("etag") or info.get("ETag")),
        str(stamp) if stamp is not None else None,
        modified=as_utc(
            info.get("LastModified")
            or info.get("last_modified")
            or info.get("mtime")
            or info.get("created")
        ),
        version=info.get("version_id") or info.get("VersionId") or None,
    )


def upload_overwriting(fs: Any, path: str, blocks: Iterable[bytes], part_size: int) -> int:
    """Write ``blocks`` to ``path`` through ``fs.open("wb")``, replacing what is there."""
    total = 0
    with fs.open(path, "wb", block_size=part_size) as out:
        for block in blocks:
            out.write(block)
            total += len(block)
    return total


class MemoryBackend(FsspecBackend):
    """fsspec's in-process memory filesystem; a lock makes check-and-write atomic in the process."""

    kind = "memory"
    create_method = "in-process lock"
    atomic_create = True
    supports = Support(replace=True, hmac_links=True, signed_links="hmac")
    _lock = threading.Lock()  # the memory store is shared by the whole process

    def create(self, path: str, data: bytes, retrying: Retrying[Any]) -> None:
        """Store ``data`` if absent, holding the process-wide lock."""
        with self._lock:
            # The store is a dict of paths; fs.exists would also scan it for pseudo-folders.
            if self.fs._strip_protocol(path) in self.fs.store:  # noqa: SLF001 - fsspec helper
                raise FileExistsError(errno.EEXIST, "object exists", path)
            retrying("write", lambda: self.fs.pipe_file(path, data))

    def create_stream(
        self, path: str, reader: Reader, part_size: int, retrying: Retrying[Any]
    ) -> int:
        """Gather the stream (the object lives in memory anyway) and store it create-only."""
        blocks = []
        while block := read_full(reader, part_size):
            blocks.append(block)
        data = b"".join(blocks)
        self.create(path, data, retrying)
        return len(data)

    def replace(
        self, path: str, blocks: Iterable[bytes], part_size: int, retrying: Retrying[Any]
    ) -> int:
        """Write the object anew (in memory, so readers see the old or the new bytes)."""
        return upload_overwriting(self.fs, path, blocks, part_size)

    def probe_settings(self, root: str, notes: list[str]) -> dict[str, Any]:
        """Memory keeps no versions."""
        return {"versioning": False}


class LocalBackend(FsspecBackend):
    """Local disk: write a temporary file, fsync it, then hard-link it into place.

    ``link(2)`` fails with ``EEXIST`` if the name exists, so publication is atomic and create-only, and a
    reader never sees a partial object. On filesystems without hard links the fallback is
    ``open(path, "xb")`` (``O_EXCL``): still create-only, but a crash can leave a partial object.

    Temporary files live in ``.ctfy-tmp/`` under the root, named after the host and process. The
    first write through a backend removes those that killed writes left there (see
    `sweep_temporaries`).
    """

    kind = "local"
    create_method = "temporary file + link(2) (atomic, create-only)"
    atomic_create = True
    supports = Support(replace=True, hmac_links=True, signed_links="hmac")

    def __init__(self, fs: Any, root: str) -> None:
        super().__init__(fs)
        self.root = root
        self._swept = False

    def create(self, path: str, data: bytes, retrying: Retrying[Any]) -> None:
        """Store ``data`` create-only and durably."""
        self._publish(path, lambda out: out.write(data))

    def create_stream(
        self, path: str, reader: Reader, part_size: int, retrying: Retrying[Any]
    ) -> int:
        """Copy the stream block by block into a temporary file, then publish it."""

        def copy(out: Any) -> int:
            total = 0
            while block := reader.read(part_size):
                out.write(block)
                total += len(block)
            return total

        return self._publish(path, copy)

    def _publish(self, path: str, fill: Callable[[Any], int]) -> int:
        if os.path.lexists(path):  # cheap early refusal; the link below is what makes it atomic
            raise FileExistsError(errno.EEXIST, "object exists", path)
        tmpdir = os.path.join(self.root, RESERVED_PREFIXES[0])
        os.makedirs(tmpdir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=tmpdir, prefix=_temp_prefix())
        if not self._swept:  # once per target opened for writing
            self._swept = True
            with contextlib.suppress(OSError):  # a best effort: never fails the write
                sweep_temporaries(tmpdir, reference=os.fstat(fd).st_mtime, keep=tmp)
        try:
            with os.fdopen(fd, "wb") as out:
                written = fill(out)
                out.flush()
                os.fsync(out.fileno())
            parent = os.path.dirname(path)
            for attempt in range(3):
                _make_parents(parent)
                try:
                    os.link(tmp, path)
                    break
                except FileNotFoundError:
                    if attempt == 2:  # a concurrent delete keeps removing the emptied folder
                        raise
                except OSError as err:
                    if err.errno not in _NO_HARD_LINKS:
                        raise
                    _copy_exclusive(tmp, path)
                    break
            _fsync_dir(parent)
            return written
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def walk(self, path: str, retrying: Retrying[Any]) -> Iterator[str]:
        """Walk with ``os.walk`` (lazy), skipping the library's own top-level folders."""
        top = path.rstrip("/")
        for folder, dirs, files in os.walk(top, onerror=_raise_unless_gone):
            if folder == self.root:
                dirs[:] = [d for d in dirs if d not in RESERVED_PREFIXES]
            for name in files:
                yield f"{folder}/{name}"

    def delete(self, path: str) -> None:
        """Unlink, then remove folders left empty (as on an object store); already gone is fine."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        folder = os.path.dirname(path)
        while folder != self.root and folder.startswith(self.root + os.sep):
            try:
                os.rmdir(folder)
            except OSError:
                return  # not empty (or already gone): stop climbing
            folder = os.path.dirname(folder)

    def entries(self, path: str, retrying: Retrying[Any]) -> Iterator[Entry]:
        """Walk with ``os.walk`` in name order, one ``stat`` per file (symbolic links followed).

        Skips the library's own top-level folders and the temporary files of a `replace` in
        progress.
        """
        base = path.rstrip("/")
        if not os.path.isdir(base):
            return
        for folder, dirs, files in os.walk(base, onerror=_raise_unless_gone):
            if folder == self.root:
                dirs[:] = [d for d in dirs if d not in RESERVED_PREFIXES]
            dirs.sort()
            for name in sorted(files):
                if name.startswith(REPLACE_TEMP_PREFIX):
                    continue
                entry = self.stat(f"{folder}/{name}")
                if entry is not None:  # removed since the folder was read
                    yield entry

    def stat(self, path: str) -> Entry | None:
        """One ``stat``; folders and missing paths give ``None``."""
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        return Entry(
            path,
            st.st_size,
            None,
            str(st.st_mtime_ns),
            modified=datetime.fromtimestamp(st.st_mtime, UTC),
        )

    def replace(
        self, path: str, blocks: Iterable[bytes], part_size: int, retrying: Retrying[Any]
    ) -> int:
        """Write a temporary file next to the object, ``fsync`` it, then ``rename`` over it (atomic)."""
        folder = os.path.dirname(path)
        _make_parents(folder)
        fd, temp = tempfile.mkstemp(dir=folder, prefix=REPLACE_TEMP_PREFIX)
        total = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for block in blocks:
                    out.write(block)
                    total += len(block)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        _fsync_dir(folder)
        return total

    def probe_settings(self, root: str, notes: list[str]) -> dict[str, Any]:
        """A folder keeps no versions and locks nothing."""
        return {"versioning": False, "object_lock": False}


#: A temporary file older than this (by the temporary folder's own clock) is a killed write's.
STALE_TEMPORARY_AGE = 24 * 3600.0
_HOST = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())[:64] or "host"


def _temp_prefix() -> str:
    # Host and process in the name let a later writer on this host tell a killed write's file.
    return f"w-{_HOST}-{os.getpid()}-"


def _writer_gone(name: str) -> bool:
    """Whether ``name`` was made by a process of this host that is no longer running."""
    if os.name != "posix" or not name.startswith("w-"):
        return False
    parts = name[2:].rsplit("-", 2)
    if len(parts) != 3 or parts[0] != _HOST or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: it runs under another user
        return False
    return False


def sweep_temporaries(folder: str, *, reference: float, keep: str | None = None) -> list[str]:
    """Remove temporary files that killed writes left in a local target's ``.ctfy-tmp/``.

    A file goes when it is older than `STALE_TEMPORARY_AGE` before ``reference`` (a modification
    time on the same filesystem, so no other clock is trusted), or when its name says a process
    of this host wrote it and that process is gone. Only regular files directly in ``folder``
    are removed: links are never followed (nor removed), folders are left, and ``folder``
    itself must not be a link. A write in progress keeps its file: it is young and its process
    runs.

    Args:
        folder: the temporary folder.
        reference: the current time as the filesystem sees it (``st_mtime`` of a new file).
        keep: a path never removed (the caller's own temporary file).

    Returns:
        The names removed.
    """
    needed = (os.stat, os.unlink)
    if os.scandir not in os.supports_fd or not all(f in os.supports_dir_fd for f in needed):
        return []  # no descriptor-relative calls here: do nothing rather than race
    removed: list[str] = []
    keep_name = os.path.basename(keep) if keep else None
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
    dir_fd = os.open(folder, flags)
    try:
        with os.scandir(dir_fd) as entries:
            names = [entry.name for entry in entries]
        for name in names:
            if name == keep_name:
                continue
            try:
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            if reference - info.st_mtime > STALE_TEMPORARY_AGE or _writer_gone(name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=dir_fd)
                    removed.append(name)
    finally:
        os.close(dir_fd)
    return removed


def _make_parents(folder: str) -> None:
    """Create ``folder`` and its parents; one of them being a file is ``NotADirectoryError``.

    ``os.makedirs`` reports a file at ``folder`` itself as ``FileExistsError``, which would read as
    "the object already exists" when it is a parent of the key that is in the way.
    """
    try:
        os.makedirs(folder, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as err:
        raise NotADirectoryError(
            errno.ENOTDIR, "a parent of the object is a file, not a folder", folder
        ) from err


def _copy_exclusive(src: str, dst: str) -> None:
    with open(src, "rb") as inp, open(dst, "xb") as out:
        while block := inp.read(DEFAULT_PART_SIZE):
            out.write(block)
        out.flush()
        os.fsync(out.fileno())


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
