"""Packs in a cheaper storage class, metadata in the standard one (moto's S3).

A vault whose S3 target names ``data_storage_class`` writes every pack (and, in format 1,
every chunk object) in that class; the config, the key slots, the index objects and the
manifests stay standard. A class that cannot be read at once, or one given to a folder, is
refused naming the problem before anything is written.
"""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ctfy_vault.crypto import RawKey
from ctfy_vault.exceptions import InvalidURLError
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault
from ctfy_vault.writer import ChunkerParams, StreamSource
from tests.support.servers import S3Endpoint, make_bucket, s3_client, s3_target

KEY = RawKey(bytes(range(32)))
CHUNKS = ChunkerParams(min_size=1024, avg_size=4096, max_size=16384)
NOW = datetime(2026, 12, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize("repository_format", [1, 2])
def test_the_data_goes_to_its_class_and_the_metadata_stays_standard(
    moto_s3: S3Endpoint, repository_format: int
) -> None:
    """Every object's class, as the server reports it, after a backup; the backup restores."""
    bucket = make_bucket(moto_s3, f"class-{uuid.uuid4().hex[:12]}")
    target = s3_target(moto_s3, bucket, "repo", data_storage_class="STANDARD_IA")
    if repository_format == 2:
        vault = Vault.init([target], key=KEY, now=NOW, chunker=CHUNKS, pack_size=1 << 20)
    else:
        vault = Vault.init([target], key=KEY, now=NOW, chunker=CHUNKS, format=1)
    data = bytes(range(256)) * 400
    info = vault.backup(
        StreamSource(name="d", stream=io.BytesIO(data)), lineage="db", host="h", now=NOW
    )
    client = s3_client(moto_s3)
    classes: dict[str, str] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="repo/"):
        for item in page.get("Contents", []):
            head = client.head_object(Bucket=bucket, Key=item["Key"])
            classes[item["Key"].removeprefix("repo/")] = head.get("StorageClass", "STANDARD")
    data_prefix = "packs/" if repository_format == 2 else "objects/"
    bulk = {key: value for key, value in classes.items() if key.startswith(data_prefix)}
    rest = {key: value for key, value in classes.items() if not key.startswith(data_prefix)}
    assert bulk
    assert set(bulk.values()) == {"STANDARD_IA"}
    assert {"config", f"snapshots/{info.name}"} <= rest.keys()
    assert set(rest.values()) == {"STANDARD"}
    assert vault.open_file(info.snapshot_id, "d").read() == data


@pytest.mark.parametrize(
    ("storage_class", "problem"),
    [
        ("GLACIER", "restore request"),
        ("DEEP_ARCHIVE", "restore request"),
        ("CHEAP", "reads at once"),
    ],
)
def test_a_class_that_does_not_read_at_once_is_refused(storage_class: str, problem: str) -> None:
    """Archive classes would make every restore wait on a restore request: refused, named.

    Refused while the target is built, before any request.
    """
    with pytest.raises(InvalidURLError, match=problem) as caught:
        Target.from_url(
            "s3://any-bucket/repo",
            endpoint_url="http://127.0.0.1:9",
            data_storage_class=storage_class,
        )
    assert repr(storage_class) in str(caught.value)


def test_a_folder_takes_no_storage_class(tmp_path: Path) -> None:
    """Storage classes are S3's: a folder target with one is refused."""
    with pytest.raises(InvalidURLError, match="data_storage_class is for S3"):
        Target.from_url(str(tmp_path), data_storage_class="STANDARD_IA")
