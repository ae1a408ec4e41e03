"""Least privilege and Object Lock on a real Ceph RGW.

* A writer credential that may put, get and list but not delete (a bucket policy on RGW) is enough
  for init, backup, restore and heal; prune refuses it before changing anything, and works with
  the bucket owner's credential.
* On an Object Lock bucket, prune cannot destroy a locked snapshot before its retain-until date:
  the deletion only hides the current version and the locked version stays readable.
"""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from ctfy_vault.crypto import RawKey
from ctfy_vault.exceptions import AccessDeniedError
from ctfy_vault.retention import Policy
from ctfy_vault.storage import Target
from ctfy_vault.vault import LOCK_KEY, Vault
from ctfy_vault.writer import ChunkerParams, StreamSource
from tests.support.servers import S3Endpoint, s3_client, s3_target
from tests.support.writer_strategies import FAST_RETRY

KEY = RawKey(bytes(range(32)))
CHUNKS = ChunkerParams(min_size=1024, avg_size=4096, max_size=16384)
WRITER_ACTIONS = [
    "s3:PutObject",
    "s3:GetObject",
    "s3:ListBucket",
    "s3:GetBucketLocation",
    "s3:GetBucketVersioning",
    "s3:GetBucketObjectLockConfiguration",
    "s3:AbortMultipartUpload",
    "s3:ListBucketMultipartUploads",
    "s3:ListMultipartUploadParts",
]


def writer_bucket(endpoint: S3Endpoint) -> str:
    """A bucket owned by the test user whose policy lets the writer user put, get and list only."""
    bucket = f"lp-{uuid.uuid4().hex[:16]}"
    owner = s3_client(endpoint)
    owner.create_bucket(Bucket=bucket)
    principal = {"AWS": ["arn:aws:iam:::user/ctfy-writer"]}
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": principal,
                "Action": WRITER_ACTIONS,
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            },
            {
                # Objects the writer stores belong to the writer: the bucket owner (the prune
                # credential) is granted them here, as "bucket owner enforced" would on AWS.
                "Effect": "Allow",
                "Principal": {"AWS": ["arn:aws:iam:::user/ctfy-test"]},
                "Action": ["s3:*"],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            },
            {
                "Effect": "Deny",
                "Principal": principal,
                "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion"],
                "Resource": [f"arn:aws:s3:::{bucket}/*"],
            },
        ],
    }
    owner.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    return bucket


def dump(n: int) -> StreamSource:
    """A small SQL-like dump, different per ``n``."""
    rows = b"".join(
        b"INSERT INTO t VALUES (%d, 'row %d');\n" % (n * 1000 + i, i) for i in range(800)
    )
    return StreamSource(name="db.sql", stream=io.BytesIO(rows))


class TestWriterCredential:
    def test_writer_backs_up_and_heals_but_cannot_prune(
        self, rgw_s3: S3Endpoint, tmp_path: Path
    ) -> None:
        """Backup and heal need no delete right; prune refuses the writer before any change."""
        bucket = writer_bucket(rgw_s3)
        writer = rgw_s3.as_writer()
        remote = s3_target(writer, bucket, "repo", retry=FAST_RETRY)
        local = Target.from_url(str(tmp_path / "local"))
        now = datetime(2026, 11, 1, tzinfo=UTC)
        vault = Vault.init([remote, local], key=KEY, now=now, chunker=CHUNKS)
        for day in range(3):
            vault.backup(dump(day), lineage="db", host="h", now=now + timedelta(days=day))
        with pytest.raises(AccessDeniedError):
            remote.delete(next(iter(remote.list("snapshots"))))
        lost = next(iter(local.list("packs")))
        (tmp_path / "local" / lost).unlink()
        healed = vault.heal()
        assert lost in next(o for o in healed.outcomes if o.target == local.name).copied
        assert local.exists(lost)
        before = sorted(remote.list(""))
        with pytest.raises(AccessDeniedError, match="may not delete"):
            vault.prune(Policy(last=1), now=now + timedelta(days=3), grace=timedelta(0))
        assert sorted(remote.list("")) == before
        assert not remote.exists(LOCK_KEY)
        assert vault.verify(read_data=True).ok

        owner = Vault.open([s3_target(rgw_s3, bucket, "repo", retry=FAST_RETRY), local], key=KEY)
        report = owner.prune(Policy(last=1), now=now + timedelta(days=3), grace=timedelta(0))
        assert report.ok, report.errors
        assert len(owner.snapshots()) == 1
        assert owner.verify(read_data=True).ok


class TestObjectLock:
    def test_prune_cannot_destroy_a_locked_snapshot(self, rgw_s3: S3Endpoint) -> None:
        """Prune's deletion of a locked manifest only hides it; the locked version survives."""
        client = s3_client(rgw_s3)
        bucket = f"ol-{uuid.uuid4().hex[:16]}"
        client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        target = s3_target(rgw_s3, bucket, "repo", retry=FAST_RETRY)
        now = datetime.now(UTC).replace(microsecond=0)
        until = now + timedelta(days=2)
        vault = Vault.init([target], key=KEY, now=now, chunker=CHUNKS)
        first = vault.backup(
            dump(0), lineage="db", host="h", now=now - timedelta(days=1), retain_until=until
        )
        vault.backup(dump(1), lineage="db", host="h", now=now, retain_until=until)
        key = f"repo/snapshots/{first.name}"
        version = client.head_object(Bucket=bucket, Key=key)["VersionId"]
        report = vault.prune(Policy(last=1), now=now, grace=timedelta(0))
        assert [s.snapshot_id for s in report.forgotten] == [first.snapshot_id]
        with pytest.raises(ClientError):
            client.delete_object(Bucket=bucket, Key=key, VersionId=version)
        kept = client.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()
        assert len(kept) > 0
        retention = client.get_object_retention(Bucket=bucket, Key=key, VersionId=version)
        assert retention["Retention"]["RetainUntilDate"] == until
