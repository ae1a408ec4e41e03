"""`Vault.status`: ages, lagging targets, stale lineages, the lock and pending deletions."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from ctfy_vault.exceptions import ConfigurationError
from ctfy_vault.retention import Policy
from ctfy_vault.vault import Vault
from ctfy_vault.writer import StreamSource
from tests.support.vaults import KEY
from tests.support.writer_strategies import NOW, SMALL, memory_target

HOUR = timedelta(hours=1)


def _backup(vault: Vault, lineage: str, hours: float, data: bytes = b"x" * 3000) -> str:
    return vault.backup(
        StreamSource(name="d", stream=io.BytesIO(data)),
        lineage=lineage,
        host="h",
        now=NOW + hours * HOUR,
    ).snapshot_id


def test_each_lineage_has_its_newest_snapshot_and_age() -> None:
    """Ages at ``now``; with max_age, the older lineage is stale and status is not ok."""
    vault = Vault.init([memory_target("a"), memory_target("b")], key=KEY, now=NOW, chunker=SMALL)
    _backup(vault, "db", 0)
    newest_db = _backup(vault, "db", 20)
    newest_files = _backup(vault, "files", 2)
    found = vault.status(now=NOW + 30 * HOUR, max_age=timedelta(hours=26))
    by_name = {item.lineage: item for item in found.lineages}
    assert by_name["db"].newest.snapshot_id == newest_db
    assert by_name["db"].age == 10 * HOUR
    assert by_name["db"].snapshots == 2
    assert by_name["files"].newest.snapshot_id == newest_files
    assert by_name["files"].age == 28 * HOUR
    assert found.stale == ("files",)
    assert not found.ok
    assert not found.lagging
    assert vault.status(now=NOW + 30 * HOUR).ok  # no max_age: nothing is stale
    only = vault.status(now=NOW + 30 * HOUR, lineage="db")
    assert [item.lineage for item in only.lineages] == ["db"]


def test_a_target_that_missed_the_last_backup_lags() -> None:
    """The newest manifest is on one target only: the other lags until heal."""
    a, b = memory_target("a"), memory_target("b")
    vault = Vault.init([a, b], key=KEY, now=NOW, chunker=SMALL)
    _backup(vault, "db", 0)
    newest = _backup(vault, "db", 5, b"y" * 3000)
    b.delete(next(key for key in b.list("snapshots") if key.endswith(newest)))
    found = Vault.open([a, b], key=KEY).status(now=NOW + 6 * HOUR)
    (db,) = found.lineages
    assert db.lagging == (b.name,)
    assert db.on_targets == {a.name: NOW + 5 * HOUR, b.name: NOW}
    assert found.lagging == {"db": (b.name,)}
    assert not found.ok
    vault.heal()
    assert vault.status(now=NOW + 6 * HOUR).ok


def test_pending_deletions_and_object_lock_are_reported() -> None:
    """Chunks a prune marked are pending; memory targets cannot lock."""
    vault = Vault.init([memory_target("a")], key=KEY, now=NOW, chunker=SMALL)
    _backup(vault, "db", 0, b"a" * 5000)
    _backup(vault, "db", 1, b"b" * 5000)
    vault.prune(Policy(last=1), now=NOW + 2 * HOUR)
    found = vault.status(now=NOW + 2 * HOUR)
    assert found.pending_chunks > 0
    assert found.prune_lock is None
    assert set(found.object_lock.values()) == {False}


def test_bad_arguments_are_refused() -> None:
    """A naive now, a negative max_age, a lineage without snapshots."""
    vault = Vault.init([memory_target("a")], key=KEY, now=NOW, chunker=SMALL)
    _backup(vault, "db", 0)
    with pytest.raises(ConfigurationError, match="aware"):
        vault.status(now=NOW.replace(tzinfo=None))
    with pytest.raises(ConfigurationError, match="negative"):
        vault.status(now=NOW, max_age=-HOUR)
    with pytest.raises(ConfigurationError, match="'nope'"):
        vault.status(now=NOW, lineage="nope")
