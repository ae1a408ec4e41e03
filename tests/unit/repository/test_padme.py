"""Padmé padding: never shorter, at most 12.5% longer, monotone, idempotent, few sizes per octave."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctfy_vault.exceptions import ConfigurationError
from ctfy_vault.repository import padme

lengths = st.integers(min_value=0, max_value=2**64)


@given(lengths)
def test_padding_never_shortens_and_costs_at_most_an_eighth(length: int) -> None:
    """``padme(L) >= L`` and the padding is at most ``L / 8`` bytes."""
    padded = padme(length)
    assert padded >= length
    assert (padded - length) * 8 <= length


@given(lengths, lengths)
def test_padding_is_monotone(a: int, b: int) -> None:
    """A longer input never pads to a shorter length."""
    low, high = sorted((a, b))
    assert padme(low) <= padme(high)


@given(lengths)
def test_padding_is_idempotent(length: int) -> None:
    """A padded length pads to itself, so a reader can check that a stored size is one."""
    assert padme(padme(length)) == padme(length)


@given(st.integers(min_value=1, max_value=62), st.data())
def test_padded_lengths_keep_only_a_few_significant_bits(
    exponent: int, data: st.DataObject
) -> None:
    """In ``[2**E, 2**(E+1))`` a padded length is a multiple of ``2**(E - S)``, ``S = bits(E)``."""
    length = data.draw(st.integers(2**exponent, 2 ** (exponent + 1) - 1))
    significant = exponent.bit_length()
    padded = padme(length)
    assert padded % 2 ** (exponent - significant) == 0
    assert padded <= 2 ** (exponent + 1)


@pytest.mark.parametrize("exponent", range(1, 17))
def test_an_octave_has_at_most_two_to_the_s_padded_sizes(exponent: int) -> None:
    """Every length in ``[2**E, 2**(E+1))`` pads to one of at most ``2**S + 1`` sizes."""
    sizes = {padme(n) for n in range(2**exponent, 2 ** (exponent + 1))}
    assert len(sizes) <= 2 ** exponent.bit_length() + 1


def test_known_values() -> None:
    """Small lengths stay, then rounding grows with the length (512 KiB steps at 16 MiB)."""
    assert [padme(n) for n in range(10)] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 10]
    assert padme(1000) == 1024
    assert padme(2173) == 2176
    assert padme(16 * 2**20) == 16 * 2**20
    assert padme(16 * 2**20 + 1) == 16 * 2**20 + 2**19


def test_a_negative_length_is_refused() -> None:
    """A negative length is a caller's mistake, named as such."""
    with pytest.raises(ConfigurationError, match="negative"):
        padme(-1)
