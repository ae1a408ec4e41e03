"""The ``ctfy-vault.toml`` configuration: targets, the key source and lineages, read with tomllib.

Nothing secret is ever in the file: the key comes from an environment variable (or a file only
its owner can read), and storage credentials from the environment. Unknown keys are refused with
an error naming the key and the file, so a typo never silently changes what is backed up.
``docs/cli.md`` documents the format.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, Literal

import attrs

from ctfy_vault._files import read_regular_file
from ctfy_vault.cli._options import SECRET_OPTIONS
from ctfy_vault.crypto import Credential, Passphrase, RawKey
from ctfy_vault.exceptions import ConfigurationError
from ctfy_vault.retention import Policy
from ctfy_vault.storage import Target

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "Config",
    "KeySource",
    "LineageConfig",
    "TargetConfig",
    "config_path",
    "load_config",
    "parse_config",
]

#: The environment variable naming the config file when ``--config`` is not given.
CONFIG_ENV: Final = "CTFY_VAULT_CONFIG"
#: The config file used when neither ``--config`` nor ``CTFY_VAULT_CONFIG`` is given.
DEFAULT_CONFIG: Final = "ctfy-vault.toml"

#: A key file holds one line; anything longer is not a key file.
_KEY_FILE_LIMIT: Final = 64 * 1024
#: Backend options that hold credentials: ``credentials_env`` may name variables for these only.
CREDENTIAL_OPTIONS: Final = frozenset(
    {"key", "secret", "token", "account_key", "connection_string", "sas_token"}
)
_TOP: Final = frozenset({"repository", "targets", "lineages"})
_REPOSITORY: Final = frozenset({"key", "known_heads"})
_KEY: Final = frozenset({"env", "file", "type"})
_TARGET: Final = frozenset(
    {
        "url",
        "name",
        "endpoint_url",
        "region",
        "addressing_style",
        "options",
        "credentials_env",
        "lock_mode",
        "data_storage_class",
        "policy",
        "policies",
    }
)
#: `Target.from_url` arguments that are not backend options.
_RESERVED: Final = frozenset(
    {"name", "retry", "part_size", "lock_mode", "data_storage_class", "policy", "policies"}
)
_LINEAGE: Final = frozenset({"policy", "sources", "tags", "full_paths"})
#: The manifest's rule for lineage names, checked when the file is read, not at the first backup.
_LINEAGE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def config_path(given: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path:
    """Choose the config file: ``--config``, else ``CTFY_VAULT_CONFIG``, else ``./ctfy-vault.toml``.

    Args:
        given: the ``--config`` value, or ``None``.
        environ: the environment (pass ``os.environ``).

    Returns:
        The path (not checked for existence).
    """
    if given is not None:
        return Path(given)
    from_env = environ.get(CONFIG_ENV, "").strip()
    return Path(from_env) if from_env else Path(DEFAULT_CONFIG)


@attrs.frozen(kw_only=True)
class KeySource:
    """Where the repository key comes from; the key itself is read only when needed.

    Attributes:
        type: ``passphrase`` (scrypt) or ``raw`` (32 bytes as 64 hex digits or base64).
        env: the environment variable holding it, or ``None``.
        file: the file holding it (owner-only permissions), or ``None``.
        setting: where ``env`` was given (``repository.key.env``, ``--new-env``), named in
            messages instead of the variable: a passphrase written there by mistake is never
            echoed.
    """

    type: Literal["passphrase", "raw"] = "passphrase"
    env: str | None = attrs.field(default=None, repr=False)
    file: Path | None = None
    setting: str = "repository.key.env"

    def credential(self, environ: Mapping[str, str]) -> Credential:
        """Read the key.

        Args:
            environ: the environment (pass ``os.environ``).

        Returns:
            A `Passphrase` or a `RawKey`.

        Raises:
            ConfigurationError: the variable is unset or empty, the file is missing, not a regular
                file (a FIFO or a device is refused without blocking) or readable by group or
                others, or a raw key is not 32 bytes. Messages name the setting, the variable or
                the file, never the value.
        """
        if self.env is not None:
            if not environ.get(self.env):
                # Unset, the "name" may be the passphrase itself: name the setting instead.
                raise ConfigurationError(
                    f"the environment variable named by {self.setting} is not set (the key)"
                )
            if self.type == "raw":
                return RawKey.from_env(self.env, environ)
            return Passphrase(environ[self.env])
        assert self.file is not None  # noqa: S101 - one of the two is set by the parser
        text = _read_key_file(self.file)
        if self.type == "raw":
            try:
                return RawKey.from_env("key", {"key": text})
            except ConfigurationError:
                raise ConfigurationError(
                    f"key file {self.file} must hold 32 bytes as 64 hex digits or base64"
                ) from None
        return Passphrase(text)


def _read_key_file(path: Path) -> str:
    try:
        data, info = read_regular_file(path, what="key file", limit=_KEY_FILE_LIMIT)
        # Checked on the descriptor that was read: no window to swap the file in between.
        private = not info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)
        text = data.decode("utf-8").rstrip("\r\n") if private else ""
    except ConfigurationError:
        raise
    except (OSError, ValueError) as err:  # ValueError: a NUL in the path, or not UTF-8
        raise ConfigurationError(f"key file {path} cannot be read ({type(err).__name__})") from None
    if not private:
        raise ConfigurationError(f"key file {path} is accessible by group or others; chmod 600 it")
    if not text:
        raise ConfigurationError(f"key file {path} is empty")
    return text


@attrs.frozen(kw_only=True)
class TargetConfig:
    """One ``[[targets]]`` entry.

    Attributes:
        url: the target URL (``s3://bucket/prefix``, ``az://...``, a local folder...).
        name: what reports call it; the URL by default.
        options: non-secret backend options (``endpoint_url``, ``region``, ``addressing_style``,
            ``account_name``...).
        credentials_env: backend credential option -> the environment variable holding it.
        lock_mode: the Object Lock mode of its locks, ``"COMPLIANCE"`` or ``"GOVERNANCE"``.
        data_storage_class: S3: the storage class of its packs (``None``: the bucket's default).
        policy: per-target retention: on this target, every lineage that has a policy is
            pruned (and locked) under this one instead (``None``: the lineages' own).
        policies: per-target retention by lineage: on this target, these lineages are pruned
            under these policies (they win over ``policy``).
    """

    url: str
    name: str
    options: Mapping[str, Any] = attrs.field(factory=dict)
    credentials_env: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    lock_mode: str = "COMPLIANCE"
    data_storage_class: str | None = None
    policy: Policy | None = None
    policies: Mapping[str, Policy] = attrs.field(factory=dict)

    def build(self, environ: Mapping[str, str]) -> Target:
        """Make the `Target`, reading its credentials from the environment.

        Raises:
            ConfigurationError: a named credential variable is not set (the message names the
                setting, not the variable: an unset "name" may be the secret itself).
            InvalidURLError: the URL or an option does not fit the backend.
        """
        secrets: dict[str, Any] = {}
        for option, variable in self.credentials_env.items():
            value = environ.get(variable)
            if not value:
                raise ConfigurationError(
                    f"the environment variable named by credentials_env.{option} of target "
                    f"{self.name} is not set"
                )
            secrets[option] = value
        return Target.from_url(
            self.url,
            name=self.name,
            lock_mode=self.lock_mode,
            data_storage_class=self.data_storage_class,
            **self.options,
            **secrets,
        )


@attrs.frozen(kw_only=True)
class LineageConfig:
    """One ``[lineages.NAME]`` table.

    Attributes:
        name: the lineage (``db``, ``server-files``, ``full-server``...).
        policy: its retention policy, or ``None`` (never pruned).
        sources: the paths ``backup`` takes when none are given.
        tags: tags every backup of the lineage gets.
        full_paths: store the sources under their absolute paths (restic's way), so two
            sources of the same name do not clash; by default each under its name.
    """

    name: str
    policy: Policy | None = None
    sources: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    full_paths: bool = False


@attrs.frozen(kw_only=True)
class Config:
    """A parsed ``ctfy-vault.toml``.

    Attributes:
        path: the file it came from (named in every error).
        key: where the repository key comes from.
        targets: the targets, in the order they are read.
        lineages: the configured lineages, by name.
        known_heads: where ``check`` and ``backup`` keep the lineages' known heads: a file,
            ``True`` for the default place under the user's state folder, ``False`` for nowhere
            (deleting the newest snapshots then goes unnoticed).
    """

    path: Path
    key: KeySource
    targets: tuple[TargetConfig, ...]
    lineages: Mapping[str, LineageConfig]
    known_heads: Path | bool = True

    def lineage(self, name: str) -> LineageConfig:
        """Return a configured lineage.

        Raises:
            ConfigurationError: the lineage is not in the file (the message lists those that are).
        """
        found = self.lineages.get(name)
        if found is None:
            known = ", ".join(sorted(self.lineages)) or "none"
            raise ConfigurationError(
                f"lineage {name!r} is not configured in {self.path} (configured: {known})"
            )
        return found

    def policies(self) -> dict[str, Policy]:
        """Return the retention policy of every lineage that has one."""
        return {
            name: lineage.policy
            for name, lineage in self.lineages.items()
            if lineage.policy is not None
        }

    def target_policies(self) -> dict[str, dict[str, Policy]]:
        """Per-target retention: each target with its own policy, its policy by lineage.

        A target's ``policy`` stands for every lineage that has one; its ``policies`` win.
        """
        common = self.policies()
        found: dict[str, dict[str, Policy]] = {}
        for target in self.targets:
            if target.policy is None and not target.policies:
                continue
            mine = dict.fromkeys(common, target.policy) if target.policy is not None else {}
            found[target.name] = {**mine, **target.policies}
        return found

    def build_targets(self, environ: Mapping[str, str]) -> list[Target]:
        """Make every target (see `TargetConfig.build`)."""
        return [target.build(environ) for target in self.targets]


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and check a config file.

    Args:
        path: the file.

    Returns:
        The configuration.

    Raises:
        ConfigurationError: the file is missing, unreadable or not a regular file (a FIFO, a
            device: refused without waiting on it), is not TOML, or holds an unknown
            key, a missing or wrong-typed value, a secret, or a bad policy (the message names
            the file and the key).
    """
    where = Path(path)
    try:
        text = read_regular_file(where, what="config file")[0].decode("utf-8")
    except FileNotFoundError:
        raise ConfigurationError(
            f"config file {where} not found (give --config PATH or set {CONFIG_ENV})"
        ) from None
    except (OSError, ValueError) as err:
        if isinstance(err, ConfigurationError):  # not a regular file, or too large
            raise
        raise ConfigurationError(
            f"config file {where} cannot be read ({type(err).__name__})"
        ) from None
    return parse_config(text, path=where)


def parse_config(text: str, *, path: Path) -> Config:
    """Parse the text of a config file (see `load_config`).

    Args:
        text: the TOML text.
        path: the file it came from, for messages.

    Raises:
        ConfigurationError: see `load_config`.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigurationError(f"{path}: not valid TOML: {err}") from None
    except RecursionError:
        raise ConfigurationError(f"{path}: not valid TOML: nested too deeply") from None
    check = _Checker(path)
    check.keys(raw, _TOP, "")
    repository = check.table(raw.get("repository"), "repository", required=True)
    check.keys(repository, _REPOSITORY, "repository")
    key = _key_source(check, repository.get("key"))
    known_heads = _known_heads(check, repository.get("known_heads", True))
    targets_raw = raw.get("targets")
    if not isinstance(targets_raw, list) or not targets_raw:
        raise check.error("targets", "needs at least one [[targets]] table")
    targets = tuple(_target(check, item, index) for index, item in enumerate(targets_raw))
    names = [target.name for target in targets]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise check.error("targets", f"target names must be unique: {', '.join(duplicates)}")
    lineages_raw = check.table(raw.get("lineages"), "lineages", required=False)
    lineages = {name: _lineage(check, name, value) for name, value in sorted(lineages_raw.items())}
    for index, target in enumerate(targets):
        unknown = sorted(set(target.policies) - set(lineages))
        if unknown:
            known = ", ".join(sorted(lineages)) or "none"
            raise check.error(
                f"targets[{index}].policies",
                f"lineage {unknown[0]!r} is not configured (configured: {known})",
            )
    return Config(path=path, key=key, targets=targets, lineages=lineages, known_heads=known_heads)


@attrs.frozen
class _Checker:
    """Makes errors that name the file and the key."""

    path: Path

    def error(self, where: str, message: str) -> ConfigurationError:
        place = f" [{where}]" if where else ""
        return ConfigurationError(f"{self.path}{place}: {message}")

    def keys(self, table: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
        for key in table:
            if key not in allowed:
                dotted = f"{where}.{key}" if where else key
                known = ", ".join(sorted(allowed))
                raise self.error(where, f"unknown key {dotted!r} (known: {known})")

    def table(self, value: object, where: str, *, required: bool) -> dict[str, Any]:
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise self.error(where, "must be a table" if value is not None else "is missing")
        return value

    def text(self, value: object, where: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.error(where, "must be a non-empty string")
        return value

    def texts(self, value: object, where: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(where, "must be a list of non-empty strings")
        return tuple(value)


def _key_source(check: _Checker, value: object) -> KeySource:
    where = "repository.key"
    if isinstance(value, str):
        raise check.error(
            where,
            'never write the key into the file; name its source: key = { env = "VARIABLE" }',
        )
    table = check.table(value, where, required=True)
    check.keys(table, _KEY, where)
    kind = table.get("type", "passphrase")
    if kind not in ("passphrase", "raw"):
        raise check.error(where, "type must be 'passphrase' or 'raw'")
    if ("env" in table) == ("file" in table):
        raise check.error(where, "give exactly one of env or file")
    if "env" in table:
        return KeySource(type=kind, env=check.text(table["env"], f"{where}.env"))
    try:
        file = Path(check.text(table["file"], f"{where}.file")).expanduser()
    except RuntimeError:  # ~user of an unknown user
        raise check.error(where, "file names a home folder that does not exist") from None
    if not file.is_absolute():
        file = check.path.parent / file
    return KeySource(type=kind, file=file)


def _known_heads(check: _Checker, value: object) -> Path | bool:
    where = "repository.known_heads"
    if value is True or value is False:
        return value
    try:
        file = Path(check.text(value, where)).expanduser()
    except RuntimeError:  # ~user of an unknown user
        raise check.error(where, "names a home folder that does not exist") from None
    except ConfigurationError:
        raise check.error(where, "must be a file path, or false for none") from None
    return file if file.is_absolute() else check.path.parent / file


def _target(check: _Checker, value: object, index: int) -> TargetConfig:
    where = f"targets[{index}]"
    table = check.table(value, where, required=True)
    check.keys(table, _TARGET, where)
    url = check.text(table.get("url"), f"{where}.url")
    options: dict[str, Any] = dict(
        check.table(table.get("options"), f"{where}.options", required=False)
    )
    for flag in ("endpoint_url", "region", "addressing_style"):
        if flag in table:
            if flag in options:
                raise check.error(where, f"{flag} is given twice (also in options)")
            options[flag] = check.text(table[flag], f"{where}.{flag}")
    for option, option_value in options.items():
        if option in SECRET_OPTIONS or option in CREDENTIAL_OPTIONS:
            raise check.error(
                f"{where}.options",
                f"option {option!r} would hold a secret in the file; name an environment "
                f'variable instead: credentials_env = {{ {option} = "VARIABLE" }}',
            )
        if option in _RESERVED:
            raise check.error(f"{where}.options", f"{option!r} is not a backend option")
        if not isinstance(option_value, str | bool | int | float):
            raise check.error(f"{where}.options", f"option {option!r} must be a plain value")
    credentials = check.table(
        table.get("credentials_env"), f"{where}.credentials_env", required=False
    )
    for option, variable in credentials.items():
        if option not in CREDENTIAL_OPTIONS:
            known = ", ".join(sorted(CREDENTIAL_OPTIONS))
            raise check.error(
                f"{where}.credentials_env", f"unknown credential {option!r} (known: {known})"
            )
        check.text(variable, f"{where}.credentials_env.{option}")
    name = check.text(table.get("name", url), f"{where}.name")
    lock_mode = check.text(table.get("lock_mode", "compliance"), f"{where}.lock_mode").upper()
    if lock_mode not in ("COMPLIANCE", "GOVERNANCE"):
        raise check.error(
            f"{where}.lock_mode", f"must be 'compliance' or 'governance', not {lock_mode.lower()!r}"
        )
    storage_class = table.get("data_storage_class")
    if storage_class is not None:
        storage_class = check.text(storage_class, f"{where}.data_storage_class").upper()
    return TargetConfig(
        url=url,
        name=name,
        options=options,
        credentials_env=dict(credentials),
        lock_mode=lock_mode,
        data_storage_class=storage_class,
        policy=_policy(check, table.get("policy"), f"{where}.policy"),
        policies=_target_policies(check, table.get("policies"), f"{where}.policies"),
    )


def _target_policies(check: _Checker, value: object, where: str) -> dict[str, Policy]:
    """A target's ``policies`` table: a policy per lineage (TOML has no null to skip)."""
    found = {
        lineage: _policy(check, given, f"{where}.{lineage}")
        for lineage, given in check.table(value, where, required=False).items()
    }
    return {lineage: policy for lineage, policy in found.items() if policy is not None}


def _policy(check: _Checker, value: object, where: str) -> Policy | None:
    parse: Callable[[], Policy]
    if value is None:
        return None
    if value == "contractify":
        parse = Policy.contractify
    elif isinstance(value, str):
        parse = lambda: Policy.parse(value)  # noqa: E731 - one-line deferral
    elif isinstance(value, dict):
        parse = lambda: Policy.from_dict(value)  # noqa: E731 - one-line deferral
    else:
        raise check.error(where, "must be 'contractify', a policy text or a table")
    try:
        return parse()
    except ConfigurationError as err:
        raise check.error(where, str(err)) from None


def _lineage(check: _Checker, name: str, value: object) -> LineageConfig:
    where = f"lineages.{name}"
    table = check.table(value, where, required=True)
    check.keys(table, _LINEAGE, where)
    if not _LINEAGE_NAME.fullmatch(name):
        raise check.error(
            where,
            "a lineage name has 1 to 64 characters from A-Z, a-z, 0-9, '-' and '_', starting "
            "with a letter or digit",
        )
    return LineageConfig(
        name=name,
        policy=_policy(check, table.get("policy"), f"{where}.policy"),
        sources=check.texts(table.get("sources", []), f"{where}.sources"),
        tags=check.texts(table.get("tags", []), f"{where}.tags"),
        full_paths=_flag(check, table.get("full_paths", False), f"{where}.full_paths"),
    )


def _flag(check: _Checker, value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise check.error(where, "must be true or false")
    return value
