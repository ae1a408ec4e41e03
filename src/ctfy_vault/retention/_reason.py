"""Why a snapshot is kept: one `Reason` per rule that keeps it."""

from __future__ import annotations

from typing import Final

import attrs

from ctfy_vault.retention._duration import Duration

__all__ = ["RULES", "Reason"]

RULES: Final = (
    "after_now",
    "tags",
    "within",
    "last",
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "yearly",
    "within_hourly",
    "within_daily",
    "within_weekly",
    "within_monthly",
    "within_yearly",
    "allow_empty",
    "newest",
)
"""Every rule a reason can name, in the order a snapshot's reasons are listed."""

_FIXED_LABELS: Final = {
    "after_now": "after now",
    "allow_empty": "empty policy keeps all",
    "newest": "newest snapshot",
}


@attrs.frozen(kw_only=True)
class Reason:
    """One rule that keeps a snapshot, with the period or window it applies to.

    Attributes:
        rule: the policy setting that keeps the snapshot: a count rule (``"daily"``), a window
            rule (``"within"``, ``"within_daily"``), ``"tags"``, ``"after_now"`` for a snapshot
            newer than ``now``, ``"allow_empty"`` for an empty policy that keeps everything, or
            ``"newest"`` for the newest snapshot not after ``now`` when no other rule keeps it
            (it is never forgotten).
        period: the period the snapshot stands for (``"2026-11-20"``, ``"2026-W47"``,
            ``"2026-11"``, ``"2026"``, ``"2026-11-20 14:00"``), or ``None``.
        window: the duration of a window rule, or ``None``.
        tag: the tag that keeps the snapshot, for ``"tags"``; else ``None``.
        slot: for a count rule, which of its N slots the snapshot fills (1 is the newest).
        oldest: the snapshot is the oldest one, kept because its count rule still had room
            or its periodic window reaches it (it is not the newest of its period).
    """

    rule: str
    period: str | None = None
    window: Duration | None = None
    tag: str | None = None
    slot: int | None = None
    oldest: bool = False

    def __str__(self) -> str:
        fixed = _FIXED_LABELS.get(self.rule)
        if fixed is not None:
            return fixed
        if self.rule == "tags":
            return f"tag {self.tag}"
        if self.rule == "within":
            return f"within {self.window}"
        if self.rule.startswith("within_"):
            text = f"{self.rule.removeprefix('within_')} {self.period} within {self.window}"
        elif self.rule == "last":
            text = f"last #{self.slot}"
        else:
            text = f"{self.rule} {self.period}"
        return f"oldest {text}" if self.oldest else text

    def to_dict(self) -> dict[str, str | int | bool]:
        """Return the JSON-friendly form, with the human label under ``"label"``.

        Returns:
            A mapping with ``rule`` and ``label``, and ``period``, ``window``, ``tag``, ``slot``
            and ``oldest`` where they apply.
        """
        result: dict[str, str | int | bool] = {"rule": self.rule, "label": str(self)}
        if self.period is not None:
            result["period"] = self.period
        if self.window is not None:
            result["window"] = str(self.window)
        if self.tag is not None:
            result["tag"] = self.tag
        if self.slot is not None:
            result["slot"] = self.slot
        if self.oldest:
            result["oldest"] = True
        return result
