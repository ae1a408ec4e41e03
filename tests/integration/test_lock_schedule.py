"""Object Lock that follows the retention schedule, on a real Ceph RGW with Object Lock.

Nightly backups under `Policy.contractify()` (times in the near future, so every date is a real
future date for the server), each reusing most of the previous night's data:

* every kept snapshot's manifest is locked until exactly the date its reasons need, and the
  pack holding the shared data until the latest of them (a reused pack is extended);
* the bucket owner's own credential can neither delete a locked version nor shorten its date;
* a snapshot the plan forgets while still locked is left by prune, reported with its date, and
  no longer listed; index objects are not locked;
* a folder target beside it, which cannot lock, is reported as such.
"""

from __future__ import annotations

import io
import json
import os
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ctfy_vault.crypto import RawKey
from ctfy_vault.retention import DEFAULT_LOCK_LEAD, Policy, plan, retain_until
from ctfy_vault.storage import Target, whole_second
from ctfy_vault.vault import Vault
from ctfy_vault.writer import ChunkerParams, StreamSource
from tests.support.cli import Cli, TargetSpec
from tests.support.servers import S3Endpoint, s3_client, s3_target
from tests.support.writer_strategies import FAST_RETRY

KEY = RawKey(bytes(range(32)))
CHUNKS = ChunkerParams(min_size=1024, avg_size=4096, max_size=16384)
POLICY = Policy.contractify()
SHARED = random.Random(7).randbytes(64 * 1024)  # noqa: S311 - test data


def content(night: int) -> bytes:
    """The night's dump: the shared part, then a little of its own."""
    return SHARED + random.Random(night).randbytes(4096)  # noqa: S311 - test data


def dump(night: int) -> StreamSource:
    """The night's dump as a stream source."""
    return StreamSource(name="db.dump", stream=io.BytesIO(content(night)))


def retention(client: object, bucket: str, key: str) -> datetime | None:
    """The object's retain-until date as the server reports it, or ``None``."""
    head = client.head_object(Bucket=bucket, Key=key)  # type: ignore[attr-defined]
    until = head.get("ObjectLockRetainUntilDate")
    return None if until is None else until.astimezone(UTC)


def owner_cannot_undo(client: Any, bucket: str, key: str) -> str:
    """Assert the bucket owner can neither delete the locked version nor shorten its date.

    Returns:
        The version id, for later checks that it is still there.
    """
    version: str = client.head_object(Bucket=bucket, Key=key)["VersionId"]
    held = retention(client, bucket, key)
    assert held is not None, key
    with pytest.raises(ClientError):
        client.delete_object(Bucket=bucket, Key=key, VersionId=version)
    with pytest.raises(ClientError):
        client.put_object_retention(
            Bucket=bucket,
            Key=key,
            VersionId=version,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": held - timedelta(days=1)},
        )
    return version


def seconds(moment: datetime) -> datetime:
    """The moment to the second (the server keeps no finer)."""
    return moment.astimezone(UTC).replace(microsecond=0)


def test_locks_follow_the_schedule_and_prune_leaves_what_is_locked(
    rgw_s3: S3Endpoint, tmp_path: Path
) -> None:
    """Dates per snapshot, the shared pack extended, the owner refused, prune reports."""
    client = s3_client(rgw_s3)
    bucket = f"sched-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    target = s3_target(rgw_s3, bucket, "repo", retry=FAST_RETRY)
    folder = Target.from_url(str(tmp_path / "folder"))
    first = (datetime.now(UTC) + timedelta(days=1)).replace(
        hour=2, minute=0, second=0, microsecond=0
    )
    vault = Vault.init([target, folder], key=KEY, now=first, chunker=CHUNKS)
    nights = [first + timedelta(days=n) for n in range(4)]
    ids = [
        vault.backup(dump(n), lineage="db", host="h", now=when, lock_policy=POLICY).snapshot_id
        for n, when in enumerate(nights)
    ]
    # The newest snapshot, locked at its own backup: its periods are open, so only the lead.
    newest = next(i for i in vault.snapshots() if i.snapshot_id == ids[-1])
    assert retention(client, bucket, f"repo/snapshots/{newest.name}") == seconds(
        nights[-1] + DEFAULT_LOCK_LEAD
    )
    report = vault.lock(POLICY, now=nights[-1])
    assert report.unlockable == (folder.name,)
    assert report.ok, report.errors
    assert report.extended[target.name] == 0  # the backups already brought everything up
    for info in vault.snapshots():
        stored = retention(client, bucket, f"repo/snapshots/{info.name}")
        assert stored == seconds(report.dates[info.snapshot_id]), info.created
    # Nights that ended are daily-final: 14 days, or longer as a week's, month's, year's last.
    for info in vault.snapshots():
        if info.snapshot_id != ids[-1]:
            assert report.dates[info.snapshot_id] >= info.created + timedelta(days=14)
    packs = list(target.list("packs"))
    locks = [retention(client, bucket, f"repo/{key}") for key in packs]
    assert all(lock is not None for lock in locks)
    assert max(lock for lock in locks if lock is not None) == seconds(max(report.dates.values()))
    for key in target.list("index"):
        assert retention(client, bucket, f"repo/{key}") is None
    # The owner's own credential: no delete of the locked version, no shorter date.
    key = f"repo/snapshots/{newest.name}"
    version = owner_cannot_undo(client, bucket, key)
    # A second backup the same night takes the last one's place: prune forgets the earlier
    # one, which is still locked, so it is left and reported, and no longer listed.
    later = nights[-1] + timedelta(hours=3)
    extra = vault.backup(dump(9), lineage="db", host="h", now=later, lock_policy=POLICY)
    pruned = vault.prune(POLICY, now=later, grace=timedelta(0))
    assert [s.snapshot_id for s in pruned.forgotten] == [ids[-1]]
    assert pruned.locked == {f"snapshots/{newest.name}": seconds(nights[-1] + DEFAULT_LOCK_LEAD)}
    assert ids[-1] not in {s.snapshot_id for s in vault.snapshots()}
    assert client.head_object(Bucket=bucket, Key=key)["VersionId"] == version
    assert not (tmp_path / "folder" / "snapshots" / newest.name).exists()  # folder: deleted
    assert vault.open_file(extra.snapshot_id, "db.dump").read() == content(9)
    assert vault.verify().ok


def test_a_governance_target_gets_governance_locks_a_compliance_one_compliance(
    rgw_s3: S3Endpoint,
) -> None:
    """Each target's own mode; the owner may bypass governance (not compliance) on purpose.

    The probe finds that out by trying it on a probe object.
    """
    client = s3_client(rgw_s3)
    buckets = [f"mode-{uuid.uuid4().hex[:16]}" for _ in range(2)]
    for bucket in buckets:
        client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    governed = s3_target(rgw_s3, buckets[0], "repo", retry=FAST_RETRY, lock_mode="governance")
    strict = s3_target(rgw_s3, buckets[1], "repo", retry=FAST_RETRY)
    # The probe tries to undo a lock it sets: the owner may bypass governance, never compliance.
    assert governed.probe().lock_holds is False
    assert "can undo the locks" in " ".join(governed.probe().notes)
    assert strict.probe().lock_holds is True
    assert "lock holds" in strict.probe().describe()
    now = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    vault = Vault.init([governed, strict], key=KEY, now=now, chunker=CHUNKS)
    info = vault.backup(dump(0), lineage="db", host="h", now=now, lock_policy=POLICY)
    key = f"repo/snapshots/{info.name}"
    modes = [client.head_object(Bucket=b, Key=key)["ObjectLockMode"] for b in buckets]
    assert modes == ["GOVERNANCE", "COMPLIANCE"]
    shorter = {"Mode": "GOVERNANCE", "RetainUntilDate": now + timedelta(days=1)}
    with pytest.raises(ClientError):  # not without asking to bypass
        client.put_object_retention(Bucket=buckets[0], Key=key, Retention=shorter)
    client.put_object_retention(
        Bucket=buckets[0], Key=key, Retention=shorter, BypassGovernanceRetention=True
    )
    with pytest.raises(ClientError):
        client.put_object_retention(
            Bucket=buckets[1],
            Key=key,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": now + timedelta(days=1)},
            BypassGovernanceRetention=True,
        )
    # The next plan raises the shortened governance lock again; the compliance one is untouched.
    report = vault.lock(POLICY, now=now)
    assert report.extended == {governed.name: 1, strict.name: 0}
    assert retention(client, buckets[0], key) == seconds(report.dates[info.snapshot_id])


def test_each_target_is_locked_by_its_own_policy(rgw_s3: S3Endpoint) -> None:
    """Per-target retention: a short policy on one bucket, the schedule on the other.

    Each bucket's locks are exactly the dates of its own plan; what the short target's plan
    forgets while still locked is left there and reported, and the long target keeps it.
    """
    client = s3_client(rgw_s3)
    buckets = [f"own-{uuid.uuid4().hex[:16]}" for _ in range(2)]
    for bucket in buckets:
        client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    near, far = (s3_target(rgw_s3, b, "repo", retry=FAST_RETRY) for b in buckets)
    short = Policy(daily=2)
    own = {near.name: short}
    first = (datetime.now(UTC) + timedelta(days=1)).replace(
        hour=2, minute=0, second=0, microsecond=0
    )
    vault = Vault.init([near, far], key=KEY, now=first, chunker=CHUNKS)
    nights = [first + timedelta(days=n) for n in range(4)]
    for n, when in enumerate(nights):
        vault.backup(
            dump(n), lineage="db", host="h", now=when, lock_policy=POLICY, target_policies=own
        )
    report = vault.lock(POLICY, now=nights[-1], target_policies=own)
    assert report.ok, report.errors
    assert report.extended == {near.name: 0, far.name: 0}  # the backups brought them up
    listed = vault.snapshots("db")
    for bucket, policy in ((buckets[0], short), (buckets[1], POLICY)):
        planned = plan(listed, policy, now=nights[-1])
        dates = retain_until(planned, lead=DEFAULT_LOCK_LEAD)
        assert len(planned.keep) == (2 if policy is short else 4)
        for info, until in zip(planned.keep, dates, strict=True):
            stored = retention(client, bucket, f"repo/snapshots/{info.name}")
            assert stored == whole_second(until), (bucket, info.created)
    # A finished night is locked for days on the near bucket, for weeks on the far one.
    older = listed[-1]
    near_lock = retention(client, buckets[0], f"repo/snapshots/{older.name}")
    far_lock = retention(client, buckets[1], f"repo/snapshots/{older.name}")
    assert near_lock is not None
    assert far_lock is not None
    assert near_lock < far_lock - timedelta(days=7)
    # The near plan forgets the two oldest; they are locked there, so left and reported.
    pruned = vault.prune(POLICY, now=nights[-1], grace=timedelta(0), target_policies=own)
    assert {s.snapshot_id for s in pruned.forgotten} == {i.snapshot_id for i in listed[2:]}
    assert set(pruned.locked) == {f"snapshots/{i.name}" for i in listed[2:]}
    assert {i.snapshot_id for i in vault.snapshots()} == {i.snapshot_id for i in listed}
    assert vault.verify().ok
    owner_cannot_undo(client, buckets[1], f"repo/snapshots/{older.name}")


def test_the_command_line_locks_by_the_policy_and_check_finds_a_short_lock(
    rgw_s3: S3Endpoint, tmp_path: Path
) -> None:
    """``backup`` locks by the lineage's policy; ``check`` reports a lock someone shortened.

    The bucket owner lifts a governance lock early (allowed for governance, with bypass): check
    exits 1 naming the object as under-locked; the next prune raises it and check is clean.
    """
    client = s3_client(rgw_s3)
    bucket = f"cli-lock-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    targets = [
        TargetSpec(name="rgw", url=f"s3://{bucket}/repo", endpoint=rgw_s3, lock_mode="governance"),
        TargetSpec(name="folder", url=str(tmp_path / "folder")),
    ]
    cli = Cli(home=tmp_path, targets=targets, secrets=[rgw_s3.secret])
    cli.write_config()
    cli.json("init")
    backed = cli.json("backup", "db", "--stdin", "--name", "db.sql", stdin=content(1))
    assert all(t["committed"] for t in backed["targets"])
    assert backed["unlockable"] == ["folder"]
    shown = cli("backup", "db", "--stdin", "--name", "db.sql", stdin=content(2))
    assert "object lock: cannot lock on folder" in shown.stdout
    clean = cli.json("check")
    assert clean["ok"], clean["problems"]
    assert clean["locks"]["checked"]["rgw"] >= 3  # the manifest, a pack, the config, a slot
    assert clean["locks"]["unlockable"] == ["folder"]
    names = client.list_objects_v2(Bucket=bucket, Prefix="repo/snapshots/")["Contents"]
    key = names[0]["Key"]
    assert client.head_object(Bucket=bucket, Key=key)["ObjectLockMode"] == "GOVERNANCE"
    client.put_object_retention(
        Bucket=bucket,
        Key=key,
        Retention={"Mode": "GOVERNANCE", "RetainUntilDate": datetime.now(UTC) + timedelta(hours=1)},
        BypassGovernanceRetention=True,
    )
    short = cli("check", "--json")
    assert short.returncode == 1, short.stderr
    problems = json.loads(short.stdout)["problems"]
    assert [(p["kind"], p["target"], p["key"]) for p in problems] == [
        ("under-locked", "rgw", key.removeprefix("repo/"))
    ]
    text = cli("check")
    assert "under-locked" in text.stdout
    assert "cannot lock on folder" in text.stdout
    cli.json("prune")
    again = cli.json("check")
    assert again["ok"], again["problems"]


NIGHTS = int(os.environ.get("CTFY_TEST_NIGHTS", "366"))


def test_a_year_of_nights_of_the_schedule(rgw_s3: S3Endpoint) -> None:
    """A year of nightly backups and a weekly prune, from mid-November (clock injected).

    Every night each snapshot the plan keeps is locked on the server at least until the
    night's plan time, and the owner's own credential can neither delete its locked version
    nor shorten its date; the snapshots the plan forgets are gone from the repository once
    their lock has passed (their locked versions stay on the server until the real date); at
    the end the repository holds exactly what the plan keeps, and each restores.

    The simulated nights lie in the future, so every date is a real future date to the server.
    """
    client = s3_client(rgw_s3)
    bucket = f"year-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    target = s3_target(rgw_s3, bucket, "repo", retry=FAST_RETRY)
    year = datetime.now(UTC).year + 1
    start = datetime(year, 11, 15, 2, tzinfo=UTC)
    vault = Vault.init([target], key=KEY, now=start, chunker=CHUNKS)
    taken: dict[str, datetime] = {}
    for night in range(NIGHTS):
        now = start + timedelta(days=night)
        info = vault.backup(dump(night % 5), lineage="db", host="h", now=now, lock_policy=POLICY)
        taken[info.snapshot_id] = now
        if night % 7 == 6:
            pruned = vault.prune(POLICY, now=now, grace=timedelta(0))
            assert pruned.ok, pruned.errors
            listed = vault.snapshots()
            for kept in listed:
                until = retention(client, bucket, f"repo/snapshots/{kept.name}")
                assert until is not None, kept.created
                assert until >= now, (kept.created, until, now)
            victim = listed[night % len(listed)]
            key = f"repo/snapshots/{victim.name}"
            owner_cannot_undo(client, bucket, key)
    end = start + timedelta(days=NIGHTS - 1)
    final = vault.prune(POLICY, now=end + timedelta(days=8), grace=timedelta(0))
    assert final.ok, final.errors
    expected = plan(list(taken.values()), POLICY, now=end + timedelta(days=8))
    kept_times = set(expected.keep)
    assert {s.created for s in vault.snapshots()} == kept_times
    assert len(kept_times) < NIGHTS / 2  # most nights were forgotten
    for left in vault.snapshots():
        night = (left.created - start).days
        assert vault.open_file(left.snapshot_id, "db.dump").read() == content(night % 5)
    # What is left for a later prune is only what is still locked then.
    assert all(until > end + timedelta(days=8) for until in final.locked.values())
    assert vault.verify().ok
