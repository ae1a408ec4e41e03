"""Results of a backup: one outcome per target, and what the sources looked like."""

from __future__ import annotations

import attrs

from ctfy_vault.manifest import Manifest

__all__ = ["BackupResult", "SourceWarning", "TargetOutcome"]


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
