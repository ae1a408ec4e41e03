"""The reports of the repository's checks: what verify found, and what heal did per target."""

from __future__ import annotations

import attrs

from ctfy_vault.manifest import ChainReport
from ctfy_vault.repository._heads import KnownHeads

__all__ = ["HealOutcome", "HealReport", "Problem", "VerifyReport"]


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
        data_read: whether every chunk (format 2: pack) copy was read and judged (``read_data``
            or ``repair``); otherwise only the config, key slots, index objects and manifests
            were.
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


@attrs.frozen(kw_only=True)
class Problem:
    """One thing `Vault.verify` found wrong.

    Attributes:
        kind: ``unreachable`` (a target could not be listed), ``manifest`` (a snapshot object
            does not open), ``missing-chunk`` (a manifest names a chunk its target lacks),
            ``corrupt-chunk`` (a chunk fails authentication when re-read), ``corrupt-pack``
            (format 2: a pack fails `check_pack` when re-read), ``index`` (format 2: an index
            object does not open under its name, or a pack's index records differ from its
            header), ``loose-pack`` (format 2: a pack no index object on the target lists; a
            warning), ``missing-pack`` (format 2: an index object lists a pack the target lacks
            that no manifest there needs; a warning), ``lacking`` (another
            target holds an object this one lacks), ``lost`` (per-target retention: a snapshot
            a prune record forgot on other targets only, which no target holds any more, so
            this one lost it without a record), ``key-slot`` (a key slot's copy does not
            parse or differs from the bytes most targets hold), ``chain`` (a gap, fork or
            rollback, including a known head that was deleted or that a head does not descend
            from), ``unexpected`` (a name that is no object of the repository, see
            `ctfy_vault.repository.kind_of`; a warning) or ``quarantined`` (an object ``heal`` moved
            aside; a warning).
        target: the target concerned, or ``None`` for repository-wide problems (the chain).
        key: the object key concerned, or ``None``.
        detail: what was seen, in words (never a secret).
        severity: ``error`` (something stored is damaged, missing or inconsistent) or
            ``warning`` (something is there that does not belong, and nothing depends on it).
    """

    kind: str
    target: str | None
    key: str | None
    detail: str
    severity: str = attrs.field(
        default="error", validator=attrs.validators.in_(("error", "warning"))
    )


@attrs.frozen(kw_only=True)
class VerifyReport:
    """What `Vault.verify` checked and found.

    Attributes:
        targets: the targets checked, in the vault's order.
        snapshots: distinct snapshot objects (manifests and prune records) over all targets.
        chunks_read: chunk objects re-read and authenticated, or (format 2) the chunks in the
            packs re-read and checked whole (0 unless ``read_data``).
        chain: the hash-chain report over every entry any target holds.
        problems: everything found wrong, errors and warnings, sorted by kind, target and key.
        heads: each lineage's current head over every target (the newest one where a fork left
            several). Persist them only when the report is ``ok``, and pass them as
            ``known_heads`` to the next verify.
    """

    targets: tuple[str, ...]
    snapshots: int
    chunks_read: int
    chain: ChainReport = attrs.field(repr=False)
    problems: tuple[Problem, ...]
    heads: KnownHeads = attrs.field(repr=False)

    @property
    def ok(self) -> bool:
        """Whether nothing is wrong: structure, chain, agreement and (when read) data.

        Warnings (stray or quarantined objects) are listed in ``problems`` but do not count.
        """
        return self.chain.ok and not any(p.severity == "error" for p in self.problems)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        """The warning-level problems: objects that do not belong, on which nothing depends."""
        return tuple(p for p in self.problems if p.severity == "warning")
