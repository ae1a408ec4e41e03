"""Storage faults (latency, resets, timeouts, 5xx, lost replies, truncated and corrupt reads).

Backups, restores, heal and mirror run many seeded rounds against targets wrapped in
`tests.support.faults.FaultyFileSystem`. Each operation must either succeed correctly or fail loudly with a
library error naming a target; afterwards, with the faults off, the repository verifies clean and
restores byte-identical. Wrong bytes are never accepted.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from ctfy_vault.crypto import RawKey
from ctfy_vault.exceptions import (
    StorageError,
    VaultError,
)
from ctfy_vault.mirror import mirror
from ctfy_vault.retention import Policy
from ctfy_vault.storage import Target
from ctfy_vault.testing import memory_target
from ctfy_vault.vault import Vault
from ctfy_vault.writer import StreamSource
from tests.support.faults import (
    ANONYMOUS,
    KINDS,
    FaultPlan,
    FaultyFileSystem,
    assert_loud,
    faulty_local_target,
    faulty_memory_target,
    payload,
    total,
)
from tests.support.writer_strategies import NOW, SMALL

#: Format 2 packs of a few chunks, so a backup writes several and faults land between them.
PACKS = 4096
#: Where a repository's sealed data lives, in either format.
DATA_PREFIXES = ("objects/", "packs/", "index/", "snapshots/")

KEY = RawKey(bytes(range(32)))
ROUNDS = int(os.environ.get("CTFY_FAULT_ROUNDS", "24"))

#: Faults injected by every test of this module, by kind (printed at the end with ``-s``).
TALLY: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_tally() -> Iterator[None]:
    """Print how many faults this module injected, by kind."""
    yield
    print(
        f"\nfaults injected in test_faults.py: {sum(TALLY.values())} {dict(sorted(TALLY.items()))}"
    )
    print(f"loud failures naming no target: {dict(ANONYMOUS)}")


def stormy(seed: int, *, corrupt: bool = True) -> FaultPlan:
    """A plan where about one call in four goes wrong somehow."""
    return FaultPlan(
        seed=seed,
        latency=0.1,
        max_latency=0.001,
        reset=0.04,
        timeout=0.03,
        slowdown=0.03,
        server_error=0.02,
        lost_reply=0.05,
        truncate=0.04 if corrupt else 0.0,
        corrupt=0.05 if corrupt else 0.0,
    )


def write_tree(root: Path, seed: int) -> dict[str, bytes]:
    """A small tree of files under ``root``; returns their contents by relative path."""
    rng = random.Random(seed)  # noqa: S311 - test data
    files = {
        "db.sql": payload(seed),
        "docs/a.txt": b"alpha " * rng.randrange(10, 400),
        "docs/b.bin": rng.randbytes(rng.randrange(0, 3000)),
        "docs/deep/c.txt": payload(seed + 1)[:5000],
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def tree(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` by relative path."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def calm(plans: Sequence[FaultPlan]) -> None:
    """Turn every fault off and add what was injected to the module's tally."""
    for plan in plans:
        plan.enabled = False
    TALLY.update(total(plans))


class TestBackupAndRestore:
    def test_seeded_rounds_succeed_exactly_or_fail_loudly(self, tmp_path: Path) -> None:
        """Under faults a backup and a restore are exact or raise a library error naming a target."""
        outcomes: Counter[str] = Counter()
        for seed in range(ROUNDS):
            plans = [stormy(seed * 10 + n) for n in range(3)]
            for plan in plans:
                plan.enabled = False
            targets = [faulty_memory_target(plan, f"r{seed}-{n}") for n, plan in enumerate(plans)]
            vault = Vault.init(targets, key=KEY, now=NOW, chunker=SMALL, pack_size=PACKS)
            src = tmp_path / f"src{seed}"
            files = write_tree(src, seed)
            for plan in plans:
                plan.enabled = True
            info = None
            try:
                info = vault.backup([src], lineage="files", host="h", now=NOW)
                outcomes["backup ok"] += 1
            except VaultError as err:
                assert_loud(err, targets)
                outcomes["backup loud"] += 1
            dest = tmp_path / f"out{seed}"
            if info is not None:
                try:
                    vault.restore(info, dest)
                    assert tree(dest / src.name) == files
                    outcomes["restore ok"] += 1
                except VaultError as err:
                    assert_loud(err, targets)
                    outcomes["restore loud"] += 1
            calm(plans)
            # With the storm over: repair, then everything must be whole and exact.
            vault.heal()
            report = vault.verify(read_data=True)
            assert report.ok, report.problems
            reopened = Vault.open(targets, key=KEY)
            for snapshot in reopened.snapshots():
                again = tmp_path / f"again{seed}-{snapshot.snapshot_id}"
                reopened.restore(snapshot, again)
                assert tree(again / src.name) == files
        assert outcomes["backup ok"] > 0, outcomes
        assert outcomes["restore ok"] > 0, outcomes

    def test_restore_from_stores_that_lie_on_every_read(self, tmp_path: Path) -> None:
        """Corrupt and truncated reads are refused chunk by chunk; restore is exact or loud."""
        data = payload(7)
        exact = loud = 0
        for seed in range(ROUNDS):
            plans = [FaultPlan(seed=seed * 7 + n, truncate=0.04, corrupt=0.06) for n in range(2)]
            for plan in plans:
                plan.enabled = False
            targets = [faulty_memory_target(plan, f"liar{n}") for n, plan in enumerate(plans)]
            vault = Vault.init(targets, key=KEY, now=NOW, chunker=SMALL, pack_size=PACKS)
            info = vault.backup(
                StreamSource(name="db.sql", stream=io.BytesIO(data)),
                lineage="db",
                host="h",
                now=NOW,
            )
            for plan in plans:
                plan.enabled = True
                plan.operations = frozenset({"read"})
            try:
                got = vault.open_file(info, "db.sql").read()
            except VaultError as err:
                assert_loud(err, targets)
                loud += 1
            else:
                assert got == data
                exact += 1
            calm(plans)
            assert vault.verify(read_data=True).ok
        assert exact > 0, (exact, loud)
        assert loud > 0, (exact, loud)

    def test_backup_into_a_local_folder_under_faults(self, tmp_path: Path) -> None:
        """The wrapper over local disk: exact or loud, and whole again once the faults stop."""
        data = payload(3)
        for seed in range(ROUNDS // 3):
            plans = [stormy(100 + seed), stormy(200 + seed)]
            for plan in plans:
                plan.enabled = False
            roots = [tmp_path / f"local{seed}-{n}" for n in range(2)]
            for root in roots:
                root.mkdir()
            targets = [
                faulty_local_target(plan, str(root), f"local{n}")
                for n, (plan, root) in enumerate(zip(plans, roots, strict=True))
            ]
            vault = Vault.init(targets, key=KEY, now=NOW, chunker=SMALL, pack_size=PACKS)
            for plan in plans:
                plan.enabled = True
            try:
                info = vault.backup(
                    StreamSource(name="db.sql", stream=io.BytesIO(data)),
                    lineage="db",
                    host="h",
                    now=NOW,
                )
                assert vault.open_file(info, "db.sql").read() == data
            except VaultError as err:
                assert_loud(err, targets)
            calm(plans)
            vault.heal()
            assert vault.verify(read_data=True).ok
            for snapshot in vault.snapshots():
                assert vault.open_file(snapshot, "db.sql").read() == data

    def test_backup_never_forks_the_chain_when_the_head_reads_damaged(self) -> None:
        """A later backup names its real predecessor, or fails; the chain never forks."""
        forks = 0
        for seed in range(20):
            plans = [
                FaultPlan(
                    seed=seed * 3 + n,
                    corrupt=0.7,
                    operations=frozenset({"read"}),
                    where=("snapshots/",),
                )
                for n in range(2)
            ]
            for plan in plans:
                plan.enabled = False
            targets = [faulty_memory_target(plan, f"chain{n}") for n, plan in enumerate(plans)]
            vault = Vault.init(targets, key=KEY, now=NOW, chunker=SMALL, pack_size=PACKS)
            vault.backup(
                StreamSource(name="db.sql", stream=io.BytesIO(b"one" * 100)),
                lineage="db",
                host="h",
                now=NOW,
            )
            vault = Vault.open(targets, key=KEY)
            for plan in plans:
                plan.enabled = True
            with contextlib.suppress(VaultError):
                vault.backup(
                    StreamSource(name="db.sql", stream=io.BytesIO(b"two" * 100)),
                    lineage="db",
                    host="h",
                    now=NOW + timedelta(hours=1),
                )
            calm(plans)
            report = Vault.open(targets, key=KEY).verify()
            forks += any(problem.kind == "chain" for problem in report.problems)
        assert forks == 0


class TestHeal:
    def test_heal_under_faults_copies_only_verified_bytes(self) -> None:
        """Heal from a faulty donor into faulty targets: complete or loud, never a bad copy.

        Reads of chunks and manifests are also damaged (heal authenticates those); the config
        and key slots, which heal cannot authenticate, see every other fault (see the xfail
        tests below).
        """
        data = payload(11)
        healed = loud = 0
        for seed in range(ROUNDS):
            plans = [stormy(300 + seed * 3 + n, corrupt=False) for n in range(3)]
            damage = [
                FaultPlan(
                    seed=seed,
                    truncate=0.004,
                    corrupt=0.008,
                    where=("objects/", "packs/", "index/", "snapshots/"),
                )
                for _ in range(3)
            ]
            for plan in (*plans, *damage):
                plan.enabled = False
            targets = [
                faulty_memory_target(plan, f"heal{n}", inner=below)
                for n, (plan, below) in enumerate(zip(plans, damage, strict=True))
            ]
            first = Vault.init(targets[:1], key=KEY, now=NOW, chunker=SMALL, pack_size=PACKS)
            first.backup(
                StreamSource(name="db.sql", stream=io.BytesIO(data)),
                lineage="db",
                host="h",
                now=NOW,
            )
            vault = Vault.open(targets, key=KEY)  # two empty targets, listed as degraded
            for plan in (*plans, *damage):
                plan.enabled = True
            try:
                vault.heal()
                healed += 1
            except VaultError as err:
                assert_loud(err, targets)
                loud += 1
            calm([*plans, *damage])
            # Whatever heal wrote must be intact: a second heal completes and all verifies.
            vault = Vault.open(targets, key=KEY)
            vault.heal()
            assert vault.verify(read_data=True).ok
            for target in targets:
                alone = Vault.open([target], key=KEY)
                (snapshot,) = alone.snapshots()
                assert alone.open_file(snapshot, "db.sql").read() == data
        assert healed > 0, (healed, loud)

    def test_heal_never_plants_a_key_slot_damaged_in_transit(self) -> None:
        """A key slot read damaged in transit is not written to the target being healed.

        Key slots cannot be authenticated without their user's key; heal takes a copy only when
        two reads agree. (Damage at rest on the only holder cannot be told from a good copy.)
        """
        plan = FaultPlan(seed=0)
        donor = SwappingTarget.make(plan, transient=True)
        vault = Vault.init([donor], key=KEY, now=NOW, chunker=SMALL, pack_size=PACKS)
        empty = memory_target()
        both = Vault.open([donor, empty], key=KEY)
        plan.where = ("keys/",)
        with contextlib.suppress(VaultError):
            both.heal()
        calm([plan])
        assert Vault.open([empty], key=KEY).repo_id == vault.repo_id

    def test_heal_never_plants_a_config_damaged_in_transit(self) -> None:
        """A config damaged on the donor (every read) is not written to the target being healed.

        The vault compares each copy with the config it opened.
        """
        plan = FaultPlan(seed=0)
        donor = SwappingTarget.make(plan)
        Vault.init([donor], key=KEY, now=NOW, chunker=SMALL, pack_size=PACKS)
        empty = memory_target()
        both = Vault.open([donor, empty], key=KEY)
        plan.where = ("config",)
        with contextlib.suppress(VaultError):
            both.heal()
        calm([plan])
        if empty.exists("config"):
            assert empty.read("config") == donor.read("config")
        Vault.open([donor, empty], key=KEY)


class SwappingFileSystem(FaultyFileSystem):
    """Damages reads so that the document still parses: one character of a JSON value changes.

    ``transient``: only the first read of each object is damaged (a flip in transit); otherwise
    every read is (damage at rest).
    """

    transient = False
    damaged: set[str]

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kw: Any
    ) -> Any:
        """Read; where the plan applies, change one character inside a string or number value."""
        data = bytes(self.inner.cat_file(path, start=start, end=end, **kw))
        plan = self.plan
        if not plan.enabled or plan.where is None or not any(w in path for w in plan.where):
            return data
        if self.transient:
            if path in self.damaged:
                return data  # in transit: the next read of the same object is intact
            self.damaged.add(path)
        document = json.loads(data)
        if "wrapped" in document:
            text = document["wrapped"]
            document["wrapped"] = text[:8] + ("A" if text[8] != "A" else "B") + text[9:]
        else:
            document["chunker"]["min_size"] += 1
        plan.injected["corrupt"] += 1
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode() + b"\n"


class SwappingTarget:
    """Builds a memory target whose reads are damaged by a `SwappingFileSystem`."""

    @staticmethod
    def make(plan: FaultPlan, *, transient: bool = False) -> Target:
        """A fresh target; damage applies to the paths in ``plan.where`` (none at first)."""
        memory = MemoryFileSystem(skip_instance_cache=True)
        memory.store = {}
        memory.pseudo_dirs = [""]
        name = f"swap-{uuid.uuid4().hex[:8]}"
        swapping = SwappingFileSystem(memory, plan)
        swapping.transient = transient
        swapping.damaged = set()
        return Target.from_filesystem(swapping, f"/{name}", name=f"swapping://{name}")


class TestMirror:
    def test_mirror_under_faults_copies_exactly_or_reports_failure(self) -> None:
        """Every replica object after a faulty run equals the source's, or its copy is reported."""
        rng = random.Random(5)  # noqa: S311 - test data
        documents = {f"docs/{n:03d}.pdf": rng.randbytes(rng.randrange(0, 4000)) for n in range(40)}
        runs = failed = 0
        for seed in range(ROUNDS // 2):
            source_plan = stormy(400 + seed, corrupt=False)
            source_plan.enabled = False
            source = faulty_memory_target(source_plan, "docs")
            for key, data in documents.items():
                source.write(key, data)
            replica_plans = [stormy(500 + seed * 2 + n) for n in range(2)]
            replicas = [faulty_memory_target(p, f"replica{n}") for n, p in enumerate(replica_plans)]
            plans = [source_plan, *replica_plans]
            source_plan.enabled = True
            try:
                report = mirror(source, replicas, workers=4)
            except VaultError as err:
                assert_loud(err, [source, *replicas])
                failed += 1
            else:
                runs += 1
                bad = {(o.key, o.replica) for o in report.failed}
                failed += len(bad)
                for outcome in report.failed:
                    assert outcome.error
                calm(plans)
                for replica in replicas:
                    for key in replica.list("docs"):
                        if (key, replica.name) not in bad:
                            assert replica.read(key) == documents[key], (key, replica.name)
            calm(plans)
            again = mirror(source, replicas, workers=4)
            assert again.ok, again.failed
            for replica in replicas:
                assert {key: replica.read(key) for key in replica.list("docs")} == documents
        assert runs > 0, (runs, failed)

    @pytest.mark.xfail(
        strict=True,
        reason="known limit, reported to the lead: a byte flipped while reading a non-S3 source "
        "is copied and then 'verified' against the same damaged read (no source checksum)",
    )
    def test_mirror_refuses_a_corrupt_read_of_a_memory_source(self) -> None:
        """A document damaged in transit from the source never lands on a replica unreported."""
        plan = FaultPlan(seed=1, corrupt=1.0, operations=frozenset({"read"}))
        plan.enabled = False
        source = faulty_memory_target(plan, "docs")
        source.write("docs/a.pdf", b"%PDF-1.7 contract" * 100)
        replica = memory_target()
        plan.enabled = True
        report = mirror(source, [replica], workers=1)
        calm([plan])
        if report.ok:
            assert replica.read("docs/a.pdf") == source.read("docs/a.pdf")


class TestListingFaults:
    def test_a_failed_listing_is_an_error_not_an_empty_folder(self) -> None:
        """A listing request that fails raises, rather than reporting no objects."""
        plan = FaultPlan(seed=2, reset=1.0, operations=frozenset({"list"}))
        target = faulty_memory_target(plan)
        plan.enabled = False
        target.write("snapshots/x", b"1")
        plan.enabled = True
        with pytest.raises(StorageError) as caught:
            list(target.list("snapshots"))
        assert caught.value.target == target.name
        calm([plan])
        assert list(target.list("snapshots")) == ["snapshots/x"]

    def test_prune_deletes_no_chunk_when_snapshots_cannot_be_listed(self) -> None:
        """Regression: a transient error listing ``snapshots/`` once made every chunk look unused."""
        plan = FaultPlan(seed=3)
        target = faulty_memory_target(plan)
        vault = Vault.init([target], key=KEY, now=NOW, chunker=SMALL, pack_size=PACKS)
        data = payload(1)
        info = vault.backup(
            StreamSource(name="db.sql", stream=io.BytesIO(data)), lineage="db", host="h", now=NOW
        )
        chunks = _stored_data(target)
        plan.reset = 1.0
        plan.operations = frozenset({"list"})
        plan.where = ("snapshots",)
        for day in range(2):
            try:
                report = vault.prune(
                    Policy(last=1), now=NOW + timedelta(days=day), grace=timedelta(0)
                )
            except VaultError as err:
                assert_loud(err, [target])
            else:
                assert report.chunks_deleted == 0
        calm([plan])
        assert _stored_data(target) == chunks
        assert vault.open_file(info, "db.sql").read() == data
        assert vault.verify(read_data=True).ok


def _stored_data(target: Target) -> list[str]:
    """The keys of every chunk, pack and index object on ``target``."""
    return sorted(key for prefix in ("objects", "packs", "index") for key in target.list(prefix))


def test_every_fault_kind_was_injected() -> None:
    """The rounds above really exercised every kind of fault (run after them, in file order)."""
    assert set(KINDS) <= set(TALLY), TALLY
