"""The repository's ``config`` document: plaintext JSON, written once at init, read at every open."""

from __future__ import annotations

import json
from typing import Any, Final

import attrs

from ctfy_vault.crypto import REPO_ID_SIZE, Cipher
from ctfy_vault.exceptions import FormatError
from ctfy_vault.repository._layout import CONFIG_KEY
from ctfy_vault.writer import DEFAULT_CHUNKER, ChunkerParams

__all__ = ["CONFIG_KEY", "REPOSITORY_FORMAT", "RepoConfig"]

#: The repository layout version this release writes and reads.
REPOSITORY_FORMAT: Final = 1

_CIPHERS: Final = {
    Cipher.NONE: "none",
    Cipher.AES_256_GCM: "aes-256-gcm",
    Cipher.CHACHA20_POLY1305: "chacha20-poly1305",
}
_BY_NAME: Final = {name: cipher for cipher, name in _CIPHERS.items()}


def _repo_id(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, bytes) or len(value) != REPO_ID_SIZE:
        raise FormatError(f"a repository id is {REPO_ID_SIZE} bytes")


@attrs.frozen(kw_only=True)
class RepoConfig:
    """What every target of one repository records in ``config``; identical bytes everywhere.

    Attributes:
        repo_id: the 16-byte repository id (not secret: it is bound into every sealed object).
        chunker: the FastCDC parameters every writer uses.
        cipher: the AEAD sealing every object.
        format: the repository layout version.
    """

    repo_id: bytes = attrs.field(validator=_repo_id)
    chunker: ChunkerParams = DEFAULT_CHUNKER
    cipher: Cipher = Cipher.AES_256_GCM
    format: int = REPOSITORY_FORMAT

    def to_json(self) -> bytes:
        """Return the canonical document: sorted keys, no spaces, UTF-8, one trailing newline."""
        document = {
            "format": self.format,
            "repo_id": self.repo_id.hex(),
            "chunker": self.chunker.to_config(),
            "cipher": _CIPHERS[self.cipher],
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_json(cls, document: bytes) -> RepoConfig:
        """Parse a stored ``config`` document.

        Args:
            document: the stored bytes.

        Returns:
            The configuration.

        Raises:
            FormatError: not a config document, or a format version this release cannot read.
        """
        try:
            raw: Any = json.loads(document)
            version = raw["format"]
            if type(version) is not int or version != REPOSITORY_FORMAT:
                raise FormatError(f"repository format {version!r} is not supported (reads 1)")
            chunker = raw["chunker"]
            if chunker.get("algorithm") != "fastcdc2020":
                raise FormatError("the repository uses an unknown chunking algorithm")
            return cls(
                repo_id=bytes.fromhex(raw["repo_id"]),
                chunker=ChunkerParams(
                    min_size=chunker["min_size"],
                    avg_size=chunker["avg_size"],
                    max_size=chunker["max_size"],
                ),
                cipher=_BY_NAME[raw["cipher"]],
                format=version,
            )
        except FormatError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
            raise FormatError("the repository config is not a valid config document") from err
