"""Bit-rot: flipped bytes in one target's chunks, manifests and key slots are found and repaired.

A three-target local vault is damaged on one target by XOR-ing random bytes (seeded) into stored
objects. ``verify(read_data=True)`` must name exactly the damaged objects, restore must read the
good copies from the other targets, and ``heal(repair=True)`` must put the good copies back.
"""

from __future__ import annotations

import io
import random
import shutil
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctfy_vault.crypto import RawKey
from ctfy_vault.exceptions import TargetsFailedError
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault
from ctfy_vault.writer import ChunkerParams, StreamSource

KEY = RawKey(bytes.fromhex("b1" * 32))
SECOND_KEY = RawKey(bytes.fromhex("b2" * 32))
NOW = datetime(2026, 11, 1, tzinfo=UTC)
CHUNKS = ChunkerParams(min_size=1024, avg_size=4096, max_size=16384)
NAMES = ("ams", "irl", "fra")
KINDS = {"objects/": "corrupt-chunk", "snapshots/": "manifest", "keys/": "key-slot"}

#: ``(offset as a share of the object's length, XOR mask)``: one flipped byte.
Flip = tuple[float, int]


def _content(seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    shared = random.Random(0).randbytes(48 * 1024)  # noqa: S311 - test data, not secrets
    return {"db.sql": shared + rng.randbytes(8 * 1024), "files.tar": rng.randbytes(40 * 1024)}


@attrs.frozen
class Repo:
    """A built repository: its folders (one per target) and what each snapshot holds."""

    roots: tuple[Path, ...]
    snapshots: dict[str, dict[str, bytes]]

    def targets(self) -> list[Target]:
        """Fresh targets on the folders."""
        return [Target.from_url(str(root), name=root.name) for root in self.roots]

    def vault(self) -> Vault:
        """The repository, opened."""
        return Vault.open(self.targets(), key=KEY)

    def keys(self, target: int, *prefixes: str) -> list[str]:
        """The object keys under ``prefixes`` on one target, sorted."""
        root = self.roots[target]
        return sorted(
            path.relative_to(root).as_posix()
            for prefix in prefixes
            for path in (root / prefix).rglob("*")
            if path.is_file()
        )

    def read(self, target: int, key: str) -> bytes:
        """One stored object's bytes."""
        return (self.roots[target] / key).read_bytes()


def _build(root: Path) -> Repo:
    roots = tuple(root / name for name in NAMES)
    targets = [Target.from_url(str(path), name=path.name) for path in roots]
    vault = Vault.init(targets, key=KEY, now=NOW, chunker=CHUNKS)
    vault.add_key(SECOND_KEY, now=NOW)
    snapshots = {}
    for seed in range(3):
        files = _content(seed)
        info = vault.backup(
            [StreamSource(name=name, stream=io.BytesIO(data)) for name, data in files.items()],
            lineage="db",
            host="h",
            now=NOW.replace(hour=seed + 1),
        )
        snapshots[info.snapshot_id] = files
    return Repo(roots=roots, snapshots=snapshots)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    """A repository built once per module; tests copy it (or undo their damage)."""
    return _build(tmp_path_factory.mktemp("bitrot-template"))


@pytest.fixture
def repo(template: Repo, tmp_path: Path) -> Repo:
    """A private copy of the template repository."""
    roots = []
    for root in template.roots:
        shutil.copytree(root, tmp_path / root.name)
        roots.append(tmp_path / root.name)
    return Repo(roots=tuple(roots), snapshots=template.snapshots)


def _flip(repo: Repo, target: int, key: str, flips: list[Flip]) -> bool:
    """XOR bytes into one stored object in place; whether its bytes changed."""
    path = repo.roots[target] / key
    data = bytearray(path.read_bytes())
    before = bytes(data)
    for share, mask in flips:
        data[min(int(share * len(data)), len(data) - 1)] ^= mask
    path.write_bytes(bytes(data))
    return bytes(data) != before


def _rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - where to damage, not secrets


def _kind(key: str) -> str:
    return next(kind for prefix, kind in KINDS.items() if key.startswith(prefix))


def _damage(repo: Repo, rng: random.Random, *, chunks: int, manifests: int, slots: int) -> set[str]:
    """Flip one to three random bytes in random chunks, manifests and key slots of target 0."""
    chosen = (
        rng.sample(repo.keys(0, "objects"), chunks)
        + rng.sample(repo.keys(0, "snapshots"), manifests)
        + rng.sample(repo.keys(0, "keys"), slots)
    )
    for key in chosen:
        flips = [(rng.random(), rng.randrange(1, 256)) for _ in range(rng.randrange(1, 4))]
        if not _flip(repo, 0, key, flips):  # two flips of one byte cancelled: flip once more
            _flip(repo, 0, key, [(0.5, 0x80)])
    return set(chosen)


def _found(vault: Vault) -> set[tuple[str, str | None, str | None]]:
    report = vault.verify(read_data=True)
    return {(p.kind, p.target, p.key) for p in report.problems}


def _expected(target: str, keys: set[str]) -> set[tuple[str, str | None, str | None]]:
    return {(_kind(key), target, key) for key in keys}


def test_verify_reports_exactly_the_damaged_chunks_manifests_and_key_slots(repo: Repo) -> None:
    """Damage on one target is reported object by object: nothing missed, nothing extra."""
    vault = repo.vault()  # before the damage: see the xfail test on key slots below
    damaged = _damage(repo, _rng(7), chunks=6, manifests=2, slots=1)
    assert _found(vault) == _expected("ams", damaged)


def test_restore_falls_back_to_another_target_byte_identical(repo: Repo, tmp_path: Path) -> None:
    """Every snapshot restores intact although the first target's copies are damaged."""
    damaged = _damage(repo, _rng(11), chunks=12, manifests=2, slots=0)
    vault = repo.vault()
    fallbacks = set()
    for snapshot_id, files in repo.snapshots.items():
        dest = tmp_path / "restore" / snapshot_id
        report = vault.restore(snapshot_id, dest)
        fallbacks |= set(report.fallbacks)
        for name, data in files.items():
            assert (dest / name).read_bytes() == data
    # Every chunk is named by some snapshot, so each damaged one was read and skipped once.
    assert fallbacks == {(key, "ams") for key in damaged if key.startswith("objects/")}


def test_heal_without_repair_leaves_damage_alone(repo: Repo) -> None:
    """A plain heal never overwrites: the damaged copies are still there and still reported."""
    vault = repo.vault()
    damaged = _damage(repo, _rng(3), chunks=3, manifests=1, slots=1)
    report = vault.heal()
    assert report.copied == 0
    assert report.repaired == 0
    assert _found(vault) == _expected("ams", damaged)


def test_heal_with_repair_replaces_every_damaged_copy(repo: Repo) -> None:
    """``heal(repair=True)`` rewrites exactly the damaged copies from good ones; all verifies."""
    vault = repo.vault()
    damaged = _damage(repo, _rng(5), chunks=8, manifests=2, slots=2)
    _flip(repo, 0, "config", [(0.3, 0x20)])  # the config is judged by majority, like key slots
    damaged.add("config")
    report = vault.heal(repair=True)
    by_target = {outcome.target: outcome for outcome in report.outcomes}
    assert set(by_target["ams"].repaired) == damaged
    assert by_target["irl"].repaired == by_target["fra"].repaired == ()
    assert report.copied == 0
    assert vault.verify(read_data=True).ok
    for key in [*repo.keys(1, "objects", "snapshots", "keys"), "config"]:
        assert repo.read(0, key) == repo.read(1, key), key


def test_repair_without_a_good_copy_fails_loudly_and_deletes_nothing(repo: Repo) -> None:
    """A chunk damaged on every target cannot be repaired: heal says so and keeps the copies."""
    key = repo.keys(0, "objects")[0]
    for target in range(len(NAMES)):
        _flip(repo, target, key, [(0.5, 0x01)])
    vault = repo.vault()
    with pytest.raises(TargetsFailedError, match="incomplete"):
        vault.heal(repair=True)
    assert all((root / key).is_file() for root in repo.roots)
    assert {kind for kind, _target, _key in _found(vault)} == {"corrupt-chunk"}


def test_two_copies_of_a_key_slot_that_differ_but_parse_are_both_reported(tmp_path: Path) -> None:
    """With two targets and no majority, both copies of an altered slot are named, none repaired."""
    targets = [Target.from_url(str(tmp_path / name), name=name) for name in ("ams", "irl")]
    vault = Vault.init(targets, key=KEY, now=NOW)
    slot = next((tmp_path / "ams" / "keys").iterdir())
    document = slot.read_text()
    salt = document.index('"salt":"') + len('"salt":"')
    swapped = "1" if document[salt] != "1" else "2"  # still hex: the slot still parses
    slot.write_text(document[:salt] + swapped + document[salt + 1 :])
    key = f"keys/{slot.name}"
    found = {(p.kind, p.target, p.key) for p in vault.verify().problems}
    assert found == {("key-slot", "ams", key), ("key-slot", "irl", key)}
    with pytest.raises(TargetsFailedError):
        vault.heal(repair=True)
    assert slot.read_text() != (tmp_path / "irl" / key).read_text()


def test_open_falls_back_when_a_key_slot_on_the_first_target_no_longer_parses(repo: Repo) -> None:
    """A key slot damaged beyond parsing on one target does not stop the vault from opening."""
    (repo.roots[0] / repo.keys(0, "keys")[0]).write_bytes(b"\x00rotten")
    vault = repo.vault()
    assert len(vault.snapshots()) == len(repo.snapshots)


# -- the property ------------------------------------------------------------------------------


@st.composite
def _damage_plans(draw: st.DrawFn, objects: int) -> list[tuple[int, int, list[Flip]]]:
    """Distinct objects (by index), each on one target, each with one to four flipped bytes."""
    picked = draw(st.lists(st.integers(0, objects - 1), min_size=1, max_size=6, unique=True))
    flips = st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=4
    )
    return [(index, draw(st.integers(0, len(NAMES) - 1)), draw(flips)) for index in picked]


@pytest.fixture(scope="module")
def shared(template: Repo) -> tuple[Repo, Vault, list[str]]:
    """The template itself, opened, with the keys every target holds; examples undo their damage."""
    keys = template.keys(0, "objects", "snapshots", "keys")
    for target in range(len(NAMES)):
        assert template.keys(target, "objects", "snapshots", "keys") == keys
    return template, template.vault(), keys


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_verify_flags_exactly_the_flipped_objects(
    shared: tuple[Repo, Vault, list[str]], data: st.DataObject
) -> None:
    """For any bytes flipped in any objects (each on one target), verify names exactly those."""
    repo, vault, keys = shared
    plan = data.draw(_damage_plans(len(keys)))
    originals = {(target, keys[index]): repo.read(target, keys[index]) for index, target, _ in plan}
    try:
        expected = {
            (_kind(keys[index]), NAMES[target], keys[index])
            for index, target, flips in plan
            if _flip(repo, target, keys[index], flips)
        }
        assert _found(vault) == expected
    finally:
        for (target, key), blob in originals.items():
            (repo.roots[target] / key).write_bytes(blob)


def test_open_with_a_damaged_config_on_one_target(repo: Repo) -> None:
    """A config damaged on one target leaves that target degraded; the others open the vault."""
    _flip(repo, 0, "config", [(0.3, 0x20)])
    vault = repo.vault()
    assert len(vault.degraded) == 1
    assert len(vault.snapshots()) == len(repo.snapshots)
