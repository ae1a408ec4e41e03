"""Hypothesis strategies shared by the test suite (retention has its own in retention_strategies)."""

from __future__ import annotations

from hypothesis import strategies as st

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
