"""The writer and heal against real S3 servers: two buckets plus local disk, on moto and Ceph RGW."""

from __future__ import annotations

import io
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from ctfy_vault.storage import Target
from ctfy_vault.writer import ChunkerParams, StreamSource, Writer, heal
from tests.support.servers import S3Endpoint, make_bucket, s3_client, s3_target
from tests.support.writer_strategies import FAST_RETRY, NOW, contents, manifests, restore, sealer

#: Chunks of ~256 KiB: several per test, and some above the targets' streaming part size.
MEDIUM = ChunkerParams(min_size=64 * 1024, avg_size=256 * 1024, max_size=1024 * 1024)
DATA = random.Random(7).randbytes(3 * 1024 * 1024)  # noqa: S311 - reproducible test data


def _s3_target(endpoint: S3Endpoint, bucket: str) -> Target:
    target: Target = s3_target(endpoint, bucket, "repo", retry=FAST_RETRY)
    return target


class WriterOnS3:
    """Behaviour every S3 server must show; subclasses provide the endpoint."""

    @pytest.fixture
    def endpoint(self) -> S3Endpoint:
        """The server under test."""
        raise NotImplementedError

    @pytest.fixture
    def targets(self, endpoint: S3Endpoint, tmp_path: Path) -> list[Target]:
        """Two fresh buckets on the server plus one local folder."""
        buckets = [make_bucket(endpoint, f"writer-{uuid.uuid4().hex[:16]}") for _ in range(2)]
        return [
            *(_s3_target(endpoint, bucket) for bucket in buckets),
            Target.from_url(str(tmp_path / "local"), retry=FAST_RETRY),
        ]

    def _backup(self, writer: Writer, data: bytes = DATA) -> None:
        writer.backup(
            [StreamSource(name="db.sql", stream=io.BytesIO(data))], lineage="db", host="h", now=NOW
        )

    def test_backup_is_identical_on_buckets_and_disk(self, targets: list[Target]) -> None:
        """Both buckets and the local folder hold the same keys with the same bytes."""
        self._backup(Writer(targets, sealer(), chunker=MEDIUM))
        stored = [contents(target) for target in targets]
        assert stored[0] == stored[1] == stored[2]
        (manifest,) = manifests(targets[0], sealer())
        assert restore(targets[1], sealer(), manifest, "db.sql") == DATA

    def test_second_backup_uploads_no_chunk(self, targets: list[Target]) -> None:
        """Unchanged data is not re-sent to any bucket; only a manifest is added."""
        writer = Writer(targets, sealer(), chunker=MEDIUM)
        self._backup(writer)
        result = writer.backup(
            [StreamSource(name="db.sql", stream=io.BytesIO(DATA))],
            lineage="db",
            host="h",
            now=NOW,
        )
        assert result.chunks_sealed == 0
        assert all(o.chunks_uploaded == 0 and o.committed for o in result.outcomes)

    def test_heal_restores_an_object_lost_from_a_bucket(
        self, targets: list[Target], endpoint: S3Endpoint
    ) -> None:
        """An object removed behind the library's back is copied back, byte for byte."""
        self._backup(Writer(targets, sealer(), chunker=MEDIUM))
        key = sorted(targets[0].list("objects"))[0]
        bucket, prefix = targets[0].root.split("/", 1)
        s3_client(endpoint).delete_object(Bucket=bucket, Key=f"{prefix}/{key}")
        assert not targets[0].exists(key)
        report = heal(targets, sealer=sealer())
        assert report.outcomes[0].copied == (key,)
        assert targets[0].read(key) == targets[1].read(key)


class TestWriterMoto(WriterOnS3):
    """Moto's in-process S3."""

    @pytest.fixture
    def endpoint(self, moto_s3: S3Endpoint) -> S3Endpoint:
        """Moto's endpoint."""
        return moto_s3


@pytest.mark.rgw
class TestWriterRGW(WriterOnS3):
    """Ceph RADOS Gateway, the S3 implementation DigitalOcean Spaces runs on."""

    @pytest.fixture
    def endpoint(self, rgw_s3: S3Endpoint) -> S3Endpoint:
        """RGW's endpoint."""
        return rgw_s3

    def test_object_lock_retains_every_object_written(
        self, endpoint: S3Endpoint, tmp_path: Path
    ) -> None:
        """On a locked bucket every new object gets the retain-until date and resists deletion."""
        client = s3_client(endpoint)
        bucket = f"writer-lock-{uuid.uuid4().hex[:16]}"
        client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        locked = _s3_target(endpoint, bucket)
        local = Target.from_url(str(tmp_path / "local"), retry=FAST_RETRY)
        until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
        result = Writer([locked, local], sealer(), chunker=MEDIUM).backup(
            [StreamSource(name="db.sql", stream=io.BytesIO(DATA[: 1024 * 1024]))],
            lineage="db",
            host="h",
            now=NOW,
            retain_until=until,
        )
        assert all(outcome.committed for outcome in result.outcomes)
        keys = sorted(locked.list(""))
        assert f"snapshots/{result.name}" in keys
        for key in keys:
            retention = client.get_object_retention(Bucket=bucket, Key=f"repo/{key}")["Retention"]
            assert retention["Mode"] == "COMPLIANCE"
            assert retention["RetainUntilDate"] == until
        version = client.head_object(Bucket=bucket, Key=f"repo/{keys[0]}")["VersionId"]
        with pytest.raises(ClientError):
            client.delete_object(Bucket=bucket, Key=f"repo/{keys[0]}", VersionId=version)
        assert locked.exists(keys[0])
