"""S3 and S3-compatibles (Spaces, Ceph RGW, MinIO) through s3fs and botocore.

Create-only writes with ``If-None-Match: *``, paged listings, server-side copy, SigV4 query signing,
Object Lock retention and the bucket settings the probe reads. Nothing here logs or raises a URL: a
signed URL is a secret until it expires.
"""

from __future__ import annotations

import contextlib
import errno
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

from ctfy_vault.exceptions import UnsupportedError
from ctfy_vault.storage._anonymous import unsigned_urls
from ctfy_vault.storage._backends import (
    PARTS_PER_SIZE_STEP,
    Backend,
    Entry,
    FsspecBackend,
    LinkRequest,
    LockMode,
    Reader,
    Retrying,
    Support,
    as_utc,
    read_full,
    strip_etag,
    upload_overwriting,
)
from ctfy_vault.storage._errors import describe
from ctfy_vault.storage._keys import MAX_KEY_BYTES
from ctfy_vault.storage._url import S3Settings

_S3_METHODS = {"GET": "get_object", "HEAD": "head_object"}
_PAGE = 1000


class S3Backend(FsspecBackend):
    """S3 and S3-compatibles through s3fs: ``If-None-Match: *`` on PUT and on multipart completion."""

    kind = "s3"
    create_method = "If-None-Match: * (conditional PUT / CompleteMultipartUpload)"
    atomic_create = True
    supports = Support(
        replace=True,
        server_side_copy=True,
        presign=True,
        anonymous_probe=True,
        retain_until=True,
        versioning=True,
        etag_is_md5=True,
        signed_links="sigv4",
        key_byte_limit=MAX_KEY_BYTES,
    )

    def __init__(self, fs: Any, settings: S3Settings | None = None) -> None:
        super().__init__(fs)
        self.settings = settings
        self._signer: Any = None
        self._signer_lock = threading.Lock()
        self._data_class: str | None = None
        self._data_prefixes: tuple[str, ...] = ()

    def store_data_in(self, storage_class: str, prefixes: tuple[str, ...]) -> None:
        """Write objects under ``prefixes`` (full paths) in ``storage_class``, the rest standard."""
        self._data_class = storage_class
        self._data_prefixes = prefixes

    def _class_of(self, path: str) -> dict[str, str]:
        if self._data_class is not None and path.startswith(self._data_prefixes):
            return {"StorageClass": self._data_class}
        return {}

    def create(self, path: str, data: bytes, retrying: Retrying[Any]) -> None:
        """One conditional PUT (s3fs switches to multipart past 100 MiB, still conditional)."""
        extra = self._class_of(path)
        retrying("write", lambda: self.fs.pipe_file(path, data, mode="create", **extra))

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
            lambda: call("create_multipart_upload", Bucket=bucket, Key=key, **self._class_of(path)),
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
                size = part_size * (1 + number // PARTS_PER_SIZE_STEP)
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

    def probe_multipart(self, path: str, retrying: Retrying[Any]) -> bool | None:
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

    def read(self, path: str) -> bytes:
        """One plain ``GET``: no ``HEAD`` first to plan a ranged, concurrent download."""
        return bytes(self.fs.cat_file(path, max_concurrency=1))

    def entries(self, path: str, retrying: Retrying[Any]) -> Iterator[Entry]:
        """Page through ``ListObjectsV2`` (1,000 keys a request, each page retried on its own).

        Folder placeholders (keys ending in ``/``, which web consoles make) are not objects.
        """
        bucket, _, folder = path.rstrip("/").partition("/")
        prefix = folder + "/" if folder else ""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": _PAGE}
            if token:
                kwargs["ContinuationToken"] = token
            page: dict[str, Any] = retrying(
                "list", partial(self.fs.call_s3, "list_objects_v2", **kwargs)
            )
            for item in page.get("Contents", []):
                if item["Key"].endswith("/"):
                    continue
                yield Entry(
                    f"{bucket}/{item['Key']}",
                    int(item["Size"]),
                    strip_etag(item.get("ETag")),
                    modified=as_utc(item.get("LastModified")),
                )
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    def stat(self, path: str) -> Entry | None:
        """One ``HeadObject``."""
        bucket, _, name = path.partition("/")
        try:
            info = self.fs.call_s3("head_object", Bucket=bucket, Key=name)
        except FileNotFoundError:
            return None
        version = info.get("VersionId")
        return Entry(
            path,
            int(info["ContentLength"]),
            strip_etag(info.get("ETag")),
            modified=as_utc(info.get("LastModified")),
            version=str(version) if version and version != "null" else None,
        )

    def replace(
        self, path: str, blocks: Iterable[bytes], part_size: int, retrying: Retrying[Any]
    ) -> int:
        """A plain (unconditional) upload, multipart when large: atomic for readers."""
        return upload_overwriting(self.fs, path, blocks, part_size)

    def can_copy_from(self, other: Backend) -> bool:
        """Both on one endpoint with the same credentials (so one request can read and write)."""
        if not isinstance(other, S3Backend):
            return False
        a, b = self.settings, other.settings
        return bool(
            a is not None
            and b is not None
            and a.endpoint_url == b.endpoint_url
            and getattr(self.fs, "key", None) == getattr(other.fs, "key", None)
            and getattr(self.fs, "secret", None) == getattr(other.fs, "secret", None)
        )

    def copy(self, other: Backend, source: str, path: str, retrying: Retrying[Any]) -> str | None:
        """One ``CopyObject`` (objects up to 5 GiB, the limit of a single copy)."""
        if not self.can_copy_from(other):
            raise UnsupportedError(
                "server-side copy needs both buckets on one S3 endpoint with the same credentials"
            )
        src_bucket, _, src_name = source.partition("/")
        dst_bucket, _, dst_name = path.partition("/")
        answer = retrying(
            "copy",
            lambda: self.fs.call_s3(
                "copy_object",
                Bucket=dst_bucket,
                Key=dst_name,
                CopySource={"Bucket": src_bucket, "Key": src_name},
            ),
        )
        return strip_etag(answer.get("CopyObjectResult", {}).get("ETag"))

    def presign(self, path: str, request: LinkRequest) -> str:
        """A SigV4 query signature, made locally (no request), in the endpoint's addressing style."""
        if request.start is not None:
            raise UnsupportedError(
                "S3 links are signed with the system clock (X-Amz-Date): a start cannot be given"
            )
        if request.client_ip is not None:
            raise UnsupportedError(
                "S3 signed links cannot be bound to a client address; use a bucket policy"
            )
        bucket, _, name = path.partition("/")
        params: dict[str, Any] = {"Bucket": bucket, "Key": name}
        method = request.method
        if request.content_disposition is not None and method == "GET":
            params["ResponseContentDisposition"] = request.content_disposition
        if request.content_type is not None and method == "GET":
            params["ResponseContentType"] = request.content_type
        url: str = self._signing_client().generate_presigned_url(
            _S3_METHODS[method], Params=params, ExpiresIn=request.expires_in, HttpMethod=method
        )
        return url

    def _signing_client(self) -> Any:
        # Building a client costs milliseconds, signing with a warm one microseconds, and links
        # are signed far more often than targets are built: one client per backend.
        client = self._signer  # lock-free fast path: never sees a half-built client
        if client is not None:
            return client
        with self._signer_lock:
            if self._signer is not None:
                return self._signer
            # botocore, not boto3: s3fs's aiobotocore pins botocore exactly, so botocore is always
            # installed and matches; boto3 would be one more pin to keep in step with it.
            import botocore.session  # noqa: PLC0415 - keeps ``import ctfy_vault`` light
            from botocore.config import Config  # noqa: PLC0415

            fs, settings = self.fs, self.settings
            style = settings.addressing_style if settings else "auto"
            region = (settings.region if settings else None) or _fs_region(fs) or "us-east-1"
            # SigV4 always: SigV2 is deprecated, and its links cannot carry a region-bound signature.
            self._signer = botocore.session.get_session().create_client(
                "s3",
                region_name=region,
                endpoint_url=settings.endpoint_url if settings else None,
                aws_access_key_id=getattr(fs, "key", None),
                aws_secret_access_key=getattr(fs, "secret", None),
                aws_session_token=getattr(fs, "token", None),
                config=Config(signature_version="s3v4", s3={"addressing_style": style}),
            )
            return self._signer

    def anonymous_urls(self, path: str) -> tuple[str, str]:
        """The object's address from a link with the signature stripped; ``ListObjectsV2``."""
        signed = self.presign(path, LinkRequest(expires_in=60))
        return unsigned_urls(
            signed, path.partition("/")[2], listing_query="list-type=2", trailing_slash=True
        )

    def retain_until(self, path: str, until: datetime, mode: LockMode) -> None:
        """One ``PutObjectRetention`` on the object's current version."""
        bucket, _, name = path.partition("/")
        retention = {"Mode": mode, "RetainUntilDate": until.astimezone(UTC)}
        self.fs.call_s3("put_object_retention", Bucket=bucket, Key=name, Retention=retention)

    def retention(self, path: str) -> tuple[LockMode, datetime] | None:
        """One ``HeadObject``: the current version's Object Lock mode and retain-until date."""
        bucket, _, name = path.partition("/")
        head = self.fs.call_s3("head_object", Bucket=bucket, Key=name)
        mode = head.get("ObjectLockMode")
        until = head.get("ObjectLockRetainUntilDate")
        if mode not in ("COMPLIANCE", "GOVERNANCE") or not isinstance(until, datetime):
            return None
        if until.utcoffset() is None:
            until = until.replace(tzinfo=UTC)
        return mode, until.astimezone(UTC)

    def undo_lock(self, path: str, shorter: datetime) -> tuple[bool, bool]:
        """``PutObjectRetention`` to an earlier date, then ``DeleteObject`` of the version."""
        bucket, _, name = path.partition("/")
        head = self.fs.call_s3("head_object", Bucket=bucket, Key=name)
        version = head.get("VersionId")
        versioned = {"VersionId": version} if version else {}
        retention = {"Mode": head.get("ObjectLockMode"), "RetainUntilDate": shorter.astimezone(UTC)}
        outcomes: list[bool] = []
        for call, kwargs in (
            ("put_object_retention", {"Retention": retention}),
            ("delete_object", {}),
        ):
            try:
                self.fs.call_s3(
                    call,
                    Bucket=bucket,
                    Key=name,
                    BypassGovernanceRetention=True,
                    **versioned,
                    **kwargs,
                )
                outcomes.append(True)
            except Exception:  # noqa: BLE001 - a refusal is the answer sought
                outcomes.append(False)
        return outcomes[0], outcomes[1]

    def versioning(self, root: str, retrying: Retrying[Any]) -> bool:
        """One ``GetBucketVersioning``: ``Enabled`` (not ``Suspended``) keeps versions."""
        bucket = root.split("/", 1)[0]
        answer = retrying(
            "versioning", lambda: self.fs.call_s3("get_bucket_versioning", Bucket=bucket)
        )
        return bool(answer.get("Status") == "Enabled")

    def probe_settings(self, root: str, notes: list[str]) -> dict[str, Any]:
        """Bucket versioning and Object Lock, plus the settings the target was built with."""
        settings = self.settings
        out: dict[str, Any] = {
            "endpoint": settings.endpoint_url if settings else None,
            "addressing_style": settings.addressing_style if settings else None,
            "checksum_mode": settings.checksum_mode if settings else None,
        }
        bucket = root.split("/", 1)[0]
        call = self.fs.call_s3
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


def _fs_region(fs: Any) -> str | None:
    kwargs = getattr(fs, "client_kwargs", None) or {}
    region = kwargs.get("region_name")
    return str(region) if region else None


def _error_code(err: BaseException) -> str:
    current: BaseException | None = err
    while current is not None:
        response = getattr(current, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code", ""))
        current = current.__cause__ or current.__context__
    return ""
