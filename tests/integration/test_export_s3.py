"""Tenant exports on S3 (moto): multipart streaming, the presigned link, unsafe keys, failures."""

from __future__ import annotations

import hashlib
import io
import json
import os
import urllib.request
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ctfy_vault.exceptions import InvalidObjectKeyError, ObjectNotFoundError, StorageError
from ctfy_vault.export import export, history
from ctfy_vault.storage import Target
from tests.support.servers import S3Endpoint, make_bucket, s3_client, s3_target

BIG = os.urandom(10 * 2**20 + 3)  # more than one 8 MiB part: a multipart upload
FILES = {"a/contract.pdf": b"%PDF 1", "Ærø/ñandú 文件.txt": "héllo".encode()}


@pytest.fixture
def buckets(moto_s3: S3Endpoint) -> tuple[Target, Target, Any, str]:
    """A documents bucket holding tenant ``acme`` and an empty exports bucket."""
    docs_bucket = make_bucket(moto_s3, f"docs-{uuid.uuid4().hex[:10]}")
    out_bucket = make_bucket(moto_s3, f"out-{uuid.uuid4().hex[:10]}")
    client = s3_client(moto_s3)
    for name, data in FILES.items():
        client.put_object(Bucket=docs_bucket, Key=f"docs/acme/{name}", Body=data)
    return (
        s3_target(moto_s3, docs_bucket, "docs"),
        s3_target(moto_s3, out_bucket),
        client,
        out_bucket,
    )


def _add_big(docs: Target, client: Any) -> None:
    client.put_object(Bucket=docs.root.split("/")[0], Key="docs/acme/big.bin", Body=BIG)


def _unpacked(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {i.filename.split("/", 1)[1]: archive.read(i) for i in archive.infolist()}


def test_export_streams_into_a_bucket_and_the_link_downloads_it(
    buckets: tuple[Target, Target, Any, str],
) -> None:
    """A multipart-sized export unpacks to the source's bytes; the signed link serves it."""
    docs, out, client, _ = buckets
    _add_big(docs, client)
    summary = export(docs, out, tenant="acme", requested_by="ops")
    assert summary.archive_size > 8 * 2**20
    stored = out.read(summary.key)
    assert hashlib.sha256(stored).hexdigest() == summary.sha256
    files = _unpacked(stored)
    for name, data in {**FILES, "big.bin": BIG}.items():
        assert files[f"documents/{name}"] == data
    assert summary.link is not None
    assert summary.link.scheme == "sigv4"
    assert summary.link.expires_at - datetime.now(UTC) <= timedelta(hours=1)
    with urllib.request.urlopen(summary.link.url, timeout=30) as response:  # noqa: S310 - loopback
        assert response.read() == stored
    (entry,) = history(out, "acme")
    assert (entry.sha256, entry.size) == (summary.sha256, summary.archive_size)


def test_modified_times_come_from_the_bucket(buckets: tuple[Target, Target, Any, str]) -> None:
    """The inventory carries S3's LastModified for each document."""
    docs, out, _, _ = buckets
    summary = export(docs, out, tenant="acme")
    inventory = json.loads(_unpacked(out.read(summary.key))["inventory.json"])
    for row in inventory["files"]:
        modified = datetime.fromisoformat(row["modified"].replace("Z", "+00:00"))
        assert abs(modified - datetime.now(UTC)) < timedelta(minutes=10)


@pytest.mark.parametrize(
    "key", ["docs/acme/../escape.txt", "docs/acme/a\\b.txt", "docs/acme/x\x01y", "docs/acme//z"]
)
def test_traversal_keys_in_a_bucket_are_refused(
    buckets: tuple[Target, Target, Any, str], key: str
) -> None:
    """Keys S3 accepts but a file system must not (.., backslash, control, //) stop the export."""
    docs, out, client, _ = buckets
    client.put_object(Bucket=docs.root.split("/")[0], Key=key, Body=b"evil")
    with pytest.raises(InvalidObjectKeyError):
        export(docs, out, tenant="acme")
    assert list(out.list()) == []
    summary = export(docs, out, tenant="acme", skip_unsafe=True)
    files = _unpacked(out.read(summary.key))
    assert b"evil" not in files.values()
    assert len(summary.skipped) == 1


def test_a_failure_mid_upload_leaves_no_object_and_no_parts(
    buckets: tuple[Target, Target, Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source failure after parts were uploaded aborts the upload: nothing visible remains."""
    docs, out, client, out_bucket = buckets
    _add_big(docs, client)
    real = Target.read_range

    def failing(self: Target, key: str, start: int, end: int) -> bytes:
        if key.endswith("big.bin") and start >= 9 * 2**20:
            raise StorageError("source read failed", target=self.name, key=key)
        return real(self, key, start, end)

    monkeypatch.setattr(Target, "read_range", failing)
    with pytest.raises(StorageError, match="source read failed"):
        export(docs, out, tenant="acme")
    assert list(out.list()) == []
    assert client.list_multipart_uploads(Bucket=out_bucket).get("Uploads", []) == []
    assert history(out, "acme") == ()


def test_a_tenant_without_objects_is_missing(buckets: tuple[Target, Target, Any, str]) -> None:
    """No key under the tenant's prefix in the bucket: a clear error, nothing written."""
    docs, out, _, _ = buckets
    with pytest.raises(ObjectNotFoundError, match="tenant 'ghost' not found"):
        export(docs, out, tenant="ghost")
    assert list(out.list()) == []
    assert export(docs, out, tenant="ghost", allow_empty=True).files == 0
