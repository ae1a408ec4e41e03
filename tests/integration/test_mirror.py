"""The document mirror on local folders, moto and Ceph RGW: copy, keep versions, never delete."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ctfy_vault.exceptions import ConfigurationError, FormatError
from ctfy_vault.mirror import VERSIONS_PREFIX, MirrorState, mirror, watch
from ctfy_vault.storage import Target
from tests.support.servers import AzureEndpoint, S3Endpoint, make_bucket, make_container, s3_client

BIG = 9 * 2**20  # above the 8 MiB part size: multipart on S3


def _s3(endpoint: S3Endpoint, bucket: str, prefix: str = "") -> Target:
    return Target.from_url(
        f"s3://{bucket}/{prefix}".rstrip("/"),
        endpoint_url=endpoint.endpoint_url,
        key=endpoint.key,
        secret=endpoint.secret,
        region=endpoint.region,
    )


def _bucket(endpoint: S3Endpoint, *, versioned: bool = False) -> str:
    name = make_bucket(endpoint, f"mirror-{uuid.uuid4().hex[:16]}")
    if versioned:
        s3_client(endpoint).put_bucket_versioning(
            Bucket=name, VersioningConfiguration={"Status": "Enabled"}
        )
    return name


def _overwrite_local(target: Target, key: str, data: bytes) -> None:
    path = Path(target.root) / key
    path.write_bytes(data)
    os.utime(path, ns=(path.stat().st_mtime_ns + 10_000, path.stat().st_mtime_ns + 10_000))


def _kept_versions(target: Target, key: str) -> list[bytes]:
    return [target.read(k) for k in sorted(target.list(f"{VERSIONS_PREFIX}/{key}"))]


class TestLocal:
    @pytest.fixture
    def pair(self, tmp_path: Path) -> tuple[Target, Target, Target]:
        """A local source folder and two replicas (local and memory)."""
        memory = Target.from_url(f"memory://mirror-{uuid.uuid4().hex[:8]}/replica")
        return (
            Target.from_url(str(tmp_path / "src")),
            Target.from_url(str(tmp_path / "replica")),
            memory,
        )

    def test_first_run_copies_everything_and_verifies(
        self, pair: tuple[Target, Target, Target]
    ) -> None:
        """Every source object arrives on every replica with identical bytes."""
        src, r1, r2 = pair
        docs = {f"tenant/{i}/doc ü {i}.pdf": os.urandom(100 + i) for i in range(20)}
        for key, data in docs.items():
            src.write(key, data)
        report = mirror(src, [r1, r2])
        assert report.ok
        assert report.count("copied") == 40
        assert report.listed == 20
        for replica in (r1, r2):
            assert {k: replica.read(k) for k in replica.list()} == docs

    def test_second_run_copies_nothing(self, pair: tuple[Target, Target, Target]) -> None:
        """An unchanged source costs no copy; with a state no object is even read."""
        src, r1, r2 = pair
        for i in range(10):
            src.write(f"d/{i}", b"x" * i)
        state = MirrorState()
        mirror(src, [r1, r2], state=state)
        report = mirror(src, [r1, r2], state=state)
        assert report.outcomes == ()
        assert report.unchanged == 20

    def test_changed_object_keeps_previous_version(
        self, pair: tuple[Target, Target, Target]
    ) -> None:
        """A changed object replaces the copy, and the old bytes stay under the versions prefix."""
        src, r1, r2 = pair
        src.write("contract.pdf", b"version 1")
        state = MirrorState()
        mirror(src, [r1, r2], state=state)
        _overwrite_local(src, "contract.pdf", b"version 2, longer")
        report = mirror(src, [r1, r2], state=state)
        assert report.count("updated") == 2
        for replica in (r1, r2):
            assert replica.read("contract.pdf") == b"version 2, longer"
            assert _kept_versions(replica, "contract.pdf") == [b"version 1"]
        assert all(o.previous and o.previous.startswith(VERSIONS_PREFIX) for o in report.outcomes)

    def test_deleted_at_source_stays_and_is_reported(
        self, pair: tuple[Target, Target, Target]
    ) -> None:
        """Objects removed at the source stay on replicas and the report lists them."""
        src, r1, r2 = pair
        src.write("a", b"a")
        src.write("b", b"b")
        mirror(src, [r1, r2])
        src.delete("a")
        report = mirror(src, [r1, r2])
        assert report.deleted_at_source == ("a",)
        assert r1.read("a") == b"a"
        assert r2.read("a") == b"a"

    def test_state_file_resumes(self, pair: tuple[Target, Target, Target], tmp_path: Path) -> None:
        """A state file is saved atomically and a new process resumes from it."""
        src, r1, _ = pair
        for i in range(5):
            src.write(f"k{i}", b"%d" % i)
        path = tmp_path / "state" / "mirror.json"
        mirror(src, [r1], state=path)
        saved = json.loads(path.read_text())
        assert saved["format"] == 1
        assert set(saved["copied"][r1.name]) == {f"k{i}" for i in range(5)}
        assert mirror(src, [r1], state=path).outcomes == ()

    def test_lost_state_compares_content_instead_of_copying(
        self, pair: tuple[Target, Target, Target]
    ) -> None:
        """Without a state, objects already identical on the replica are not rewritten."""
        src, r1, _ = pair
        src.write("k", b"same")
        mirror(src, [r1])
        report = mirror(src, [r1])
        assert report.outcomes == ()
        assert _kept_versions(r1, "k") == []

    def test_object_removed_from_replica_is_restored(
        self, pair: tuple[Target, Target, Target]
    ) -> None:
        """If an object vanished from a replica, the next run copies it back and says so."""
        src, r1, _ = pair
        src.write("k", b"data")
        state = MirrorState()
        mirror(src, [r1], state=state)
        r1.delete("k")
        report = mirror(src, [r1], state=state)
        assert [o.action for o in report.outcomes] == ["restored"]
        assert r1.read("k") == b"data"

    def test_failed_replica_is_reported_per_object(
        self, pair: tuple[Target, Target, Target], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A replica that fails is reported per object while the other replica still gets copies."""
        src, r1, r2 = pair
        src.write("k", b"data")

        def broken(path: str, data: bytes, **kwargs: Any) -> None:
            raise PermissionError(13, "read-only replica")

        monkeypatch.setattr(r2.fs, "pipe_file", broken)
        report = mirror(src, [r1, r2])
        assert not report.ok
        assert [(o.replica, o.action) for o in report.outcomes] == [
            (r1.name, "copied"),
            (r2.name, "failed"),
        ]
        assert (report.failed[0].error or "").startswith("AccessDeniedError: write: access denied")
        assert r1.read("k") == b"data"

    def test_versions_folder_is_not_mirrored(self, pair: tuple[Target, Target, Target]) -> None:
        """A replica used as a source does not copy its kept versions as documents."""
        src, r1, r2 = pair
        src.write("k", b"1")
        state = MirrorState()
        mirror(src, [r1], state=state)
        _overwrite_local(src, "k", b"22")
        mirror(src, [r1], state=state)
        report = mirror(r1, [r2])
        assert report.listed == 1
        assert list(r2.list()) == ["k"]

    def test_watch_repeats_with_interval(self, pair: tuple[Target, Target, Target]) -> None:
        """The watch loop runs mirror on an interval and picks up new objects."""
        src, r1, _ = pair
        waits: list[float] = []
        src.write("first", b"1")

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            src.write(f"next-{len(waits)}", b"n")

        reports = watch(src, [r1], interval=5, runs=3, sleep=sleep)
        assert waits == [5, 5]
        assert [r.count("copied") for r in reports] == [1, 1, 1]
        assert sorted(r1.list()) == ["first", "next-1", "next-2"]

    @pytest.mark.parametrize(
        "make",
        [
            lambda s, r: mirror(s, []),
            lambda s, r: mirror(s, [s]),
            lambda s, r: mirror(s, [r, r]),
            lambda s, r: mirror(s, [r], workers=0),
            lambda s, r: watch(s, [r], interval=0),
        ],
    )
    def test_bad_arguments(
        self, pair: tuple[Target, Target, Target], make: Callable[[Target, Target], Any]
    ) -> None:
        """No replica, the source as a replica, duplicates, no workers or no interval are refused."""
        src, r1, _ = pair
        with pytest.raises(ConfigurationError):
            make(src, r1)

    def test_corrupt_state_file_is_refused(self, tmp_path: Path) -> None:
        """A state file that is not one is an error, not a silent full copy."""
        path = tmp_path / "state.json"
        path.write_text('{"format": 99, "copied": {}}')
        with pytest.raises(FormatError):
            MirrorState.load(path)
        path.write_text("not json")
        with pytest.raises(FormatError):
            MirrorState.load(path)


class TestMoto:
    def test_s3_to_s3_and_local_with_versions_prefix(
        self, moto_s3: S3Endpoint, tmp_path: Path
    ) -> None:
        """Bucket to bucket and to a folder; a change keeps the old version; placeholders skipped."""
        src = _s3(moto_s3, _bucket(moto_s3), "documents")
        dst = _s3(moto_s3, _bucket(moto_s3), "copy")
        local = Target.from_url(str(tmp_path / "local"))
        src.write("a.pdf", b"A1")
        src.write("big.bin", b"\x01" * BIG)
        bucket = src.root.split("/", 1)[0]
        s3_client(moto_s3).put_object(Bucket=bucket, Key="documents/folder/", Body=b"")
        state = MirrorState()
        first = mirror(src, [dst, local], state=state)
        assert first.ok, first.failed
        assert first.count("copied") == 4
        assert dst.read("big.bin") == local.read("big.bin") == b"\x01" * BIG
        # A second write at the source under the same key: moto lets the test overwrite.
        s3_client(moto_s3).put_object(Bucket=bucket, Key="documents/a.pdf", Body=b"A2!")
        second = mirror(src, [dst, local], state=state)
        assert second.count("updated") == 2
        assert second.unchanged == 2
        assert dst.read("a.pdf") == local.read("a.pdf") == b"A2!"
        assert _kept_versions(dst, "a.pdf") == [b"A1"]
        assert _kept_versions(local, "a.pdf") == [b"A1"]


@pytest.mark.rgw
class TestRGW:
    def test_versioned_replica_keeps_versions_in_the_bucket(self, rgw_s3: S3Endpoint) -> None:
        """On a versioned replica every version seen stays as a bucket version; no prefix is used."""
        src_bucket = _bucket(rgw_s3)
        dst_bucket = _bucket(rgw_s3, versioned=True)
        src = _s3(rgw_s3, src_bucket, "docs")
        dst = _s3(rgw_s3, dst_bucket, "mirror")
        client = s3_client(rgw_s3)
        state = MirrorState()
        clock = datetime(2026, 11, 26, tzinfo=UTC)
        for version in (b"v1", b"v2 longer", b"v3"):
            client.put_object(Bucket=src_bucket, Key="docs/contract.pdf", Body=version)
            report = mirror(src, [dst], state=state, clock=lambda: clock)
            assert report.ok, report.failed
        assert report.outcomes[0].previous == "bucket versioning"
        versions = client.list_object_versions(Bucket=dst_bucket, Prefix="mirror/")["Versions"]
        bodies = sorted(
            client.get_object(Bucket=dst_bucket, Key=v["Key"], VersionId=v["VersionId"])[
                "Body"
            ].read()
            for v in versions
        )
        assert bodies == [b"v1", b"v2 longer", b"v3"]
        assert [e.key for e in dst.entries()] == ["contract.pdf"]

    def test_unversioned_rgw_replica_and_deletions(
        self, rgw_s3: S3Endpoint, tmp_path: Path
    ) -> None:
        """RGW to RGW without versioning: versions prefix, deletions kept and reported, copies verified."""
        src_bucket = _bucket(rgw_s3)
        src = _s3(rgw_s3, src_bucket)
        dst = _s3(rgw_s3, _bucket(rgw_s3), "m")
        local = Target.from_url(str(tmp_path / "l"))
        client = s3_client(rgw_s3)
        for i in range(30):
            src.write(f"t/{i}.txt", b"doc %d" % i)
        src.write("t/big.bin", os.urandom(BIG))
        state = tmp_path / "state.json"
        first = mirror(src, [dst, local], state=state)
        assert first.ok, first.failed
        assert first.count("copied") == 62
        client.put_object(Bucket=src_bucket, Key="t/0.txt", Body=b"doc 0, revised")
        client.delete_object(Bucket=src_bucket, Key="t/1.txt")
        second = mirror(src, [dst, local], state=state)
        assert second.ok, second.failed
        assert second.deleted_at_source == ("t/1.txt",)
        assert second.count("updated") == 2
        for replica in (dst, local):
            assert replica.read("t/0.txt") == b"doc 0, revised"
            assert replica.read("t/1.txt") == b"doc 1"
            assert _kept_versions(replica, "t/0.txt") == [b"doc 0"]
            assert replica.read("t/big.bin") == src.read("t/big.bin")

    def test_unchanged_run_costs_listing_requests_only(self, rgw_s3: S3Endpoint) -> None:
        """Over an unchanged bucket of 1,100 objects a run sends only listing requests (2 pages)."""
        bucket = _bucket(rgw_s3)
        client = s3_client(rgw_s3)
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda i: client.put_object(Bucket=bucket, Key=f"d/{i:05d}", Body=b"x"),
                    range(1100),
                )
            )
        src = _s3(rgw_s3, bucket)
        dst = Target.from_url(f"memory://mirror-{uuid.uuid4().hex[:8]}/r")
        state = MirrorState()
        assert mirror(src, [dst], state=state, workers=16).count("copied") == 1100
        calls: list[str] = []
        real = src.fs.call_s3

        def counting(method: str, *args: Any, **kwargs: Any) -> Any:
            calls.append(method)
            return real(method, *args, **kwargs)

        src.fs.call_s3 = counting
        report = mirror(src, [dst], state=state)
        assert report.outcomes == ()
        assert report.unchanged == 1100
        assert calls == ["list_objects_v2"] * 2


@pytest.mark.azurite
class TestAzurite:
    def test_azure_replica_and_source(self, azurite: AzureEndpoint, tmp_path: Path) -> None:
        """A folder mirrored to a container keeps versions under the prefix; the container mirrors on."""
        container = make_container(azurite, f"mirror-{uuid.uuid4().hex[:16]}")
        src = Target.from_url(str(tmp_path / "src"))
        blob = Target.from_url(f"az://{container}/m", connection_string=azurite.connection_string)
        onward = Target.from_url(str(tmp_path / "onward"))
        src.write("a/contract.pdf", b"v1")
        src.write("b.pdf", b"b")
        state = MirrorState()
        assert mirror(src, [blob], state=state).count("copied") == 2
        _overwrite_local(src, "a/contract.pdf", b"v2 longer")
        report = mirror(src, [blob], state=state)
        assert report.ok, report.failed
        assert [o.action for o in report.outcomes] == ["updated"]
        assert blob.read("a/contract.pdf") == b"v2 longer"
        assert _kept_versions(blob, "a/contract.pdf") == [b"v1"]
        onward_report = mirror(blob, [onward])
        assert onward_report.ok, onward_report.failed
        assert sorted(onward.list()) == ["a/contract.pdf", "b.pdf"]
        assert mirror(blob, [onward]).outcomes == ()
