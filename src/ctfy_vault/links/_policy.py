"""The link policy: how long a signed link may live, and how a download name is encoded.

Lifetimes are decided here from the system clock, the one clock the library trusts for links, and
from exact arithmetic on the values given: a `timedelta` or `datetime` subclass may override
``total_seconds``, ``timestamp``, comparisons or subtraction, so only the stored fields are read,
through the base classes' own methods.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import attrs

from ctfy_vault.exceptions import ConfigurationError

#: The product's promise: no link lives longer than this, whatever a policy says.
MAX_TTL = timedelta(hours=1)
#: How far a verifier's clock may lag the signer's: a verifier refuses a link that expires more than
#: ``MAX_TTL + CLOCK_SKEW`` after its own clock; `presign` refuses a ``now`` older than this.
CLOCK_SKEW = timedelta(seconds=30)
#: What `presign` uses when no TTL is given.
DEFAULT_TTL = timedelta(minutes=15)
#: Methods a link may be signed for; links are read-only.
READ_METHODS = ("GET", "HEAD")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_MICROSECOND = timedelta(microseconds=1)


def exact_timedelta(value: object, what: str) -> timedelta:
    """Return ``value`` as a plain `timedelta` holding the duration it stores.

    A subclass may override ``total_seconds``, comparisons, arithmetic or even ``days``; the
    base class's own floor division reads the stored fields.

    Raises:
        ConfigurationError: ``value`` is not a timedelta (a bare number is ambiguous).
    """
    if not isinstance(value, timedelta):
        raise ConfigurationError(f"{what} must be a timedelta, not {type(value).__name__}")
    return timedelta(microseconds=timedelta.__floordiv__(value, _MICROSECOND))


def whole_seconds(value: timedelta) -> int:
    """Return a plain `timedelta` in whole seconds, rounded down (never lengthens a link)."""
    return timedelta.__floordiv__(value, _SECOND)


def since(moment: object, reference: datetime, what: str) -> timedelta:
    """Return ``moment - reference`` exactly, as a plain `timedelta`.

    The base class's subtraction reads the stored fields and the time zone's offset once, whatever
    a `datetime` subclass overrides.

    Raises:
        ConfigurationError: ``moment`` is not an aware datetime.
    """
    if not isinstance(moment, datetime):
        raise ConfigurationError(f"{what} must be an aware datetime, not {type(moment).__name__}")
    try:
        return datetime.__sub__(moment, reference)
    except (TypeError, ValueError, OverflowError):
        # Naive (no offset), or a time zone whose offset is not a valid timedelta.
        raise ConfigurationError(f"{what} must be an aware datetime") from None


def signing_time(now: object | None, clock: datetime) -> datetime:
    """Return when a link's validity starts: ``now`` checked against the system clock.

    Args:
        now: the caller's idea of the current time, or ``None`` for ``clock``.
        clock: the system clock, read once by the caller (aware, UTC).

    Returns:
        A plain aware UTC datetime, rounded down to the second, no later than ``clock`` and no
        earlier than ``clock - CLOCK_SKEW`` (rounded down).

    Raises:
        ConfigurationError: ``now`` is not an aware datetime, is ahead of the system clock (the
            link would outlive the cap measured from the real time), or is more than
            `CLOCK_SKEW` behind it.
    """
    offset = timedelta(0) if now is None else since(now, clock, "now")
    if offset > timedelta(0):
        raise ConfigurationError(
            f"now is {offset} ahead of the system clock; a link may not start in the future"
        )
    if -offset > CLOCK_SKEW:
        raise ConfigurationError(
            f"now is {-offset} behind the system clock (more than {CLOCK_SKEW}); "
            "pass the current time or leave now out"
        )
    return (clock + offset).replace(microsecond=0)


def _exact_cap(value: object) -> object:
    return exact_timedelta(value, "max_ttl") if isinstance(value, timedelta) else value


def _check_cap(_instance: object, _attribute: object, value: timedelta) -> None:
    if not isinstance(value, timedelta):
        raise ConfigurationError(f"max_ttl must be a timedelta, not {type(value).__name__}")
    if value < timedelta(seconds=1):
        raise ConfigurationError("max_ttl must be at least one second")
    if value > MAX_TTL:
        raise ConfigurationError(f"max_ttl may not exceed {MAX_TTL} (the product's promise)")


@attrs.frozen(kw_only=True)
class LinkPolicy:
    """Limits on signed links; it may lower the one-hour cap, never raise it.

    Attributes:
        max_ttl: longest lifetime a link may get (1 second to 1 hour).
    """

    max_ttl: timedelta = attrs.field(
        default=MAX_TTL,
        converter=_exact_cap,
        validator=_check_cap,
    )

    def check_ttl(self, ttl: timedelta) -> int:
        """Return ``ttl`` in whole seconds, or refuse it.

        Sub-second parts are dropped (rounding down never lengthens a link). Only the duration
        ``ttl`` stores is used: a subclass's ``total_seconds`` or comparisons are not consulted.

        Raises:
            ConfigurationError: ``ttl`` is not a timedelta, is shorter than one second, or is
                longer than ``max_ttl``.
        """
        exact = exact_timedelta(ttl, "ttl")
        seconds = whole_seconds(exact)
        if exact > self.max_ttl or seconds > whole_seconds(MAX_TTL):
            raise ConfigurationError(
                f"a signed link may live at most {self.max_ttl}; {exact} was asked"
            )
        if seconds < 1:
            raise ConfigurationError(
                f"a signed link needs a TTL of at least one second; got {exact}"
            )
        return seconds


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """Return a ``Content-Disposition`` value naming ``filename`` safely (RFC 6266 and 5987).

    The quoted ``filename`` is an ASCII fallback (accents removed, anything else that is not
    printable ASCII, a quote, a backslash or a path separator becomes ``_``); ``filename*`` carries
    the exact name as percent-encoded UTF-8 for clients that read it.

    Raises:
        ConfigurationError: ``filename`` is empty or has control characters.
    """
    if not filename or any(unicodedata.category(ch) == "Cc" for ch in filename):
        raise ConfigurationError(
            "a download name must be non-empty text without control characters"
        )
    plain = unicodedata.normalize("NFKD", filename)
    fallback = "".join(
        ch if " " <= ch <= "~" and ch not in '"\\/' else "_"
        for ch in plain
        if not unicodedata.combining(ch)
    )
    kind = "inline" if inline else "attachment"
    encoded = quote(filename, safe="!#$&+-.^_`|~")
    if fallback == filename and '"' not in filename:
        return f'{kind}; filename="{fallback}"'
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
