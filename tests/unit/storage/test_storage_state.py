"""A state machine drives a target with create-only writes, reads, lists and deletes against a dict."""

from __future__ import annotations

import io
import shutil
import tempfile
import uuid

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ctfy_vault.exceptions import ObjectExistsError, ObjectNotFoundError
from ctfy_vault.storage import Target
from tests.support.strategies import simple_keys

payloads = st.binary(max_size=64)


class TargetMachine(RuleBasedStateMachine):
    """The model is a plain dict key -> bytes; the target must agree with it after every step."""

    backend = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, bytes] = {}
        self.folder: str | None = None
        if self.backend == "memory":
            self.target = Target.from_url(f"memory://state-{uuid.uuid4().hex}")
        else:
            self.folder = tempfile.mkdtemp(prefix="ctfy-state-")
            self.target = Target.from_url(self.folder)

    def teardown(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _conflicts(self, key: str) -> bool:
        # On a filesystem a key cannot be both an object and a folder of objects.
        return any(
            other.startswith(key + "/") or key.startswith(other + "/") for other in self.model
        )

    @rule(key=simple_keys(), data=payloads)
    def write(self, key: str, data: bytes) -> None:
        if self._conflicts(key):
            return
        if key in self.model:
            with pytest.raises(ObjectExistsError):
                self.target.write(key, data)
        else:
            self.target.write(key, data)
            self.model[key] = data

    @rule(key=simple_keys(), data=payloads)
    def write_stream(self, key: str, data: bytes) -> None:
        if self._conflicts(key):
            return
        if key in self.model:
            with pytest.raises(ObjectExistsError):
                self.target.write_stream(key, io.BytesIO(data))
        else:
            assert self.target.write_stream(key, io.BytesIO(data)) == len(data)
            self.model[key] = data

    @rule(key=simple_keys())
    def read(self, key: str) -> None:
        if key in self.model:
            assert self.target.read(key) == self.model[key]
        elif not self._conflicts(key):
            with pytest.raises(ObjectNotFoundError):
                self.target.read(key)

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.model)))
        self.target.delete(key)
        del self.model[key]

    @invariant()
    def listing_matches_model(self) -> None:
        assert sorted(self.target.list()) == sorted(self.model)

    @invariant()
    def sizes_match_model(self) -> None:
        for key, data in self.model.items():
            assert self.target.size(key) == len(data)


class LocalTargetMachine(TargetMachine):
    """The same machine on local disk."""

    backend = "local"


TestMemoryTargetState = TargetMachine.TestCase
TestMemoryTargetState.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestLocalTargetState = LocalTargetMachine.TestCase
TestLocalTargetState.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
