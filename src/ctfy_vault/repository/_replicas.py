"""Doing one thing on every target of a repository, and the one object that reports it.

`Replicas` reads with fallback (the first target that gives a good copy), does an action on each
target (collecting each one's result or error) and writes everywhere create-only with a quorum.
Each returns or raises through an `Outcome`, the only place a `TargetsFailedError` is made, so
every multi-target failure reads the same: the message, then each failed target with its error.
`Failures` is the shared record of a long run (backup, prune, heal): each target's first error.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

import attrs

from ctfy_vault.exceptions import (
    ObjectExistsError,
    StorageError,
    TargetsFailedError,
    TransientStorageError,
)
from ctfy_vault.storage import Target

__all__ = ["Failures", "Outcome", "Replicas", "put"]

log = logging.getLogger("ctfy_vault.repository")

T = TypeVar("T")
Errors = tuple[type[BaseException], ...]


@attrs.frozen
class Outcome(Generic[T]):
    """What one operation did on each target it reached: a result, or the error that stopped it.

    Attributes:
        outcomes: for each target reached, in order, ``None`` when it succeeded or its error.
        results: each target that succeeded, with what the action returned.
    """

    outcomes: Mapping[str, BaseException | None] = attrs.field(factory=dict)
    results: Mapping[str, T] = attrs.field(factory=dict)

    @classmethod
    def failing(cls, errors: Mapping[str, BaseException]) -> Outcome[T]:
        """An outcome where each of ``errors``' targets failed (nothing succeeded)."""
        return cls(outcomes=dict(errors))

    @property
    def succeeded(self) -> list[str]:
        """The targets that succeeded, in order."""
        return [name for name, err in self.outcomes.items() if err is None]

    @property
    def failed(self) -> dict[str, BaseException]:
        """The targets that failed, in order, with their errors."""
        return {name: err for name, err in self.outcomes.items() if err is not None}

    def error(self, message: str) -> TargetsFailedError:
        """The error naming every target's outcome (for the caller to raise or to keep)."""
        return TargetsFailedError(message, self.outcomes)

    def require(self, count: int, message: str) -> Outcome[T]:
        """Return this outcome when at least ``count`` targets succeeded.

        Raises:
            TargetsFailedError: fewer succeeded; holds every target's outcome.
        """
        if len(self.succeeded) < count:
            raise self.error(message)
        return self

    def require_all(self, message: str) -> Outcome[T]:
        """Return this outcome when no target failed.

        Raises:
            TargetsFailedError: a target failed; holds every target's outcome.
        """
        if self.failed:
            raise self.error(message)
        return self

    def require_any(self, message: str) -> Outcome[T]:
        """Return this outcome when some target succeeded.

        Raises:
            TargetsFailedError: every target failed (or none was reached).
        """
        return self.require(1, message)


@attrs.define
class Failures:
    """The first error of each target that failed during one run; safe to share among threads.

    Attributes:
        label: what the run is, for the warning logged at each target's first failure.
    """

    label: str
    _errors: dict[str, BaseException] = attrs.field(factory=dict, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)

    def fail(self, target: Target | str, err: BaseException, *, quiet: bool = False) -> bool:
        """Record that ``target`` failed with ``err`` unless it already had; ``True`` if first.

        Args:
            target: the target (or its name).
            err: what stopped it.
            quiet: do not log (the caller has said why already).
        """
        name = target if isinstance(target, str) else target.name
        with self._lock:
            first = name not in self._errors
            if first:
                self._errors[name] = err
        if first and not quiet:
            log.warning("%s: target %s failed: %s", self.label, name, err)
        return first

    def __contains__(self, name: object) -> bool:
        """Whether the target of this name has failed."""
        with self._lock:
            return name in self._errors

    def __bool__(self) -> bool:
        """Whether any target has failed."""
        with self._lock:
            return bool(self._errors)

    def get(self, name: str) -> BaseException | None:
        """The error that stopped the target, or ``None``."""
        with self._lock:
            return self._errors.get(name)

    def live(self, targets: Iterable[Target]) -> list[Target]:
        """The targets that have not failed, in order."""
        with self._lock:
            return [target for target in targets if target.name not in self._errors]

    def errors(self) -> dict[str, BaseException]:
        """Every failed target's first error, in the order they failed."""
        with self._lock:
            return dict(self._errors)


def put(
    target: Target,
    key: str,
    blob: bytes | bytearray | memoryview,
    *,
    exists_ok: bool,
    retries: int = 0,
) -> bool:
    """Write one object create-only, retrying a transient failure up to ``retries`` times.

    Args:
        target: where to write.
        key: the object key.
        blob: the bytes.
        exists_ok: whether an object already under ``key`` counts as written (content-addressed
            objects and verbatim copies: same name, same bytes); otherwise it is refused.
        retries: extra attempts after a `TransientStorageError`.

    Returns:
        ``True`` when this call stored the object, ``False`` when it was already there.

    Raises:
        ObjectExistsError: the object is there and ``exists_ok`` is off.
        StorageError: the write failed (after the retries, for a transient failure).
    """
    for attempt in range(retries + 1):
        try:
            target.write(key, blob)
        except ObjectExistsError:
            if exists_ok:
                return False
            raise
        except TransientStorageError:
            if attempt < retries:
                continue
            raise
        return True
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _to_targets(value: Iterable[Target]) -> tuple[Target, ...]:
    return tuple(value)


@attrs.frozen
class Replicas:
    """One repository's targets, to read from with fallback and to act on or write to each.

    Attributes:
        targets: the targets, in the order they are read and reported.
    """

    targets: tuple[Target, ...] = attrs.field(converter=_to_targets)

    def first(
        self,
        action: Callable[[Target], T],
        *,
        what: str,
        catch: Errors = (StorageError,),
        on_fallback: Callable[[Target, BaseException], None] | None = None,
        failed: Mapping[str, BaseException] | None = None,
    ) -> T:
        """Return ``action``'s result on the first target where it does not fail.

        Args:
            action: what to do on a target (read and check a copy, list...).
            what: the message of the error when every target fails.
            catch: the errors that make a target fall back to the next one.
            on_fallback: told about each target that failed, before the next is tried.
            failed: targets already failed (reported first), which are not tried.

        Raises:
            TargetsFailedError: every target failed; holds each target's error.
        """
        errors: dict[str, BaseException | None] = dict(failed or {})
        for target in self.targets:
            if target.name in errors:
                continue
            try:
                return action(target)
            except catch as err:
                errors[target.name] = err
                if on_fallback is not None:
                    on_fallback(target, err)
        raise Outcome[T](outcomes=errors).error(what)

    def each(
        self,
        action: Callable[[Target], T],
        *,
        catch: Errors = (StorageError,),
        failed: Mapping[str, BaseException] | None = None,
        concurrent: bool = False,
    ) -> Outcome[T]:
        """Do ``action`` on every target and collect each one's result or error.

        Args:
            action: what to do on one target.
            catch: the errors that fail one target (others propagate).
            failed: targets already failed (reported first), on which nothing is done.
            concurrent: run the action on every target at once (one thread each).

        Returns:
            Each target's outcome, in order (``failed`` first).
        """
        skip = dict(failed or {})
        chosen = [target for target in self.targets if target.name not in skip]

        def attempt(target: Target) -> tuple[bool, T | BaseException]:
            try:
                return True, action(target)
            except catch as err:
                return False, err

        if concurrent and len(chosen) > 1:
            with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
                done = list(pool.map(attempt, chosen))
        else:
            done = [attempt(target) for target in chosen]
        outcomes: dict[str, BaseException | None] = dict(skip)
        results: dict[str, T] = {}
        for target, (ok, value) in zip(chosen, done, strict=True):
            if ok:
                outcomes[target.name] = None
                results[target.name] = value  # type: ignore[assignment]
            else:
                outcomes[target.name] = value  # type: ignore[assignment]
        return Outcome(outcomes=outcomes, results=results)

    def write(
        self,
        key: str,
        blob: bytes,
        *,
        exists_ok: bool,
        failed: Mapping[str, BaseException] | None = None,
    ) -> Outcome[bool]:
        """Write the same bytes create-only to every target (see `put`); check with `Outcome`.

        Each target's result is whether this call stored the object (``False``: it was there
        and ``exists_ok``). Call ``require``/``require_all`` on the outcome for a quorum.
        """
        return self.each(lambda target: put(target, key, blob, exists_ok=exists_ok), failed=failed)

    def without(self, names: Sequence[str] | Mapping[str, object]) -> Replicas:
        """The same replicas less the targets named."""
        return Replicas(target for target in self.targets if target.name not in names)
