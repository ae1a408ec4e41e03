"""A state machine: backups, prunes and passing time against a model of what each policy keeps.

The model is a list of snapshots per lineage (time, content). A prune with ``Policy(last=k)``
keeps the newest ``k`` of the lineage pruned and leaves every other lineage alone. Whatever the
order of backups, prunes (with or without a grace period) and clock jumps, every snapshot the
model keeps restores byte for byte and the repository verifies clean.

It runs on both formats: format 1 (chunk objects) and format 2 with the smallest packs, so that
packs hold chunks of several snapshots and prunes repack them (``repack_below`` drawn too).
"""

from __future__ import annotations

import io
import random
from datetime import datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ctfy_vault.repository import DEFAULT_PACK_SIZE, MIN_PACK_SIZE
from ctfy_vault.retention import Policy
from ctfy_vault.vault import Vault
from ctfy_vault.writer import StreamSource
from tests.support.packed import problems
from tests.support.vaults import KEY
from tests.support.writer_strategies import NOW, SMALL, memory_target

LINEAGES = st.sampled_from(["db", "server-files"])
# A few shared pieces so snapshots share chunks (dedup) and chunks get forgotten and reused.
# Noise, so the chunker finds the same cut points inside a piece wherever it lies.
PIECES = [random.Random(n).randbytes(1500) for n in range(6)]  # noqa: S311 - test data


class PruneMachine(RuleBasedStateMachine):
    """Back up, prune and let time pass; the model says which snapshots must survive."""

    FORMAT = 1

    def __init__(self) -> None:
        """A fresh two-target repository and an empty model."""
        super().__init__()
        self.vault: Vault = Vault.init(
            [memory_target(f"t{n}") for n in range(2)],
            key=KEY,
            now=NOW,
            chunker=SMALL,
            format=self.FORMAT,
            pack_size=MIN_PACK_SIZE if self.FORMAT == 2 else DEFAULT_PACK_SIZE,
        )
        self.now: datetime = NOW
        self.model: dict[str, list[tuple[str, bytes]]] = {"db": [], "server-files": []}
        self.count = 0

    @rule(lineage=LINEAGES, parts=st.lists(st.integers(0, len(PIECES) - 1), max_size=4))
    def backup(self, lineage: str, parts: list[int]) -> None:
        """Back up a stream made of shared pieces."""
        self.now += timedelta(minutes=10)
        self.count += 1  # a tail of its own: forgetting the snapshot leaves part of a pack dead
        tail = lineage.encode() + self.count.to_bytes(4, "big") * 150
        data = b"".join(PIECES[n] for n in parts) + tail
        source = StreamSource(name="dump", stream=io.BytesIO(data))
        info = self.vault.backup(source, lineage=lineage, host="h", now=self.now)
        self.model[lineage].append((info.snapshot_id, data))

    @rule(minutes=st.integers(1, 180))
    def wait(self, minutes: int) -> None:
        """Let time pass."""
        self.now += timedelta(minutes=minutes)

    @precondition(lambda self: any(self.model.values()))
    @rule(
        lineage=LINEAGES,
        last=st.integers(1, 3),
        grace=st.sampled_from([0, 30, 60]),
        repack_below=st.sampled_from([0.0, 0.5, 0.8, 1.0]),
    )
    def prune(self, lineage: str, last: int, grace: int, repack_below: float) -> None:
        """Prune one lineage to its newest ``last`` snapshots."""
        self.now += timedelta(seconds=1)
        report = self.vault.prune(
            Policy(last=last),
            lineage=lineage,
            now=self.now,
            grace=timedelta(minutes=grace),
            repack_below=repack_below,
        )
        assert report.ok, report.errors
        self.model[lineage] = self.model[lineage][-last:]

    @invariant()
    def survivors_restore(self) -> None:
        """Exactly the model's snapshots are listed, and each reads back byte for byte."""
        listed = {s.snapshot_id for s in self.vault.snapshots()}
        expected = {sid for kept in self.model.values() for sid, _data in kept}
        assert listed == expected
        for kept in self.model.values():
            for snapshot_id, data in kept:
                assert self.vault.open_file(snapshot_id, "dump").read() == data

    @precondition(lambda self: any(self.model.values()))
    @rule()
    def verify(self) -> None:
        """The repository verifies clean, data included, after any sequence."""
        assert problems(self.vault) == []


class PackedPruneMachine(PruneMachine):
    """The same machine on format 2 with the smallest packs."""

    FORMAT = 2


SETTINGS = settings(max_examples=25, stateful_step_count=20, deadline=None, database=None)
PruneMachine.TestCase.settings = SETTINGS
PackedPruneMachine.TestCase.settings = SETTINGS
TestPruneMachine = PruneMachine.TestCase
TestPackedPruneMachine = PackedPruneMachine.TestCase
