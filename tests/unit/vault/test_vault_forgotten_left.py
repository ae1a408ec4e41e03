"""A forgotten snapshot whose object a prune could not delete stays forgotten.

Still locked, or on a refusing target: it is gone from every listing, from verify's lacking and
from heal's copies.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from ctfy_vault.retention import Policy
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault
from ctfy_vault.writer import StreamSource
from tests.support.vaults import KEY
from tests.support.writer_strategies import NOW, SMALL, memory_target


def test_a_forgotten_snapshot_left_on_one_target_stays_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Listing, plans, verify and heal treat it as gone; a later prune deletes it."""
    vault = Vault.init([memory_target("a"), memory_target("b")], key=KEY, now=NOW, chunker=SMALL)
    ids = [
        vault.backup(
            StreamSource(name="d", stream=io.BytesIO(bytes([day]) * 5000)),
            lineage="db",
            host="h",
            now=NOW + timedelta(days=day),
        ).snapshot_id
        for day in range(3)
    ]
    held = vault.targets[0]
    original = Target.delete

    def refusing(self: Target, key: str) -> None:
        if self is held and key.startswith("snapshots/"):
            return  # as a locked version stays: the object is still there
        original(self, key)

    monkeypatch.setattr(Target, "delete", refusing)
    report = vault.prune(Policy(last=1), now=NOW + timedelta(days=3), grace=timedelta(0))
    assert {s.snapshot_id for s in report.forgotten} == set(ids[:2])
    left = [k for k in held.list("snapshots") if any(i in k for i in ids[:2])]
    assert len(left) == 2
    monkeypatch.undo()
    fresh = Vault.open(vault.targets, key=KEY)
    for opened in (vault, fresh):
        assert [s.snapshot_id for s in opened.snapshots()] == [ids[2]]
        assert opened.forget(Policy(last=1), now=NOW + timedelta(days=4))["db"].forget == ()
        assert opened.verify().ok, opened.verify().problems
    healed = fresh.heal()
    assert not any(k.startswith("snapshots/") for o in healed.outcomes for k in o.copied)
    assert not [k for k in vault.targets[1].list("snapshots") if any(i in k for i in ids[:2])]
    fresh.prune(Policy(last=1), now=NOW + timedelta(days=5), grace=timedelta(0))
    assert not [k for k in held.list("snapshots") if any(i in k for i in ids[:2])]
    assert fresh.verify().ok
