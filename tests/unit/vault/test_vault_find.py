"""`Vault.find` and `find_snapshot`: which snapshot a reference names, or the right error."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from datetime import timedelta
from io import BytesIO

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctfy_vault.crypto import RawKey
from ctfy_vault.exceptions import (
    AmbiguousSnapshotError,
    ConfigurationError,
    ObjectNotFoundError,
    SnapshotNotFoundError,
    VaultError,
)
from ctfy_vault.testing import memory_target
from ctfy_vault.vault import SnapshotInfo, Vault, check_reference, find_snapshot
from ctfy_vault.writer import StreamSource
from tests.support.snapshot_strategies import references, snapshot_info, snapshot_lists
from tests.support.writer_strategies import NOW


def new_repository() -> Vault:
    """A fresh repository on two memory targets."""
    return Vault.init([memory_target(), memory_target()], key=RawKey(bytes(32)), now=NOW)


def back_up(vault: Vault, lineage: str, minutes: int) -> SnapshotInfo:
    """One small stream backed up ``minutes`` after `NOW`; return it as `Vault.snapshots` lists it."""
    source = StreamSource(name="dump.sql", stream=BytesIO(f"{lineage} {minutes}".encode()))
    info = vault.backup(source, lineage=lineage, host="h", now=NOW + timedelta(minutes=minutes))
    return next(s for s in vault.snapshots() if s.snapshot_id == info.snapshot_id)


def shortest_unique_prefix(snapshot_id: str, ids: list[str]) -> str:
    """The shortest prefix of ``snapshot_id`` no other id in ``ids`` starts with."""
    return next(
        snapshot_id[:n]
        for n in range(1, len(snapshot_id) + 1)
        if sum(i.startswith(snapshot_id[:n]) for i in ids) == 1
    )


# -- Vault.find on a repository ------------------------------------------------------------------


def test_find_resolves_every_form_of_reference() -> None:
    """latest, latest:LINEAGE, a name, an id and a unique id prefix each give the listed snapshot."""
    vault = new_repository()
    old_db = back_up(vault, "db", 0)
    files = back_up(vault, "files", 1)
    new_db = back_up(vault, "db", 2)
    ids = [s.snapshot_id for s in vault.snapshots()]
    assert vault.find("latest") == new_db
    assert vault.find("latest:db") == new_db
    assert vault.find("latest:files") == files
    for info in (old_db, files, new_db):
        assert vault.find(info.name) == info
        assert vault.find(info.snapshot_id) == info
        assert vault.find(shortest_unique_prefix(info.snapshot_id, ids)) == info


def test_find_reports_what_matches_nothing() -> None:
    """Nothing matching is a SnapshotNotFoundError: a LookupError and an ObjectNotFoundError."""
    vault = new_repository()
    with pytest.raises(
        SnapshotNotFoundError, match=r"^no snapshot \[repository: latest\]$"
    ) as empty:
        vault.find("latest")
    back_up(vault, "db", 0)
    with pytest.raises(SnapshotNotFoundError, match="no snapshot of lineage files") as lineage:
        vault.find("latest:files")
    with pytest.raises(SnapshotNotFoundError, match="no such snapshot") as unknown:
        vault.find("zz")  # no id has a z: ids are hex
    for raised, ref in ((empty, "latest"), (lineage, "latest:files"), (unknown, "zz")):
        err = raised.value
        assert isinstance(err, LookupError)
        assert isinstance(err, ObjectNotFoundError)
        assert isinstance(err, FileNotFoundError)
        assert (err.target, err.key) == ("repository", ref)
        assert str(err).endswith(f"[repository: {ref}]")


def test_find_refuses_a_prefix_of_several_ids() -> None:
    """17 snapshots share a first hex digit somewhere: that digit is ambiguous and lists them."""
    vault = new_repository()
    for minutes in range(17):
        back_up(vault, "db", minutes)
    ids = [s.snapshot_id for s in vault.snapshots()]
    digit = next(d for d in "0123456789abcdef" if sum(i.startswith(d) for i in ids) >= 2)
    with pytest.raises(AmbiguousSnapshotError) as raised:
        vault.find(digit)
    err = raised.value
    assert err.matches == tuple(i for i in ids if i.startswith(digit))
    assert err.ref == digit
    assert str(err) == f"snapshot prefix {digit!r} is ambiguous: {', '.join(err.matches[:5])}"
    assert isinstance(err, ConfigurationError)
    assert isinstance(err, LookupError)


def test_find_checks_the_reference_before_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed reference is a ConfigurationError quoting it; the repository is not listed."""
    vault = new_repository()

    def never(self: Vault, lineage: str | None = None) -> list[SnapshotInfo]:
        raise AssertionError("listed the snapshots")

    monkeypatch.setattr(Vault, "snapshots", never)
    for ref in ("latest:", "", "a b", "../x", "latest:-x"):
        with pytest.raises(ConfigurationError, match="snapshot reference") as raised:
            vault.find(ref)
        assert not isinstance(raised.value, LookupError)
        assert repr(ref) in str(raised.value)


# -- the errors ----------------------------------------------------------------------------------


def test_new_errors_survive_pickling() -> None:
    """Both errors keep their type, text and fields through pickle (for process pools)."""
    missing = SnapshotNotFoundError("no such snapshot", target="repository", key="abc")
    ambiguous = AmbiguousSnapshotError("ab", ["ab1", "ab2"])
    missing_copy = pickle.loads(pickle.dumps(missing))  # noqa: S301 - our own object
    ambiguous_copy = pickle.loads(pickle.dumps(ambiguous))  # noqa: S301 - our own object
    assert type(missing_copy) is SnapshotNotFoundError
    assert (missing_copy.key, str(missing_copy)) == ("abc", str(missing))
    assert type(ambiguous_copy) is AmbiguousSnapshotError
    assert (ambiguous_copy.ref, ambiguous_copy.matches) == ("ab", ("ab1", "ab2"))
    assert str(ambiguous_copy) == str(ambiguous)


def test_an_ambiguous_message_lists_five_ids() -> None:
    """However many ids share the prefix, the message lists the first five; ``matches`` has all."""
    listed = [snapshot_info(f"a{n}", "db", n) for n in range(7)]
    with pytest.raises(AmbiguousSnapshotError) as raised:
        find_snapshot(listed, "a")
    assert str(raised.value) == "snapshot prefix 'a' is ambiguous: a0, a1, a2, a3, a4"
    assert raised.value.matches == tuple(f"a{n}" for n in range(7))


def test_an_exact_id_wins_over_longer_ids_it_prefixes() -> None:
    """An id that is also a prefix of other ids names that snapshot, not an ambiguity."""
    listed = [
        snapshot_info("abb", "db", 0),
        snapshot_info("ab", "db", 1),
        snapshot_info("abc", "db", 2),
    ]
    assert find_snapshot(listed, "ab") is listed[1]


# -- properties ----------------------------------------------------------------------------------


def outcome(call: Callable[[], SnapshotInfo]) -> SnapshotInfo | BaseException:
    """What ``call`` returns, or the library error it raises."""
    try:
        return call()
    except VaultError as err:
        return err


@given(st.data())
def test_find_gives_the_unique_match_or_the_right_error(data: st.DataObject) -> None:
    """Property: the result is what the reference names, else exactly the error that says why."""
    listed = data.draw(snapshot_lists())
    ref = data.draw(references(listed))
    found = outcome(lambda: find_snapshot(listed, ref))
    try:
        check_reference(ref)
    except ConfigurationError:
        assert type(found) is ConfigurationError
        return
    if ref == "latest" or ref.startswith("latest:"):
        lineage = ref.partition(":")[2]
        pool = [s for s in listed if not lineage or s.lineage == lineage]
        if not pool:
            assert isinstance(found, SnapshotNotFoundError)
            assert found.key == ref
            return
        assert isinstance(found, SnapshotInfo)
        assert found in pool
        assert all((s.created, s.name) <= (found.created, found.name) for s in pool)
        return
    exact = [s for s in listed if ref in (s.name, s.snapshot_id)]
    prefixed = [s for s in listed if s.snapshot_id.startswith(ref)]
    if exact:
        assert found is exact[0]
    elif len(prefixed) == 1:
        assert found is prefixed[0]
    elif prefixed:
        assert isinstance(found, AmbiguousSnapshotError)
        assert found.matches == tuple(s.snapshot_id for s in prefixed)
    else:
        assert isinstance(found, SnapshotNotFoundError)
        assert found.key == ref


@given(st.data())
def test_the_order_of_the_list_does_not_matter(data: st.DataObject) -> None:
    """Property: with unique ids, any order of the same snapshots gives the same answer."""
    listed = data.draw(snapshot_lists())
    shuffled = data.draw(st.permutations(listed))
    ref = data.draw(references(listed))
    first = outcome(lambda: find_snapshot(listed, ref))
    second = outcome(lambda: find_snapshot(shuffled, ref))
    if isinstance(first, AmbiguousSnapshotError):
        assert isinstance(second, AmbiguousSnapshotError)
        assert sorted(first.matches) == sorted(second.matches)
    elif isinstance(first, BaseException):
        assert type(second) is type(first)
        assert str(second) == str(first)
    else:
        assert second is first


def test_every_lookup_by_name_raises_the_snapshot_error() -> None:
    """``manifest``, ``ls`` and ``open_file`` with an unknown snapshot raise SnapshotNotFoundError."""
    vault = Vault.init([memory_target()], key=RawKey(bytes(32)), now=NOW)
    for call in (
        lambda: vault.manifest("nope"),
        lambda: vault.ls("nope"),
        lambda: vault.open_file("nope", "a.txt"),
    ):
        with pytest.raises(SnapshotNotFoundError) as caught:
            call()
        assert isinstance(caught.value, LookupError)
        assert caught.value.key == "nope"
