"""Where the command keeps each lineage's known head, outside the storage (see `KnownHeads`).

``check`` reads the file and fails when a known head was deleted or rolled back, and writes the
current heads after a clean run; ``backup`` refuses to chain onto a lineage that lost its known
head and records each new snapshot. The file is
``$XDG_STATE_HOME/ctfy-vault/<repository id>.heads.json`` (``~/.local/state`` when the variable
is unset), ``[repository] known_heads`` in the config, or ``--known-heads FILE``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from ctfy_vault.cli._config import Config
from ctfy_vault.cli._render import say
from ctfy_vault.exceptions import ConfigurationError
from ctfy_vault.vault import KnownHeads

__all__ = ["STATE_ENV", "heads_path", "note_first_run", "read_heads", "write_heads"]

#: The XDG variable naming the user's state folder.
STATE_ENV: Final = "XDG_STATE_HOME"
_FOLDER: Final = "ctfy-vault"


def heads_path(
    config: Config, repo_id: bytes, given: str | None, environ: Mapping[str, str]
) -> Path | None:
    """Choose the known-heads file: ``--known-heads``, else the config's, else the default.

    Args:
        config: the parsed config (``[repository] known_heads``).
        repo_id: the repository's id (it names the default file).
        given: the ``--known-heads`` value, or ``None``.
        environ: the environment (pass ``os.environ``), for ``XDG_STATE_HOME``.

    Returns:
        The file, or ``None`` when the config turns known heads off.
    """
    if given is not None:
        return Path(given).expanduser()
    if isinstance(config.known_heads, Path):
        return config.known_heads
    if not config.known_heads:
        return None
    state = environ.get(STATE_ENV, "")
    # The XDG rule: a relative value is invalid and ignored.
    home = Path(state) if state and Path(state).is_absolute() else Path.home() / ".local" / "state"
    return home / _FOLDER / f"{repo_id.hex()}.heads.json"


def read_heads(path: Path | None, repo_id: bytes) -> KnownHeads | None:
    """Read the known heads of this repository; ``None`` without a file (or with none configured).

    Raises:
        FormatError: the file is damaged or of an unknown version (the message names it).
        ConfigurationError: the file holds another repository's heads.
        OSError: the file exists but cannot be read.
    """
    if path is None:
        return None
    known = KnownHeads.load(path)
    if known is not None and known.repo_id != repo_id:
        raise ConfigurationError(
            f"known heads file {path} belongs to repository {known.repo_id.hex()}, not to "
            f"{repo_id.hex()} which the config opens (give this repository's file with "
            "--known-heads)"
        )
    return known


def write_heads(path: Path, heads: KnownHeads, what: str) -> bool:
    """Save the heads atomically (mode 600); on failure say so on standard error.

    Args:
        path: the file.
        heads: what to record.
        what: the command, for the message.

    Returns:
        Whether the file was written.
    """
    try:
        heads.save(path)
    except OSError as err:
        say(
            what,
            f"the known heads could not be recorded in {path}: {type(err).__name__}: {err}",
        )
        return False
    return True


def note_first_run(path: Path) -> None:
    """Say once that there were no known heads yet, so the current ones are trusted."""
    say(
        "note",
        f"no known heads in {path} yet (first run): the heads the storage holds now are "
        "trusted and recorded there",
    )
