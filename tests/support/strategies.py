"""Hypothesis strategies shared by the test suite (retention has its own in retention_strategies)."""

from __future__ import annotations

from datetime import datetime

from hypothesis import strategies as st

from ctfy_vault.vault import KnownHeads, LineageHead

#: Characters a key segment may hold: printable, no '/', no backslash, no control characters.
_SEGMENT_CHARS = st.characters(
    blacklist_categories=("Cc", "Cs"),
    blacklist_characters="/\\\x7f",
)


def key_segments() -> st.SearchStrategy[str]:
    """One safe key segment (never '.', '..' or a reserved name)."""
    return (
        st.text(_SEGMENT_CHARS, min_size=1, max_size=12)
        .filter(lambda s: s not in (".", ".."))
        .filter(lambda s: not s.startswith(".ctfy-"))
        .filter(lambda s: not any(0x80 <= ord(c) <= 0x9F for c in s))
    )


def object_keys(max_segments: int = 4) -> st.SearchStrategy[str]:
    """A safe relative object key of one to ``max_segments`` segments."""
    return st.lists(key_segments(), min_size=1, max_size=max_segments).map("/".join)


def simple_keys() -> st.SearchStrategy[str]:
    """Short ASCII keys from a small alphabet, so generated operations collide often."""
    segment = st.sampled_from(["a", "b", "objects", "x1"])
    return st.lists(segment, min_size=1, max_size=3).map("/".join)


# -- known heads ---------------------------------------------------------------------------------

_IDENT_CHARS = "ABCXYZabcxyz0189_-"


def idents() -> st.SearchStrategy[str]:
    """A lineage or entry id: 1 to 64 of ``A-Za-z0-9_-``, starting with a letter or digit."""
    return st.builds(
        lambda first, rest: first + rest,
        st.sampled_from("Aa09z"),
        st.text(st.sampled_from(_IDENT_CHARS), max_size=63),
    )


def lineage_heads(lineage: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[LineageHead]:
    """A `LineageHead`: a valid lineage, an object name (time, then id) and a 32-byte hash."""
    names = st.builds(
        lambda moment, ident: f"{moment.strftime('%Y%m%dT%H%M%S.%fZ')}-{ident}",
        st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)),
        idents(),
    )
    return st.builds(
        LineageHead,
        lineage=lineage if lineage is not None else idents(),
        name=names,
        hash=st.binary(min_size=32, max_size=32),
    )


def known_heads() -> st.SearchStrategy[KnownHeads]:
    """A `KnownHeads` of a random repository: up to five lineages, one head each."""
    heads = st.lists(lineage_heads(), max_size=5, unique_by=lambda head: head.lineage)
    return st.builds(KnownHeads, repo_id=st.binary(min_size=16, max_size=16), heads=heads)
