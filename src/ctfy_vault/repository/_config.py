"""The repository's ``config`` document: plaintext JSON, written once at init, read at every open.

Also the chunker parameters it records, and reading the config from every target.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from ctfy_vault.crypto import REPO_ID_SIZE, Cipher
from ctfy_vault.exceptions import ConfigurationError, FormatError, StorageError
from ctfy_vault.repository._layout import CONFIG_KEY
from ctfy_vault.repository._packs import DEFAULT_PACK_SIZE, MAX_PACK_SIZE, MIN_PACK_SIZE
from ctfy_vault.repository._replicas import Replicas
from ctfy_vault.storage import Target

__all__ = [
    "CONFIG_KEY",
    "DEFAULT_CHUNKER",
    "READABLE_FORMATS",
    "REPOSITORY_FORMAT",
    "ChunkerParams",
    "RepoConfig",
    "read_config",
    "read_configs",
    "same_repository",
]

MiB: Final = 1024 * 1024


def _check_range(low: int, high: int) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[int], value: object) -> None:
        if type(value) is not int or not low <= value <= high:
            raise ConfigurationError(f"{attribute.name} must be an integer from {low} to {high}")

    return check


@attrs.frozen(kw_only=True)
class ChunkerParams:
    """FastCDC parameters, stored in the repository config so every writer cuts alike.

    The ranges are those ``pyfastcdc`` accepts. Changing them after the first backup does not
    break anything, but chunks cut with other parameters rarely deduplicate against old ones.

    The defaults (512 KiB, 1 MiB, 8 MiB) are restic's: a next-day database dump with 1% of its
    rows changed stores as much new data as restic does (4 MiB chunks stored a third more), and
    backups are no slower (``docs/performance.md``).

    Attributes:
        min_size: the smallest chunk (except the last of a source), 64 B to 1 MiB.
        avg_size: the target average, 256 B to 4 MiB (a power of two is customary).
        max_size: the largest chunk, 1 KiB to 16 MiB.
    """

    min_size: int = attrs.field(default=MiB // 2, validator=_check_range(64, 1 * MiB))
    avg_size: int = attrs.field(default=1 * MiB, validator=_check_range(256, 4 * MiB))
    max_size: int = attrs.field(default=8 * MiB, validator=_check_range(1024, 16 * MiB))

    def __attrs_post_init__(self) -> None:
        if not self.min_size <= self.avg_size <= self.max_size:
            raise ConfigurationError("chunker sizes must satisfy min_size <= avg_size <= max_size")

    def to_config(self) -> dict[str, int | str]:
        """Return the JSON-ready form recorded in the repository's ``config``."""
        return {
            "algorithm": "fastcdc2020",
            "min_size": self.min_size,
            "avg_size": self.avg_size,
            "max_size": self.max_size,
        }


DEFAULT_CHUNKER: Final = ChunkerParams()


#: The repository layout version `ctfy_vault.Vault.init` writes: 2, pack files and an index.
REPOSITORY_FORMAT: Final = 2
#: Every layout version this release reads (and writes to: a v1 repository stays v1).
READABLE_FORMATS: Final = frozenset({1, 2})

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

    Format 2 stores chunks in packs and keys the chunker (its cut depends on a secret derived
    from the repository's keys; only the public size bounds are recorded here). Format 1 stores
    one object per chunk, cut with the unkeyed chunker.

    Attributes:
        repo_id: the 16-byte repository id (not secret: it is bound into every sealed object).
        chunker: the FastCDC size bounds every writer uses.
        cipher: the AEAD sealing every object.
        format: the repository layout version: 2 (the default) or 1.
        pack_size: format 2: the size at which a writer closes a pack (`DEFAULT_PACK_SIZE`);
            not recorded by format 1, which refuses any other value.
    """

    repo_id: bytes = attrs.field(validator=_repo_id)
    chunker: ChunkerParams = DEFAULT_CHUNKER
    cipher: Cipher = Cipher.AES_256_GCM
    format: int = attrs.field(default=REPOSITORY_FORMAT)
    pack_size: int = attrs.field(default=DEFAULT_PACK_SIZE)

    @format.validator
    def _check_format(self, _attribute: object, value: object) -> None:
        if type(value) is not int or value not in READABLE_FORMATS:
            raise ConfigurationError(f"repository format must be 1 or 2, not {value!r}")

    @pack_size.validator
    def _check_pack_size(self, _attribute: object, value: object) -> None:
        if type(value) is not int or not MIN_PACK_SIZE <= value <= MAX_PACK_SIZE:
            raise ConfigurationError(
                f"pack_size must be an integer from {MIN_PACK_SIZE} to {MAX_PACK_SIZE}"
            )
        if not self.packed and value != DEFAULT_PACK_SIZE:
            # Format 1 does not record it: the config would not read back as the same one.
            raise ConfigurationError("pack_size is a format 2 setting; format 1 has no packs")

    @property
    def packed(self) -> bool:
        """Whether chunks are stored in packs with an index (format 2)."""
        return self.format >= 2

    def to_json(self) -> bytes:
        """Return the canonical document: sorted keys, no spaces, UTF-8, one trailing newline."""
        document: dict[str, object] = {
            "format": self.format,
            "repo_id": self.repo_id.hex(),
            "chunker": self.chunker.to_config(),
            "cipher": _CIPHERS[self.cipher],
        }
        if self.packed:
            document["packs"] = {"target_size": self.pack_size}
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
            if type(version) is not int or version not in READABLE_FORMATS:
                raise FormatError(f"repository format {version!r} is not supported (reads 1 and 2)")
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
                pack_size=raw["packs"]["target_size"] if version >= 2 else DEFAULT_PACK_SIZE,
            )
        except FormatError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
            raise FormatError("the repository config is not a valid config document") from err


def read_config(target: Target) -> RepoConfig:
    """Read and parse one target's ``config``.

    Raises:
        StorageError: it could not be read (``ObjectNotFoundError``: there is none).
        FormatError: it is damaged or of a format this release cannot read.
    """
    return RepoConfig.from_json(target.read(CONFIG_KEY))


def read_configs(
    targets: Sequence[Target],
) -> tuple[dict[str, RepoConfig], dict[str, BaseException]]:
    """Read ``config`` from every target: the configs found, and why the others gave none.

    Raises:
        TargetsFailedError: no target gave a config.
        FormatError: no target holds a valid config and one holds a damaged or unknown one (a
            damaged config beside valid ones only makes that target degraded).
    """
    outcome = Replicas(targets).each(read_config, catch=(StorageError, FormatError))
    missing = outcome.failed
    if not outcome.results:
        damaged = [err for err in missing.values() if isinstance(err, FormatError)]
        if damaged:
            raise damaged[0]
        outcome.require_any(
            f"no repository config on any target ({', '.join(missing)}): check the target "
            "URLs and prefixes, or create the repository with init"
        )
    return dict(outcome.results), missing


def same_repository(configs: Mapping[str, RepoConfig]) -> RepoConfig:
    """The one config every target holds.

    Raises:
        ConfigurationError: the targets hold different repositories (the message names which
            target holds which), or one repository with differing configs.
    """
    groups: dict[bytes, list[str]] = {}
    for name, config in configs.items():
        groups.setdefault(config.repo_id, []).append(name)
    if len(groups) > 1:
        described = "; ".join(
            f"repository {repo_id.hex()[:12]}... on {', '.join(names)}"
            for repo_id, names in groups.items()
        )
        raise ConfigurationError(f"the targets hold different repositories: {described}")
    first = next(iter(configs.values()))
    differing = [name for name, config in configs.items() if config != first]
    if differing:
        raise ConfigurationError(
            f"the targets' configs differ for one repository id: {', '.join(differing)} "
            f"disagree with {next(iter(configs))}"
        )
    return first
