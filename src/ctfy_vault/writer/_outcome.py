"""Results of a backup or heal: one outcome per target, and what the sources looked like."""

from __future__ import annotations

import attrs

from ctfy_vault.manifest import Manifest

__all__ = ["BackupResult", "HealOutcome", "HealReport", "SourceWarning", "TargetOutcome"]


@attrs.frozen(kw_only=True)
class TargetOutcome:
    """What one backup did on one target.

    Attributes:
        target: the target's display name.
        committed: whether the manifest was written there (every chunk it names is there too).
        error: what stopped the target, or ``None``.
        chunks_uploaded: chunk objects this run stored on the target.
        chunks_present: chunk references the target already held (deduplication hits).
        bytes_uploaded: sealed bytes this run stored there, chunks and manifest.
    """

    target: str
    committed: bool
    error: BaseException | None = attrs.field(default=None, eq=False)
    chunks_uploaded: int = 0
    chunks_present: int = 0
    bytes_uploaded: int = 0


@attrs.frozen(kw_only=True)
class SourceWarning:
    r"""A source entry that was skipped or may be inconsistent, with the reason.

    Attributes:
        path: the path as given or found, with undecodable bytes shown as ``\\xNN`` escapes.
        reason: what happened (``permission denied``, ``changed while read``, ...).
    """

    path: str
    reason: str


@attrs.frozen(kw_only=True)
class BackupResult:
    """A backup that reached its required targets.

    Attributes:
        name: the manifest's object name under ``snapshots/``.
        hash: the manifest's entry hash (the next snapshot of the lineage names it).
        manifest: the manifest written.
        outcomes: one outcome per target, in the writer's target order.
        warnings: source entries skipped or changed while read.
        bytes_read: plaintext bytes read from the sources.
        chunks: chunk references in the manifest.
        chunks_sealed: chunks compressed and sealed this run (the others were known everywhere).
    """

    name: str
    hash: bytes
    manifest: Manifest = attrs.field(repr=False)
    outcomes: tuple[TargetOutcome, ...]
    warnings: tuple[SourceWarning, ...] = ()
    bytes_read: int = 0
    chunks: int = 0
    chunks_sealed: int = 0

    @property
    def bytes_uploaded(self) -> int:
        """Sealed bytes stored over all targets."""
        return sum(outcome.bytes_uploaded for outcome in self.outcomes)


@attrs.frozen(kw_only=True)
class HealOutcome:
    """What heal did for one target.

    Attributes:
        target: the target's display name.
        copied: object keys copied to it, sorted.
        repaired: object keys whose damaged copy was replaced there (``heal(repair=True)``), sorted.
        quarantined: ``(key, quarantine key)`` for each object ``heal(repair=True)`` moved aside
            there (a stray name, or a snapshot object that opens on no target), sorted.
        unfixed: ``(key, why)`` for each thing found wrong there and left as it is, sorted.
        error: the first failure that left it incomplete, or ``None``.
    """

    target: str
    copied: tuple[str, ...] = ()
    repaired: tuple[str, ...] = ()
    quarantined: tuple[tuple[str, str], ...] = ()
    unfixed: tuple[tuple[str, str], ...] = ()
    error: BaseException | None = attrs.field(default=None, eq=False)


@attrs.frozen(kw_only=True)
class HealReport:
    """The result of a heal that left every target holding every object.

    Attributes:
        outcomes: one per target, in the order given.
        data_read: whether every chunk copy was read and judged (``read_data`` or ``repair``);
            otherwise only the config, key slots and manifests were.
    """

    outcomes: tuple[HealOutcome, ...]
    data_read: bool = False

    @property
    def ok(self) -> bool:
        """Whether heal left nothing it found wrong (see `HealOutcome.unfixed`)."""
        return not any(outcome.unfixed for outcome in self.outcomes)

    @property
    def copied(self) -> int:
        """Objects copied over all targets."""
        return sum(len(outcome.copied) for outcome in self.outcomes)

    @property
    def repaired(self) -> int:
        """Damaged copies replaced over all targets (``heal(repair=True)`` only)."""
        return sum(len(outcome.repaired) for outcome in self.outcomes)

    @property
    def quarantined(self) -> int:
        """Objects moved to ``quarantine/`` over all targets (``heal(repair=True)`` only)."""
        return sum(len(outcome.quarantined) for outcome in self.outcomes)

    @property
    def unfixed(self) -> tuple[tuple[str, str, str], ...]:
        """``(target, key, why)`` for everything found wrong and left as it is."""
        return tuple(
            (outcome.target, key, why) for outcome in self.outcomes for key, why in outcome.unfixed
        )
