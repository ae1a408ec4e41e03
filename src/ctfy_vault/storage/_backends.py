"""Backend-specific ways to do what `Target` promises, chiefly atomic create-only writes.

Each backend gets the filesystem and full paths (root already joined) and raises whatever its library
raises; `Target` translates and retries. The only place that knows backend quirks besides `_url`.
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
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

from ctfy_vault.storage._keys import RESERVED_PREFIXES

T = TypeVar("T")

#: Wraps one backend request with retries and translation (supplied by `Target`).
Retrying = Callable[[str, Callable[[], T]], T]

#: S3 multipart parts must be >= 5 MiB (but the last); 8 MiB keeps memory low and requests few.
DEFAULT_PART_SIZE = 8 * 2**20
#: S3 refuses more than 10,000 parts; grow the part size well before that.
_PARTS_PER_SIZE_STEP = 1000

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


class Backend(Protocol):
    """What `Target` needs from a storage backend."""

    kind: str
    create_method: str
    atomic_create: bool

    def create(self, path: str, data: bytes, retrying: Retrying[Any]) -> None:
        """Store ``data`` at ``path`` only if nothing is there (raise ``FileExistsError`` if so)."""

    def create_stream(
        self, path: str, reader: Reader, part_size: int, retrying: Retrying[Any]
    ) -> int:
        """Store a stream create-only with memory bounded by ``part_size``; return the byte count."""

    def head(self, path: str) -> int | None:
        """Return the object's size, or ``None`` if there is none."""

    def walk(self, path: str, retrying: Retrying[Any]) -> Iterator[str]:
        """Yield the full path of every object under ``path`` (recursively, lazily).

        ``retrying`` wraps each request that can be repeated on its own (a page of a listing).
        """

    def delete(self, path: str) -> None:
        """Remove one object; a missing object is not an error."""


class FsspecBackend:
    """Any other fsspec filesystem: check, then write (not atomic; `Target.probe` says so)."""

    kind = "fsspec"
    create_method = "check-then-write (not atomic)"
    atomic_create = False
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

    def head(self, path: str) -> int | None:
        """Return the size from ``info``, or ``None`` when missing or a folder."""
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            return None
        if info.get("type") != "file":
            return None
        return int(info["size"])

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


class MemoryBackend(FsspecBackend):
    """fsspec's in-process memory filesystem; a lock makes check-and-write atomic in the process."""

    kind = "memory"
    create_method = "in-process lock"
    atomic_create = True
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

    def head(self, path: str) -> int | None:
        """Return the size from ``stat``; folders and missing paths give ``None``."""
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return st.st_size if os.path.isfile(path) else None

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


class S3Backend(FsspecBackend):
    """S3 and S3-compatibles through s3fs: ``If-None-Match: *`` on PUT and on multipart completion."""

    kind = "s3"
    create_method = "If-None-Match: * (conditional PUT / CompleteMultipartUpload)"
    atomic_create = True

    def create(self, path: str, data: bytes, retrying: Retrying[Any]) -> None:
        """One conditional PUT (s3fs switches to multipart past 100 MiB, still conditional)."""
        retrying("write", lambda: self.fs.pipe_file(path, data, mode="create"))

    def create_stream(
        self, path: str, reader: Reader, part_size: int, retrying: Retrying[Any]
    ) -> int:
        """Multipart upload one part at a time, completed with ``If-None-Match: *``.

        Each request is retried on its own (the part is in memory), so a transient failure does not
        restart the stream. On any failure the upload is aborted so no parts linger.
        """
        bucket, key, _ = self.fs.split_path(path)
        first = read_full(reader, part_size)
        if len(first) < part_size:
            self.create(path, first, retrying)
            return len(first)
        self._refuse_if_present(path, retrying)  # do not upload a whole stream only to be refused
        call = self.fs.call_s3
        upload = retrying(
            "start multipart upload",
            lambda: call("create_multipart_upload", Bucket=bucket, Key=key),
        )
        upload_id = upload["UploadId"]
        parts: list[dict[str, Any]] = []
        total = 0
        try:
            block = first
            while block:
                number = len(parts) + 1
                out = retrying(
                    f"upload part {number}",
                    lambda number=number, body=block: call(  # type: ignore[misc]
                        "upload_part",
                        Bucket=bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=body,
                    ),
                )
                parts.append({"PartNumber": number, "ETag": out["ETag"]})
                total += len(block)
                size = part_size * (1 + number // _PARTS_PER_SIZE_STEP)
                block = read_full(reader, size)
            # Some S3-compatibles (Ceph RGW 16) ignore If-None-Match on completion; looking again
            # right before it narrows the window there, and costs one HEAD per large object.
            self._refuse_if_present(path, retrying)
            retrying(
                "complete multipart upload",
                lambda: call(
                    "complete_multipart_upload",
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                    IfNoneMatch="*",
                ),
            )
        except BaseException:
            with contextlib.suppress(Exception):
                call("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id)
            raise
        return total

    def _refuse_if_present(self, path: str, retrying: Retrying[Any]) -> None:
        if retrying("check", lambda: self.head(path)) is not None:
            raise FileExistsError(errno.EEXIST, "object exists", path)

    def conditional_multipart(self, path: str, retrying: Retrying[Any]) -> bool:
        """Tell whether the endpoint refuses a conditional multipart completion over ``path``.

        ``path`` must hold an object already. A one-part upload may be of any size, so this costs
        three small requests (and overwrites ``path`` where the condition is ignored).
        """
        bucket, key, _ = self.fs.split_path(path)
        call = self.fs.call_s3
        upload = retrying(
            "probe multipart", lambda: call("create_multipart_upload", Bucket=bucket, Key=key)
        )
        upload_id = upload["UploadId"]
        try:
            part = retrying(
                "probe multipart",
                lambda: call(
                    "upload_part",
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=1,
                    Body=b"x",
                ),
            )
            retrying(
                "probe multipart",
                lambda: call(
                    "complete_multipart_upload",
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
                    IfNoneMatch="*",
                ),
            )
        except FileExistsError:  # includes ObjectExistsError from a translating ``retrying``
            return True
        finally:
            with contextlib.suppress(Exception):
                call("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id)
        return False

    def head(self, path: str) -> int | None:
        """One HEAD request (s3fs's ``info`` may add a listing to look for a folder)."""
        bucket, key, _ = self.fs.split_path(path)
        try:
            out = self.fs.call_s3("head_object", Bucket=bucket, Key=key)
        except FileNotFoundError:
            return None
        return int(out["ContentLength"])

    def walk(self, path: str, retrying: Retrying[Any]) -> Iterator[str]:
        """Page through ``ListObjectsV2`` without a delimiter: one request per 1,000 keys."""
        bucket, prefix, _ = self.fs.split_path(path)
        prefix = f"{prefix.rstrip('/')}/" if prefix else ""
        token: str | None = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = retrying(
                "list",
                lambda extra=extra: self.fs.call_s3(  # type: ignore[misc]
                    "list_objects_v2", Bucket=bucket, Prefix=prefix, **extra
                ),
            )
            for item in page.get("Contents", []):
                yield f"{bucket}/{item['Key']}"
            if not page.get("IsTruncated"):
                return
            token = page["NextContinuationToken"]

    def delete(self, path: str) -> None:
        """``DeleteObject`` (S3 answers success for a missing key too)."""
        bucket, key, _ = self.fs.split_path(path)
        self.fs.call_s3("delete_object", Bucket=bucket, Key=key)


class AzureBackend(FsspecBackend):
    """Azure Blob through adlfs: ``overwrite=False`` uploads and ``If-None-Match: *`` block commits."""

    kind = "azure"
    create_method = "overwrite=False / If-None-Match: * (block list commit)"
    atomic_create = True
    _write_mode = "xb"

    def create(self, path: str, data: bytes, retrying: Retrying[Any]) -> None:
        """One ``upload_blob(overwrite=False)``."""
        retrying("write", lambda: self.fs.pipe_file(path, data, mode="create"))
