"""Hypothesis strategies for listed snapshots and the references that name them (`find_snapshot`).

Ids come from a two-letter alphabet and times from a few minutes, so generated lists are full of
shared prefixes, ids that are prefixes of other ids, and snapshots taken at the same moment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from ctfy_vault.vault import SnapshotInfo

__all__ = ["LINEAGES", "references", "snapshot_info", "snapshot_lists"]

#: The lineages generated snapshots belong to (``nope`` is never one of them).
LINEAGES = ("db", "files", "x-1")
_START = datetime(2026, 11, 26, tzinfo=UTC)


def snapshot_info(snapshot_id: str, lineage: str, minutes: int) -> SnapshotInfo:
    """A listed snapshot taken ``minutes`` after a fixed time, named as the vault names it."""
    created = _START + timedelta(minutes=minutes)
    return SnapshotInfo(
        name=f"{created:%Y%m%dT%H%M%S.%fZ}-{snapshot_id}",
        snapshot_id=snapshot_id,
        lineage=lineage,
        created=created,
        host="h",
        tags=(),
        hash=bytes(32),
        previous=None,
        files=1,
        size=1,
    )


def snapshot_lists(max_size: int = 8) -> st.SearchStrategy[list[SnapshotInfo]]:
    """Snapshots with unique ids (as in a repository), in any order."""
    ids = st.text(st.sampled_from("ab"), min_size=1, max_size=5)
    one = st.tuples(st.sampled_from(LINEAGES), st.integers(0, 3))
    return st.dictionaries(ids, one, max_size=max_size).map(
        lambda found: [
            snapshot_info(i, lineage, minutes) for i, (lineage, minutes) in found.items()
        ]
    )


def references(listed: list[SnapshotInfo]) -> st.SearchStrategy[str]:
    """References to try on ``listed``: its names, ids and their prefixes, ``latest`` forms, junk."""
    choices: list[st.SearchStrategy[str]] = [
        st.just("latest"),
        st.sampled_from([f"latest:{lineage}" for lineage in (*LINEAGES, "nope")]),
        st.text(st.sampled_from("ab"), min_size=1, max_size=6),
        st.text(max_size=8),
    ]
    if listed:
        ids = [s.snapshot_id for s in listed]
        choices.append(st.sampled_from([s.name for s in listed]))
        choices.append(st.sampled_from(ids))
        choices.append(
            st.tuples(st.sampled_from(ids), st.integers(1, 5)).map(lambda pair: pair[0][: pair[1]])
        )
    return st.one_of(choices)
