"""A repository config reads back as itself: format 1 takes no pack size it cannot record."""

from __future__ import annotations

import pytest

from ctfy_vault.exceptions import ConfigurationError
from ctfy_vault.repository import DEFAULT_PACK_SIZE, MIN_PACK_SIZE, RepoConfig
from ctfy_vault.vault import Vault
from tests.support.vaults import KEY
from tests.support.writer_strategies import NOW, SMALL, memory_target


def test_a_format_1_config_refuses_a_pack_size_it_does_not_record() -> None:
    """Format 1 with another pack size is a ConfigurationError naming the setting."""
    with pytest.raises(ConfigurationError, match="pack_size is a format 2 setting"):
        RepoConfig(repo_id=bytes(16), format=1, pack_size=MIN_PACK_SIZE)
    config = RepoConfig(repo_id=bytes(16), format=1, pack_size=DEFAULT_PACK_SIZE)
    assert RepoConfig.from_json(config.to_json()) == config


def test_init_of_format_1_with_a_pack_size_writes_nothing() -> None:
    """Vault.init refuses format 1 with a pack size before writing any object."""
    targets = [memory_target("a"), memory_target("b")]
    with pytest.raises(ConfigurationError, match="pack_size"):
        Vault.init(targets, key=KEY, now=NOW, chunker=SMALL, format=1, pack_size=MIN_PACK_SIZE)
    assert all(list(target.list("")) == [] for target in targets)
