"""Moving the demo repository from format 1 to format 2 with `Vault.copy`."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctfy_vault.cli._demo import TARGET_NAMES, run_demo
from ctfy_vault.crypto import RawKey
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault
from tests.support.copies import catalog, chains, tree_state
from tests.support.writer_strategies import FAST_RETRY, NOW

# Subprocesses or a whole demo run per test: the whole suite runs them, the fast tier does not.
pytestmark = pytest.mark.slow

KEY = RawKey(bytes.fromhex("5e" * 32))


@pytest.fixture(scope="module")
def demo_v1(tmp_path_factory: pytest.TempPathFactory) -> Vault:
    """The demo's repository, built as format 1, opened with its key."""
    folder = tmp_path_factory.mktemp("demo-v1")
    run_demo(folder, lambda _line: None, repository_format=1, key=KEY)
    targets = [Target.from_url(str(folder / name), name=name) for name in TARGET_NAMES]
    vault = Vault.open(targets, key=KEY)
    assert vault.config.format == 1
    return vault


def test_the_v1_demo_repository_copies_into_v2_and_verifies_clean(
    demo_v1: Vault, tmp_path: Path
) -> None:
    """Every snapshot of the v1 demo lands in a new v2 repository, which verifies clean."""
    targets = [
        Target.from_url(str(tmp_path / name), name=name, retry=FAST_RETRY)
        for name in ("fra", "par")
    ]
    moved = Vault.init(targets, key=KEY, now=NOW)
    assert moved.config.format == 2
    report = moved.copy(demo_v1, now=NOW)
    assert len(report.copied) == len(demo_v1.snapshots())
    verified = moved.verify(read_data=True)
    assert verified.ok, verified.problems
    assert verified.chunks_read > 0
    origins = frozenset(
        tag for info in moved.snapshots() for tag in info.tags if tag.startswith("copied-from=")
    )
    assert len(origins) == len(demo_v1.snapshots())
    assert catalog(moved, drop_tags=origins) == catalog(demo_v1)
    assert chains(moved).keys() == chains(demo_v1).keys()
    assert not any((tmp_path / name / "objects").exists() for name in ("fra", "par"))
    again = moved.copy(demo_v1, now=NOW)
    assert not again.copied  # nothing duplicated on a second run


def test_restores_from_the_v2_copy_equal_the_v1_originals(demo_v1: Vault, tmp_path: Path) -> None:
    """The newest snapshot of each lineage restores from the v2 copy exactly as from v1."""
    target = Target.from_url(str(tmp_path / "v2"), name="v2", retry=FAST_RETRY)
    moved = Vault.init([target], key=KEY, now=NOW)
    moved.copy(demo_v1, now=NOW)
    for lineage in sorted({info.lineage for info in demo_v1.snapshots()}):
        original = demo_v1.find(f"latest:{lineage}")
        copy = moved.find(f"latest:{lineage}")
        demo_v1.restore(original, tmp_path / "from-v1" / lineage)
        moved.restore(copy, tmp_path / "from-v2" / lineage)
        paths = [entry.path for entry in demo_v1.manifest(original).files]
        assert tree_state(tmp_path / "from-v2" / lineage, paths) == tree_state(
            tmp_path / "from-v1" / lineage, paths
        )
