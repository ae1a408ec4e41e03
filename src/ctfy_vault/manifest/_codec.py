r"""Canonical encoding of manifests and prune records (JSON lines), and sealing them via `crypto`.

The encoding is a sequence of lines, each one JSON object with sorted keys, no spaces, UTF-8 without
escapes beyond JSON's own, ending in ``\\n``: a header line, then (for a snapshot) one line per file in
path order. Equal values give identical bytes; the SHA-256 of those bytes is the entry's hash, the one
its successor names. Encoding and decoding stream line by line, so the plaintext is never held whole.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Final

import attrs

from ctfy_vault.crypto import Kind, Sealer
from ctfy_vault.exceptions import ConfigurationError, FormatError
from ctfy_vault.manifest._model import (
    Entry,
    FileEntry,
    FileType,
    Forgotten,
    Manifest,
    PruneRecord,
    TagRecord,
    time_text,
)

MANIFEST_FORMAT: Final = 1
MAX_LINE_BYTES: Final = 256 * 2**20
"""The longest line a reader accepts (a file of about 3.8 million chunks); longer is a format error."""

_SNAPSHOT_KEYS: Final = frozenset(
    {"chunks", "created", "files", "format", "host", "id", "kind", "labels", "lineage"}
    | {"previous", "size", "sources", "tags"}
)
_PRUNE_KEYS: Final = frozenset(
    {"created", "forgotten", "format", "host", "id", "kind", "lineage", "previous"}
)
_TAG_KEYS: Final = frozenset(
    {"add", "created", "format", "host", "id", "kind", "lineage", "previous", "remove"}
    | {"snapshot"}
)
_FILE_KEYS: Final = frozenset(
    {"chunks", "link", "mode", "mtime_ns", "path", "sha256", "size", "type"}
)
#: Written only when they carry something, so an entry without them keeps its encoding.
_OPTIONAL_FILE_KEYS: Final = frozenset({"device", "gid", "group", "uid", "user", "xattrs"})
_FILE_TYPES: Final = {member.value: member for member in FileType}


# One encoder for every line: json.dumps with options builds a new encoder per call.
_ENCODER: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _line(value: dict[str, Any]) -> bytes:
    return _ENCODER.encode(value).encode("utf-8") + b"\n"


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _file_line(entry: FileEntry) -> bytes:
    line: dict[str, Any] = {
        "chunks": [chunk.hex() for chunk in entry.chunks],
        "link": entry.link,
        "mode": entry.mode,
        "mtime_ns": entry.mtime_ns,
        "path": entry.path,
        "sha256": _hex(entry.sha256),
        "size": entry.size,
        "type": entry.type.value,
    }
    # The optional keys: absent when empty, so older entries keep their bytes and hashes.
    if entry.uid is not None:
        line["uid"] = entry.uid
    if entry.gid is not None:
        line["gid"] = entry.gid
    if entry.user is not None:
        line["user"] = entry.user
    if entry.group is not None:
        line["group"] = entry.group
    if entry.xattrs:
        line["xattrs"] = {name: _base64(value) for name, value in entry.xattrs}
    if entry.device is not None:
        line["device"] = list(entry.device)
    return _line(line)


def _base64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def encode(entry: Entry) -> Iterator[bytes]:
    r"""Yield the canonical encoding of a manifest or prune record, one line at a time.

    Args:
        entry: the manifest or prune record.

    Yields:
        UTF-8 lines, each ending in ``\\n``.
    """
    if isinstance(entry, TagRecord):
        yield _line(
            {
                "add": list(entry.add),
                "created": time_text(entry.created),
                "format": MANIFEST_FORMAT,
                "host": entry.host,
                "id": entry.record_id,
                "kind": "tags",
                "lineage": entry.lineage,
                "previous": _hex(entry.previous),
                "remove": list(entry.remove),
                "snapshot": {"hash": entry.snapshot.hash.hex(), "id": entry.snapshot.snapshot_id},
            }
        )
        return
    if isinstance(entry, PruneRecord):
        # ``targets`` is written only when the record is scoped, so an unscoped record keeps
        # its encoding; a reader without per-target retention refuses a scoped one.
        scope = {} if entry.targets is None else {"targets": list(entry.targets)}
        yield _line(
            {
                **scope,
                "created": time_text(entry.created),
                "forgotten": [
                    {"hash": item.hash.hex(), "id": item.snapshot_id} for item in entry.forgotten
                ],
                "format": MANIFEST_FORMAT,
                "host": entry.host,
                "id": entry.record_id,
                "kind": "prune",
                "lineage": entry.lineage,
                "previous": _hex(entry.previous),
            }
        )
        return
    yield _line(
        {
            "chunks": entry.totals.chunks,
            "created": time_text(entry.created),
            "files": entry.totals.files,
            "format": MANIFEST_FORMAT,
            "host": entry.host,
            "id": entry.snapshot_id,
            "kind": "snapshot",
            "labels": dict(entry.labels),
            "lineage": entry.lineage,
            "previous": _hex(entry.previous),
            "size": entry.totals.size,
            "sources": list(entry.sources),
            "tags": list(entry.tags),
        }
    )
    for file in entry.files:
        yield _file_line(file)


def entry_hash(entry: Entry) -> bytes:
    """Compute an entry's hash: SHA-256 of its canonical encoding.

    Args:
        entry: the manifest or prune record.

    Returns:
        32 bytes; the value its successor in the lineage stores as ``previous``.
    """
    digest = hashlib.sha256()
    for line in encode(entry):
        digest.update(line)
    return digest.digest()


# -- decoding --------------------------------------------------------------------------------


def _check_length(number: int, length: int) -> None:
    if length > MAX_LINE_BYTES:
        raise FormatError(f"manifest line {number} is longer than {MAX_LINE_BYTES} bytes")


def _lines(pieces: Iterable[bytes], digest: Any) -> Iterator[tuple[int, bytes]]:
    pending = bytearray()
    number = 0
    for piece in pieces:
        digest.update(piece)
        pending += piece
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            number += 1
            _check_length(number, end - start)
            yield number, bytes(pending[start:end])
            start = end + 1
        del pending[:start]
        _check_length(number + 1, len(pending))
    if pending:
        raise FormatError("manifest does not end with a newline")


def _object(
    number: int, line: bytes, keys: frozenset[str], optional: frozenset[str] = frozenset()
) -> tuple[dict[str, Any], str]:
    try:
        text = line.decode("utf-8")
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise FormatError(f"manifest line {number} is not JSON") from None
    if not isinstance(value, dict):
        raise FormatError(f"manifest line {number} is not a JSON object")
    if value.keys() != keys and not (keys <= value.keys() <= keys | optional):
        raise FormatError(f"manifest line {number} has unexpected or missing fields")
    return value, text


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value


def _int(value: object) -> int:
    if type(value) is not int:
        raise TypeError
    return value


def _hash(value: object) -> bytes:
    text = _str(value)
    if len(text) != 64 or text != text.lower():
        raise ValueError
    return bytes.fromhex(text)


def _maybe_hash(value: object) -> bytes | None:
    return None if value is None else _hash(value)


def _time(value: object) -> datetime:
    return datetime.strptime(_str(value), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _list(value: object) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError
    return value


def _forgotten(value: object) -> Forgotten:
    if not isinstance(value, dict) or set(value) != {"hash", "id"}:
        raise TypeError
    return Forgotten(_str(value["id"]), _hash(value["hash"]))


def _present(data: dict[str, Any], key: str) -> Any:
    # An optional key is written only with a value: null (or nothing in it) is a second
    # spelling of "absent", refused so that every entry has one encoding.
    value = data.get(key)
    if key in data and value is None:
        raise TypeError
    return value


def _xattrs(value: object) -> list[tuple[str, bytes]]:
    if value is None:
        return []
    if not isinstance(value, dict) or not value:
        raise TypeError
    pairs = []
    for name, text in value.items():
        raw = base64.b64decode(_str(text), validate=True)
        if _base64(raw) != text:  # one spelling per value (padding bits, padding)
            raise ValueError
        pairs.append((_str(name), raw))
    return pairs


def _device(value: object) -> tuple[int, int] | None:
    if value is None:
        return None
    numbers = _list(value)
    if len(numbers) != 2:
        raise ValueError
    return _int(numbers[0]), _int(numbers[1])


def _optional(data: dict[str, Any]) -> dict[str, Any]:
    """The optional fields of a file line that has some, as `FileEntry` arguments."""
    return {
        "uid": _present(data, "uid"),
        "gid": _present(data, "gid"),
        "user": _present(data, "user"),
        "group": _present(data, "group"),
        "xattrs": _xattrs(_present(data, "xattrs")),
        "device": _device(_present(data, "device")),
    }


def _decode_file(number: int, line: bytes) -> FileEntry:
    data, text = _object(number, line, _FILE_KEYS, _OPTIONAL_FILE_KEYS)
    try:
        sha256 = data["sha256"]
        # FileEntry checks the types and ranges of the other fields itself.
        entry = FileEntry(
            path=data["path"],
            type=_FILE_TYPES[data["type"]],
            mode=data["mode"],
            mtime_ns=data["mtime_ns"],
            size=data["size"],
            chunks=tuple([_hash(chunk) for chunk in _list(data["chunks"])]),
            sha256=None if sha256 is None else _hash(sha256),
            link=data["link"],
            **({} if len(data) == len(_FILE_KEYS) else _optional(data)),
        )
    except (ConfigurationError, KeyError, TypeError, ValueError, binascii.Error) as err:
        raise FormatError(f"manifest line {number} holds an invalid file entry") from err
    # The values were checked one to one against the entry, so re-encoding them is re-encoding it.
    _check_canonical(number, text, _ENCODER.encode(data))
    return entry


def _check_canonical(number: int, text: str, expected: str) -> None:
    # One encoding per value: otherwise a model's hash could differ from the stored bytes' hash.
    if expected != text:
        raise FormatError(f"manifest line {number} is not in canonical form")


def _decode_header(number: int, line: bytes) -> tuple[dict[str, Any], str]:
    try:
        probe = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):
        raise FormatError(f"manifest line {number} is not JSON") from None
    if not isinstance(probe, dict):
        raise FormatError(f"manifest line {number} is not a JSON object")
    if probe.get("format") != MANIFEST_FORMAT:
        raise FormatError(f"manifest format {probe.get('format')!r} is not {MANIFEST_FORMAT}")
    kind = probe.get("kind")
    if kind not in ("snapshot", "prune", "tags"):
        raise FormatError(f"manifest kind {kind!r} is unknown")
    keys = {"snapshot": _SNAPSHOT_KEYS, "prune": _PRUNE_KEYS, "tags": _TAG_KEYS}[kind]
    if set(probe) != keys and (kind != "prune" or set(probe) != keys | {"targets"}):
        raise FormatError(f"manifest line {number} has unexpected or missing fields")
    return probe, kind


def decode(pieces: Iterable[bytes]) -> tuple[Entry, bytes]:
    """Decode a canonical encoding, streamed in pieces of any size, and hash it on the way.

    Args:
        pieces: the encoding's bytes, in order.

    Returns:
        The manifest or prune record, and the SHA-256 of the bytes read.

    Raises:
        FormatError: not a format 1 encoding, a malformed line, invalid values, or totals that do
            not match the entries.
    """
    digest = hashlib.sha256()
    lines = _lines(pieces, digest)
    first = next(lines, None)
    if first is None:
        raise FormatError("manifest is empty")
    header, kind = _decode_header(*first)
    entry: Entry
    try:
        if kind == "tags":
            entry = TagRecord(
                record_id=_str(header["id"]),
                lineage=_str(header["lineage"]),
                created=_time(header["created"]),
                host=_str(header["host"]),
                snapshot=_forgotten(header["snapshot"]),
                add=[_str(tag) for tag in _list(header["add"])],
                remove=[_str(tag) for tag in _list(header["remove"])],
                previous=_maybe_hash(header["previous"]),
            )
        elif kind == "prune":
            entry = PruneRecord(
                record_id=_str(header["id"]),
                lineage=_str(header["lineage"]),
                created=_time(header["created"]),
                host=_str(header["host"]),
                forgotten=[_forgotten(item) for item in _list(header["forgotten"])],
                previous=_maybe_hash(header["previous"]),
                targets=(
                    None
                    if "targets" not in header
                    else [_str(name) for name in _list(header["targets"])]
                ),
            )
        else:
            declared = _int(header["files"])
            files: list[FileEntry] = []
            for number, line in lines:
                if len(files) >= declared:
                    raise FormatError("manifest has more file lines than its header declares")
                files.append(_decode_file(number, line))
            labels = header["labels"]
            if not isinstance(labels, dict):
                raise TypeError
            entry = Manifest(
                snapshot_id=_str(header["id"]),
                lineage=_str(header["lineage"]),
                created=_time(header["created"]),
                host=_str(header["host"]),
                tags=[_str(tag) for tag in _list(header["tags"])],
                labels={_str(key): _str(value) for key, value in labels.items()},
                sources=[_str(source) for source in _list(header["sources"])],
                files=files,
                previous=_maybe_hash(header["previous"]),
            )
            expected = (_int(header["files"]), _int(header["size"]), _int(header["chunks"]))
            totals = entry.totals
            if expected != (totals.files, totals.size, totals.chunks):
                raise FormatError("manifest totals do not match its entries")
    except FormatError:
        raise
    except (ConfigurationError, KeyError, TypeError, ValueError) as err:
        raise FormatError("manifest header holds invalid values") from err
    if next(lines, None) is not None:
        raise FormatError("a prune or tag record has exactly one line")
    _check_canonical(first[0], first[1].decode("utf-8"), next(encode(entry)).decode("utf-8")[:-1])
    return entry, digest.digest()


# -- sealing ---------------------------------------------------------------------------------


@attrs.frozen
class SealedEntry:
    """A manifest or prune record ready to store under ``snapshots/<name>``.

    Attributes:
        name: the object name under ``snapshots/``.
        hash: the entry's hash (SHA-256 of its canonical encoding).
        blob: the sealed bytes, written verbatim to every target.
    """

    name: str
    hash: bytes
    blob: bytearray = attrs.field(repr=False, hash=False)


@attrs.frozen
class OpenedEntry:
    """A manifest or prune record read back, with the hash of the bytes it was decoded from.

    Attributes:
        name: the object name it was read from.
        hash: SHA-256 of its canonical encoding as stored.
        entry: the manifest or prune record.
    """

    name: str
    hash: bytes
    entry: Entry


def _kind(entry: Entry) -> Kind:
    if isinstance(entry, TagRecord):
        return Kind.TAG_RECORD
    return Kind.PRUNE_RECORD if isinstance(entry, PruneRecord) else Kind.MANIFEST


def seal_entry(sealer: Sealer, entry: Entry) -> SealedEntry:
    """Encode, compress and seal a manifest or prune record, streaming (never the whole plaintext).

    Args:
        sealer: the repository's sealer.
        entry: the manifest or prune record.

    Returns:
        Its name, hash and sealed blob.
    """
    digest = hashlib.sha256()

    def hashed() -> Iterator[bytes]:
        for line in encode(entry):
            digest.update(line)
            yield line

    blob = sealer.seal_stream(_kind(entry), entry.name, hashed())
    return SealedEntry(name=entry.name, hash=digest.digest(), blob=blob)


def open_entry(sealer: Sealer, name: str, blob: bytes | bytearray | memoryview) -> OpenedEntry:
    """Open a sealed manifest or prune record read from ``snapshots/<name>``.

    Args:
        sealer: the repository's sealer.
        name: the object name it was read from (bound into the seal).
        blob: the stored bytes.

    Returns:
        The entry and its hash.

    Raises:
        IntegrityError: wrong key, altered bytes, or a blob from another name or repository.
        FormatError: an unknown version, or garbage inside a valid seal (a buggy writer).
    """
    kind, pieces = sealer.open_stream(
        (Kind.MANIFEST, Kind.PRUNE_RECORD, Kind.TAG_RECORD), name, blob
    )
    entry, digest = decode(pieces)
    if _kind(entry) is not kind or entry.name != name:
        raise FormatError("the sealed entry's content does not match its kind or name")
    return OpenedEntry(name=name, hash=digest, entry=entry)
