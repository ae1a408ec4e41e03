"""A state machine: backups, prunes with repacking, damage and heal of a format 2 repository.

The model is the content each kept snapshot must restore to. Damage (a deleted pack, a flipped
byte in one) hits one target at a time; restores must still be exact (the other target's copy is
read instead), and after heal the repository must verify clean with every pack read.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import uuid
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ctfy_vault.storage import Target
from tests.support.cycle import Cycle
from tests.support.writer_strategies import FAST_RETRY


class CycleMachine(RuleBasedStateMachine):
    """Back up, forget and prune (repacking), damage one target, heal; restores stay exact."""

    def __init__(self) -> None:
        """Two targets: one in memory, one on a local folder."""
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="cycle-state-"))
        targets = [
            Target.from_url(f"memory://cycle-{uuid.uuid4().hex}", name="memory"),
            Target.from_url(str(self.folder / "local"), name="local", retry=FAST_RETRY),
        ]
        self.cycle = Cycle(targets)

    def teardown(self) -> None:
        """Remove the local folder."""
        shutil.rmtree(self.folder, ignore_errors=True)

    @rule()
    def backup(self) -> None:
        """Back up the next files (sharing pieces with earlier ones)."""
        if self.cycle.damaged:
            self.cycle.heal()  # a backup onto a damaged target is heal's business first
        self.cycle.backup()

    @precondition(lambda self: len(self.cycle.model) >= 2)
    @rule(keep=st.integers(1, 3), repack_below=st.sampled_from([0.0, 0.5, 0.9, 1.0]))
    def prune(self, keep: int, repack_below: float) -> None:
        """Forget all but the newest few; prune with grace 0 and a repack threshold."""
        if self.cycle.damaged:
            self.cycle.heal()
        self.cycle.prune(keep, repack_below)

    @precondition(lambda self: self.cycle.model and not self.cycle.damaged)
    @rule(index=st.integers(0, 1), seed=st.integers(0, 2**16), delete=st.booleans())
    def damage(self, index: int, seed: int, delete: bool) -> None:
        """Delete a pack of one target, or flip a byte in it."""
        self.cycle.damage(index, random.Random(seed), delete=delete)  # noqa: S311 - test choice

    @precondition(lambda self: self.cycle.damaged)
    @rule()
    def heal(self) -> None:
        """Heal with repair; the repository is then clean."""
        self.cycle.heal()
        self.cycle.check_clean()

    @invariant()
    def restores_are_exact(self) -> None:
        """Every kept snapshot restores to its content, damage or not."""
        self.cycle.check_restores()

    @precondition(lambda self: not self.cycle.damaged)
    @rule()
    def verify(self) -> None:
        """Without damage, verify reads every pack and finds nothing."""
        self.cycle.check_clean()


CycleMachine.TestCase.settings = settings(max_examples=15, stateful_step_count=12, deadline=None)
TestCycleMachine = CycleMachine.TestCase
