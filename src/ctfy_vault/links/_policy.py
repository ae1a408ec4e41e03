"""The link policy: how long a signed link may live, and how a download name is encoded."""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from urllib.parse import quote

import attrs

from ctfy_vault.exceptions import ConfigurationError

#: The product's promise: no link lives longer than this, whatever a policy says.
MAX_TTL = timedelta(hours=1)
#: What `presign` uses when no TTL is given.
DEFAULT_TTL = timedelta(minutes=15)
#: Methods a link may be signed for; links are read-only.
READ_METHODS = ("GET", "HEAD")


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

    max_ttl: timedelta = attrs.field(default=MAX_TTL, validator=_check_cap)

    def check_ttl(self, ttl: timedelta) -> int:
        """Return ``ttl`` in whole seconds, or refuse it.

        Sub-second parts are dropped (rounding down never lengthens a link).

        Raises:
            ConfigurationError: ``ttl`` is not a timedelta, is shorter than one second, or is
                longer than ``max_ttl``.
        """
        if not isinstance(ttl, timedelta):
            raise ConfigurationError(f"ttl must be a timedelta, not {type(ttl).__name__}")
        if ttl > self.max_ttl:
            raise ConfigurationError(
                f"a signed link may live at most {self.max_ttl}; {ttl} was asked"
            )
        seconds = int(ttl.total_seconds())
        if seconds < 1:
            raise ConfigurationError(f"a signed link needs a TTL of at least one second; got {ttl}")
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
