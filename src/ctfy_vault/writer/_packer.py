"""Format v2: sealed chunks go into packs, and full packs to bounded per-target write queues.

The sealing threads never wait for a storage write: a chunk sealed is appended to the pack being
built for the targets that need it (a copy of a few hundred bytes to a few MiB, under a lock held
for just that), and a full pack is handed to each of those targets' queues. Only when a target's
queue is full does the hand-off wait, and that wait is the back-pressure: the sealing threads
stop, the readers' limiter fills, and reading pauses until the slowest target catches up.

Targets that need the same chunks (every target, in the common case) share one builder, so they
receive byte-identical packs (one id everywhere: a heal copies a pack another target lists
already). A target that lacks chunks the others hold (a target added later, one that failed part
of a run) gets its own builder for those.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Final

import attrs

from ctfy_vault.crypto import SealedChunk, Sealer
from ctfy_vault.exceptions import ConfigurationError
from ctfy_vault.repository import MAX_PACK_SIZE, MIN_PACK_SIZE, Pack, PackBuilder
from ctfy_vault.storage import Target

__all__ = ["PACK_WRITERS", "Packer"]

log = logging.getLogger("ctfy_vault.writer")

#: Concurrent pack writes per target at most (each pack is up to the pack size in memory).
PACK_WRITERS: Final = 2

#: Store one pack on one target; ``False`` when the target failed (it has been told why).
StorePack = Callable[[Target, Pack], bool]
#: Told about each pack just before it is queued for the targets named.
Shipped = Callable[[frozenset[str], Pack], None]


@attrs.define
class _Lane:
    """One target's queue of packs to write and the threads writing them."""

    target: Target
    packs: queue.Queue[Pack | None]
    threads: list[threading.Thread] = attrs.field(factory=list)


@attrs.define
class Packer:
    """Builds packs from sealed chunks and writes each to its targets through bounded queues.

    Thread-safe: `add` may be called from any number of sealing threads. Memory is at most one
    pack per builder being filled, plus per target ``writers`` packs being written and one
    waiting; packs bound for several targets are one object shared by their queues.

    Args:
        sealer: seals pack headers and trailers.
        targets: every target the run writes to.
        store: writes one pack to one target (create-only) and accounts for it.
        shipped: told about each pack before it is queued (the writer batches index objects).
        pack_size: the size at which a pack is closed.
        writers: concurrent pack writes per target.
    """

    _sealer: Sealer = attrs.field(alias="sealer", repr=False)
    _targets: Sequence[Target] = attrs.field(alias="targets")
    _store: StorePack = attrs.field(alias="store", repr=False)
    _pack_size: int = attrs.field(alias="pack_size")
    _writers: int = attrs.field(default=PACK_WRITERS, alias="writers")
    _shipped: Shipped | None = attrs.field(default=None, alias="shipped", repr=False)
    _builders: dict[frozenset[str], PackBuilder] = attrs.field(init=False, factory=dict)
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)
    _lanes: dict[str, _Lane] = attrs.field(init=False, factory=dict)
    _stopping: threading.Event = attrs.field(init=False, factory=threading.Event)

    @staticmethod
    def check_size(pack_size: int) -> None:
        """Refuse a pack size `PackBuilder` would refuse.

        Raises:
            ConfigurationError: it is not an integer from `MIN_PACK_SIZE` to `MAX_PACK_SIZE`.
        """
        if type(pack_size) is not int or not MIN_PACK_SIZE <= pack_size <= MAX_PACK_SIZE:
            raise ConfigurationError(
                f"pack_size must be an integer from {MIN_PACK_SIZE} to {MAX_PACK_SIZE} bytes"
            )

    def __attrs_post_init__(self) -> None:
        self.check_size(self._pack_size)
        for target in self._targets:
            lane = _Lane(target=target, packs=queue.Queue(maxsize=1))
            for number in range(self._writers):
                thread = threading.Thread(
                    target=self._drain,
                    args=(lane,),
                    name=f"ctfy-pack-{target.name}-{number}",
                    daemon=True,
                )
                lane.threads.append(thread)
            self._lanes[target.name] = lane
        for lane in self._lanes.values():
            for thread in lane.threads:
                thread.start()

    def add(self, group: frozenset[str], chunk: SealedChunk) -> None:
        """Append a sealed chunk to the pack being built for the targets named in ``group``.

        Waits only when the pack it fills must be queued for a target whose queue is full.
        """
        with self._lock:
            builder = self._builders.get(group)
            if builder is None:
                builder = self._builders[group] = PackBuilder(self._sealer, self._pack_size)
            full = not builder.add(chunk)
            pack = builder.finish() if full else None
        if pack is not None:
            self._ship(group, pack)

    def close(self) -> None:
        """Finish the packs being built, queue them, and wait until every queued pack is written.

        Writes that failed were reported through ``store``; nothing raises here.
        """
        with self._lock:
            left = [(group, b.finish()) for group, b in self._builders.items() if b.count]
            self._builders.clear()
        for group, pack in left:
            self._ship(group, pack)
        self._stop()

    def abort(self) -> None:
        """Stop without finishing the packs being built; packs already queued are dropped."""
        self._stopping.set()
        for lane in self._lanes.values():
            while True:
                try:
                    lane.packs.get_nowait()
                except queue.Empty:
                    break
        self._stop()

    def _ship(self, group: frozenset[str], pack: Pack) -> None:
        if self._shipped is not None:
            self._shipped(group, pack)
        for name in sorted(group):
            lane = self._lanes.get(name)
            if lane is not None and not self._stopping.is_set():
                lane.packs.put(pack)

    def _stop(self) -> None:
        for lane in self._lanes.values():
            for _thread in lane.threads:
                lane.packs.put(None)
        for lane in self._lanes.values():
            for thread in lane.threads:
                thread.join()

    def _drain(self, lane: _Lane) -> None:
        while True:
            pack = lane.packs.get()
            if pack is None:
                return
            if self._stopping.is_set():
                continue
            try:
                self._store(lane.target, pack)
            except BaseException:  # pragma: no cover - store reports failures itself
                log.exception("pack %s on %s: unexpected failure", pack.name, lane.target.name)
