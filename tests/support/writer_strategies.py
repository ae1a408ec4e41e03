"""Strategies, small chunker settings and a fault-injecting target for the writer and heal tests."""

from __future__ import annotations

import errno
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import attrs
from fsspec.implementations.memory import MemoryFileSystem
from hypothesis import strategies as st

from ctfy_vault import testing
from ctfy_vault.crypto import MasterKeys, Sealer
from ctfy_vault.manifest import Manifest, open_entry
from ctfy_vault.storage import RetryPolicy, Target
from ctfy_vault.writer import ChunkerParams, chunk_key

#: Small chunks so that tests see many of them without big inputs.
SMALL = ChunkerParams(min_size=64, avg_size=256, max_size=1024)
#: A retry policy that does not sleep, so fault tests are fast.
FAST_RETRY = RetryPolicy(attempts=3, initial=0, maximum=0, sleep=lambda _s: None)
NOW = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
REPO_ID = bytes(range(16))


def sealer() -> Sealer:
    """An encrypting sealer with fixed keys (deterministic chunk ids across tests)."""
    return Sealer(repo_id=REPO_ID, keys=MasterKeys(data_key=b"d" * 32, chunk_id_key=b"c" * 32))


def memory_target(label: str = "t") -> Target:
    """A fresh in-memory target with a unique root, retrying without waiting."""
    return testing.memory_target(f"{label}-{uuid.uuid4().hex}", retry=FAST_RETRY)


def contents(target: Target) -> dict[str, bytes]:
    """Every object a target holds, by key."""
    return {key: target.read(key) for key in target.list("")}


def manifests(target: Target, seal: Sealer) -> list[Manifest]:
    """Open every manifest a target holds."""
    found = []
    for key in target.list("snapshots"):
        entry = open_entry(seal, key.rsplit("/", 1)[-1], target.read(key)).entry
        if isinstance(entry, Manifest):
            found.append(entry)
    return found


def restore(target: Target, seal: Sealer, manifest: Manifest, path: str) -> bytes:
    """Rebuild one file of a snapshot from the chunks stored on a target."""
    entry = next(item for item in manifest.files if item.path == path)
    return b"".join(seal.open_chunk(c, target.read(chunk_key(c))) for c in entry.chunks)


def blobs(max_size: int = 4096) -> st.SearchStrategy[bytes]:
    """Data that chunks into several pieces and repeats, so backups deduplicate."""
    piece = st.sampled_from([b"A" * 300, b"INSERT INTO t VALUES (1);\n" * 20, bytes(range(256))])
    return st.lists(st.one_of(piece, st.binary(max_size=200)), max_size=max_size // 256).map(
        b"".join
    )


@attrs.define
class Faults:
    """Which failures a `FaultyMemoryFS` injects; tests flip them while a backup runs.

    Attributes:
        every: fail every ``every``-th write with a transient error (``None``: never).
        writes_before_death: after this many writes the target stops answering at all.
        full: every write fails with "no space left on device".
        down: every request fails with "connection refused".
        burst: the next ``burst`` writes fail with a transient error (an outage outlasting retries).
        writes: writes attempted so far.
    """

    every: int | None = None
    writes_before_death: int | None = None
    full: bool = False
    down: bool = False
    burst: int = 0
    writes: int = 0
    lock: threading.Lock = attrs.field(factory=threading.Lock)

    def on_request(self) -> None:
        """Fail the way a dead endpoint does."""
        if self.down:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "connection refused")

    def on_write(self) -> None:
        """Count a write and fail it if a fault says so."""
        self.on_request()
        with self.lock:
            self.writes += 1
            count = self.writes
            if self.writes_before_death is not None and count > self.writes_before_death:
                self.down = True
            in_burst = self.burst > 0
            self.burst = max(0, self.burst - 1)
        if self.down:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "connection refused")
        if self.full:
            raise OSError(errno.ENOSPC, "no space left on device")
        if in_burst or (self.every is not None and count % self.every == 0):
            raise OSError(errno.EAGAIN, "try again")


class FaultyMemoryFS(MemoryFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """fsspec's memory filesystem with injected faults (same shared store as ``memory://``)."""

    def __init__(self, faults: Faults, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.faults = faults

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        """Write, unless a fault fires first."""
        self.faults.on_write()
        super().pipe_file(path, value, mode=mode, **kwargs)

    def cat_file(self, path: str, start: int | None = None, end: int | None = None) -> Any:
        """Read, unless the target is down."""
        self.faults.on_request()
        return super().cat_file(path, start=start, end=end)

    def info(self, path: str, **kwargs: Any) -> Any:
        """Stat, unless the target is down."""
        self.faults.on_request()
        return super().info(path, **kwargs)

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> Any:
        """List, unless the target is down."""
        self.faults.on_request()
        return super().ls(path, detail=detail, **kwargs)


def faulty_target(faults: Faults, label: str = "faulty") -> Target:
    """A memory target whose requests fail as ``faults`` says."""
    fs = FaultyMemoryFS(faults, skip_instance_cache=True)
    name = f"{label}-{uuid.uuid4().hex}"
    return Target.from_filesystem(fs, f"/{name}", name=f"memory://{name}", retry=FAST_RETRY)


def stream_of(data: bytes, block: int = 1000) -> Iterator[bytes]:
    """Yield ``data`` in blocks (a pipe-like source)."""
    for start in range(0, len(data), block):
        yield data[start : start + block]


def argvs() -> st.SearchStrategy[list[str]]:
    """Command lines: a non-empty program, then any arguments (text without NUL characters)."""
    word = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))
    return st.tuples(word.filter(bool), st.lists(word, max_size=5)).map(
        lambda parts: [parts[0], *parts[1]]
    )
