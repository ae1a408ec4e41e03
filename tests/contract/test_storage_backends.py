"""The backend contract beyond create-only: each operation on every backend, and flags true to it.

One mixin runs over memory, local disk, a generic fsspec filesystem, moto, Ceph RGW and Azurite.
Every test reads the backend's static `Support` flag and checks the behaviour it promises: a
supported operation behaves the same way everywhere, an unsupported one raises `UnsupportedError`
exactly (that class, not a subclass or another error) and changes nothing.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.exceptions import ClientError

from ctfy_vault.exceptions import (
    ConfigurationError,
    InvalidObjectKeyError,
    StorageError,
    UnsupportedError,
)
from ctfy_vault.links import LinkSigner, presign
from ctfy_vault.storage import MAX_KEY_BYTES, Entry, Support, Target
from ctfy_vault.storage._backends import Backend, LinkRequest
from tests.support.servers import (
    AzureEndpoint,
    S3Endpoint,
    make_bucket,
    make_container,
    s3_client,
    s3_target,
)

SIGNER = LinkSigner(b"s" * 32, "https://app.example/download")
OBJECTS = {
    "docs/a.pdf": b"%PDF a" * 100,
    "docs/sub/b.txt": b"b",
    "docs/empty": b"",
    "top": b"top level",
}


def _exactly_unsupported(call: Callable[[], object]) -> UnsupportedError:
    """Run ``call`` and return its error, which must be `UnsupportedError` itself."""
    with pytest.raises(UnsupportedError) as info:
        call()
    assert type(info.value) is UnsupportedError
    return info.value


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - test server
            return int(response.status), response.read()
    except urllib.error.HTTPError as err:
        return int(err.code), b""


def _seed(target: Target) -> None:
    for key, data in OBJECTS.items():
        target.write(key, data)


class BackendOperations:
    """What each backend's `Support` flags promise; subclasses provide the fixtures."""

    #: whether an unsigned GET or listing is served (only asked where the probe is supported).
    anonymous_served = False
    #: the longest object name the test server itself accepts, when shorter than the protocol's.
    server_key_limit: int | None = None
    #: whether the server answers GetObjectRetention (moto answers 500).
    reads_retention = True

    @pytest.fixture
    def make_target(self) -> Callable[[], Target]:
        """A new, empty target on the same service at each call."""
        raise NotImplementedError

    @pytest.fixture
    def target(self, make_target: Callable[[], Target]) -> Target:
        return make_target()

    @pytest.fixture
    def enable_versioning(self) -> Callable[[Target], None]:
        """Turn bucket versioning on for a target (only used where `Support.versioning`)."""

        def enable(_target: Target) -> None:
            pytest.fail("a backend that supports versioning must say how to enable it")

        return enable

    @pytest.fixture
    def make_locked(self) -> Callable[[], Target]:
        """A target on a bucket with Object Lock (only used where `Support.retain_until`)."""

        def make() -> Target:
            pytest.fail("a backend that supports retain-until must say how to make a locked bucket")

        return make

    # -- detailed listing and stat -----------------------------------------------------------

    def test_entries_match_what_is_stored(self, target: Target) -> None:
        """Detailed entries name every stored key once, with its stored size and a recent time."""
        _seed(target)
        target.probe()  # its own objects are never listed
        assert target.supports.detailed_listing
        entries = list(target.entries())
        assert sorted(e.key for e in entries) == sorted(target.list()) == sorted(OBJECTS)
        started = datetime.now(UTC)
        for entry in entries:
            assert entry.size == len(OBJECTS[entry.key]) == target.size(entry.key)
            assert entry.modified is not None
            assert entry.modified.utcoffset() == timedelta(0)
            assert abs(entry.modified - started) < timedelta(minutes=10)
        assert sorted(e.key for e in target.entries("docs")) == [
            "docs/a.pdf",
            "docs/empty",
            "docs/sub/b.txt",
        ]
        assert [e.key for e in target.entries("docs/sub")] == ["docs/sub/b.txt"]
        assert list(target.entries("top")) == []  # a prefix is a folder, never the object itself
        assert list(target.entries("nothing")) == []
        lazy = target.entries()
        assert iter(lazy) is lazy

    def test_stat_agrees_with_the_listing(self, target: Target) -> None:
        """`stat` returns the listing's entry for one key, and None for a missing key."""
        _seed(target)
        assert target.supports.stat
        listed = {e.key: e for e in target.entries()}
        for key, data in OBJECTS.items():
            entry = target.stat(key)
            assert isinstance(entry, Entry)
            assert entry.key == key
            assert entry.size == len(data)
            assert entry.etag == listed[key].etag
            assert entry.modified is not None
        assert target.stat("missing") is None
        assert target.stat("docs") is None  # a folder is no object
        with pytest.raises(InvalidObjectKeyError):
            target.stat("../escape")

    def test_etag_is_md5_flag(self, target: Target) -> None:
        """Where the flag says so, ETags are the MD5 of the bytes; elsewhere they are not."""
        _seed(target)
        for key, data in OBJECTS.items():
            md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
            entry = target.stat(key)
            assert entry is not None
            if target.supports.etag_is_md5:
                assert entry.etag == md5
            else:
                assert entry.etag != md5

    # -- replace ---------------------------------------------------------------------------

    def test_replace_overwrites_or_is_unsupported(self, target: Target) -> None:
        """Replace overwrites (new bytes, size and listing); unsupported, it changes nothing."""
        target.write("doc", b"version one")
        if not target.supports.replace:
            err = _exactly_unsupported(lambda: target.replace("doc", [b"two"]))
            assert "replace" in str(err)
            assert target.read("doc") == b"version one"
            return
        assert target.replace("doc", [b"version ", b"two, longer"]) == 19
        assert target.read("doc") == b"version two, longer"
        stat = target.stat("doc")
        assert stat is not None
        assert stat.size == 19
        assert [(e.key, e.size) for e in target.entries()] == [("doc", 19)]
        assert target.replace("new/doc", iter([b"fresh"])) == 5  # also writes a new key
        assert target.read("new/doc") == b"fresh"

    # -- server-side copy ---------------------------------------------------------------------

    def test_server_side_copy_or_unsupported(
        self, target: Target, make_target: Callable[[], Target]
    ) -> None:
        """Within one service, a copy has identical bytes and ETag; elsewhere it is unsupported."""
        other = make_target()
        data = b"".join(bytes([n % 251]) * 4096 for n in range(300))
        other.write("docs/copied.bin", data)
        if not target.supports.server_side_copy:
            assert not target.can_copy_from(other)
            err = _exactly_unsupported(lambda: target.copy_from(other, "docs/copied.bin"))
            assert "copy" in str(err)
            assert not target.exists("docs/copied.bin")
            return
        assert target.can_copy_from(other)
        etag = target.copy_from(other, "docs/copied.bin")
        assert target.read("docs/copied.bin") == data
        copied, original = target.stat("docs/copied.bin"), other.stat("docs/copied.bin")
        assert copied is not None
        assert original is not None
        assert etag == copied.etag == original.etag

    def test_copy_from_another_kind_of_target_is_unsupported(
        self, target: Target, tmp_path: Path
    ) -> None:
        """No backend copies server-side from a target on another kind of service."""
        local = Target.from_url(str(tmp_path / "elsewhere"))
        local.write("k", b"v")
        assert not target.can_copy_from(local)
        _exactly_unsupported(lambda: target.copy_from(local, "k"))
        assert not target.exists("k")

    # -- signed links ------------------------------------------------------------------------

    def test_presign_serves_the_object_or_is_unsupported(self, target: Target) -> None:
        """A backend that signs gives a URL serving the exact bytes; others refuse exactly."""
        target.write("docs/linked.pdf", b"linked bytes")
        with pytest.raises(ConfigurationError):
            target.presign_url("docs/linked.pdf", expires_in=3601)
        if not target.supports.presign:
            _exactly_unsupported(lambda: target.presign_url("docs/linked.pdf", expires_in=60))
            return
        url = target.presign_url("docs/linked.pdf", expires_in=60)
        assert _get(url) == (200, b"linked bytes")
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
        if target.supports.presign_start:
            started = target.presign_url("docs/linked.pdf", expires_in=60, start=start)
            assert _get(started) == (200, b"linked bytes")
        else:
            _exactly_unsupported(
                lambda: target.presign_url("docs/linked.pdf", expires_in=60, start=start)
            )
        if target.supports.presign_client_ip:
            bound = target.presign_url("docs/linked.pdf", expires_in=60, client_ip="10.0.0.1")
            assert parse_qs(urlsplit(bound).query)["sip"] == ["10.0.0.1"]
        else:
            _exactly_unsupported(
                lambda: target.presign_url("docs/linked.pdf", expires_in=60, client_ip="10.0.0.1")
            )

    def test_links_follow_the_flags(self, target: Target) -> None:
        """`presign` signs natively, with HMAC, or refuses, exactly as the flags say."""
        target.write("docs/a.pdf", b"a")
        support = target.supports
        if support.presign or support.hmac_links:
            link = presign(target, "docs/a.pdf", signer=SIGNER)
            assert link.scheme == support.signed_links
            assert (link.url.startswith(SIGNER.base_url)) is (not support.presign)
        else:
            assert support.signed_links is None
            _exactly_unsupported(lambda: presign(target, "docs/a.pdf", signer=SIGNER))

    # -- anonymous access --------------------------------------------------------------------

    def test_anonymous_probe_or_unsupported(self, target: Target) -> None:
        """The probe asks the endpoint without credentials; without an endpoint it is unsupported."""
        target.write("docs/private.pdf", b"private")
        if not target.supports.anonymous_probe:
            _exactly_unsupported(lambda: target.anonymous_access("docs/private.pdf"))
            assert target.probe().public_read is None
            return
        seen = target.anonymous_access("docs/private.pdf")
        assert seen.object_status is not None
        assert seen.listing_status is not None
        assert seen.object_url is not None
        assert urlsplit(seen.object_url).query == ""
        statuses = (seen.object_status, seen.listing_status)
        assert any(200 <= status < 300 for status in statuses) is self.anonymous_served
        listing_only = target.anonymous_access()
        assert listing_only.object_status is None
        assert listing_only.listing_status == seen.listing_status

    # -- Object Lock -------------------------------------------------------------------------

    def test_retain_until_or_unsupported(
        self, target: Target, make_locked: Callable[[], Target]
    ) -> None:
        """Retain-until makes a locked bucket refuse deleting the version; elsewhere unsupported."""
        until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
        target.write("k", b"v")
        with pytest.raises(ConfigurationError):
            target.retain_until("k", until.replace(tzinfo=None))
        if not target.supports.retain_until:
            _exactly_unsupported(lambda: target.retain_until("k", until))
            return
        with pytest.raises(StorageError):  # the bucket has no Object Lock
            target.retain_until("k", until, mode="GOVERNANCE")
        locked = make_locked()
        locked.write("doc", b"kept")
        locked.retain_until("doc", until, mode="GOVERNANCE")
        client, bucket, name = self.raw_client(locked, "doc")
        if self.reads_retention:
            retention = client.get_object_retention(Bucket=bucket, Key=name)["Retention"]
            assert retention["Mode"] == "GOVERNANCE"
            assert retention["RetainUntilDate"] == until
        version = locked.stat("doc")
        assert version is not None
        assert version.version is not None
        with pytest.raises(ClientError):
            client.delete_object(Bucket=bucket, Key=name, VersionId=version.version)
        assert locked.read("doc") == b"kept"

    def raw_client(self, target: Target, key: str) -> tuple[Any, str, str]:
        """A boto3 client, the bucket and the object name (S3 backends only)."""
        pytest.fail("a backend that supports retain-until must give a raw client")

    # -- versioning --------------------------------------------------------------------------

    def test_versioning_or_unsupported(
        self, target: Target, enable_versioning: Callable[[Target], None]
    ) -> None:
        """Where the backend can tell, versioning_enabled follows the bucket; else unsupported."""
        if not target.supports.versioning:
            _exactly_unsupported(target.versioning_enabled)
            return
        assert target.versioning_enabled() is False
        enable_versioning(target)
        assert target.versioning_enabled() is True
        target.write("v", b"1")
        entry = target.stat("v")
        assert entry is not None
        assert entry.version is not None

    # -- key length --------------------------------------------------------------------------

    def test_key_byte_limit_counts_the_root(self, target: Target) -> None:
        """The longest key fits exactly with the root prefix; one byte more is refused first."""
        limit = target.supports.key_byte_limit
        segment = "s" * 100
        if limit is None:  # only the key's own length counts, not the root's
            key = "/".join([segment] * 10) + "/" + "t" * (MAX_KEY_BYTES - 1010)
            assert len(key) == MAX_KEY_BYTES
            target.write(key, b"long")
            assert target.read(key) == b"long"
            return
        prefix = target.root.split("/", 1)[1] + "/"
        room = limit - len(prefix.encode())
        key = "/".join([segment] * (room // 101)) + "/"
        key += "t" * (room - len(key))
        assert len((prefix + key).encode()) == limit
        if self.server_key_limit is None:
            target.write(key, b"longest")
            assert target.read(key) == b"longest"
        with pytest.raises(InvalidObjectKeyError, match=f"the limit is {limit}"):
            target.write(key + "u", b"too long")

    # -- the flags in the probe --------------------------------------------------------------

    def test_probe_carries_the_static_flags(self, target: Target) -> None:
        """The probe's Capabilities include the same Support flags, known before any request."""
        support = target.supports
        caps = target.probe()
        assert caps.supports == support
        assert caps.signed_links == support.signed_links
        assert caps.to_dict()["supports"]["operations"] == list(support.operations())
        for operation in support.operations():
            assert operation in caps.describe()


# -- the backends ----------------------------------------------------------------------------


class TestMemory(BackendOperations):
    @pytest.fixture
    def make_target(self) -> Callable[[], Target]:
        return lambda: Target.from_url(f"memory://backends-{uuid.uuid4().hex}/root")


class TestLocal(BackendOperations):
    @pytest.fixture
    def make_target(self, tmp_path: Path) -> Callable[[], Target]:
        return lambda: Target.from_url(str(tmp_path / uuid.uuid4().hex))

    def test_replace_leaves_no_temporary_file(self, target: Target) -> None:
        """A local replace publishes by rename: no temporary file is left or listed."""
        target.write("d/doc", b"one")
        target.replace("d/doc", [b"two"])
        assert sorted(p.name for p in (Path(target.root) / "d").iterdir()) == ["doc"]

    def test_a_failed_replace_keeps_the_old_bytes(self, target: Target) -> None:
        """A stream that breaks midway leaves the previous object whole and nothing else."""
        target.write("d/doc", b"previous")

        def broken() -> Iterator[bytes]:
            yield b"partial"
            raise RuntimeError("source broke")

        with pytest.raises(RuntimeError, match="source broke"):
            target.replace("d/doc", broken())
        assert target.read("d/doc") == b"previous"
        assert [e.key for e in target.entries()] == ["d/doc"]


class TestGenericFsspec(BackendOperations):
    @pytest.fixture
    def make_target(self, tmp_path: Path) -> Callable[[], Target]:
        from fsspec.implementations.dirfs import DirFileSystem
        from fsspec.implementations.local import LocalFileSystem

        def make() -> Target:
            folder = tmp_path / uuid.uuid4().hex
            folder.mkdir()
            return Target.from_filesystem(
                DirFileSystem(path=str(folder), fs=LocalFileSystem()), "root"
            )

        return make


class S3Operations(BackendOperations):
    endpoint: S3Endpoint

    @pytest.fixture
    def make_target(self, s3: S3Endpoint) -> Callable[[], Target]:
        def make() -> Target:
            bucket = make_bucket(s3, f"backends-{uuid.uuid4().hex[:20]}")
            return s3_target(s3, bucket)  # type: ignore[no-any-return]

        return make

    @pytest.fixture
    def enable_versioning(self, s3: S3Endpoint) -> Callable[[Target], None]:
        def enable(target: Target) -> None:
            s3_client(s3).put_bucket_versioning(
                Bucket=target.root.split("/")[0], VersioningConfiguration={"Status": "Enabled"}
            )

        return enable

    @pytest.fixture
    def make_locked(self, s3: S3Endpoint) -> Callable[[], Target]:
        self.endpoint = s3

        def make() -> Target:
            bucket = f"backends-lock-{uuid.uuid4().hex[:16]}"
            s3_client(s3).create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
            return s3_target(s3, bucket)  # type: ignore[no-any-return]

        return make

    def raw_client(self, target: Target, key: str) -> tuple[Any, str, str]:
        bucket, _, prefix = target.root.partition("/")
        return s3_client(self.endpoint), bucket, f"{prefix}/{key}"


class TestMoto(S3Operations):
    anonymous_served = True  # moto checks no credentials at all
    reads_retention = False

    @pytest.fixture
    def s3(self, moto_s3: S3Endpoint) -> S3Endpoint:
        return moto_s3


@pytest.mark.rgw
class TestRGW(S3Operations):
    server_key_limit = 415  # measured: longer names fail with HTTP 500 on the memstore test server

    @pytest.fixture
    def s3(self, rgw_s3: S3Endpoint) -> S3Endpoint:
        return rgw_s3

    def test_copy_across_endpoints_is_unsupported(
        self, target: Target, moto_s3: S3Endpoint
    ) -> None:
        """Two S3 buckets on different endpoints (and credentials) cannot copy server-side."""
        bucket = make_bucket(moto_s3, f"elsewhere-{uuid.uuid4().hex[:16]}")
        other = s3_target(moto_s3, bucket)
        other.write("k", b"v")
        assert not target.can_copy_from(other)
        _exactly_unsupported(lambda: target.copy_from(other, "k"))
        assert not target.exists("k")


@pytest.mark.azurite
class TestAzurite(BackendOperations):
    @pytest.fixture
    def make_target(self, azurite: AzureEndpoint) -> Callable[[], Target]:
        def make() -> Target:
            container = make_container(azurite, f"backends-{uuid.uuid4().hex[:20]}")
            return Target.from_url(
                f"az://{container}/root", connection_string=azurite.connection_string
            )

        return make


# -- the base class ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "call"),
    [
        ("detailed listing", lambda b: list(b.entries("p", None))),
        ("stat", lambda b: b.stat("p")),
        ("replace", lambda b: b.replace("p", [b"x"], 1, None)),
        ("server-side copy", lambda b: b.copy(b, "p", "q", None)),
        ("signed links", lambda b: b.presign("p", LinkRequest(expires_in=1))),
        ("anonymous-access probe", lambda b: b.anonymous_urls("p")),
        ("Object Lock retention", lambda b: b.retain_until("p", datetime.now(UTC), "GOVERNANCE")),
        ("versioning", lambda b: b.versioning("p", None)),
    ],
)
def test_optional_operations_are_unsupported_by_default(
    operation: str, call: Callable[[Backend], object]
) -> None:
    """A backend that overrides nothing raises UnsupportedError naming itself and the operation."""

    class Bare(Backend):
        kind = "bare"

    err = _exactly_unsupported(lambda: call(Bare()))
    assert "the bare backend" in str(err)
    assert operation in str(err)
    assert not Bare().can_copy_from(Bare())


def test_default_support_claims_no_optional_operation() -> None:
    """The base class's flags promise none of the operations it refuses."""
    assert Backend.supports.operations() == ()
    assert Support().operations() == ("detailed_listing", "stat")
