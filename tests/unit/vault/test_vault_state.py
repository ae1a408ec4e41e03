"""A state machine: backups and restores of a changing folder against a dict model of its files."""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)

from ctfy_vault.vault import Vault
from tests.support.vaults import KEY, new_vault
from tests.support.writer_strategies import NOW

NAMES = st.sampled_from(["a", "b", "sub/c", "sub/d", "sub/deep/e"])
CONTENTS = st.one_of(st.binary(max_size=40), st.binary(min_size=500, max_size=3000))


class VaultMachine(RuleBasedStateMachine):
    """Edit a source folder, back it up, restore any snapshot; the model is what each held."""

    snapshots = Bundle("snapshots")

    def __init__(self) -> None:
        """Start with an empty source folder and a fresh two-target repository."""
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="vault-state-"))
        self.source = self.folder / "data"
        self.source.mkdir()
        self.vault = new_vault(2)
        self.model: dict[str, bytes] = {}
        self.taken: dict[str, dict[str, bytes]] = {}
        self.tick = 0
        self.restores = 0

    def teardown(self) -> None:
        """Remove the temporary folder."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def _touch(self, path: Path) -> None:
        # Change detection uses size and mtime: give every write its own mtime, as real clocks do
        # (coarse filesystem timestamps could otherwise make two same-size writes look unchanged).
        self.tick += 1
        stamp = 1_700_000_000_000_000_000 + self.tick * 1_000_000_000
        os.utime(path, ns=(stamp, stamp))

    @rule(name=NAMES, data=CONTENTS)
    def write(self, name: str, data: bytes) -> None:
        """Create or replace a file."""
        if any(other.startswith(name + "/") for other in self.model):
            return  # the name is a folder in the model
        if any(name.startswith(other + "/") for other in self.model):
            return  # a parent is a file
        path = self.source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self._touch(path)
        self.model[name] = data

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        """Delete a file."""
        name = data.draw(st.sampled_from(sorted(self.model)))
        (self.source / name).unlink()
        del self.model[name]

    @rule(target=snapshots, lineage=st.sampled_from(["files", "other"]))
    def backup(self, lineage: str) -> str:
        """Back up the folder; remember what it held."""
        now = NOW + timedelta(hours=len(self.taken))
        info = self.vault.backup([self.source], lineage=lineage, host="h", now=now)
        self.taken[info.name] = dict(self.model)
        return info.name

    @rule(name=snapshots, reopen=st.booleans())
    def restore(self, name: str, reopen: bool) -> None:
        """Restore a snapshot into a fresh folder: exactly its files, byte for byte."""
        vault = Vault.open(self.vault.targets, key=KEY) if reopen else self.vault
        self.restores += 1
        dest = self.folder / f"restore-{self.restores}"
        vault.restore(name, dest)
        found = {
            path.relative_to(dest / "data").as_posix(): path.read_bytes()
            for path in (dest / "data").rglob("*")
            if path.is_file()
        }
        assert found == self.taken[name]

    @rule(name=consumes(snapshots), data=st.data())
    def read_one(self, name: str, data: st.DataObject) -> None:
        """open_file gives one file of a snapshot exactly."""
        held = self.taken[name]
        if not held:
            return
        path = data.draw(st.sampled_from(sorted(held)))
        with self.vault.open_file(name, f"data/{path}") as handle:
            assert handle.read() == held[path]

    @invariant()
    def listing_matches(self) -> None:
        """Every snapshot taken is listed, newest first."""
        names = [s.name for s in self.vault.snapshots()]
        assert names == sorted(self.taken, reverse=True)

    @precondition(lambda self: len(self.taken) > 1)
    @rule()
    def verify(self) -> None:
        """The repository verifies clean, data included."""
        report = self.vault.verify(read_data=True)
        assert report.ok, report.problems


VaultMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=15, deadline=None, database=None
)
TestVaultMachine = VaultMachine.TestCase
