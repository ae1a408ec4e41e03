"""One contract for `Target`, run against memory, local disk, moto, Ceph RGW and Azurite."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ctfy_vault.exceptions import (
    ObjectExistsError,
    ObjectNotFoundError,
    TransientStorageError,
)
from ctfy_vault.storage import RetryPolicy, Target
from tests.support.servers import (
    AzureEndpoint,
    S3Endpoint,
    make_bucket,
    make_container,
    s3_client,
    s3_target,
)

PART = 5 * 2**20  # the smallest part size, so multipart paths run with little data
STREAM_HELPER = Path(__file__).parents[1] / "support" / "stream_memory.py"


class FakeSleep:
    """Records the waits a `RetryPolicy` asks for instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _blocks(total: int, block: int = 1 << 20, seed: int = 7) -> Iterator[bytes]:
    """Yield ``total`` deterministic pseudo-random bytes without holding them all."""
    state = seed
    sent = 0
    while sent < total:
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
        size = min(block, total - sent)
        yield (state.to_bytes(8, "little") * (size // 8 + 1))[:size]
        sent += size


class TargetContract:
    """Behaviour every backend must show; subclasses provide ``make_target``."""

    #: a JSON-able description from which a subprocess can rebuild the target, or None.
    subprocess_spec: dict[str, Any] | None = None
    #: what probe should find for unsigned reads (None: no network endpoint to ask).
    expect_public_read: bool | None = False

    @pytest.fixture
    def make_target(self) -> Callable[..., Target]:
        raise NotImplementedError

    @pytest.fixture
    def target(self, make_target: Callable[..., Target]) -> Target:
        return make_target()

    # -- create-only -------------------------------------------------------------------------

    def test_write_then_read_back(self, target: Target) -> None:
        """An object written once reads back byte for byte, with its size."""
        target.write("a/b/c.bin", b"\x00payload\xff")
        assert target.read("a/b/c.bin") == b"\x00payload\xff"
        assert target.size("a/b/c.bin") == 9
        assert target.exists("a/b/c.bin")

    def test_create_only_refusal_keeps_original_bytes(self, target: Target) -> None:
        """A second write under the same key raises ObjectExistsError and changes nothing."""
        target.write("k", b"original")
        with pytest.raises(ObjectExistsError) as info:
            target.write("k", b"replacement")
        assert isinstance(info.value, FileExistsError)
        assert info.value.key == "k"
        assert target.name in str(info.value)
        assert target.read("k") == b"original"

    def test_streamed_create_only_refusal_keeps_original_bytes(self, target: Target) -> None:
        """A multipart streamed write over an existing object is refused and changes nothing."""
        original = b"".join(_blocks(2 * PART + 123, seed=1))
        assert target.write_stream("big", io.BytesIO(original)) == len(original)
        with pytest.raises(ObjectExistsError):
            target.write_stream("big", _blocks(2 * PART + 7, seed=2))
        assert target.read("big") == original

    def test_concurrent_creates_exactly_one_wins(self, target: Target) -> None:
        """Eight threads racing to create one key: exactly one succeeds, its bytes are stored."""
        winners: list[bytes] = []
        losers: list[BaseException] = []
        barrier = threading.Barrier(8)

        def attempt(n: int) -> None:
            data = f"writer {n}".encode()
            barrier.wait()
            try:
                target.write("race", data)
                winners.append(data)
            except ObjectExistsError as err:
                losers.append(err)

        threads = [threading.Thread(target=attempt, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(winners) == 1
        assert len(losers) == 7
        assert target.read("race") == winners[0]

    def test_stream_roundtrip_multipart(self, target: Target) -> None:
        """A stream of several parts (and an uneven tail) is stored exactly."""
        data = b"".join(_blocks(3 * PART + 4321, seed=3))
        written = target.write_stream("dumps/db.sql", iter([data[:1000], data[1000:]]))
        assert written == len(data)
        assert target.size("dumps/db.sql") == len(data)
        assert target.read("dumps/db.sql") == data
        assert b"".join(target.read_stream("dumps/db.sql", block_size=PART)) == data

    def test_empty_object(self, target: Target) -> None:
        """Empty objects are stored and create-only like any other."""
        assert target.write_stream("empty", io.BytesIO(b"")) == 0
        assert target.read("empty") == b""
        assert target.size("empty") == 0
        with pytest.raises(ObjectExistsError):
            target.write("empty", b"x")

    # -- reads -------------------------------------------------------------------------------

    def test_read_range(self, target: Target) -> None:
        """Ranged reads return [start, end), shortened at the object's end."""
        target.write("r", bytes(range(100)))
        assert target.read_range("r", 10, 20) == bytes(range(10, 20))
        assert target.read_range("r", 90, 200) == bytes(range(90, 100))
        assert target.read_range("r", 5, 5) == b""
        with pytest.raises(ValueError, match="bad range"):
            target.read_range("r", 20, 10)

    def test_missing_object_is_not_found(self, target: Target) -> None:
        """Reads and sizes of a missing key raise ObjectNotFoundError naming the key."""
        assert not target.exists("missing")
        for call in (
            lambda: target.read("missing"),
            lambda: target.size("missing"),
            lambda: target.read_range("missing", 0, 1),
        ):
            with pytest.raises(ObjectNotFoundError) as info:
                call()
            assert isinstance(info.value, FileNotFoundError)
            assert info.value.key == "missing"

    def test_list_prefix(self, target: Target) -> None:
        """Listing yields keys relative to the root, under a prefix, never the library's own."""
        for key in ("objects/ab/1", "objects/ab/2", "objects/cd/3", "snapshots/s1", "config"):
            target.write(key, key.encode())
        target.probe()  # leaves nothing listed behind
        assert sorted(target.list()) == [
            "config",
            "objects/ab/1",
            "objects/ab/2",
            "objects/cd/3",
            "snapshots/s1",
        ]
        assert sorted(target.list("objects")) == ["objects/ab/1", "objects/ab/2", "objects/cd/3"]
        assert sorted(target.list("objects/ab")) == ["objects/ab/1", "objects/ab/2"]
        assert list(target.list("nothing")) == []
        listing = target.list()
        assert iter(listing) is listing  # a lazy iterator, not a list

    @pytest.mark.slow
    def test_list_ten_thousand_keys(self, target: Target) -> None:
        """Listing 10,000 keys returns each exactly once."""
        from concurrent.futures import ThreadPoolExecutor

        keys = [f"objects/{n % 256:02x}/{n:05d}" for n in range(10_000)]
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda key: target.write(key, b"x"), keys))
        listed = list(target.list("objects"))
        assert len(listed) == 10_000
        assert sorted(listed) == sorted(keys)

    # -- delete ------------------------------------------------------------------------------

    def test_delete_removes_and_is_idempotent(self, target: Target) -> None:
        """The privileged delete removes one object; deleting it again is not an error."""
        target.write("old", b"1")
        target.write("keep", b"2")
        target.delete("old")
        assert not target.exists("old")
        target.delete("old")
        assert target.read("keep") == b"2"
        target.write("old", b"3")  # the name is free again
        assert target.read("old") == b"3"

    # -- capabilities ------------------------------------------------------------------------

    def test_probe_finds_atomic_create_only_and_caches(self, target: Target) -> None:
        """Probing finds create-only atomic here, is cached, and leaves no object behind."""
        assert target.capabilities is None
        caps = target.probe()
        assert caps.atomic_create is True
        assert target.probe() is caps
        assert target.probe(refresh=True) == caps
        assert list(target.list()) == []
        assert caps.to_dict()["backend"] == caps.backend
        assert caps.backend in caps.describe()

    def test_probe_reports_anonymous_access(self, target: Target) -> None:
        """Probe asks the endpoint without signing and reports whether it was served."""
        caps = target.probe()
        assert caps.public_read is self.expect_public_read
        assert any("FILES ARE PUBLIC" in note for note in caps.notes) is bool(caps.public_read)

    # -- failures ----------------------------------------------------------------------------

    def test_transient_failure_is_retried(
        self, make_target: Callable[..., Target], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Two injected connection resets are retried with backoff, then the read succeeds."""
        sleep = FakeSleep()
        target = make_target(retry=RetryPolicy(attempts=4, initial=0.5, sleep=sleep))
        target.write("flaky", b"data")
        real = target.fs.cat_file
        failures = iter([ConnectionResetError("reset by peer"), TimeoutError("timed out")])

        def flaky(*args: Any, **kwargs: Any) -> Any:
            err = next(failures, None)
            if err is not None:
                raise err
            return real(*args, **kwargs)

        monkeypatch.setattr(target.fs, "cat_file", flaky)
        assert target.read("flaky") == b"data"
        assert len(sleep.waits) == 2
        assert all(0 <= wait <= 1.0 for wait in sleep.waits)

    def test_persistent_transient_failure_names_target_and_key(
        self, make_target: Callable[..., Target], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A failure that outlasts the retries raises TransientStorageError with target and key."""
        sleep = FakeSleep()
        target = make_target(retry=RetryPolicy(attempts=3, initial=0.1, sleep=sleep))
        target.write("down", b"data")

        def broken(*_args: Any, **_kwargs: Any) -> Any:
            raise ConnectionResetError("reset by peer")

        monkeypatch.setattr(target.fs, "cat_file", broken)
        with pytest.raises(TransientStorageError) as info:
            target.read("down")
        err = info.value
        assert err.target == target.name
        assert err.key == "down"
        assert target.name in str(err)
        assert "down" in str(err)
        assert "3 attempts" in str(err)
        assert len(sleep.waits) == 2
        assert isinstance(err.__cause__, ConnectionResetError)

    # -- memory ------------------------------------------------------------------------------

    @pytest.mark.slow
    def test_streamed_write_memory_is_bounded(self, make_target: Callable[..., Target]) -> None:
        """Streaming 64 MiB raises peak RSS by far less than 64 MiB (about one part)."""
        if self.subprocess_spec is None:
            pytest.fail("every backend but memory must declare how to rebuild it in a subprocess")
        spec = dict(self.subprocess_spec)
        report = _run_stream_helper(spec, total=64 * 2**20, part=8 * 2**20)
        assert report["written"] == 64 * 2**20
        growth = report["peak_rss"] - report["baseline_rss"]
        assert growth < 40 * 2**20, report


def _run_stream_helper(spec: dict[str, Any], *, total: int, part: int) -> dict[str, Any]:
    spec = {**spec, "key": f"stream-{uuid.uuid4().hex}", "total": total, "part": part}
    out = subprocess.run(
        [sys.executable, str(STREAM_HELPER)],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report: dict[str, Any] = json.loads(out.stdout)
    return report


# -- the five backends ---------------------------------------------------------------------


class TestMemory(TargetContract):
    expect_public_read = None

    @pytest.fixture
    def make_target(self) -> Callable[..., Target]:
        name = f"contract-{uuid.uuid4().hex}"
        return lambda **kw: Target.from_url(f"memory://{name}/root", part_size=PART, **kw)

    def test_streamed_write_memory_is_bounded(self, make_target: Callable[..., Target]) -> None:
        """The memory backend keeps objects in the process, so it streams but promises no bound."""
        target = make_target()
        assert target.write_stream("s", _blocks(3 * PART)) == 3 * PART
        assert target.size("s") == 3 * PART


class TestLocal(TargetContract):
    expect_public_read = None

    @pytest.fixture
    def make_target(self, tmp_path: Path) -> Callable[..., Target]:
        root = tmp_path / "target"
        self.subprocess_spec = {"url": f"file://{tmp_path}/stream", "options": {}}
        return lambda **kw: Target.from_url(f"file://{root}", part_size=PART, **kw)

    def test_partial_writes_never_visible(self, target: Target) -> None:
        """A stream that fails midway leaves no object and no temporary file listed."""

        def failing() -> Iterator[bytes]:
            yield b"x" * 1000
            raise RuntimeError("source broke")

        with pytest.raises(RuntimeError, match="source broke"):
            target.write_stream("half", failing())
        assert not target.exists("half")
        assert list(target.list()) == []
        tmp = Path(target.root) / ".ctfy-tmp"
        assert not tmp.exists() or list(tmp.iterdir()) == []


def _s3_factory(endpoint: S3Endpoint, bucket: str) -> Callable[..., Target]:
    return lambda **kw: s3_target(endpoint, bucket, part_size=PART, **kw)


def _s3_spec(endpoint: S3Endpoint, bucket: str) -> dict[str, Any]:
    return {
        "url": f"s3://{bucket}/stream",
        "options": {
            "endpoint_url": endpoint.endpoint_url,
            "key": endpoint.key,
            "secret": endpoint.secret,
            "region": endpoint.region,
        },
    }


class TestMoto(TargetContract):
    expect_public_read = True  # moto checks no credentials at all: rightly reported as public

    @pytest.fixture
    def make_target(self, moto_s3: S3Endpoint) -> Callable[..., Target]:
        bucket = f"contract-{uuid.uuid4().hex[:20]}"
        make_bucket(moto_s3, bucket)
        self.subprocess_spec = _s3_spec(moto_s3, bucket)
        return _s3_factory(moto_s3, bucket)

    def test_failed_stream_leaves_no_multipart_upload(self, target: Target) -> None:
        """A stream that breaks after some parts aborts its multipart upload."""

        def failing() -> Iterator[bytes]:
            yield from _blocks(2 * PART)
            raise RuntimeError("source broke")

        with pytest.raises(RuntimeError, match="source broke"):
            target.write_stream("half", failing())
        bucket = target.root.split("/", 1)[0]
        uploads = target.fs.call_s3("list_multipart_uploads", Bucket=bucket)
        assert uploads.get("Uploads", []) == []
        assert not target.exists("half")

    def test_probe_reports_conditional_multipart(self, target: Target) -> None:
        """Moto refuses a conditional multipart completion over an existing object."""
        assert target.probe().atomic_create_multipart is True

    def test_endpoint_ignoring_conditions_is_detected(
        self, target: Target, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """If PUTs ignore If-None-Match, probe says so and writes switch to check-then-write."""
        real = target.fs.pipe_file

        def unconditional(path: str, data: bytes, **kwargs: Any) -> Any:
            kwargs.pop("mode", None)  # what an endpoint that ignores the header amounts to
            return real(path, data, **kwargs)

        monkeypatch.setattr(target.fs, "pipe_file", unconditional)
        caps = target.probe()
        assert caps.atomic_create is False
        assert caps.create_method == "check-then-write"
        assert any("ignored the create-only condition" in note for note in caps.notes)
        target.write("k", b"first")
        with pytest.raises(ObjectExistsError):
            target.write("k", b"second")
        assert target.read("k") == b"first"


@pytest.mark.rgw
class TestRGW(TargetContract):
    @pytest.fixture
    def make_target(self, rgw_s3: S3Endpoint) -> Callable[..., Target]:
        bucket = f"contract-{uuid.uuid4().hex[:20]}"
        make_bucket(rgw_s3, bucket)
        self.subprocess_spec = _s3_spec(rgw_s3, bucket)
        return _s3_factory(rgw_s3, bucket)

    def test_probe_finds_a_public_read_bucket(self, rgw_s3: S3Endpoint) -> None:
        """A bucket with a public-read ACL is reported as a broken never-public promise."""
        bucket = f"public-{uuid.uuid4().hex[:20]}"
        make_bucket(rgw_s3, bucket)
        s3_client(rgw_s3).put_bucket_acl(Bucket=bucket, ACL="public-read")
        caps = _s3_factory(rgw_s3, bucket)().probe()
        assert caps.public_read is True
        assert "public reads        YES" in caps.describe()

    def test_probe_reports_ignored_multipart_condition(self, target: Target) -> None:
        """Ceph RGW 16 ignores If-None-Match on multipart completion, and the probe says so."""
        caps = target.probe()
        assert caps.atomic_create is True
        assert caps.atomic_create_multipart is False
        assert any("multipart completion" in note for note in caps.notes)


@pytest.mark.azurite
class TestAzurite(TargetContract):
    @pytest.fixture
    def make_target(self, azurite: AzureEndpoint) -> Callable[..., Target]:
        container = f"contract-{uuid.uuid4().hex[:20]}"
        make_container(azurite, container)
        self.subprocess_spec = {
            "url": f"az://{container}/stream",
            "options": {"connection_string": azurite.connection_string},
        }
        return lambda **kw: Target.from_url(
            f"az://{container}/root",
            connection_string=azurite.connection_string,
            part_size=PART,
            **kw,
        )


def test_stream_helper_reports_real_numbers(tmp_path: Path) -> None:
    """The memory-measuring helper really writes the bytes it reports (checked on local disk)."""
    report = _run_stream_helper(
        {"url": f"file://{tmp_path}", "options": {}}, total=3 * 2**20, part=5 * 2**20
    )
    stored = [p for p in tmp_path.rglob("stream-*") if not p.name.endswith("-warmup")]
    assert len(stored) == 1
    assert stored[0].stat().st_size == report["written"] == 3 * 2**20
    assert report["peak_rss"] >= report["baseline_rss"] > 0


def test_generic_fsspec_filesystem_is_not_called_atomic(tmp_path: Path) -> None:
    """A filesystem without a known create-only mechanism is reported as check-then-write."""
    from fsspec.implementations.dirfs import DirFileSystem
    from fsspec.implementations.local import LocalFileSystem

    fs = DirFileSystem(path=str(tmp_path), fs=LocalFileSystem())
    target = Target.from_filesystem(fs, "root")
    target.write("k", b"first")
    with pytest.raises(ObjectExistsError):
        target.write("k", b"second")
    caps = target.probe()
    assert caps.atomic_create is False
    assert caps.create_method == "check-then-write"
    assert target.read("k") == b"first"
