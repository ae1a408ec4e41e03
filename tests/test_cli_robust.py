"""The command line fails cleanly: usage errors for bad numbers, Ctrl-C, odd files, references."""

from __future__ import annotations

import argparse
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctfy_vault.cli._main import _parser
from ctfy_vault.cli._options import MAX_DURATION, duration_option
from ctfy_vault.retention import Duration

# -- numeric options -----------------------------------------------------------------------------

#: Every option taking a duration, count or number: the argv before it, and its name.
NUMERIC_OPTIONS = [
    (["prune"], "--grace"),
    (["check"], "--read-data"),
    (["mirror", "src", "dst"], "--watch"),
    (["mirror", "src", "dst", "--watch", "5"], "--runs"),
    (["mirror", "src", "dst"], "--workers"),
    (["export", "src", "dst", "--tenant", "t"], "--link-minutes"),
]

BAD_VALUES = {
    "--grace": ["999999999w", "9" * 30 + "h", "1y", "2m", "-1d", "soon", "1d1d", ""],
    "--read-data": ["nan", "inf", "1e400%", "150%", "-0.5", "x"],
    "--watch": ["inf", "nan", "-1", "0", "1e400", "9" * 400, "x", ""],
    "--runs": ["0", "-3", "9" * 5000, "1.5", "x"],
    "--workers": ["0", "-1", "100000", "x"],
    "--link-minutes": ["0", "61", "99999999999999999999", "x"],
}


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse a command line the way ``ctfy-vault`` does."""
    return _parser().parse_args(argv)


@pytest.mark.parametrize(
    ("before", "option", "value"),
    [(before, option, value) for before, option in NUMERIC_OPTIONS for value in BAD_VALUES[option]],
)
def test_bad_numbers_are_usage_errors_naming_the_option(
    before: list[str], option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Overflowing, out-of-range or garbage numbers exit 2 at parsing, naming the option."""
    with pytest.raises(SystemExit) as exited:
        parse([*before, f"{option}={value}"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}:" in err
    assert "Traceback" not in err
    assert len(err.splitlines()[-1]) < 200


def test_good_numbers_parse_to_their_values() -> None:
    """Valid forms still parse: grace 0/24h/1w2d, 50% data, a short watch, workers, minutes."""
    assert parse(["prune", "--grace", "0"]).grace == timedelta(0)
    assert parse(["prune", "--grace", "1w2d3h"]).grace == timedelta(days=9, hours=3)
    assert parse(["check", "--read-data=50%"]).read_data == 0.5
    assert parse(["check", "--read-data"]).read_data is True
    assert parse(["check"]).read_data is False
    mirrored = parse(["mirror", "a", "b", "--watch", "0.01", "--runs", "2", "--workers", "3"])
    assert (mirrored.watch, mirrored.runs, mirrored.workers) == (0.01, 2, 3)
    assert parse(["export", "a", "b", "--tenant", "t", "--link-minutes", "5"]).link_minutes == 5


@settings(max_examples=150, deadline=None)
@given(option=st.sampled_from(NUMERIC_OPTIONS), text=st.text(max_size=30))
def test_any_text_is_parsed_or_a_usage_error(option: tuple[list[str], str], text: str) -> None:
    """Property: any text given to a numeric option parses or exits 2; nothing else escapes."""
    before, name = option
    code = 0
    try:
        parse([*before, f"{name}={text}"])
    except SystemExit as exited:
        code = exited.code
    assert code in (0, 2)


@given(
    weeks=st.integers(0, 10**12),
    days=st.integers(0, 10**12),
    hours=st.integers(0, 10**12),
)
def test_durations_parse_or_are_refused_never_overflow(weeks: int, days: int, hours: int) -> None:
    """Property: any w/d/h duration is the exact timedelta up to the maximum, else a usage error."""
    text = str(Duration(weeks=weeks, days=days, hours=hours))
    exact = (weeks * 7 + days) * 24 + hours
    if exact * 3600 > MAX_DURATION.total_seconds():
        with pytest.raises(argparse.ArgumentTypeError, match="too long"):
            duration_option("--grace")(text)
    else:
        assert duration_option("--grace")(text) == timedelta(hours=exact)


def test_a_duration_with_too_many_digits_is_a_policy_error() -> None:
    """``Duration.parse`` refuses a number Python will not convert with its own error."""
    from ctfy_vault.exceptions import PolicyError

    with pytest.raises(PolicyError, match="digits"):
        Duration.parse("9" * 5000 + "d")
