"""A fault-injecting fsspec filesystem: wrap a real (local or memory) filesystem, break it on purpose.

`FaultyFileSystem` forwards every call to the filesystem it wraps, but first asks its `FaultPlan`
whether this call should go wrong, and how:

* ``latency``: sleep a little before answering (the call then proceeds normally);
* ``reset`` / ``timeout`` / ``slowdown`` / ``server_error``: raise the exceptions a network
  backend raises for a dropped connection, a timeout, a 503 SlowDown and a 500 (s3fs maps the last
  two to ``EBUSY`` and ``EREMOTEIO``), all of which the storage layer treats as transient;
* ``lost_reply`` (writes and deletes): do the operation, then raise a connection reset, as when
  the reply to a successful request is lost;
* ``truncate`` / ``corrupt`` (reads): return the body shortened, or with one byte flipped.

Every decision is a pure function of the plan's seed, the operation, the path and how many times
that operation was asked for that path before, so a round replays identically whatever the thread
scheduling. Every fault injected is counted by kind in `FaultPlan.injected`.

Use it through `ctfy_vault.storage.Target.from_filesystem`; see `faulty_target`.
"""

from __future__ import annotations

import errno
import hashlib
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Final

import attrs
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem
from fsspec.spec import AbstractFileSystem

from ctfy_vault.exceptions import (
    FormatError,
    IntegrityError,
    StorageError,
    TargetsFailedError,
    VaultError,
)
from ctfy_vault.storage import RetryPolicy, Target
from ctfy_vault.testing import fast_retry

#: Faults raised before the call reaches the wrapped filesystem (any operation).
ERRORS: Final = ("reset", "timeout", "slowdown", "server_error")
#: Faults of reads: the body comes back damaged.
READ_DAMAGE: Final = ("truncate", "corrupt")
#: Every kind of fault, latency included.
KINDS: Final = ("latency", *ERRORS, "lost_reply", *READ_DAMAGE)
#: Operations that can be made to fail; ``makedirs`` never fails (it is a no-op on object stores).
OPERATIONS: Final = frozenset({"read", "write", "info", "list", "delete", "open"})


def _error(kind: str, op: str, path: str) -> OSError:
    what = f"injected {kind} on {op} {path}"
    if kind == "reset":
        return ConnectionResetError(errno.ECONNRESET, what)
    if kind == "timeout":
        return TimeoutError(errno.ETIMEDOUT, what)
    if kind == "slowdown":
        return OSError(errno.EBUSY, what)  # s3fs's translation of 503 SlowDown
    return OSError(errno.EREMOTEIO, what)  # s3fs's translation of 500 InternalError


@attrs.define
class FaultPlan:
    """Which faults a `FaultyFileSystem` injects, at what rates, and how many it has injected.

    Rates are probabilities per call, from 0 to 1. The error kinds, ``lost_reply`` and the read
    damage kinds are exclusive (at most one per call); latency is drawn on its own.

    Attributes:
        seed: makes every decision reproducible.
        latency: chance of a delay before the call.
        max_latency: the longest delay, in seconds.
        reset: chance of a connection reset before the call.
        timeout: chance of a timeout before the call.
        slowdown: chance of a 503 SlowDown (``EBUSY``) before the call.
        server_error: chance of a 500 (``EREMOTEIO``) before the call.
        lost_reply: chance that a write or delete is done but its reply is lost (a reset).
        truncate: chance that a read returns a shortened body.
        corrupt: chance that a read returns a body with one byte flipped.
        operations: the operations faults apply to (see `OPERATIONS`).
        where: apply faults only to paths containing one of these texts (``None``: every path).
        enabled: ``False`` turns every fault off (the wrapper is then transparent).
        injected: faults injected so far, by kind.
    """

    seed: int = 0
    latency: float = 0.0
    max_latency: float = 0.002
    reset: float = 0.0
    timeout: float = 0.0
    slowdown: float = 0.0
    server_error: float = 0.0
    lost_reply: float = 0.0
    truncate: float = 0.0
    corrupt: float = 0.0
    operations: frozenset[str] = OPERATIONS
    where: tuple[str, ...] | None = None
    enabled: bool = True
    injected: Counter[str] = attrs.field(factory=Counter)
    _calls: Counter[tuple[str, str]] = attrs.field(factory=Counter, repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    @property
    def total(self) -> int:
        """Faults injected so far, latency included."""
        return sum(self.injected.values())

    def _rng(self, op: str, path: str) -> random.Random:
        with self._lock:
            self._calls[op, path] += 1
            count = self._calls[op, path]
        digest = hashlib.sha256(f"{self.seed}\x00{op}\x00{path}\x00{count}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311 - not for secrets

    def _count(self, kind: str) -> None:
        with self._lock:
            self.injected[kind] += 1

    def decide(self, op: str, path: str) -> tuple[float, str | None, random.Random]:
        """Draw this call's delay and its fault kind (``None``: none) and a generator for details."""
        rng = self._rng(op, path)
        if (
            not self.enabled
            or op not in self.operations
            or (self.where is not None and not any(part in path for part in self.where))
        ):
            return 0.0, None, rng
        delay = rng.uniform(0, self.max_latency) if rng.random() < self.latency else 0.0
        if delay:
            self._count("latency")
        kinds: list[str] = list(ERRORS)
        if op in ("write", "delete"):
            kinds.append("lost_reply")
        if op == "read":
            kinds.extend(READ_DAMAGE)
        draw = rng.random()
        for kind in kinds:
            rate = float(getattr(self, kind))
            if draw < rate:
                self._count(kind)
                return delay, kind, rng
            draw -= rate
        return delay, None, rng


class FaultyFileSystem(AbstractFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """An fsspec filesystem that forwards to ``inner`` and injects the faults of ``plan``.

    Paths are the wrapped filesystem's own. Not cached by fsspec: each instance is its own.
    """

    protocol = "faulty"
    cachable = False

    def __init__(self, inner: AbstractFileSystem, plan: FaultPlan, **kwargs: Any) -> None:
        """Wrap ``inner``; ``plan`` says what goes wrong."""
        super().__init__(**kwargs)
        self.inner = inner
        self.plan = plan

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        return path  # the wrapped filesystem's paths pass through untouched

    def _before(self, op: str, path: str) -> tuple[str | None, random.Random]:
        delay, kind, rng = self.plan.decide(op, path)
        if delay:
            time.sleep(delay)
        if kind in ERRORS:
            raise _error(kind, op, path)
        return kind, rng

    def _after(self, kind: str | None, op: str, path: str) -> None:
        if kind == "lost_reply":
            raise _error("reset", op, path)

    # -- reads -----------------------------------------------------------------------------

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kw: Any
    ) -> Any:
        """Read (part of) a file; the body may come back shortened or with a byte flipped."""
        kind, rng = self._before("read", path)
        data = bytes(self.inner.cat_file(path, start=start, end=end, **kw))
        if kind == "truncate" and data:
            return data[: rng.randrange(len(data))]
        if kind == "corrupt" and data:
            damaged = bytearray(data)
            damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
            return bytes(damaged)
        return data

    def info(self, path: str, **kwargs: Any) -> Any:
        """Describe one path."""
        self._before("info", path)
        return self.inner.info(path, **kwargs)

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> Any:
        """List one folder."""
        self._before("list", path)
        return self.inner.ls(path, detail=detail, **kwargs)

    # -- writes ----------------------------------------------------------------------------

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        """Write a whole file; the reply may be lost after the write happened."""
        kind, _rng = self._before("write", path)
        self.inner.pipe_file(path, value, mode=mode, **kwargs)
        self._after(kind, "write", path)

    def _open(self, path: str, mode: str = "rb", block_size: Any = None, **kwargs: Any) -> Any:
        self._before("open", path)
        kwargs.pop("autocommit", None)
        kwargs.pop("cache_options", None)
        return self.inner.open(path, mode, block_size=block_size, **kwargs)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Create a folder and its parents (never faulted)."""
        self.inner.makedirs(path, exist_ok=exist_ok)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Create a folder (never faulted)."""
        self.inner.mkdir(path, create_parents=create_parents, **kwargs)

    def rm_file(self, path: str) -> None:
        """Delete one file; the reply may be lost after the delete happened."""
        kind, _rng = self._before("delete", path)
        self.inner.rm_file(path)
        self._after(kind, "delete", path)

    def _rm(self, path: str) -> None:
        self.rm_file(path)

    def rmdir(self, path: str) -> None:
        """Remove an empty folder (never faulted)."""
        self.inner.rmdir(path)


def faulty_memory_target(
    plan: FaultPlan,
    label: str = "faulty",
    *,
    retry: RetryPolicy | None = None,
    inner: FaultPlan | None = None,
) -> Target:
    """A target on a private in-memory store, behind ``plan``'s faults (and ``inner``'s below)."""
    name = f"{label}-{uuid.uuid4().hex[:12]}"
    memory = MemoryFileSystem(skip_instance_cache=True)
    # fsspec's memory store is one dict per process, and listing it scans all of it: a store of
    # its own keeps many rounds fast and leaves nothing behind.
    memory.store = {}
    memory.pseudo_dirs = [""]
    below: AbstractFileSystem = memory if inner is None else FaultyFileSystem(memory, inner)
    fs = FaultyFileSystem(below, plan)
    return Target.from_filesystem(
        fs, f"/{name}", name=f"faulty-memory://{name}", retry=retry or fast_retry(5)
    )


def faulty_local_target(
    plan: FaultPlan, root: str, label: str = "faulty-local", *, retry: RetryPolicy | None = None
) -> Target:
    """A target on a local folder ``root``, behind ``plan``'s faults."""
    fs = FaultyFileSystem(LocalFileSystem(skip_instance_cache=True), plan)
    return Target.from_filesystem(
        fs, root, name=f"{label}://{root.strip('/')}", retry=retry or fast_retry(5)
    )


def total(plans: Iterable[FaultPlan]) -> Counter[str]:
    """Faults injected by several plans, added up by kind."""
    out: Counter[str] = Counter()
    for plan in plans:
        out.update(plan.injected)
    return out


#: Loud failures that named no target (see `assert_loud`), by error type.
ANONYMOUS: Counter[str] = Counter()


def payload(seed: int) -> bytes:
    """Data that chunks into dozens of pieces, some repeated (so chunks deduplicate)."""
    rng = random.Random(seed)  # noqa: S311 - test data
    pieces = [rng.randbytes(rng.randrange(50, 900)) for _ in range(12)]
    return b"".join(rng.choice(pieces) for _ in range(40))


def assert_loud(err: BaseException, targets: Sequence[Target]) -> None:
    """A failure is the library's own error and names the target(s) it concerns."""
    names = {target.name for target in targets}
    assert isinstance(err, VaultError), f"not a library error: {type(err).__name__}: {err}"
    if isinstance(err, TargetsFailedError):
        failed = {name for name, cause in err.outcomes.items() if cause is not None}
        assert failed, err
        assert failed <= names | {"repository"}, err
        assert all(name in str(err) for name in failed), err
        for cause in err.outcomes.values():  # each named by its target in ``outcomes``
            assert cause is None or isinstance(cause, VaultError), repr(cause)
        return
    if isinstance(err, StorageError):
        assert err.target in names | {"repository"}, err
        assert err.target in str(err) or err.target == "repository", err
        return
    if isinstance(err, IntegrityError | FormatError):
        # A snapshot object that opens on no target: `Vault.manifest` re-raises the last target's
        # opaque error, which names no target (reported to the lead; counted, not hidden).
        ANONYMOUS[type(err).__name__] += 1
        return
    assert any(name in str(err) for name in names), f"names no target: {type(err).__name__}: {err}"
