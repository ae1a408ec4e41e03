"""Backend operations the document mirror needs beyond `Target`'s create-only ones.

Listing with sizes and ETags (so an unchanged bucket costs listing requests only), a HEAD with the
ETag, bucket versioning, a server-side copy between buckets of the same S3 endpoint, and the one
overwriting write the mirror makes: replacing a changed object after its previous version has been
kept (by bucket versioning, or by a copy under the versions prefix).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any

import attrs

from ctfy_vault.exceptions import UnsupportedError
from ctfy_vault.storage._keys import RESERVED_PREFIXES, validate_prefix
from ctfy_vault.storage._sign import backend_kind, object_path
from ctfy_vault.storage._target import Target

_PAGE = 1000
_TEMP_PREFIX = ".ctfy-replace-"


@attrs.frozen
class Entry:
    """One stored object as a listing shows it.

    Attributes:
        key: the key relative to the target's root.
        size: bytes.
        etag: the backend's entity tag (S3: MD5 of single-part objects), without quotes.
        stamp: another change marker where there is no ETag (local: mtime in nanoseconds).
    """

    key: str
    size: int
    etag: str | None = None
    stamp: str | None = None


def _strip(etag: object) -> str | None:
    return str(etag).strip('"') if etag else None


def list_entries(target: Target, prefix: str = "") -> Iterator[Entry]:
    """Yield every object under ``prefix`` with its size and ETag, lazily, in no set order.

    S3: ``ListObjectsV2`` pages of 1,000 (one request per page, retried by page); folder
    placeholders (keys ending in ``/``) are not objects and are skipped. Local disk: one ``stat`` per
    file. Other backends: fsspec ``find`` with details. The library's own folders are
    left out, as in `Target.list`.
    """
    validate_prefix(prefix)
    base = target.root.rstrip("/") + ("/" + prefix if prefix else "")
    kind = backend_kind(target)
    reserved = tuple(name + "/" for name in RESERVED_PREFIXES)
    entries = (
        _s3_entries(target, base)
        if kind == "s3"
        else _local_entries(target, base)
        if kind == "local"
        else _fsspec_entries(target, base)
    )
    for entry in entries:
        if not entry.key.startswith(reserved):
            yield entry


def _relative(target: Target, path: str) -> str:
    root = target.root.rstrip("/") + "/"
    return path[len(root) :] if path.startswith(root) else path


def _s3_entries(target: Target, base: str) -> Iterator[Entry]:
    bucket, _, folder = base.partition("/")
    prefix = folder + "/" if folder else ""
    token: str | None = None
    run = target._retrying(None)  # noqa: SLF001 - storage-internal
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": _PAGE}
        if token:
            kwargs["ContinuationToken"] = token
        page: dict[str, Any] = run("list", partial(target.fs.call_s3, "list_objects_v2", **kwargs))
        for item in page.get("Contents", []):
            if item["Key"].endswith("/"):
                continue  # a folder placeholder (web consoles make them), not a document
            yield Entry(
                _relative(target, f"{bucket}/{item['Key']}"),
                int(item["Size"]),
                _strip(item.get("ETag")),
            )
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return


def _local_entries(target: Target, base: str) -> Iterator[Entry]:
    if not os.path.isdir(base):
        return
    for folder, dirs, files in os.walk(base):
        dirs.sort()
        for name in sorted(files):
            if name.startswith(_TEMP_PREFIX):
                continue
            path = os.path.join(folder, name)
            try:
                info = os.stat(path)
            except FileNotFoundError:
                continue
            key = _relative(target, path.replace(os.sep, "/"))
            yield Entry(key, info.st_size, None, str(info.st_mtime_ns))


def _fsspec_entries(target: Target, base: str) -> Iterator[Entry]:
    found = target._retrying(None)(  # noqa: SLF001 - storage-internal
        "list", lambda: target.fs.find(base, detail=True)
    )
    for path, info in sorted(found.items()):
        if info.get("type") == "directory":
            continue
        stamp = info.get("last_modified") or info.get("created") or info.get("mtime")
        yield Entry(
            _relative(target, path),
            int(info.get("size") or 0),
            _strip(info.get("etag") or info.get("ETag")),
            str(stamp) if stamp is not None else None,
        )


def stat(target: Target, key: str) -> Entry | None:
    """Return the object's listing entry (one HEAD), or ``None`` if there is none."""
    path = target._path(key)  # noqa: SLF001 - validates the key
    kind = backend_kind(target)
    run = target._retrying(key)  # noqa: SLF001

    def head() -> Entry | None:
        if kind == "s3":
            bucket, _, name = path.partition("/")
            try:
                info = target.fs.call_s3("head_object", Bucket=bucket, Key=name)
            except FileNotFoundError:
                return None
            return Entry(key, int(info["ContentLength"]), _strip(info.get("ETag")))
        if kind == "local":
            try:
                st = os.stat(path)
            except FileNotFoundError:
                return None
            return Entry(key, st.st_size, None, str(st.st_mtime_ns))
        try:
            info = target.fs.info(path)
        except FileNotFoundError:
            return None
        return Entry(key, int(info.get("size") or 0), _strip(info.get("etag")))

    return run("stat", head)


def versioning_enabled(target: Target) -> bool:
    """Tell whether the target keeps previous versions of overwritten objects (S3 versioning)."""
    if backend_kind(target) != "s3":
        return False
    bucket = target.root.split("/", 1)[0]
    answer = target._retrying(None)(  # noqa: SLF001
        "versioning", lambda: target.fs.call_s3("get_bucket_versioning", Bucket=bucket)
    )
    return bool(answer.get("Status") == "Enabled")


def same_s3_service(source: Target, replica: Target) -> bool:
    """Tell whether both targets are S3 buckets on one endpoint with the same credentials."""
    if backend_kind(source) != "s3" or backend_kind(replica) != "s3":
        return False
    a, b = source._s3, replica._s3  # noqa: SLF001
    return bool(
        a is not None
        and b is not None
        and a.endpoint_url == b.endpoint_url
        and getattr(source.fs, "key", None) == getattr(replica.fs, "key", None)
        and getattr(source.fs, "secret", None) == getattr(replica.fs, "secret", None)
    )


def server_side_copy(source: Target, replica: Target, key: str) -> str | None:
    """Copy one object within one S3 service without moving its bytes through this process.

    For objects up to 5 GiB (the limit of a single ``CopyObject``); the caller streams larger ones.

    Returns:
        The ETag of the new copy, as the service reported it.
    """
    src_bucket, src_name = object_path(source, key)
    dst_bucket, dst_name = object_path(replica, key)
    run = replica._retrying(key)  # noqa: SLF001
    answer = run(
        "copy",
        lambda: replica.fs.call_s3(
            "copy_object",
            Bucket=dst_bucket,
            Key=dst_name,
            CopySource={"Bucket": src_bucket, "Key": src_name},
        ),
    )
    return _strip(answer.get("CopyObjectResult", {}).get("ETag"))


def read_object(target: Target, key: str) -> bytes:
    """Return the whole object with one request where the backend allows it.

    On S3 a plain ``GET`` (no ``HEAD`` first to plan a ranged, concurrent download: the mirror reads
    objects that fit in memory and already knows their size). Elsewhere `Target.read`.
    """
    if backend_kind(target) != "s3":
        return target.read(key)
    path = target._path(key)  # noqa: SLF001
    data = target._retrying(key)(  # noqa: SLF001
        "read", lambda: target.fs.cat_file(path, max_concurrency=1)
    )
    return bytes(data)


def replace(target: Target, key: str, blocks: Iterable[bytes]) -> int:
    """Overwrite ``key`` with ``blocks``; the mirror calls this only once the old bytes are kept.

    Local disk: a temporary file in the same folder, ``fsync``, then ``rename`` over the old one
    (atomic). S3 and Azure: a plain (unconditional) upload, multipart when large. Memory: direct.

    Returns:
        The number of bytes written.
    """
    path = target._path(key)  # noqa: SLF001
    kind = backend_kind(target)
    if kind == "local":
        return _replace_local(path, blocks)
    if kind not in ("s3", "azure", "memory"):
        raise UnsupportedError(f"{target.name}: the mirror cannot replace objects on this backend")
    total = 0

    def upload() -> int:
        nonlocal total
        total = 0
        with target.fs.open(path, "wb", block_size=target.part_size) as out:
            for block in blocks:
                out.write(block)
                total += len(block)
        return total

    return int(target._once("replace", key, upload))  # noqa: SLF001


def _replace_local(path: str, blocks: Iterable[bytes]) -> int:
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=folder, prefix=_TEMP_PREFIX)
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
    return total
