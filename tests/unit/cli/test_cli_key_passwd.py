"""``key passwd`` and the slot ``key list`` marks as in use."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ctfy_vault.crypto import Passphrase
from ctfy_vault.exceptions import IntegrityError
from ctfy_vault.vault import Vault
from ctfy_vault.writer import StreamSource
from tests.support.cli import local_cli, sample_tree
from tests.support.writer_strategies import NOW, memory_target

NEW_KEY = "3c" * 32


def test_change_key_adds_the_new_slot_then_removes_the_old() -> None:
    """The new key opens, the old does not, other slots stay; the data reads back."""
    old, other, new = Passphrase("old pass"), Passphrase("other pass"), Passphrase("new pass")
    vault = Vault.init([memory_target("a"), memory_target("b")], key=old, now=NOW)
    vault.add_key(other, now=NOW)
    info = vault.backup(StreamSource(name="d", stream=io.BytesIO(b"data")), lineage="db", now=NOW)
    first = vault.key_id
    slot = vault.change_key(new, now=NOW)
    assert vault.key_id == slot.key_id != first
    kept = Vault.open(vault.targets, key=other).key_id
    slots = vault.keys()
    assert {s.key_id for s in slots} == {slot.key_id, kept}
    with pytest.raises(IntegrityError):
        Vault.open(vault.targets, key=old)
    reopened = Vault.open(vault.targets, key=new)
    assert reopened.key_id == slot.key_id
    assert reopened.open_file(info.snapshot_id, "d").read() == b"data"


@pytest.mark.slow  # subprocesses; the whole suite runs it
def test_key_passwd_from_the_command_line(tmp_path: Path) -> None:
    """The in-use slot is marked; after passwd the old key fails and the new one opens."""
    cli = local_cli(tmp_path)
    sample_tree(cli.home / "data")
    cli.json("init")
    cli.json("backup", "files")
    (slot,) = cli.json("key", "list")
    assert slot["in_use"] is True
    assert "* the slot the configured key opens" in cli.ok("key", "list")
    refused = cli("key", "passwd")
    assert refused.returncode == 2
    assert "--new-env" in refused.stderr
    key_file = tmp_path / "new.key"
    key_file.write_text(NEW_KEY + "\n")
    key_file.chmod(0o600)
    cli.secrets.append(NEW_KEY)
    said = cli.ok("key", "passwd", "--new-file", str(key_file), "--type", "raw")
    assert "key changed" in said
    assert slot["id"] in said
    assert cli("snapshots").returncode == 1  # the old key opens nothing now
    cli.key = NEW_KEY
    (changed,) = cli.json("key", "list")
    assert changed["id"] != slot["id"]
    assert changed["in_use"] is True
    assert cli("check").returncode == 0
