"""The vault facade: init and open, backup with the lineage's chain, listing, reading files."""

from __future__ import annotations

import io
import json
import os
import shutil
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from ctfy_vault.crypto import Cipher, Passphrase, RawKey, ScryptParams
from ctfy_vault.exceptions import (
    ConfigurationError,
    DegradedTargetError,
    FormatError,
    IntegrityError,
    ObjectExistsError,
    ObjectNotFoundError,
    TargetsFailedError,
    VaultError,
)
from ctfy_vault.manifest import FileType, verify_chain
from ctfy_vault.repository import DEFAULT_PACK_SIZE, list_key_slots
from ctfy_vault.retention import Policy
from ctfy_vault.storage import Target
from ctfy_vault.vault import CONFIG_KEY, REPOSITORY_FORMAT, RepoConfig, SnapshotInfo, Vault
from ctfy_vault.writer import StreamSource
from tests.support.servers import S3Endpoint, make_bucket
from tests.support.vaults import KEY, new_vault, sample_tree, stream
from tests.support.writer_strategies import FAST_RETRY, NOW, SMALL, contents, memory_target

CHEAP = ScryptParams(n=2**8, r=8, p=1)  # tests only: real slots use the default cost


class TestInitOpen:
    def test_init_writes_config_and_slot_on_every_target(self) -> None:
        """Every target holds the same config (format, id, chunker, cipher) and the key slot."""
        vault = new_vault(3)
        documents = {target.read(CONFIG_KEY) for target in vault.targets}
        assert len(documents) == 1
        config = json.loads(documents.pop())
        assert config == {
            "format": REPOSITORY_FORMAT,
            "repo_id": vault.repo_id.hex(),
            "chunker": SMALL.to_config(),
            "cipher": "aes-256-gcm",
            "packs": {"target_size": DEFAULT_PACK_SIZE},
        }
        slots = [list_key_slots(target) for target in vault.targets]
        assert len(slots[0]) == 1
        assert slots[0] == slots[1] == slots[2]

    def test_open_with_the_key_reads_the_repository(self) -> None:
        """Opening with the same key gives the same repository and sees its snapshots."""
        vault = new_vault()
        info = vault.backup(stream(b"x" * 100), lineage="db", host="h", now=NOW)
        again = Vault.open(vault.targets, key=KEY)
        assert again.repo_id == vault.repo_id
        assert again.config == vault.config
        assert [s.name for s in again.snapshots()] == [info.name]

    def test_passphrase_repository_opens_with_its_passphrase(self) -> None:
        """A passphrase-keyed repository opens with the passphrase and a ChaCha20 cipher sticks."""
        targets = [memory_target(), memory_target()]
        key = Passphrase("correct horse", scrypt=CHEAP)
        Vault.init(targets, key=key, now=NOW, chunker=SMALL, cipher=Cipher.CHACHA20_POLY1305)
        vault = Vault.open(targets, key=Passphrase("correct horse"))
        assert vault.config.cipher is Cipher.CHACHA20_POLY1305

    def test_wrong_key_is_one_opaque_integrity_error(self) -> None:
        """A wrong raw key or passphrase fails with IntegrityError saying nothing about the key."""
        vault = new_vault()
        with pytest.raises(IntegrityError) as caught:
            Vault.open(vault.targets, key=RawKey(b"w" * 32))
        assert "w" * 8 not in str(caught.value)
        with pytest.raises(IntegrityError) as caught:
            Vault.open(vault.targets, key=Passphrase("guess-me", scrypt=CHEAP))
        assert "guess-me" not in str(caught.value)

    def test_targets_of_different_repositories_are_named(self) -> None:
        """Opening targets from two repositories names which target holds which repository."""
        one = new_vault(2, factory=lambda n: memory_target("one" + n))
        two = new_vault(1, factory=lambda n: memory_target("two" + n))
        mixed = [*one.targets, *two.targets]
        with pytest.raises(ConfigurationError) as caught:
            Vault.open(mixed, key=KEY)
        text = str(caught.value)
        assert "different repositories" in text
        assert one.repo_id.hex()[:12] in text
        assert two.repo_id.hex()[:12] in text
        for target in mixed:
            assert target.name in text

    def test_target_without_config_opens_degraded_and_heals(self) -> None:
        """A target without the repository is listed as degraded; heal copies it in."""
        vault = new_vault()
        empty = memory_target("empty")
        reopened = Vault.open([*vault.targets, empty], key=KEY)
        assert set(reopened.degraded) == {empty.name}
        assert isinstance(reopened.degraded[empty.name], ObjectNotFoundError)
        reopened.heal()
        healed = Vault.open([*vault.targets, empty], key=KEY)
        assert healed.degraded == {}
        assert healed.verify().ok

    def test_no_target_with_config_fails_the_open(self) -> None:
        """When no target holds the repository the open fails, naming every target."""
        empty = [memory_target("empty"), memory_target("void")]
        with pytest.raises(TargetsFailedError) as caught:
            Vault.open(empty, key=KEY)
        for target in empty:
            assert target.name in str(caught.value)
        assert set(caught.value.outcomes) == {t.name for t in empty}
        assert "init" in str(caught.value)
        assert "URL" in str(caught.value)

    def test_init_refuses_an_existing_repository(self) -> None:
        """Init over a target that already holds a repository refuses and writes nothing."""
        vault = new_vault()
        fresh = memory_target("fresh")
        with pytest.raises(ObjectExistsError):
            Vault.init([fresh, vault.targets[0]], key=KEY, now=NOW)
        assert list(fresh.list("")) == []

    def test_unreadable_config_is_a_format_error(self) -> None:
        """A config of another format version or not JSON is refused as a FormatError."""
        with pytest.raises(FormatError):
            RepoConfig.from_json(b'{"format": 2}')
        with pytest.raises(FormatError):
            RepoConfig.from_json(b"not json")
        config = RepoConfig(repo_id=bytes(16), chunker=SMALL)
        assert RepoConfig.from_json(config.to_json()) == config

    def test_bad_targets_are_refused(self) -> None:
        """No targets, duplicate names and a plaintext cipher are configuration errors."""
        with pytest.raises(ConfigurationError):
            Vault.init([], key=KEY, now=NOW)
        target = memory_target()
        with pytest.raises(ConfigurationError):
            Vault.init([target, target], key=KEY, now=NOW)
        with pytest.raises(ConfigurationError):
            Vault.init([memory_target()], key=KEY, now=NOW, cipher=Cipher.NONE)

    def test_repr_shows_no_secret(self) -> None:
        """The vault's repr names targets but never keys."""
        vault = new_vault()
        text = repr(vault)
        assert "Vault(" in text
        assert "k" * 32 not in text
        assert "sealer" not in text.lower()


class TestBackup:
    def test_backup_returns_snapshot_info_and_outcomes(self) -> None:
        """A backup reports its snapshot and that every target committed."""
        vault = new_vault(3)
        info = vault.backup(stream(b"row\n" * 1000), lineage="db", host="h", now=NOW, tags=["x"])
        assert info.lineage == "db"
        assert info.tags == ("x",)
        assert info.size == 4000
        assert info.previous is None
        assert [o.committed for o in info.outcomes] == [True, True, True]

    def test_second_backup_chains_and_skips_unchanged_files(self, tmp_path: Path) -> None:
        """The next backup of a lineage names the previous hash and does not re-read old files."""
        vault = new_vault()
        src = sample_tree(tmp_path)
        first = vault.backup([src], lineage="files", host="h", now=NOW)
        second = vault.backup([src], lineage="files", host="h", now=NOW + timedelta(days=1))
        assert second.previous == first.hash
        assert first.bytes_read > 0
        assert second.bytes_read == 0
        assert second.chunks_sealed == 0

    def test_lineages_chain_separately(self) -> None:
        """Each lineage's chain names only its own predecessor."""
        vault = new_vault()
        db1 = vault.backup(stream(b"1"), lineage="db", host="h", now=NOW)
        files1 = vault.backup(stream(b"2"), lineage="files", host="h", now=NOW + timedelta(hours=1))
        db2 = vault.backup(stream(b"3"), lineage="db", host="h", now=NOW + timedelta(hours=2))
        assert files1.previous is None
        assert db2.previous == db1.hash
        chain = verify_chain([vault.manifest(s) for s in vault.snapshots()])
        assert chain.ok

    def test_a_new_vault_instance_continues_the_chain(self) -> None:
        """Another process opening the repository continues the lineage's chain."""
        vault = new_vault()
        first = vault.backup(stream(b"a"), lineage="db", host="h", now=NOW)
        other = Vault.open(vault.targets, key=KEY)
        second = other.backup(stream(b"b"), lineage="db", host="h", now=NOW + timedelta(days=1))
        assert second.previous == first.hash

    def test_a_missing_source_is_refused(self, tmp_path: Path) -> None:
        """A source path that does not exist is a configuration error; nothing is committed."""
        vault = new_vault()
        with pytest.raises(ConfigurationError):
            vault.backup([tmp_path / "nope"], lineage="db", host="h", now=NOW)
        assert vault.snapshots() == []


def local_target(root: Path, name: str) -> Target:
    """A local folder target named ``name`` under ``root``."""
    return Target.from_url(str(root / name), name=name, retry=FAST_RETRY)


def stored(target: Target) -> dict[str, bytes]:
    """The repository objects a target holds (lock files and sweep marks aside)."""
    return {k: v for k, v in contents(target).items() if not k.startswith("locks/")}


class _WipeWhenRead(io.RawIOBase):
    """A stream that wipes a target's config once the backup has read it to the end."""

    def __init__(self, data: bytes, victim: Target) -> None:
        self._data = io.BytesIO(data)
        self._victim = victim

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = self._data.readinto(buffer)
        if not count and self._victim.exists(CONFIG_KEY):
            self._victim.delete(CONFIG_KEY)
        return count


class TestDegraded:
    def test_a_wiped_local_target_gets_nothing_then_heal_restores_it(self, tmp_path: Path) -> None:
        """A deleted target folder: backup fails there naming heal, writes nothing; heal restores it."""
        a, b = local_target(tmp_path, "a"), local_target(tmp_path, "b")
        Vault.init([a, b], key=KEY, now=NOW, chunker=SMALL)
        first = Vault.open([a, b], key=KEY).backup(stream(b"v1" * 800), lineage="db", now=NOW)
        shutil.rmtree(tmp_path / "b")
        vault = Vault.open([a, b], key=KEY)
        assert set(vault.degraded) == {"b"}
        with pytest.raises(TargetsFailedError) as caught:
            vault.backup(stream(b"v2" * 800), lineage="db", now=NOW + timedelta(days=1))
        outcomes = caught.value.outcomes
        assert outcomes["a"] is None
        refused = outcomes["b"]
        assert isinstance(refused, DegradedTargetError)
        assert isinstance(refused.__cause__, ObjectNotFoundError)
        assert "holds no repository config" in str(refused)
        assert "heal" in str(refused)
        assert not (tmp_path / "b").exists()  # not one object, not even the folder
        assert len(vault.snapshots()) == 2  # committed on a
        vault.heal()
        assert vault.degraded == {}
        assert stored(b) == stored(a)
        third = vault.backup(stream(b"v3" * 800), lineage="db", now=NOW + timedelta(days=2))
        assert [(o.target, o.committed) for o in third.outcomes] == [("a", True), ("b", True)]
        alone = Vault.open([b], key=KEY)  # b holds the whole repository again, old snapshots too
        assert first.name in {s.name for s in alone.snapshots()}
        assert len(alone.snapshots()) == 3
        assert alone.verify(read_data=True).ok

    def test_a_degraded_target_never_counts_toward_the_quorum(self) -> None:
        """With require=2 of three and one empty target, two commit; with require=2 of two, fail."""
        vault = new_vault(2)
        empty = memory_target("empty")
        three = Vault.open([*vault.targets, empty], key=KEY)
        info = three.backup(stream(b"x" * 3000), lineage="db", now=NOW, require=2)
        assert [o.committed for o in info.outcomes] == [True, True, False]
        assert isinstance(info.outcomes[2].error, DegradedTargetError)
        assert info.outcomes[2].bytes_uploaded == 0
        assert list(empty.list("")) == []
        two = Vault.open([vault.targets[0], empty], key=KEY)
        with pytest.raises(TargetsFailedError) as caught:
            two.backup(stream(b"y" * 3000), lineage="db", now=NOW, require=2)
        assert caught.value.outcomes[vault.targets[0].name] is None
        assert isinstance(caught.value.outcomes[empty.name], DegradedTargetError)
        assert list(empty.list("")) == []
        one = two.backup(stream(b"z" * 3000), lineage="db", now=NOW, require=1)
        assert [o.committed for o in one.outcomes] == [True, False]

    def test_a_target_without_key_slots_is_degraded(self) -> None:
        """Config present but no key slot on one target: degraded, nothing written; heal fixes it."""
        vault = new_vault(2)
        keyless = vault.targets[1]
        for key in list(keyless.list("keys")):
            keyless.delete(key)
        reopened = Vault.open(vault.targets, key=KEY)
        assert set(reopened.degraded) == {keyless.name}
        before = stored(keyless)
        with pytest.raises(TargetsFailedError) as caught:
            reopened.backup(stream(b"k" * 3000), lineage="db", now=NOW)
        refused = caught.value.outcomes[keyless.name]
        assert isinstance(refused, DegradedTargetError)
        assert "no key slot" in str(refused)
        assert stored(keyless) == before
        reopened.heal()
        assert len(list_key_slots(keyless)) == 1
        info = reopened.backup(stream(b"k" * 3000), lineage="db", now=NOW + timedelta(hours=1))
        assert all(o.committed for o in info.outcomes)
        assert Vault.open([keyless], key=KEY).verify().ok

    def test_a_damaged_config_makes_the_target_degraded_until_repair(self) -> None:
        """A config that does not parse: degraded, nothing written, the error names repair."""
        vault = new_vault(2)
        damaged = vault.targets[1]
        damaged.delete(CONFIG_KEY)
        damaged.write(CONFIG_KEY, b"{not json")
        reopened = Vault.open(vault.targets, key=KEY)
        with pytest.raises(TargetsFailedError) as caught:
            reopened.backup(stream(b"d" * 3000), lineage="db", now=NOW)
        refused = caught.value.outcomes[damaged.name]
        assert isinstance(refused, DegradedTargetError)
        assert isinstance(refused.__cause__, FormatError)
        assert "repair" in str(refused)
        assert [k for k in damaged.list("") if k.startswith(("objects/", "snapshots/"))] == []
        reopened.heal(repair=True)
        info = reopened.backup(stream(b"d" * 3000), lineage="db", now=NOW + timedelta(hours=1))
        assert all(o.committed for o in info.outcomes)

    def test_a_target_wiped_during_the_backup_does_not_commit(self) -> None:
        """The config is checked again right before the manifest: wiped meanwhile, no commit there."""
        vault = new_vault(2)
        keep, victim = vault.targets
        source = StreamSource(
            name="db.sql", stream=io.BufferedReader(_WipeWhenRead(b"w" * 5000, victim))
        )
        with pytest.raises(TargetsFailedError) as caught:
            vault.backup(source, lineage="db", now=NOW)
        assert caught.value.outcomes[keep.name] is None
        refused = caught.value.outcomes[victim.name]
        assert isinstance(refused, DegradedTargetError)
        assert list(victim.list("snapshots")) == []
        assert set(vault.degraded) == set()  # the degraded list is refreshed by the next write
        with pytest.raises(TargetsFailedError):
            vault.backup(stream(b"again"), lineage="db", now=NOW + timedelta(hours=1))
        assert set(vault.degraded) == {victim.name}

    def test_every_target_wiped_after_open_refuses_the_backup(self) -> None:
        """No target holds the repository any more: the backup fails first, writing nothing."""
        vault = new_vault(2)
        for target in vault.targets:
            for key in list(target.list("")):
                target.delete(key)
        with pytest.raises(TargetsFailedError) as caught:
            vault.backup(stream(b"x" * 3000), lineage="db", now=NOW)
        assert "init" in str(caught.value)
        assert all(isinstance(e, DegradedTargetError) for e in caught.value.outcomes.values())
        for target in vault.targets:
            assert list(target.list("")) == []

    def test_prune_writes_nothing_to_a_degraded_target(self) -> None:
        """Prune forgets and sweeps on the healthy target; the empty one gets no lock, record or mark."""
        vault = new_vault(1)
        for day in range(3):
            vault.backup(stream(bytes([day]) * 3000), lineage="db", now=NOW + timedelta(days=day))
        empty = memory_target("empty")
        both = Vault.open([*vault.targets, empty], key=KEY)
        report = both.prune(Policy(last=1), now=NOW + timedelta(days=3), grace=timedelta(0))
        assert len(report.forgotten) == 2
        assert report.chunks_deleted > 0
        assert set(report.errors) == {empty.name}
        assert isinstance(report.errors[empty.name], DegradedTargetError)
        assert list(empty.list("")) == []
        assert both.prune(Policy(last=1), now=NOW, dry_run=True).errors == {}
        both.heal()
        assert both.prune(Policy(last=1), now=NOW + timedelta(days=4)).ok
        assert stored(empty) == stored(vault.targets[0])

    def test_key_add_writes_nothing_to_a_degraded_target(self) -> None:
        """A new key slot goes to the healthy targets; the empty one is reported, heal copies it."""
        vault = new_vault(1)
        empty = memory_target("empty")
        both = Vault.open([*vault.targets, empty], key=KEY)
        other = RawKey(b"o" * 32)
        with pytest.raises(TargetsFailedError) as caught:
            both.add_key(other, now=NOW)
        assert caught.value.outcomes[vault.targets[0].name] is None
        assert isinstance(caught.value.outcomes[empty.name], DegradedTargetError)
        assert list(empty.list("")) == []
        assert len(both.keys()) == 2  # listed from the healthy target
        both.heal()
        assert Vault.open([empty], key=other).repo_id == vault.repo_id


class TestReading:
    def test_snapshots_newest_first_and_by_lineage(self) -> None:
        """Snapshots list newest first; a lineage filter keeps only that lineage."""
        vault = new_vault()
        infos = [
            vault.backup(stream(bytes([n])), lineage=lin, host="h", now=NOW + timedelta(hours=n))
            for n, lin in enumerate(["db", "files", "db"])
        ]
        assert [s.name for s in vault.snapshots()] == [i.name for i in reversed(infos)]
        assert [s.name for s in vault.snapshots("db")] == [infos[2].name, infos[0].name]
        listed = vault.snapshots("files")[0]
        assert isinstance(listed, SnapshotInfo)
        assert listed.hash == infos[1].hash

    def test_snapshots_union_over_targets(self) -> None:
        """A snapshot only one target holds is still listed; a target that fails is skipped."""
        vault = new_vault()
        info = vault.backup(stream(b"only"), lineage="db", host="h", now=NOW)
        vault.targets[0].delete(f"snapshots/{info.name}")
        assert [s.name for s in vault.snapshots()] == [info.name]

    def test_ls_lists_entries_under_a_path(self, tmp_path: Path) -> None:
        """Listing shows every entry, or those at and under one folder, with their types."""
        vault = new_vault()
        info = vault.backup([sample_tree(tmp_path)], lineage="files", host="h", now=NOW)
        everything = vault.ls(info)
        assert [e.path for e in everything] == [
            "src",
            "src/a.txt",
            "src/link",
            "src/sub",
            "src/sub/b.bin",
        ]
        assert [e.path for e in vault.ls(info.name, "src/sub")] == ["src/sub", "src/sub/b.bin"]
        assert vault.ls(info.snapshot_id, "src/link")[0].type is FileType.SYMLINK
        with pytest.raises(ConfigurationError):
            vault.open_file(info, "src/sub")
        with pytest.raises(ObjectNotFoundError):
            vault.ls(info, "src/none")
        with pytest.raises(ObjectNotFoundError):
            vault.ls("no-such-snapshot")

    def test_open_file_streams_the_content(self) -> None:
        """open_file gives a readable stream of the file's exact bytes, in any read sizes."""
        vault = new_vault()
        data = os.urandom(20_000)
        info = vault.backup(stream(data, "dumps/db.sql"), lineage="db", host="h", now=NOW)
        with vault.open_file(info, "dumps/db.sql") as handle:
            head = handle.read(7)
            rest = handle.read()
        assert head + rest == data
        with pytest.raises(ObjectNotFoundError):
            vault.open_file(info, "dumps/none.sql")

    def test_errors_are_vault_errors(self) -> None:
        """Every refusal the facade raises is a VaultError."""
        vault = new_vault()
        with pytest.raises(VaultError):
            vault.ls("missing")


class TestMoto:
    def test_cycle_on_s3_and_memory(self, moto_s3: S3Endpoint, tmp_path: Path) -> None:
        """Init, two backups, open, restore and verify over an S3 target and a memory target."""
        bucket = make_bucket(moto_s3, f"vault-{uuid.uuid4().hex[:12]}")
        s3 = Target.from_url(
            f"s3://{bucket}/repo",
            name="s3",
            endpoint_url=moto_s3.endpoint_url,
            key=moto_s3.key,
            secret=moto_s3.secret,
            region=moto_s3.region,
            retry=FAST_RETRY,
        )
        targets = [s3, memory_target("mem")]
        vault = Vault.init(targets, key=KEY, now=NOW, chunker=SMALL)
        src = sample_tree(tmp_path)
        vault.backup([src], lineage="files", host="h", now=NOW)
        (src / "a.txt").write_bytes(b"changed")
        second = vault.backup([src], lineage="files", host="h", now=NOW + timedelta(days=1))
        reopened = Vault.open(targets, key=KEY)
        reopened.restore(second, tmp_path / "out")
        assert (tmp_path / "out" / "src" / "a.txt").read_bytes() == b"changed"
        report = reopened.verify(read_data=True)
        assert report.ok, report.problems

    def test_a_mistyped_s3_prefix_gets_nothing_then_heal_fills_it(
        self, moto_s3: S3Endpoint
    ) -> None:
        """Target b pointed at an empty prefix: degraded, nothing written under it; heal fills it."""
        bucket = make_bucket(moto_s3, f"vault-{uuid.uuid4().hex[:12]}")

        def s3(prefix: str, name: str) -> Target:
            return Target.from_url(
                f"s3://{bucket}/{prefix}",
                name=name,
                endpoint_url=moto_s3.endpoint_url,
                key=moto_s3.key,
                secret=moto_s3.secret,
                region=moto_s3.region,
                retry=FAST_RETRY,
            )

        a, b, typo = s3("repo-a", "a"), s3("repo-b", "b"), s3("repo-bb", "b")
        Vault.init([a, b], key=KEY, now=NOW, chunker=SMALL)
        Vault.open([a, b], key=KEY).backup(stream(b"1" * 3000), lineage="db", now=NOW)
        vault = Vault.open([a, typo], key=KEY)
        with pytest.raises(TargetsFailedError) as caught:
            vault.backup(stream(b"2" * 3000), lineage="db", now=NOW + timedelta(days=1))
        assert caught.value.outcomes["a"] is None
        refused = caught.value.outcomes["b"]
        assert isinstance(refused, DegradedTargetError)
        assert "wrong prefix" in str(refused)
        assert list(typo.list("")) == []
        vault.heal()
        assert stored(typo) == stored(a)
        info = vault.backup(stream(b"3" * 3000), lineage="db", now=NOW + timedelta(days=2))
        assert all(o.committed for o in info.outcomes)
        assert len(Vault.open([typo], key=KEY).snapshots()) == 3


class TestForget:
    def daily(self, vault: Vault, lineage: str, days: int, *, tagged: int | None = None) -> None:
        """One small snapshot of ``lineage`` per day for ``days`` days."""
        for day in range(days):
            tags = ["keep"] if day == tagged else []
            when = NOW + timedelta(days=day)
            vault.backup(stream(bytes([day])), lineage=lineage, host="h", now=when, tags=tags)

    def test_plan_per_lineage_with_reasons(self) -> None:
        """A dry run plans each lineage on its own snapshots, newest first, with reasons."""
        vault = new_vault()
        self.daily(vault, "db", 5)
        self.daily(vault, "files", 2)
        plans = vault.forget(Policy(last=3))
        assert list(plans) == ["db", "files"]
        db = plans["db"]
        assert [s.created for s in db.keep] == [NOW + timedelta(days=d) for d in (4, 3, 2)]
        assert [s.created for s in db.forget] == [NOW + timedelta(days=d) for d in (1, 0)]
        assert all(s.lineage == "db" for s in (*db.keep, *db.forget))
        assert str(db.reasons[db.keep[0]][0]).startswith("last")
        assert len(plans["files"].keep) == 2
        assert plans["files"].forget == ()

    def test_policy_per_lineage_and_one_lineage(self) -> None:
        """A mapping gives each lineage its own policy; lineage= plans only that one."""
        vault = new_vault()
        self.daily(vault, "db", 4)
        self.daily(vault, "full-server", 4)
        plans = vault.forget({"db": Policy(last=1), "full-server": Policy(last=3)})
        assert (len(plans["db"].keep), len(plans["full-server"].keep)) == (1, 3)
        only = vault.forget({"db": Policy(last=1), "x": Policy(last=1)}, lineage="db")
        assert list(only) == ["db"]
        with pytest.raises(ConfigurationError):
            vault.forget({"db": Policy(last=1)}, lineage="full-server")

    def test_tags_and_now_are_honoured(self) -> None:
        """A tag the policy names keeps a snapshot; snapshots after an explicit now are kept."""
        vault = new_vault()
        self.daily(vault, "db", 6, tagged=0)
        plans = vault.forget(Policy(last=2, tags=frozenset({"keep"})), lineage="db")
        assert NOW in {s.created for s in plans["db"].keep}
        earlier = vault.forget(Policy(last=1), lineage="db", now=NOW + timedelta(days=1))
        assert [s.created for s in earlier["db"].forget] == [NOW]

    def test_dry_run_changes_nothing(self) -> None:
        """A forget dry run never writes or deletes; without dry_run it needs an explicit now."""
        vault = new_vault()
        self.daily(vault, "db", 3)
        before = [sorted(t.list("")) for t in vault.targets]
        vault.forget(Policy(last=1))
        assert [sorted(t.list("")) for t in vault.targets] == before
        with pytest.raises(ConfigurationError):
            vault.forget(Policy(last=1), dry_run=False)
        assert [sorted(t.list("")) for t in vault.targets] == before
