"""The retention policy: which rules keep snapshots, refused at construction when invalid."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import UTC, timedelta, tzinfo
from typing import Final, Literal, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from ctfy_vault.exceptions import PolicyError
from ctfy_vault.retention._duration import Duration

__all__ = [
    "COUNT_RULES",
    "WINDOW_RULES",
    "Count",
    "Policy",
    "Unlimited",
    "unlimited",
]


class Unlimited(enum.Enum):
    """The type of `unlimited`, a count rule without a limit."""

    UNLIMITED = "unlimited"

    def __str__(self) -> str:
        return self.value


unlimited: Final = Unlimited.UNLIMITED
"""A count with no limit: the rule keeps the newest snapshot of every period."""

Count: TypeAlias = int | Literal[Unlimited.UNLIMITED]
CountLike: TypeAlias = int | str | Literal[Unlimited.UNLIMITED]
WindowLike: TypeAlias = Duration | str | timedelta | None

COUNT_RULES: Final = ("last", "hourly", "daily", "weekly", "monthly", "yearly")
"""Count rules, in the order they are evaluated and reported."""

WINDOW_RULES: Final = (
    "within",
    "within_hourly",
    "within_daily",
    "within_weekly",
    "within_monthly",
    "within_yearly",
)
"""Window rules, in the order they are evaluated and reported."""

_OTHER_KEYS: Final = ("tz", "tags", "anchor", "allow_empty")
_KEYS: Final = (*COUNT_RULES, *WINDOW_RULES, *_OTHER_KEYS)
_ANCHORS: Final = ("newest", "now")

# Zone names that mean UTC: planning in them takes the fixed-offset fast path.
_UTC_NAMES: Final = frozenset(
    {"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu"}
)
# Names that resolve to whatever the machine is set to; a policy must not depend on that.
_MACHINE_ZONES: Final = frozenset({"localtime", "posixrules", "Factory"})
_TAG_FORBIDDEN: Final = frozenset(",=|")


def _count(name: str, value: object) -> Count:
    if value is unlimited or value == "unlimited":
        return unlimited
    if type(value) is not int:
        raise PolicyError(f"{name} must be a whole number >= 0 or 'unlimited', got {value!r}")
    if value < 0:
        raise PolicyError(
            f"{name} must be >= 0 or 'unlimited', got {value} (restic's -1 is 'unlimited' here)"
        )
    return value


def _window(name: str, value: object) -> Duration | None:
    if value is None:
        return None
    try:
        if isinstance(value, Duration):
            duration = value
        elif isinstance(value, str):
            duration = Duration.parse(value)
        elif isinstance(value, timedelta):
            duration = Duration.from_timedelta(value)
        else:
            raise PolicyError(f"expected a duration such as '14d', got {value!r}")
    except PolicyError as err:
        raise PolicyError(f"{name}: {err}") from None
    if duration.is_zero:
        raise PolicyError(f"{name} is a zero window, which keeps nothing; leave it unset instead")
    return duration


def _zone_name(value: object) -> str:
    if isinstance(value, ZoneInfo):
        if value.key is None:
            raise PolicyError("tz must be an IANA zone name; this ZoneInfo was read from a file")
        value = value.key
    elif value is UTC:
        value = "UTC"
    if not isinstance(value, str):
        raise PolicyError(f"tz must be an IANA zone name such as 'Europe/Brussels', got {value!r}")
    if value in _MACHINE_ZONES:
        raise PolicyError(f"tz {value!r} depends on the machine; name the zone, e.g. 'UTC'")
    if value not in _UTC_NAMES:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise PolicyError(f"tz {value!r} is not a known IANA time zone") from None
    return value


def _tags(value: object) -> frozenset[str]:
    if isinstance(value, str):
        raise PolicyError(f"tags must be a collection of tag names, not the text {value!r}")
    if not isinstance(value, Iterable):
        raise PolicyError(f"tags must be a collection of tag names, got {value!r}")
    tags = frozenset(value)
    for tag in tags:
        if not isinstance(tag, str) or not tag:
            raise PolicyError(f"every tag must be a non-empty string, got {tag!r}")
        if any(char.isspace() or char in _TAG_FORBIDDEN for char in tag):
            raise PolicyError(f"tag {tag!r} must not contain whitespace, ',', '=' or '|'")
    return tags


def _anchor(value: object) -> Literal["newest", "now"]:
    if value == "newest":
        return "newest"
    if value == "now":
        return "now"
    raise PolicyError(f"anchor must be 'newest' or 'now', got {value!r}")


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise PolicyError(f"{name} must be true or false, got {value!r}")
    return value


def _normalise_key(key: object) -> str:
    if not isinstance(key, str):
        raise PolicyError(f"policy keys must be text, got {key!r}")
    name = key.strip().replace("-", "_")
    # restic's flag names (keep-daily, keep-within-daily) read naturally in configuration files.
    if name.startswith("keep_") and name != "keep_":
        name = name[len("keep_") :]
    if name not in _KEYS:
        raise PolicyError(f"unknown policy key {key!r}; known keys: {', '.join(_KEYS)}")
    return name


def _text_value(name: str, value: str) -> object:
    """Turn the text of one ``key=value`` pair into what the `Policy` constructor accepts."""
    if name in COUNT_RULES:
        return int(value) if value.isdigit() else value
    if name == "tags":
        return [tag for tag in value.split("|") if tag] if value else []
    if name == "allow_empty":
        lowered = value.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
    return value


@attrs.frozen(init=False)
class Policy:
    """Which snapshots to keep: count rules, window rules and tags, evaluated in one zone.

    Count rules keep the newest snapshot of each of the N most recent periods that contain a
    snapshot; window rules keep snapshots newer than a calendar cutoff (all of them, or the
    newest of each period); tagged snapshots are always kept. A count rule with slots left and
    a periodic window reaching back past the oldest snapshot keep the oldest snapshot too, so a
    young repository keeps its first backup. See ``docs/retention.md``.

    Args:
        last: keep the N newest snapshots.
        hourly: keep the newest snapshot of each of the N most recent hours with snapshots.
        daily: the same for calendar days.
        weekly: the same for ISO weeks (Monday to Sunday).
        monthly: the same for calendar months.
        yearly: the same for calendar years.
        within: keep every snapshot newer than the anchor moved back by this duration.
        within_hourly: keep the newest snapshot of each hour inside this window.
        within_daily: the same for calendar days.
        within_weekly: the same for ISO weeks.
        within_monthly: the same for calendar months.
        within_yearly: the same for calendar years.
        tz: IANA zone name in which periods are bucketed and windows measured.
        tags: keep every snapshot carrying at least one of these tags.
        anchor: measure windows from the ``"newest"`` snapshot not after ``now`` (restic's
            choice) or from ``"now"`` itself.
        allow_empty: accept a policy with no count or window rule; it keeps every snapshot.

    Counts are whole numbers >= 0 or `unlimited` (also written ``"unlimited"``); 0 turns a
    rule off. Windows are `Duration` values, restic-style text such as ``"1y2m"`` or a
    ``timedelta`` of whole hours; ``None`` turns a window off.

    Raises:
        PolicyError: a count is negative or not a whole number, a window is malformed or zero,
            the zone is unknown, a tag is malformed, or no count or window rule is set
            without ``allow_empty`` (tags alone do not make a policy).
    """

    last: Count
    hourly: Count
    daily: Count
    weekly: Count
    monthly: Count
    yearly: Count
    within: Duration | None
    within_hourly: Duration | None
    within_daily: Duration | None
    within_weekly: Duration | None
    within_monthly: Duration | None
    within_yearly: Duration | None
    tz: str
    tags: frozenset[str]
    anchor: Literal["newest", "now"]
    allow_empty: bool

    def __init__(
        self,
        *,
        last: CountLike = 0,
        hourly: CountLike = 0,
        daily: CountLike = 0,
        weekly: CountLike = 0,
        monthly: CountLike = 0,
        yearly: CountLike = 0,
        within: WindowLike = None,
        within_hourly: WindowLike = None,
        within_daily: WindowLike = None,
        within_weekly: WindowLike = None,
        within_monthly: WindowLike = None,
        within_yearly: WindowLike = None,
        tz: str | tzinfo = "UTC",
        tags: Iterable[str] = frozenset(),
        anchor: Literal["newest", "now"] = "newest",
        allow_empty: bool = False,
    ) -> None:
        self.__attrs_init__(
            last=_count("last", last),
            hourly=_count("hourly", hourly),
            daily=_count("daily", daily),
            weekly=_count("weekly", weekly),
            monthly=_count("monthly", monthly),
            yearly=_count("yearly", yearly),
            within=_window("within", within),
            within_hourly=_window("within_hourly", within_hourly),
            within_daily=_window("within_daily", within_daily),
            within_weekly=_window("within_weekly", within_weekly),
            within_monthly=_window("within_monthly", within_monthly),
            within_yearly=_window("within_yearly", within_yearly),
            tz=_zone_name(tz),
            tags=_tags(tags),
            anchor=_anchor(anchor),
            allow_empty=_flag("allow_empty", allow_empty),
        )
        if self.is_empty and not self.allow_empty:
            if self.tags:
                raise PolicyError(
                    "tags alone would forget every untagged snapshot, the newest included; "
                    "add a count or a window rule (for example last=1)"
                )
            raise PolicyError(
                "the policy has no count or window rule; set one (for example daily=7), or "
                "pass allow_empty=True to keep every snapshot"
            )

    @classmethod
    def contractify(cls, *, tz: str = "UTC") -> Policy:
        """Return the schedule Contractify promises its customers.

        Daily backups kept 14 days, weekly 8 weeks, monthly 6 months and yearly 1 year:
        ``within_daily=14d, within_weekly=8w, within_monthly=6m, within_yearly=1y``.

        Args:
            tz: the zone in which days, weeks, months and years are counted.

        Returns:
            The policy.
        """
        return cls(
            within_daily="14d",
            within_weekly="8w",
            within_monthly="6m",
            within_yearly="1y",
            tz=tz,
        )

    @classmethod
    def parse(cls, text: str) -> Policy:
        """Parse the ``key=value,key=value`` form that ``str(policy)`` writes.

        Keys are the constructor's argument names; restic's flag names (``keep-daily``,
        ``keep-within-daily``) are accepted too. Tags are separated by ``|`` and
        ``allow_empty`` takes ``true`` or ``false``. For example
        ``"daily=7,weekly=4,within=2d,tz=Europe/Brussels,tags=release|audit"``.

        Args:
            text: the policy text.

        Returns:
            The policy.

        Raises:
            PolicyError: a pair has no ``=``, a key is unknown or repeated, or a value is
                invalid.
        """
        if not isinstance(text, str):
            raise PolicyError(f"a policy text must be a string, got {text!r}")
        pairs: dict[str, object] = {}
        for part in text.split(","):
            item = part.strip()
            if not item:
                continue
            key, equals, value = item.partition("=")
            if not equals:
                raise PolicyError(f"policy item {item!r} is not of the form key=value")
            name = _normalise_key(key)
            if name in pairs:
                raise PolicyError(f"policy key {name!r} is given twice")
            pairs[name] = _text_value(name, value.strip())
        return cls.from_dict(pairs)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Policy:
        """Build a policy from a mapping such as a TOML table.

        Keys are as for `parse`. Counts may be integers, digit strings or ``"unlimited"``;
        windows are duration strings; tags a list of strings or one ``|``-separated string.

        Args:
            data: the mapping.

        Returns:
            The policy.

        Raises:
            PolicyError: a key is unknown or given twice under two spellings, or a value is
                invalid.
        """
        if not isinstance(data, Mapping):
            raise PolicyError(f"a policy mapping must be a mapping, got {data!r}")
        arguments: dict[str, object] = {}
        for key, raw in data.items():
            name = _normalise_key(key)
            if name in arguments:
                raise PolicyError(f"policy key {name!r} is given twice (as {key!r})")
            value = _text_value(name, raw) if isinstance(raw, str) else raw
            arguments[name] = value
        return cls(**arguments)  # type: ignore[arg-type]  # each value is checked in __init__

    def to_dict(self) -> dict[str, int | str | bool | list[str]]:
        """Return the TOML- and JSON-friendly mapping of every setting that is not a default.

        Returns:
            A mapping that `from_dict` turns back into an equal policy.
        """
        result: dict[str, int | str | bool | list[str]] = {}
        for name in COUNT_RULES:
            count = getattr(self, name)
            if count is unlimited:
                result[name] = str(count)
            elif count:
                result[name] = count
        for name in WINDOW_RULES:
            window = getattr(self, name)
            if window is not None:
                result[name] = str(window)
        if self.tz != "UTC":
            result["tz"] = self.tz
        if self.tags:
            result["tags"] = sorted(self.tags)
        if self.anchor != "newest":
            result["anchor"] = self.anchor
        if self.allow_empty:
            result["allow_empty"] = True
        return result

    def __str__(self) -> str:
        parts = []
        for name, value in self.to_dict().items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, list):
                text = "|".join(value)
            else:
                text = str(value)
            parts.append(f"{name}={text}")
        return ",".join(parts)

    @property
    def zone(self) -> tzinfo:
        """The zone as a ``tzinfo``: ``datetime.timezone.utc`` for UTC, else a ``ZoneInfo``."""
        if self.tz in _UTC_NAMES:
            return UTC
        return ZoneInfo(self.tz)

    @property
    def is_empty(self) -> bool:
        """Whether no count or window rule is set (tags alone do not make a policy)."""
        return not (
            any(getattr(self, name) for name in COUNT_RULES)
            or any(getattr(self, name) is not None for name in WINDOW_RULES)
        )

    def counts(self) -> dict[str, Count]:
        """Return the count rules that are switched on, in evaluation order.

        Returns:
            A mapping from rule name to its count or `unlimited`.
        """
        return {name: getattr(self, name) for name in COUNT_RULES if getattr(self, name)}

    def windows(self) -> dict[str, Duration]:
        """Return the window rules that are switched on, in evaluation order.

        Returns:
            A mapping from rule name to its duration.
        """
        return {
            name: getattr(self, name) for name in WINDOW_RULES if getattr(self, name) is not None
        }

    def horizon(self) -> timedelta | None:
        """Return the longest time a snapshot can stay kept, or ``None`` when it is unbounded.

        Only window rules let a snapshot go: it leaves its window once the newest snapshot
        (or ``now``, with ``anchor="now"``) is a window's duration past it. A count rule, a
        tag or an empty policy can keep a snapshot forever, so the horizon is then ``None``.
        A year counts as 366 days and a month as 31; outside UTC a day is added for clock
        changes. With ``anchor="newest"`` the time runs as new snapshots arrive: a
        repository that stops receiving backups keeps what it has.

        Returns:
            The bound, suitable for an Object Lock retain-until date, or ``None``.
        """
        if self.counts() or self.tags or self.is_empty:
            return None
        longest = max(window.longest() for window in self.windows().values())
        if self.tz not in _UTC_NAMES:
            longest += timedelta(days=1)
        return longest
