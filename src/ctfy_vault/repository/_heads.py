"""Known heads: each lineage's newest entry as last seen, kept by the caller outside the storage.

The hash chain shows a deleted snapshot as a gap, but deleting a lineage's *newest* entries on
every target leaves no gap. Only a head recorded earlier, somewhere the storage provider cannot
change, reveals it. `KnownHeads` is that record: `Vault.verify` returns the current heads
(`VerifyReport.heads`) and checks earlier ones, `Vault.backup` refuses to chain onto a lineage that
lost its known head, and `KnownHeads.save` / `KnownHeads.load` keep them in a small versioned JSON
file (``docs/vault.md`` gives the format).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

import attrs

from ctfy_vault._files import read_regular_file
from ctfy_vault.crypto import REPO_ID_SIZE
from ctfy_vault.exceptions import ConfigurationError, FormatError
from ctfy_vault.manifest import HASH_SIZE, IDENTIFIER

__all__ = ["HEADS_FORMAT", "KnownHeads", "LineageHead"]

#: The version of the known-heads document this release writes and reads.
HEADS_FORMAT: Final = 1
_KIND: Final = "ctfy-vault known heads"
_TOP: Final = frozenset({"format", "kind", "repository", "heads"})
_HEAD: Final = frozenset({"name", "hash"})
#: An entry's object name: its UTC creation time, then its id (see `Manifest.name`).
_NAME: Final = re.compile(rf"[0-9]{{8}}T[0-9]{{6}}\.[0-9]{{6}}Z-{IDENTIFIER.pattern}")
_HEX: Final = re.compile(r"[0-9a-f]*")
#: A state file holds one small object per lineage; anything much larger is not one.
_MAX_BYTES: Final = 16 * 1024 * 1024


def _lineage(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, str) or not IDENTIFIER.fullmatch(value):
        raise ConfigurationError(
            "a lineage has 1 to 64 characters from A-Z, a-z, 0-9, '-' and '_', starting with a "
            "letter or digit"
        )


def _name(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ConfigurationError(
            "a head's name is a snapshot object name: YYYYMMDDTHHMMSS.ffffffZ-ID"
        )


def _hash(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ConfigurationError(f"a head's hash must be {HASH_SIZE} bytes")


def _repo_id(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, bytes) or len(value) != REPO_ID_SIZE:
        raise ConfigurationError(f"repo_id must be {REPO_ID_SIZE} bytes")


@attrs.frozen
class LineageHead:
    """One lineage's newest chain entry (a snapshot or a prune record), as seen at some moment.

    Attributes:
        lineage: the lineage.
        name: the entry's object name under ``snapshots/`` (its UTC creation time, then its id).
        hash: the entry hash the lineage's next entry names as ``previous``.
    """

    lineage: str = attrs.field(validator=_lineage)
    name: str = attrs.field(validator=_name)
    hash: bytes = attrs.field(validator=_hash, repr=False)

    @property
    def id(self) -> str:
        """The entry's id: its snapshot id, or a prune record's id."""
        return self.name.partition("-")[2]


def _heads(values: Iterable[LineageHead]) -> tuple[LineageHead, ...]:
    heads = tuple(values)
    if not all(isinstance(head, LineageHead) for head in heads):
        raise ConfigurationError("heads must be LineageHead values")
    ordered = tuple(sorted(heads, key=lambda head: head.lineage))
    if len({head.lineage for head in ordered}) != len(ordered):
        raise ConfigurationError("known heads hold one head per lineage")
    return ordered


@attrs.frozen
class KnownHeads:
    """For one repository, the head of each lineage as last verified or backed up.

    Pass it to `Vault.verify` (``known_heads=``) and `Vault.backup`; persist what they return
    (`VerifyReport.heads`, `advance` with `BackupInfo.head`) with `save`, somewhere the storage
    provider cannot write.

    Attributes:
        repo_id: the repository the heads belong to (a vault refuses another repository's).
        heads: one head per lineage, sorted by lineage.
    """

    repo_id: bytes = attrs.field(validator=_repo_id)
    heads: tuple[LineageHead, ...] = attrs.field(default=(), converter=_heads)

    def __iter__(self) -> Iterator[LineageHead]:
        """Iterate over the heads, by lineage."""
        return iter(self.heads)

    def __len__(self) -> int:
        """The number of lineages with a known head."""
        return len(self.heads)

    def get(self, lineage: str) -> LineageHead | None:
        """Return the lineage's known head, or ``None``."""
        return next((head for head in self.heads if head.lineage == lineage), None)

    def hashes(self) -> dict[str, bytes]:
        """Return lineage -> head hash (what `ctfy_vault.manifest.verify_chain` takes)."""
        return {head.lineage: head.hash for head in self.heads}

    def advance(self, head: LineageHead) -> KnownHeads:
        """Return these heads with ``head`` as its lineage's head (after a backup wrote it)."""
        others = [known for known in self.heads if known.lineage != head.lineage]
        return attrs.evolve(self, heads=(*others, head))

    # -- the document ----------------------------------------------------------------------

    def to_json(self) -> bytes:
        """Encode as the versioned JSON document `from_json` reads (UTF-8, sorted keys)."""
        document = {
            "format": HEADS_FORMAT,
            "kind": _KIND,
            "repository": self.repo_id.hex(),
            "heads": {
                head.lineage: {"name": head.name, "hash": head.hash.hex()} for head in self.heads
            },
        }
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str, *, source: str = "known heads") -> KnownHeads:
        """Decode a document `to_json` wrote, strictly.

        Args:
            data: the document.
            source: what to call it in errors (the file's path).

        Returns:
            The heads.

        Raises:
            FormatError: not UTF-8 JSON; another ``kind``; a ``format`` other than
                `HEADS_FORMAT`; a missing, extra or duplicated key; a value of the wrong type;
                an invalid repository id, lineage, name or hash (the message names which).
        """
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
            raw = json.loads(text, object_pairs_hook=_unique, parse_constant=_no_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as err:
            if isinstance(err, FormatError):
                raise FormatError(f"{source}: {err}") from None
            raise FormatError(f"{source}: not a JSON document") from None
        try:
            return cls._decode(raw)
        except (FormatError, ConfigurationError) as err:
            raise FormatError(f"{source}: {err}") from None

    @classmethod
    def _decode(cls, raw: object) -> KnownHeads:
        top = _object(raw, "the document", _TOP)
        if top["kind"] != _KIND:
            raise FormatError(f"kind must be {_KIND!r}")
        version = top["format"]
        if type(version) is not int:
            raise FormatError("format must be an integer")
        if version != HEADS_FORMAT:
            raise FormatError(f"format {version} is not {HEADS_FORMAT}, the one this release reads")
        repo_id = _hex(top["repository"], "repository", REPO_ID_SIZE)
        heads_raw = top["heads"]
        if not isinstance(heads_raw, dict):
            raise FormatError("heads must be an object of lineage -> head")
        heads = []
        for lineage, value in heads_raw.items():
            where = f"heads[{lineage!r}]"
            head = _object(value, where, _HEAD)
            digest = _hex(head["hash"], f"{where}.hash", HASH_SIZE)
            try:
                heads.append(LineageHead(lineage=lineage, name=head["name"], hash=digest))
            except ConfigurationError as err:
                raise FormatError(f"{where}: {err}") from None
        return cls(repo_id=repo_id, heads=heads)

    # -- the file --------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KnownHeads | None:
        """Read a file `save` wrote; ``None`` when there is no such file (the first run).

        Raises:
            FormatError: the file is not a known-heads document (see `from_json`), or too large.
            ConfigurationError: the path is a FIFO, a device, a socket or a folder.
            OSError: the file exists but cannot be read.
        """
        where = Path(path)
        try:
            # Never a plain open: a FIFO or a device at the path would block or read forever.
            data, _status = read_regular_file(where, what="known-heads file", limit=_MAX_BYTES + 1)
        except FileNotFoundError:
            return None
        if len(data) > _MAX_BYTES:
            raise FormatError(f"{where}: larger than a known-heads file can be")
        return cls.from_json(data, source=str(where))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the file atomically: a temporary file (mode 600) beside it, ``fsync``, rename.

        A crash leaves the previous file or the new one, never a mixture. Missing folders are
        created (mode 700).

        Raises:
            OSError: the folder or the file cannot be written.
        """
        where = Path(path)
        where.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=where.parent, prefix=f".{where.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(self.to_json())
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, where)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        _sync_folder(where.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename durable where the platform allows opening a folder."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename itself is atomic
    finally:
        os.close(fd)


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise FormatError(f"key {key!r} appears twice")
        found[key] = value
    return found


def _no_constant(name: str) -> None:
    raise FormatError(f"{name} is not a JSON value")


def _object(value: object, where: str, keys: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FormatError(f"{where} must be an object")
    missing = sorted(keys - set(value))
    extra = sorted(set(value) - keys)
    if missing or extra:
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"unknown {', '.join(extra)}"] if extra else []
        raise FormatError(f"{where}: {'; '.join(parts)}")
    return value


def _hex(value: object, where: str, size: int) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * size or not _HEX.fullmatch(value):
        raise FormatError(f"{where} must be {2 * size} lowercase hex digits")
    return bytes.fromhex(value)
