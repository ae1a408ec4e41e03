"""The snapshot model: frozen values for files, manifests and prune records, validated on construction."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Final

import attrs

from ctfy_vault.exceptions import ConfigurationError

HASH_SIZE: Final = 32
#: A lineage name or snapshot id: a letter or digit, then up to 63 letters, digits, ``_`` or ``-``.
IDENTIFIER: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class FileType(enum.Enum):
    """What a manifest entry is."""

    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    #: A second path to an inode already recorded: names that entry's path in ``link``.
    HARDLINK = "hardlink"
    FIFO = "fifo"
    CHARDEV = "chardev"
    BLOCKDEV = "blockdev"


#: The types a hard link can share an inode with (a folder has no hard links).
LINKABLE: Final = frozenset({FileType.FILE, FileType.FIFO, FileType.CHARDEV, FileType.BLOCKDEV})
#: The types that carry device numbers.
DEVICES: Final = frozenset({FileType.CHARDEV, FileType.BLOCKDEV})
#: The largest user, group or device number (32 bits, as Linux's ``dev_t`` halves and ids).
MAX_ID: Final = 2**32 - 1
#: The longest extended attribute name and value Linux accepts (``XATTR_NAME_MAX``, ``_SIZE_MAX``).
MAX_XATTR_NAME: Final = 255
MAX_XATTR_VALUE: Final = 65536


def _text(value: object, what: str, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not empty):
        raise ConfigurationError(f"{what} must be a {'' if empty else 'non-empty '}string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError(f"{what} must be valid Unicode (no lone surrogates)") from None
    return value


def _ident(value: object, what: str) -> str:
    if not isinstance(value, str) or not IDENTIFIER.fullmatch(value):
        raise ConfigurationError(
            f"{what} has 1 to 64 characters from A-Z, a-z, 0-9, '-' and '_', "
            "starting with a letter or digit"
        )
    return value


def _digest(value: object, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ConfigurationError(f"{what} must be {HASH_SIZE} bytes")
    return value


def _utc(value: object) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ConfigurationError("created must be an aware datetime")
    return value.astimezone(UTC)


def _int(value: object, what: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ConfigurationError(f"{what} must be an integer from {low} to {high}")
    return value


def check_path(path: object) -> str:
    """Validate a file path: relative POSIX, no empty, ``.`` or ``..`` segments, no NUL.

    Args:
        path: the candidate.

    Returns:
        The path.

    Raises:
        ConfigurationError: the path is not acceptable.
    """
    text = _text(path, "a file path")
    if "\x00" in text or text.startswith("/") or text.endswith("/"):
        raise ConfigurationError("a file path is relative, without NUL or a trailing '/'")
    for segment in text.split("/"):
        if segment in ("", ".", ".."):
            raise ConfigurationError("a file path has no empty, '.' or '..' segments")
    return text


def time_text(moment: datetime) -> str:
    """Format an aware time as the canonical UTC text ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.

    Args:
        moment: an aware datetime.

    Returns:
        The text.
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_NAME_TIME: Final = "%Y%m%dT%H%M%S.%fZ"
# The C library writes years before 1000 without padding: the year has 1 to 4 digits.
_NAME_STAMP: Final = re.compile(
    r"([0-9]{1,4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})\.([0-9]{6})Z"
)


def _name(created: datetime, ident: str) -> str:
    return f"{created.strftime(_NAME_TIME)}-{ident}"


def parse_entry_name(name: str) -> tuple[datetime, str] | None:
    """Read the creation time and id out of a name under ``snapshots/``, if it is one.

    A manifest or prune record is stored under ``<UTC time>-<id>`` (``20261101T020000.000000Z-
    <id>``); only a name this library would write for some entry parses. Anything else under
    ``snapshots/`` is not a snapshot object: it is reported by ``verify`` and otherwise ignored.

    Args:
        name: the object name (the part after ``snapshots/``).

    Returns:
        ``(created, id)`` with ``created`` aware (UTC), or ``None`` when the name is not one an
        entry is stored under.
    """
    stamp, dash, ident = name.partition("-")
    found = _NAME_STAMP.fullmatch(stamp)
    if not dash or found is None or not IDENTIFIER.fullmatch(ident):
        return None
    year, month, day, hour, minute, second, micro = (int(part) for part in found.groups())
    try:
        created = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    except ValueError:
        return None
    return (created, ident) if _name(created, ident) == name else None


def _xattrs(
    values: Mapping[str, bytes] | Iterable[tuple[str, bytes]],
) -> tuple[tuple[str, bytes], ...]:
    given: object = values  # checked as any value: a caller's types are not trusted
    if not given:
        return ()
    if isinstance(given, (str, bytes)) or not isinstance(given, Iterable):
        raise ConfigurationError("xattrs must be (name, value) pairs or a mapping")
    items: Iterable[object] = given.items() if isinstance(given, Mapping) else given
    pairs: list[tuple[str, bytes]] = []
    for pair in items:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise ConfigurationError("xattrs must be (name, value) pairs or a mapping")
        name, value = pair
        text = _text(name, "an xattrs name")
        if "\x00" in text or len(text.encode("utf-8")) > MAX_XATTR_NAME:
            raise ConfigurationError(
                f"an xattrs name has 1 to {MAX_XATTR_NAME} bytes of UTF-8, without NUL"
            )
        if not isinstance(value, bytes) or len(value) > MAX_XATTR_VALUE:
            raise ConfigurationError(f"an xattrs value is bytes, at most {MAX_XATTR_VALUE}")
        pairs.append((text, value))
    pairs.sort(key=lambda pair: pair[0])
    if any(pairs[i][0] == pairs[i + 1][0] for i in range(len(pairs) - 1)):
        raise ConfigurationError("xattrs names must be unique")
    return tuple(pairs)


def _owner_name(value: object, what: str) -> None:
    if value is not None and "\x00" in _text(value, what):
        raise ConfigurationError(f"{what} has no NUL")


@attrs.frozen(kw_only=True)
class FileEntry:
    """One file, directory, link or special file in a snapshot.

    The owner, extended attributes and device numbers are optional: an entry without them (every
    entry of an older snapshot, a stream) encodes exactly as before they existed.

    Attributes:
        path: relative POSIX path (UTF-8, no NUL, no ``.``/``..``/empty segments).
        type: file, directory, symlink, hard link, FIFO, character or block device.
        mode: permission bits, 0 to 0o7777 (with the setuid, setgid and sticky bits).
        mtime_ns: modification time in nanoseconds since the Unix epoch.
        size: bytes in the file (0 for everything but a regular file).
        chunks: the ordered chunk ids (files only).
        sha256: SHA-256 of the whole plaintext file (files only, required for them).
        link: the target of a symbolic link, or the path of the entry a hard link shares its
            inode with (required for both, ``None`` for every other type).
        uid: the numeric owner, 0 to 2**32 - 1, or ``None`` when not recorded.
        gid: the numeric group, likewise.
        user: the owner's name when the source system had one (informative: restore uses
            ``uid``); only with ``uid``.
        group: the group's name, likewise; only with ``gid``.
        xattrs: extended attributes as ``(name, value)`` pairs, sorted by name (a mapping is
            accepted). POSIX ACLs are the ``system.posix_acl_access`` and
            ``system.posix_acl_default`` attributes. None on a hard link: they belong to the
            inode, recorded once with the entry it links to.
        device: ``(major, minor)`` of a character or block device (required for them, ``None``
            for every other type).
    """

    path: str
    type: FileType
    mode: int
    mtime_ns: int
    size: int = 0
    chunks: tuple[bytes, ...] = ()
    sha256: bytes | None = None
    link: str | None = None
    uid: int | None = None
    gid: int | None = None
    user: str | None = None
    group: str | None = None
    xattrs: tuple[tuple[str, bytes], ...] = attrs.field(default=(), converter=_xattrs)
    device: tuple[int, int] | None = None

    def __attrs_post_init__(self) -> None:
        # One check for the whole entry: a million entries go through here on every open.
        check_path(self.path)
        if not isinstance(self.type, FileType):
            raise ConfigurationError("type must be a FileType")
        _int(self.mode, "mode", 0, 0o7777)
        _int(self.mtime_ns, "mtime_ns", -(2**63), 2**63 - 1)
        _int(self.size, "size", 0, 2**63 - 1)
        if not isinstance(self.chunks, tuple):
            raise ConfigurationError("chunks must be a tuple of chunk ids")
        for chunk in self.chunks:
            _digest(chunk, "a chunk id")
        if self.uid is not None or self.gid is not None or self.device is not None:
            self._check_numbers()
        if self.user is not None or self.group is not None:
            self._check_names()
        self._check_kind()

    def _check_kind(self) -> None:
        if self.type is FileType.FILE:
            _digest(self.sha256, "sha256 of a file")
            if self.link is not None:
                raise ConfigurationError("only a symlink or a hardlink has a link target")
            return
        if self.size or self.chunks or self.sha256 is not None:
            raise ConfigurationError("only a regular file has a size, chunks and a sha256")
        if self.type is FileType.SYMLINK:
            _text(self.link, "a symlink's target")
        elif self.type is FileType.HARDLINK:
            if check_path(self.link) == self.path:
                raise ConfigurationError("a hardlink's link names another path than its own")
            if self.xattrs:
                raise ConfigurationError(
                    "a hardlink has no xattrs: they are recorded with the entry it links to"
                )
        elif self.link is not None:
            raise ConfigurationError("only a symlink or a hardlink has a link target")
        if self.type in DEVICES and self.device is None:
            raise ConfigurationError(f"a {self.type.value} entry needs its device numbers")

    def _check_numbers(self) -> None:
        if self.uid is not None:
            _int(self.uid, "uid", 0, MAX_ID)
        if self.gid is not None:
            _int(self.gid, "gid", 0, MAX_ID)
        if self.device is not None:
            if self.type not in DEVICES:
                raise ConfigurationError("only a chardev or blockdev entry has device numbers")
            device: object = self.device
            if not isinstance(device, tuple) or len(device) != 2:
                raise ConfigurationError("device must be a (major, minor) pair")
            _int(device[0], "device major", 0, MAX_ID)
            _int(device[1], "device minor", 0, MAX_ID)

    def _check_names(self) -> None:
        _owner_name(self.user, "user")
        _owner_name(self.group, "group")
        if self.user is not None and self.uid is None:
            raise ConfigurationError("user is recorded only with its uid")
        if self.group is not None and self.gid is None:
            raise ConfigurationError("group is recorded only with its gid")


def _tags(values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise ConfigurationError("tags must be a collection of strings, not one string")
    return tuple(sorted({_text(value, "a tag") for value in values}))


def _labels(values: Mapping[str, str] | Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    pairs = list(values.items() if isinstance(values, Mapping) else values)
    checked = sorted(
        (_text(k, "a label key"), _text(v, "a label value", empty=True)) for k, v in pairs
    )
    if len({key for key, _ in checked}) != len(checked):
        raise ConfigurationError("label keys must be unique")
    return tuple(checked)


def _files(values: Iterable[FileEntry]) -> tuple[FileEntry, ...]:
    files = tuple(values)
    for entry in files:
        if not isinstance(entry, FileEntry):
            raise ConfigurationError("files must be FileEntry values")
    # Canonical order is by path (code points, which is UTF-8 byte order); sort only when needed.
    if any(files[i].path >= files[i + 1].path for i in range(len(files) - 1)):
        files = tuple(sorted(files, key=lambda entry: entry.path))
        if any(files[i].path == files[i + 1].path for i in range(len(files) - 1)):
            raise ConfigurationError("file paths must be unique")
    if any(entry.type is FileType.HARDLINK for entry in files):
        _check_hardlinks(files)
    return files


def _check_hardlinks(files: tuple[FileEntry, ...]) -> None:
    """Each hard link names an earlier entry of the snapshot that holds an inode's data.

    Pointing only backwards, at an entry that is no hard link itself, leaves no chain or cycle to
    follow: a reader restores the named entry first and links to it.
    """
    earlier: dict[str, FileType] = {}
    for entry in files:
        if entry.type is FileType.HARDLINK:
            kind = earlier.get(entry.link or "")
            if kind is None:
                raise ConfigurationError(
                    f"hardlink {entry.path!r} links to {entry.link!r}, which is no earlier "
                    "path of the snapshot"
                )
            if kind not in LINKABLE:
                raise ConfigurationError(
                    f"hardlink {entry.path!r} links to {entry.link!r}, a {kind.value}: only a "
                    "file, fifo or device entry can be hard linked"
                )
        earlier[entry.path] = entry.type


def _snapshot_id(value: object) -> str:
    return _ident(value, "snapshot_id")


def _record_id(value: object) -> str:
    return _ident(value, "record_id")


def _lineage(value: object) -> str:
    return _ident(value, "lineage")


def _host(value: object) -> str:
    return _text(value, "host", empty=True)


def _hash(value: object) -> bytes:
    return _digest(value, "hash")


def _sources(values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise ConfigurationError("sources must be a collection of strings, not one string")
    return tuple(_text(value, "a source") for value in values)


def _optional_digest(value: bytes | None) -> bytes | None:
    return None if value is None else _digest(value, "previous")


@attrs.frozen(kw_only=True)
class Totals:
    """Counts over a manifest's files, stored in its header and checked when it is opened.

    Attributes:
        files: entries of every type.
        size: bytes over all regular files.
        chunks: chunk references over all files (a chunk named twice counts twice).
    """

    files: int
    size: int
    chunks: int


@attrs.frozen(kw_only=True)
class Manifest:
    """One snapshot: what was backed up, when, from where, and the hash of its lineage's predecessor.

    Attributes:
        snapshot_id: the snapshot's id (1-64 of ``A-Za-z0-9_-``).
        lineage: the chain this snapshot belongs to, e.g. ``db`` or ``server-files``.
        created: when the snapshot was taken (aware; stored in UTC, microseconds).
        host: the machine it was taken on.
        tags: free tags, kept sorted and unique.
        labels: free key/value labels, kept sorted by key.
        sources: the source paths or stream names, in the order given.
        files: the entries, kept sorted by path; paths are unique.
        previous: SHA-256 of the previous entry of this lineage (manifest or prune record), or
            ``None`` for the first.
        totals: counts derived from ``files``.
    """

    snapshot_id: str = attrs.field(converter=_snapshot_id)
    lineage: str = attrs.field(converter=_lineage)
    created: datetime = attrs.field(converter=_utc)
    host: str = attrs.field(converter=_host)
    tags: tuple[str, ...] = attrs.field(default=(), converter=_tags)
    labels: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_labels)
    sources: tuple[str, ...] = attrs.field(default=(), converter=_sources)
    files: tuple[FileEntry, ...] = attrs.field(default=(), converter=_files, repr=False)
    previous: bytes | None = attrs.field(default=None, converter=_optional_digest)
    totals: Totals = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        totals = Totals(
            files=len(self.files),
            size=sum(entry.size for entry in self.files),
            chunks=sum(len(entry.chunks) for entry in self.files),
        )
        object.__setattr__(self, "totals", totals)

    @property
    def name(self) -> str:
        """The object name under ``snapshots/``: creation time then id, so names sort by time."""
        return _name(self.created, self.snapshot_id)

    @property
    def id(self) -> str:
        """The snapshot id (the same for every chain entry type)."""
        return self.snapshot_id


@attrs.frozen
class Forgotten:
    """A snapshot a prune removed: its id and the hash its successor names.

    Attributes:
        snapshot_id: the removed snapshot's id.
        hash: SHA-256 of the removed entry's canonical encoding.
    """

    snapshot_id: str = attrs.field(converter=_snapshot_id)
    hash: bytes = attrs.field(converter=_hash)


def _forgotten(values: Iterable[Forgotten]) -> tuple[Forgotten, ...]:
    items = tuple(values)
    if not all(isinstance(item, Forgotten) for item in items):
        raise ConfigurationError("forgotten must be Forgotten values")
    ordered = tuple(sorted(items, key=lambda item: (item.snapshot_id, item.hash)))
    if len({item.snapshot_id for item in ordered}) != len(ordered):
        raise ConfigurationError("a prune record names each forgotten snapshot once")
    return ordered


def _scope(values: Iterable[str] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    if isinstance(values, str):
        raise ConfigurationError("targets must be a collection of target names, not one string")
    names = tuple(sorted({_text(value, "a target name") for value in values}))
    if not names:
        raise ConfigurationError("a prune record's targets name at least one target")
    return names


@attrs.frozen(kw_only=True)
class PruneRecord:
    """The chain entry a prune appends: which snapshots of its lineage it forgot, by id and hash.

    It takes its place in the lineage like a snapshot (it names its predecessor and the next entry
    names it), so ``verify_chain`` can tell an authorised prune from a deleted snapshot.

    Attributes:
        record_id: the record's id.
        lineage: the lineage pruned.
        created: when the prune ran (aware; stored in UTC).
        host: where it ran.
        forgotten: the removed snapshots, sorted by id.
        previous: SHA-256 of the lineage's entry before this one, or ``None``.
        targets: the names of the targets it forgets them on, sorted; ``None`` (the default):
            on every target. A record with targets comes from per-target retention: the
            snapshots stay in the repository on the other targets.
    """

    record_id: str = attrs.field(converter=_record_id)
    lineage: str = attrs.field(converter=_lineage)
    created: datetime = attrs.field(converter=_utc)
    host: str = attrs.field(converter=_host)
    forgotten: tuple[Forgotten, ...] = attrs.field(default=(), converter=_forgotten)
    previous: bytes | None = attrs.field(default=None, converter=_optional_digest)
    targets: tuple[str, ...] | None = attrs.field(default=None, converter=_scope)

    @property
    def name(self) -> str:
        """The object name under ``snapshots/``: creation time then id, so names sort by time."""
        return _name(self.created, self.record_id)

    @property
    def id(self) -> str:
        """The record id (the same for every chain entry type)."""
        return self.record_id

    def applies_to(self, target: str) -> bool:
        """Whether the record forgets its snapshots on the target of that name."""
        return self.targets is None or target in self.targets


@attrs.frozen(kw_only=True)
class TagRecord:
    """The chain entry ``tag`` appends: tags added to and removed from one earlier snapshot.

    Tags change without rewriting history: the snapshot's manifest (and its hash, which the
    chain names) stays as it was, and this record takes its place in the lineage like a prune
    record (it names its predecessor, the next entry names it). A snapshot's tags are its
    manifest's, then every tag record naming it applied in chain order.

    Attributes:
        record_id: the record's id.
        lineage: the snapshot's lineage.
        created: when the tags were changed (aware; stored in UTC).
        host: where.
        snapshot: the snapshot whose tags change, by id and hash.
        add: tags added, sorted, unique.
        remove: tags removed, sorted, unique (none of them also added).
        previous: SHA-256 of the lineage's entry before this one, or ``None``.
    """

    record_id: str = attrs.field(converter=_record_id)
    lineage: str = attrs.field(converter=_lineage)
    created: datetime = attrs.field(converter=_utc)
    host: str = attrs.field(converter=_host)
    snapshot: Forgotten
    add: tuple[str, ...] = attrs.field(default=(), converter=_tags)
    remove: tuple[str, ...] = attrs.field(default=(), converter=_tags)
    previous: bytes | None = attrs.field(default=None, converter=_optional_digest)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.snapshot, Forgotten):
            raise ConfigurationError("a tag record names its snapshot as a Forgotten value")
        if not (self.add or self.remove):
            raise ConfigurationError("a tag record adds or removes at least one tag")
        both = sorted(set(self.add) & set(self.remove))
        if both:
            raise ConfigurationError(f"tag {both[0]!r} is both added and removed")

    @property
    def name(self) -> str:
        """The object name under ``snapshots/``: creation time then id, so names sort by time."""
        return _name(self.created, self.record_id)

    @property
    def id(self) -> str:
        """The record id (the same for every chain entry type)."""
        return self.record_id

    def apply(self, tags: Iterable[str]) -> tuple[str, ...]:
        """The tags after this record: ``tags`` plus ``add`` minus ``remove``, sorted."""
        return tuple(sorted((set(tags) | set(self.add)) - set(self.remove)))


Entry = Manifest | PruneRecord | TagRecord
