"""Option values: targets from URLs and backend options (never secrets), numbers, references.

Every numeric option goes through `duration_option`, `count_option`, `seconds_option` or
`read_data_option`, and a snapshot reference through `reference_option`, so a value that is
malformed, out of range or too large to represent (``--grace 999999999w``) is an argparse usage
error (exit 2) naming the option and what is wrong with the value, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final

from ctfy_vault.exceptions import ConfigurationError, PolicyError
from ctfy_vault.repository import ReadSubset
from ctfy_vault.retention import Duration
from ctfy_vault.storage import Target
from ctfy_vault.vault import check_reference

__all__ = [
    "KEEP_COUNTS",
    "KEEP_WINDOWS",
    "MAX_DURATION",
    "SECRET_OPTIONS",
    "count_option",
    "duration_option",
    "parse_read_data",
    "read_data_option",
    "reference_option",
    "seconds_option",
    "share_option",
    "subset_option",
    "target_from_args",
]

#: The longest duration any option takes: far beyond any sensible grace period, and small enough
#: that adding it to any date of this era stays representable.
MAX_DURATION = timedelta(days=100 * 366)

#: Options that carry credentials: refused on the command line, where shells and ps keep them.
SECRET_OPTIONS = frozenset(
    {"key", "secret", "token", "account_key", "connection_string", "sas_token", "credential"}
)
_S3_FLAGS = ("endpoint_url", "region", "addressing_style")

#: restic's ``forget`` flags: a count of snapshots to keep per rule.
KEEP_COUNTS: Final = ("last", "hourly", "daily", "weekly", "monthly", "yearly")
#: restic's ``forget`` flags: a window inside which a rule keeps snapshots.
KEEP_WINDOWS: Final = (
    "within",
    "within-hourly",
    "within-daily",
    "within-weekly",
    "within-monthly",
    "within-yearly",
)


def target_from_args(url: str, args: argparse.Namespace) -> Target:
    """Build a target from a URL and the shared options that apply to its scheme.

    The options are those `ctfy_vault.cli._parser.add_target_options` adds.

    Raises:
        ConfigurationError: a malformed ``--option`` or one that would carry a secret.
        InvalidURLError: the URL or an option is wrong.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else "file"
    options: dict[str, Any] = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"--option needs KEY=VALUE, got {item!r}")
        if key in SECRET_OPTIONS:
            raise ConfigurationError(
                f"--option {key}=... would put a secret on the command line; use the environment"
            )
        if scheme in ("s3", "az", "abfs", "abfss"):
            options[key] = value
    if scheme == "s3":
        options.update({name: getattr(args, name) for name in _S3_FLAGS if getattr(args, name)})
    return Target.from_url(url, **options)


def _value_error(text: str, problem: str) -> argparse.ArgumentTypeError:
    # argparse prefixes "argument --OPTION: "; the value is quoted with its length bounded, so a
    # huge argument does not flood the terminal.
    shown = text if len(text) <= 40 else text[:37] + "..."
    return argparse.ArgumentTypeError(f"{shown!r} {problem}")


def duration_option(option: str) -> Callable[[str], timedelta]:
    """Return an argparse ``type`` for a duration option: ``24h``, ``2d``, ``1w2d``, or ``0``.

    Weeks, days and hours only (months and years have no fixed length), at most `MAX_DURATION`.

    Args:
        option: the option's name (``--grace``), for messages.

    Returns:
        A function turning the text into a `timedelta`, raising `argparse.ArgumentTypeError`
        (a usage error, exit 2) for anything else.
    """

    def parse(text: str) -> timedelta:
        if len(text) > 64:
            raise _value_error(text, "is too long to be a duration")
        if text.strip() == "0":
            return timedelta(0)
        try:
            duration = Duration.parse(text)
        except PolicyError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        if duration.years or duration.months:
            raise _value_error(
                text, f"is not a {option} duration: use weeks, days and hours (24h, 2d)"
            )
        hours = (duration.weeks * 7 + duration.days) * 24 + duration.hours
        if hours > MAX_DURATION // timedelta(hours=1):
            raise _value_error(text, f"is too long (at most {MAX_DURATION.days} days)")
        return timedelta(hours=hours)

    return parse


def count_option(option: str, *, minimum: int, maximum: int) -> Callable[[str], int]:
    """Return an argparse ``type`` for a whole number from ``minimum`` to ``maximum``.

    Args:
        option: the option's name, for messages.
        minimum: the smallest value taken.
        maximum: the largest value taken.
    """

    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:  # also a number with more digits than int() converts
            raise _value_error(text, "is not a whole number") from None
        if not minimum <= value <= maximum:
            raise _value_error(text, f"is out of range ({minimum} to {maximum})")
        return value

    return parse


_SIZE: Final = re.compile(r"\s*(\d{1,13})\s*(B|KiB|MiB|GiB)?\s*")
_UNITS: Final[dict[str | None, int]] = {None: 1, "B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


def size_option(option: str, *, minimum: int, maximum: int) -> Callable[[str], int]:
    """Return an argparse ``type`` for a size in bytes: ``4096``, ``512KiB``, ``16MiB``, ``1GiB``.

    Args:
        option: the option's name, for messages.
        minimum: the smallest size taken, in bytes.
        maximum: the largest size taken, in bytes.
    """

    def parse(text: str) -> int:
        found = _SIZE.fullmatch(text)
        if found is None:
            raise _value_error(text, f"is not a {option} size (a number with B, KiB, MiB or GiB)")
        unit: str | None = found[2]
        value = int(found[1]) * _UNITS[unit]
        if not minimum <= value <= maximum:
            raise _value_error(text, f"is out of range ({minimum} to {maximum} bytes)")
        return value

    return parse


def seconds_option(option: str, *, maximum: float) -> Callable[[str], float]:
    """Return an argparse ``type`` for a positive, finite number of seconds up to ``maximum``.

    Args:
        option: the option's name, for messages.
        maximum: the largest value taken.
    """

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise _value_error(text, "is not a number of seconds") from None
        if not math.isfinite(value) or not 0 < value <= maximum:
            raise _value_error(text, f"is out of range (more than 0, at most {maximum:.0f})")
        return value

    return parse


def share_option(text: str) -> float:
    """``--repack-below`` as an argparse ``type``: a fraction from 0 to 1, or a percentage."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise _value_error(text, "is not a fraction from 0 to 1 or a percentage") from None
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise _value_error(text, "is out of range (a fraction from 0 to 1, or 0% to 100%)")
    return value


def parse_read_data(text: str | None) -> bool | float:
    """Parse ``--read-data[=FRACTION or N%]``.

    Args:
        text: ``None`` (flag absent), ``""`` (flag without a value: read everything), a fraction
            from 0 to 1, or a percentage.

    Returns:
        ``False``, ``True`` or the fraction.

    Raises:
        ConfigurationError: not a fraction from 0 to 1 or a percentage from 0 to 100.
    """
    if text is None:
        return False
    if text == "":
        return True
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ConfigurationError(
            f"--read-data takes a fraction from 0 to 1 or a percentage, got {text!r}"
        )
    return True if value == 1.0 else value


def read_data_option(text: str) -> bool | float:
    """``--read-data`` as an argparse ``type``: a bad value is a usage error naming it."""
    try:
        return parse_read_data(text)
    except ConfigurationError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--read-data ")) from None


def subset_option(text: str) -> ReadSubset:
    """``--read-data-subset n/t`` as an argparse ``type``: group n of t (restic's meaning)."""
    group, slash, groups = text.partition("/")
    if not slash or not group.strip().isdigit() or not groups.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not n/t (for example 1/7)")
    try:
        return ReadSubset(int(group), int(groups))
    except ConfigurationError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def reference_option(text: str) -> str:
    """A snapshot reference as an argparse ``type`` (see `ctfy_vault.vault.check_reference`)."""
    try:
        return check_reference(text)
    except ConfigurationError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
