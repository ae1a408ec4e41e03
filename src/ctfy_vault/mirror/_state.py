"""What the mirror has copied, kept between runs so that a restart resumes instead of starting over."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import attrs

from ctfy_vault._files import read_regular_file
from ctfy_vault.exceptions import FormatError

_FORMAT = 1
#: A state names every object copied; far beyond any real one, yet bounded.
_STATE_LIMIT = 2**32


@attrs.define
class MirrorState:
    """For each replica, the source fingerprint of every object copied there.

    A fingerprint is the source's ETag, or its size and modification stamp where there is no ETag.
    An object whose fingerprint is unchanged and which the replica still lists is not read again.
    Saved as JSON with an atomic rename, so a crash leaves the previous or the new state.
    """

    _copied: dict[str, dict[str, str]] = attrs.field(factory=dict, alias="copied")

    def get(self, replica: str, key: str) -> str | None:
        """Return the fingerprint recorded for ``key`` on ``replica``."""
        return self._copied.get(replica, {}).get(key)

    def record(self, replica: str, key: str, fingerprint: str) -> None:
        """Remember that ``key`` with ``fingerprint`` is on ``replica``."""
        self._copied.setdefault(replica, {})[key] = fingerprint

    def keys(self, replica: str) -> frozenset[str]:
        """Return every key recorded for ``replica``."""
        return frozenset(self._copied.get(replica, {}))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MirrorState:
        """Read a state file; a missing file is an empty state.

        Raises:
            FormatError: the file is not a mirror state of a known version.
            ConfigurationError: the path is not a regular file (a FIFO is refused, never waited on).
        """
        try:
            # A regular file only: a FIFO named as the state would block the run forever.
            text = read_regular_file(path, what="mirror state file", limit=_STATE_LIMIT)[0]
        except FileNotFoundError:
            return cls()
        try:
            data = json.loads(text)
            if data.get("format") != _FORMAT:
                raise FormatError(f"mirror state format {data.get('format')!r} is not {_FORMAT}")
            copied = {
                str(replica): {str(k): str(v) for k, v in keys.items()}
                for replica, keys in data["copied"].items()
            }
        except (ValueError, KeyError, AttributeError, TypeError) as err:
            if isinstance(err, FormatError):
                raise
            raise FormatError(f"not a mirror state file: {path}") from err
        return cls(copied=copied)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the state atomically (temporary file, ``fsync``, rename)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"format": _FORMAT, "copied": self._copied}, sort_keys=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(payload)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
