"""A state machine drives backups, target failures, heals and re-runs against a dict model."""

from __future__ import annotations

import io
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ctfy_vault.manifest import Manifest
from ctfy_vault.storage import Target
from ctfy_vault.writer import StreamSource, Writer, chunk_key, heal
from tests.support.writer_strategies import (
    FAST_RETRY,
    NOW,
    SMALL,
    Faults,
    blobs,
    contents,
    faulty_target,
    manifests,
    sealer,
)


class _BrokenStream:
    """Delivers ``limit`` bytes of ``data``, then fails like a producer that died."""

    def __init__(self, data: bytes, limit: int) -> None:
        self.data, self.limit, self.position = data, limit, 0

    def read(self, size: int, /) -> bytes:
        if self.position >= self.limit:
            raise OSError("producer died")
        end = min(self.position + size, self.limit)
        part = self.data[self.position : end]
        self.position = end
        return part


class WriterMachine(RuleBasedStateMachine):
    """Two fault-injectable memory targets and one local-disk target, written by one writer."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.mkdtemp(prefix="writer-state-")
        self.faults = [Faults(), Faults()]
        self.targets = [
            faulty_target(self.faults[0], "m0"),
            faulty_target(self.faults[1], "m1"),
            Target.from_url(self.folder, retry=FAST_RETRY),
        ]
        # Fault-free views of the same stores, for checking while a target is "down".
        self.views = [
            Target.from_url(f"memory:/{t.root}") for t in self.targets[:2]
        ] + self.targets[2:]
        self.sealer = sealer()
        self.writer = Writer(self.targets, self.sealer, chunker=SMALL, require=1)
        self.model: list[dict[str, bytes]] = [{}, {}, {}]
        self.backups = 0

    def teardown(self) -> None:
        """Remove the local target's folder."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def _all_up(self) -> bool:
        return not any(f.down or f.full for f in self.faults)

    @rule(data=blobs())
    def backup(self, data: bytes) -> None:
        """Back up a stream; with faults active some targets fail, never the local one."""
        self.backups += 1
        # require=1 and the local disk never fails, so this never raises TargetsFailedError.
        result = self.writer.backup(
            [StreamSource(name="db.sql", stream=io.BytesIO(data))],
            lineage="db",
            host="h",
            now=NOW,
            snapshot_id=f"s{self.backups}",
        )
        committed = [o.committed for o in result.outcomes]
        assert committed[2]
        for index, fault in enumerate(self.faults):
            if not (fault.down or fault.full):
                assert committed[index]

    @rule(data=blobs(), cut=st.integers(min_value=0, max_value=4096))
    def interrupted_backup(self, data: bytes, cut: int) -> None:
        """A producer dies mid-stream: chunks may be left, no manifest is written anywhere."""
        before = [set(view.list("snapshots")) for view in self.views]
        stream = _BrokenStream(data, min(cut, len(data)))
        with pytest.raises(OSError, match="producer died"):
            self.writer.backup(
                [StreamSource(name="db.sql", stream=stream)], lineage="db", host="h", now=NOW
            )
        assert [set(view.list("snapshots")) for view in self.views] == before

    @rule(index=st.integers(0, 1), full=st.booleans())
    def break_target(self, index: int, full: bool) -> None:
        """Make a memory target refuse writes (full) or stop answering (down)."""
        if full:
            self.faults[index].full = True
        else:
            self.faults[index].down = True

    @rule(index=st.integers(0, 1))
    def repair_target(self, index: int) -> None:
        """Bring a memory target back."""
        self.faults[index].full = False
        self.faults[index].down = False

    @precondition(_all_up)
    @rule()
    def heal_all(self) -> None:
        """With every target up, heal succeeds and leaves all targets with the same objects."""
        heal(self.targets, sealer=self.sealer)
        keys = [set(view.list("")) for view in self.views]
        assert keys[0] == keys[1] == keys[2]

    @invariant()
    def objects_never_change(self) -> None:
        """No object ever changes or disappears once written."""
        for view, seen in zip(self.views, self.model, strict=True):
            now = contents(view)
            for key, blob in seen.items():
                assert now.get(key) == blob, key
            seen.update(now)

    @invariant()
    def manifests_name_only_stored_chunks(self) -> None:
        """A manifest never names a chunk missing on its own target."""
        for view in self.views:
            stored = set(view.list("objects"))
            for manifest in manifests(view, self.sealer):
                assert isinstance(manifest, Manifest)
                for entry in manifest.files:
                    assert all(chunk_key(c) in stored for c in entry.chunks)


WriterMachine.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestWriterMachine = WriterMachine.TestCase
