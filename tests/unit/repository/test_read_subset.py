"""``verify(read_data=ReadSubset(n, t))``: restic's ``--read-data-subset=n/t``."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctfy_vault.exceptions import ConfigurationError
from ctfy_vault.repository import MAX_SUBSET_GROUPS, ReadSubset, pack_id_of
from ctfy_vault.vault import Vault
from tests.support.vaults import KEY, corrupt, new_vault, stream
from tests.support.writer_strategies import NOW


@given(groups=st.integers(1, MAX_SUBSET_GROUPS), ids=st.lists(st.binary(min_size=1), max_size=50))
def test_every_id_is_in_exactly_one_group(groups: int, ids: list[bytes]) -> None:
    """The groups partition the ids, whatever they are."""
    for object_id in ids:
        holders = [n for n in range(1, groups + 1) if ReadSubset(n, groups).holds(object_id)]
        assert holders == [object_id[0] % groups + 1]


@pytest.mark.parametrize(("group", "groups"), [(0, 3), (4, 3), (1, 0), (1, 257), (-1, 2)])
def test_a_group_outside_its_range_is_refused(group: int, groups: int) -> None:
    """The group is from 1 to t, and t from 1 to 256."""
    with pytest.raises(ConfigurationError, match="read subset"):
        ReadSubset(group, groups)


def _packed_vault(format_: int) -> Vault:
    vault = new_vault(format=format_, pack_size=4096) if format_ == 2 else new_vault(format=1)
    data = random.Random(3).randbytes(200_000)  # noqa: S311 - test data
    vault.backup(stream(data), lineage="db", host="h", now=NOW)
    return vault


@pytest.mark.parametrize("format_", [1, 2])
def test_the_groups_read_everything_once_and_always_the_same(format_: int) -> None:
    """Groups 1..t read what ``read_data=True`` reads, in total, and each the same twice."""
    vault = _packed_vault(format_)
    whole = vault.verify(read_data=True)
    assert whole.ok
    groups = 5
    parts = [vault.verify(read_data=ReadSubset(n, groups)).chunks_read for n in range(1, 6)]
    assert sum(parts) == whole.chunks_read
    assert sum(1 for part in parts if part) >= 2  # spread, not all in one group
    again = [vault.verify(read_data=ReadSubset(n, groups)).chunks_read for n in range(1, 6)]
    assert again == parts


def test_a_damaged_pack_is_found_by_its_own_group_only() -> None:
    """The group holding the pack reports it corrupt; the others do not read it."""
    vault = _packed_vault(2)
    target = vault.targets[0]
    key = sorted(target.list("packs"))[0]
    pack_id = pack_id_of(key)
    assert pack_id is not None
    corrupt(target, key)
    mine = pack_id[0] % 3 + 1
    for group in range(1, 4):
        found = Vault.open(vault.targets, key=KEY).verify(read_data=ReadSubset(group, 3))
        kinds = {(p.kind, p.key) for p in found.problems}
        assert (("corrupt-pack", key) in kinds) == (group == mine), group
