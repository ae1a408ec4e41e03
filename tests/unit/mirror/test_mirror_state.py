"""The mirror as a state machine against a dict model: every version seen survives, nothing is removed."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ctfy_vault.mirror import VERSIONS_PREFIX, MirrorState, mirror
from ctfy_vault.storage import Target

KEYS = st.sampled_from(["a", "b", "docs/c", "docs/d"])
DATA = st.binary(min_size=0, max_size=12)


def _contents(target: Target) -> dict[str, bytes]:
    return {key: target.read(key) for key in target.list()}


class MirrorMachine(RuleBasedStateMachine):
    """Source operations and mirror runs, checked against what the model says must survive."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="ctfy-mirror-sm-"))
        self.source = Target.from_url(str(self.folder / "source"))
        self.replicas = [
            Target.from_url(str(self.folder / "replica")),
            Target.from_url(f"memory://sm-{uuid.uuid4().hex[:12]}/replica"),
        ]
        self.state = MirrorState()
        self.model: dict[str, bytes] = {}
        self.seen: dict[str, set[bytes]] = {}
        self.deleted: set[str] = set()
        self.before: list[dict[str, bytes]] = [{} for _ in self.replicas]
        self.tick = 1_000_000_000_000_000_000

    def teardown(self) -> None:
        """Remove the folders (memory replicas vanish with the process)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    @rule(key=KEYS, data=DATA)
    def put(self, key: str, data: bytes) -> None:
        """Create or overwrite an object at the source (the source bucket is not append-only)."""
        path = self.folder / "source" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.tick += 1_000_000_000  # a distinct modification time per write, as a real change has
        os.utime(path, ns=(self.tick, self.tick))
        self.model[key] = data
        self.deleted.discard(key)

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def delete_at_source(self, data: st.DataObject) -> None:
        """Delete an object at the source."""
        key = data.draw(st.sampled_from(sorted(self.model)))
        self.source.delete(key)
        del self.model[key]
        self.deleted.add(key)

    @rule()
    def lose_state(self) -> None:
        """Forget what was copied (a lost state file): the next run must compare, not duplicate."""
        self.state = MirrorState()

    @rule()
    def run_mirror(self) -> None:
        """Run the mirror and record what the model says every replica must now hold."""
        self.before = [_contents(r) for r in self.replicas]
        report = mirror(self.source, self.replicas, state=self.state, workers=2)
        assert report.ok, report.failed
        for key, data in self.model.items():
            self.seen.setdefault(key, set()).add(data)
        on_replicas = {k for k in self.before[0] if not k.startswith(VERSIONS_PREFIX)}
        assert set(report.deleted_at_source) >= (on_replicas - set(self.model))
        assert not set(report.deleted_at_source) & set(self.model)
        for replica, before in zip(self.replicas, self.before, strict=True):
            now = _contents(replica)
            # Nothing removed: every object that was there is still there; only a current key may
            # change, and then its old bytes are kept under the versions prefix.
            for key, old in before.items():
                assert key in now
                if now[key] != old:
                    assert not key.startswith(VERSIONS_PREFIX)
                    kept = [v for k, v in now.items() if k.startswith(f"{VERSIONS_PREFIX}/{key}/")]
                    assert old in kept
            for key, data in self.model.items():
                assert now[key] == data

    @invariant()
    def every_seen_version_survives(self) -> None:
        """Every version present at the source during some run exists on every replica."""
        for replica in self.replicas:
            now = _contents(replica)
            for key, versions in self.seen.items():
                held = {now.get(key)} | {
                    v for k, v in now.items() if k.startswith(f"{VERSIONS_PREFIX}/{key}/")
                }
                assert versions <= held, key


MirrorMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=25, deadline=None)
TestMirrorMachine = MirrorMachine.TestCase
