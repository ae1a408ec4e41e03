"""What the repository commands start from: the config, the opened vault and the time.

Times are read from the machine's clock here, once per use, and handed to the library, which never
reads a clock itself.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime

from ctfy_vault.cli._config import Config, config_path, load_config
from ctfy_vault.vault import Vault

__all__ = ["load", "now", "open_vault"]


def now() -> datetime:
    """The machine's clock, in UTC."""
    return datetime.now(UTC)


def load(args: argparse.Namespace) -> Config:
    """Read the config ``--config`` (else ``$CTFY_VAULT_CONFIG``, else ``./ctfy-vault.toml``) names."""
    return load_config(config_path(args.config, os.environ))


def open_vault(args: argparse.Namespace, config: Config | None = None) -> tuple[Config, Vault]:
    """Read the config (unless given), build the targets and open the vault."""
    config = config or load(args)
    targets = config.build_targets(os.environ)
    # Targets left out (unreachable, lacking the config) are logged by the library as warnings.
    return config, Vault.open(targets, key=config.key.credential(os.environ))
