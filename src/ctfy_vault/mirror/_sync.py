"""`mirror`: copy new and changed objects from a documents bucket to replicas, never deleting."""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import attrs

from ctfy_vault.exceptions import (
    ConfigurationError,
    IntegrityError,
    ObjectExistsError,
    VaultError,
)
from ctfy_vault.mirror._state import MirrorState
from ctfy_vault.storage import Entry, Target

#: Where a replica without bucket versioning keeps the previous versions of changed objects:
#: ``.ctfy-versions/<key>/<UTC time>-<sha256 prefix>``. The mirror never copies this folder.
VERSIONS_PREFIX = ".ctfy-versions"
#: Objects up to this size are read once into memory and written to every replica from there.
IN_MEMORY_LIMIT = 32 * 2**20

_MD5 = re.compile(r"^[0-9a-f]{32}$")


@attrs.frozen(kw_only=True)
class ObjectOutcome:
    """What one mirror run did with one object on one replica.

    Attributes:
        key: the object key.
        replica: the replica's display name.
        action: ``copied`` (new), ``updated`` (changed at the source; previous version kept),
            ``restored`` (copied before but missing from the replica) or ``failed``.
        previous: where the replaced version is kept: ``"bucket versioning"`` or its key under
            `VERSIONS_PREFIX`; ``None`` when nothing was replaced.
        size: bytes copied.
        error: why it failed (no secrets in it).
    """

    key: str
    replica: str
    action: str
    previous: str | None = None
    size: int = 0
    error: str | None = None


@attrs.frozen(kw_only=True)
class MirrorReport:
    """One mirror run, per object and per replica.

    Attributes:
        source: the source's display name.
        replicas: the replicas' display names.
        listed: objects listed at the source.
        unchanged: (object, replica) pairs already up to date, which cost no request.
        outcomes: every (object, replica) pair that needed work, sorted by key then replica.
        deleted_at_source: keys on a replica (or copied earlier) that the source no longer lists;
            they stay on the replicas.
        seconds: wall-clock duration.
    """

    source: str
    replicas: tuple[str, ...]
    listed: int
    unchanged: int
    outcomes: tuple[ObjectOutcome, ...]
    deleted_at_source: tuple[str, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        """``True`` when no copy failed."""
        return not self.failed

    @property
    def failed(self) -> tuple[ObjectOutcome, ...]:
        """The outcomes that failed."""
        return tuple(o for o in self.outcomes if o.action == "failed")

    @property
    def bytes_copied(self) -> int:
        """Bytes written to replicas in this run."""
        return sum(o.size for o in self.outcomes if o.action != "failed")

    def count(self, action: str) -> int:
        """Return how many outcomes have ``action``."""
        return sum(1 for o in self.outcomes if o.action == action)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "source": self.source,
            "replicas": list(self.replicas),
            "listed": self.listed,
            "unchanged": self.unchanged,
            "copied": self.count("copied"),
            "updated": self.count("updated"),
            "restored": self.count("restored"),
            "failed": self.count("failed"),
            "bytes_copied": self.bytes_copied,
            "seconds": round(self.seconds, 3),
            "ok": self.ok,
            "deleted_at_source": list(self.deleted_at_source),
            "outcomes": [attrs.asdict(o) for o in self.outcomes],
        }


@attrs.frozen
class _Replica:
    target: Target
    listing: dict[str, Entry]
    versioned: bool
    same_service: bool


@attrs.frozen
class _Job:
    entry: Entry
    fingerprint: str
    work: tuple[tuple[int, str], ...]  # (replica index, "copy" | "restore" | "check")


def fingerprint(entry: Entry) -> str:
    """Return the change marker of a source object: its ETag, else its size and stamp."""
    if entry.etag:
        return f"etag:{entry.etag}:{entry.size}"
    return f"stat:{entry.size}:{entry.stamp}"


def _is_mirrored(key: str) -> bool:
    return not key.startswith(VERSIONS_PREFIX + "/")


def mirror(
    source: Target,
    replicas: Sequence[Target],
    *,
    state: MirrorState | str | os.PathLike[str] | None = None,
    workers: int = 16,
    server_side: bool = True,
    clock: Callable[[], datetime] | None = None,
) -> MirrorReport:
    """Copy every object that is new or changed at ``source`` to each replica; never delete.

    * New objects are written create-only (server-side ``CopyObject`` when source and replica are
      buckets of one S3 service).
    * A changed object replaces the replica's copy only after the previous version is safe: kept by
      the replica's bucket versioning, or else copied (create-only, verified) to
      ``.ctfy-versions/<key>/<time>-<hash>`` first. Every version a run has seen survives.
    * Each copy is verified: size, and the MD5 ETag on S3 or the bytes read back elsewhere.
    * Objects the source no longer lists stay on the replicas and are named in the report.
    * Incremental: with a state (object or JSON file path), an object whose fingerprint has not
      changed and which the replica still lists costs no request beyond the listings.

    Transient errors are retried by each `Target`; an object that still fails is reported and the
    run goes on.

    Args:
        source: the documents bucket (or folder); its ``.ctfy-versions`` folder is not copied.
        replicas: one or more targets to copy to.
        state: what earlier runs copied; a path is loaded and saved back (atomically) at the end.
        workers: objects copied concurrently (requests to S3-compatibles are small and latency-bound).
        server_side: use server-side copy within one S3 service.
        clock: the time used to name kept versions (default: the system clock, UTC).

    Returns:
        The report; ``report.ok`` is ``False`` if any copy failed.

    Raises:
        ConfigurationError: no replicas, a replica that is the source, or ``workers`` < 1.
        StorageError: a listing failed (nothing is copied without a complete listing).
    """
    if not replicas:
        raise ConfigurationError("mirror needs at least one replica")
    if workers < 1:
        raise ConfigurationError("workers must be at least 1")
    names = [r.name for r in replicas]
    if source.name in names or len(set(names)) != len(names):
        raise ConfigurationError("replicas must differ from each other and from the source")
    started = time.monotonic()
    path = None if state is None or isinstance(state, MirrorState) else state
    memory = state if isinstance(state, MirrorState) else MirrorState()
    if path is not None:
        memory = MirrorState.load(path)
    now = clock or (lambda: datetime.now(UTC))
    try:
        return _run(
            source,
            replicas,
            memory,
            workers=workers,
            server_side=server_side,
            now=now,
            started=started,
        )
    finally:
        if path is not None:
            memory.save(path)


def _run(
    source: Target,
    replicas: Sequence[Target],
    state: MirrorState,
    *,
    workers: int,
    server_side: bool,
    now: Callable[[], datetime],
    started: float,
) -> MirrorReport:
    entries = [e for e in source.entries() if _is_mirrored(e.key)]
    sides = [
        _Replica(
            r,
            {e.key: e for e in r.entries() if _is_mirrored(e.key)},
            r.supports.versioning and r.versioning_enabled(),
            server_side and r.supports.server_side_copy and r.can_copy_from(source),
        )
        for r in replicas
    ]
    jobs: list[_Job] = []
    unchanged = 0
    for entry in entries:
        mark = fingerprint(entry)
        work: list[tuple[int, str]] = []
        for index, side in enumerate(sides):
            known = state.get(side.target.name, entry.key)
            if entry.key not in side.listing:
                work.append((index, "restore" if known is not None else "copy"))
            elif known == mark:
                unchanged += 1
            else:
                work.append((index, "check"))
        if work:
            jobs.append(_Job(entry, mark, tuple(work)))
    outcomes: list[ObjectOutcome] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for job, results in zip(
            jobs, pool.map(lambda j: _process(source, sides, j, now), jobs), strict=True
        ):
            for index, outcome in results:
                if outcome is None or outcome.action != "failed":
                    state.record(sides[index].target.name, job.entry.key, job.fingerprint)
                if outcome is None:
                    unchanged += 1
                else:
                    outcomes.append(outcome)
    present = {e.key for e in entries}
    gone: set[str] = set()
    for side in sides:
        gone |= set(side.listing) | state.keys(side.target.name)
    outcomes.sort(key=lambda o: (o.key, o.replica))
    return MirrorReport(
        source=source.name,
        replicas=tuple(s.target.name for s in sides),
        listed=len(entries),
        unchanged=unchanged,
        outcomes=tuple(outcomes),
        deleted_at_source=tuple(sorted(gone - present)),
        seconds=time.monotonic() - started,
    )


class _Source:
    """The source object, read at most once into memory (or streamed when large).

    A streamed object's digest is computed while it streams, so verifying a copy does not read the
    source again. The MD5 is computed only when some replica's ETags are MD5s
    (`Support.etag_is_md5`); other replicas are verified by SHA-256 alone, which saves an MD5 pass
    over both copies.
    """

    def __init__(self, target: Target, entry: Entry, *, md5: bool = True) -> None:
        self.target = target
        self.entry = entry
        self.md5 = md5
        self._data: bytes | None = None
        self._digest: tuple[int, str, str] | None = None

    @property
    def small(self) -> bool:
        return self.entry.size <= IN_MEMORY_LIMIT

    def blocks(self) -> Iterator[bytes]:
        if self.small:
            if self._data is None:
                self._data = self.target.read(self.entry.key)  # one GET on S3
            yield self._data
            return
        md5 = hashlib.md5(usedforsecurity=False) if self.md5 else None
        sha = hashlib.sha256()
        size = 0
        for block in self.target.read_stream(self.entry.key):
            if md5 is not None:
                md5.update(block)
            sha.update(block)
            size += len(block)
            yield block
        self._digest = (size, md5.hexdigest() if md5 is not None else "", sha.hexdigest())

    def digest(self) -> tuple[int, str, str]:
        """Return (size, MD5 hex or ``""`` when not wanted, SHA-256 hex) of the source bytes."""
        if self._digest is None:
            self._digest = _digest(self.blocks(), md5=self.md5)
        return self._digest


def _digest(blocks: Iterable[bytes], *, md5: bool = True) -> tuple[int, str, str]:
    """Return (size, MD5 hex, SHA-256 hex) of ``blocks``; the MD5 is ``""`` if not ``md5``."""
    md5_hash = hashlib.md5(usedforsecurity=False) if md5 else None
    sha = hashlib.sha256()
    size = 0
    for block in blocks:
        if md5_hash is not None:
            md5_hash.update(block)
        sha.update(block)
        size += len(block)
    return size, md5_hash.hexdigest() if md5_hash is not None else "", sha.hexdigest()


def _sha_only(blocks: Iterable[bytes]) -> tuple[int, str]:
    size, _, sha = _digest(blocks, md5=False)
    return size, sha


def _process(
    source: Target, sides: Sequence[_Replica], job: _Job, now: Callable[[], datetime]
) -> list[tuple[int, ObjectOutcome | None]]:
    # MD5 only serves to compare with MD5 ETags; other replicas are checked by SHA-256.
    md5 = any(sides[index].target.supports.etag_is_md5 for index, _kind in job.work)
    src = _Source(source, job.entry, md5=md5)
    results: list[tuple[int, ObjectOutcome | None]] = []
    for index, kind in job.work:
        side = sides[index]
        try:
            outcome = _one(src, side, kind, now)
        except (VaultError, OSError) as err:
            outcome = ObjectOutcome(
                key=job.entry.key,
                replica=side.target.name,
                action="failed",
                error=f"{type(err).__name__}: {err}",
            )
        results.append((index, outcome))
    return results


def _one(
    src: _Source, side: _Replica, kind: str, now: Callable[[], datetime]
) -> ObjectOutcome | None:
    key = src.entry.key
    replica = side.target
    if kind in ("copy", "restore"):
        if side.same_service and src.entry.size <= 5 * 2**30:
            etag = replica.copy_from(src.target, key)
            # The service's answer names the copy's ETag: equal to the source's, the copy is
            # verified without another request.
            if not (etag and etag == src.entry.etag):
                _verify(src, replica)
        else:
            _create(replica, key, src)
            _verify(src, replica)
        action = "copied" if kind == "copy" else "restored"
        return ObjectOutcome(key=key, replica=replica.name, action=action, size=src.entry.size)
    if _same_content(src, side):
        return None
    previous = "bucket versioning" if side.versioned else _keep_previous(replica, key, now)
    replica.replace(key, src.blocks())
    _verify(src, replica)
    return ObjectOutcome(
        key=key, replica=replica.name, action="updated", previous=previous, size=src.entry.size
    )


def _create(replica: Target, key: str, src: _Source) -> None:
    try:
        if src.small:
            replica.write(key, b"".join(src.blocks()))
        else:
            replica.write_stream(key, src.blocks())
    except ObjectExistsError:
        # Appeared since the listing (another mirror run): fine only if it is these bytes.
        if _sha_only(replica.read_stream(key)) != _size_and_sha(src):
            raise


def _same_content(src: _Source, side: _Replica) -> bool:
    there = side.listing[src.entry.key]
    if there.size != src.entry.size:
        return False
    if (
        _md5_etags(src.target, side.target)
        and src.entry.etag
        and there.etag
        and _MD5.match(src.entry.etag)
        and _MD5.match(there.etag)
    ):
        return src.entry.etag == there.etag
    return _sha_only(side.target.read_stream(src.entry.key)) == _size_and_sha(src)


def _md5_etags(*targets: Target) -> bool:
    """Whether every target's ETags are derived from the bytes alone (S3's MD5 ETags)."""
    return all(target.supports.etag_is_md5 for target in targets)


def _size_and_sha(src: _Source) -> tuple[int, str]:
    size, _, sha = src.digest()
    return size, sha


def _keep_previous(replica: Target, key: str, now: Callable[[], datetime]) -> str:
    old = replica.read(key) if replica.size(key) <= IN_MEMORY_LIMIT else None
    blocks: Iterable[bytes] = [old] if old is not None else replica.read_stream(key)
    size, sha = _sha_only(blocks)
    stamp = now().astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    version_key = f"{VERSIONS_PREFIX}/{key}/{stamp}-{sha[:16]}"
    try:
        if old is not None:
            replica.write(version_key, old)
        else:
            replica.write_stream(version_key, replica.read_stream(key))
    except ObjectExistsError:
        pass  # the same instant and hash: these very bytes are kept already
    if _sha_only(replica.read_stream(version_key))[1] != sha or replica.size(version_key) != size:
        raise IntegrityError("the kept previous version does not match; nothing was replaced")
    return version_key


def _verify(src: _Source, replica: Target) -> None:
    there = replica.stat(src.entry.key)
    if there is None or there.size != src.entry.size:
        raise IntegrityError("copy verification failed: size differs from the source")
    if _md5_etags(replica, src.target) and there.etag and there.etag == src.entry.etag:
        ok = True  # same content-derived ETag and size: a byte-identical copy (multipart too)
    elif replica.supports.etag_is_md5 and there.etag and _MD5.match(there.etag):
        if src.entry.etag and _MD5.match(src.entry.etag):
            ok = there.etag == src.entry.etag
        else:
            ok = there.etag == src.digest()[1]
    else:
        ok = _sha_only(replica.read_stream(src.entry.key))[1] == src.digest()[2]
    if not ok:
        raise IntegrityError("copy verification failed: checksum differs from the source")


def watch(
    source: Target,
    replicas: Sequence[Target],
    *,
    interval: float,
    state: MirrorState | str | os.PathLike[str] | None = None,
    runs: int | None = None,
    on_report: Callable[[MirrorReport], object] = lambda _report: None,
    sleep: Callable[[float], object] = time.sleep,
    **options: Any,
) -> list[MirrorReport]:
    """Run `mirror` again and again, ``interval`` seconds apart, for continuous synchronisation.

    Args:
        source: the documents bucket.
        replicas: the targets to copy to.
        interval: seconds between the end of one run and the start of the next (> 0).
        state: as for `mirror`; a path is saved after every run.
        runs: stop after this many runs (default: run until interrupted).
        on_report: called with each run's report.
        sleep: how to wait (injected for tests).
        **options: passed to `mirror`.

    Returns:
        The reports of the runs made (when ``runs`` is given).
    """
    if interval <= 0:
        raise ConfigurationError("the watch interval must be positive")
    kept = MirrorState() if state is None else state  # incremental across runs even unsaved
    reports: list[MirrorReport] = []
    done = 0
    while runs is None or done < runs:
        report = mirror(source, replicas, state=kept, **options)
        on_report(report)
        if runs is not None:
            reports.append(report)
        done += 1
        if runs is None or done < runs:
            sleep(interval)
    return reports
