"""Network faults between the library and a real Ceph RGW: a proxy that drops, delays and lies.

Every request of an ``s3://`` target goes through `tests.support.tcp_proxy.FaultyProxy` on loopback, which
drops connections mid-request and mid-response, answers 503 SlowDown and 500 itself, truncates and
flips response bodies. Backups, restores, heal and mirror must be exact or fail loudly naming the
target; once the proxy is calm the repository verifies clean and restores byte-identical.
"""

from __future__ import annotations

import io
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest

from ctfy_vault.crypto import RawKey
from ctfy_vault.exceptions import VaultError
from ctfy_vault.mirror import mirror
from ctfy_vault.storage import Target
from ctfy_vault.testing import fast_retry
from ctfy_vault.vault import Vault
from ctfy_vault.writer import StreamSource
from tests.support.faults import assert_loud, payload
from tests.support.servers import S3Endpoint, make_bucket, s3_client
from tests.support.tcp_proxy import KINDS, FaultyProxy, ProxyPlan, faulty_proxy
from tests.support.writer_strategies import NOW, SMALL

#: Format 2 packs of a few chunks, so a backup writes several and faults land between them.
PACKS = 4096

KEY = RawKey(bytes(range(100, 132)))
#: Rounds stop starting once this many seconds have passed (the whole module stays under a minute).
BUDGET = 8.0
TALLY: Counter[str] = Counter()


def storm(plan: ProxyPlan, seed: int) -> None:
    """Set a plan where about one request in five goes wrong."""
    plan.reseed(seed)
    plan.latency = 0.1
    plan.max_latency = 0.003
    plan.drop_request = 0.03
    plan.slowdown = 0.04
    plan.server_error = 0.03
    plan.drop_response = 0.04
    plan.truncate = 0.06
    plan.flip = 0.04
    plan.enabled = True


@pytest.fixture(scope="module")
def proxy(rgw_s3: S3Endpoint) -> Iterator[FaultyProxy]:
    """A fault proxy in front of the session's RGW, calm at first."""
    plan = ProxyPlan(enabled=False)
    with faulty_proxy(rgw_s3.endpoint_url, plan) as running:
        yield running
    TALLY.update(plan.injected)
    print(f"\nfaults injected by the proxy: {plan.total} {dict(sorted(plan.injected.items()))}")


def proxied(proxy: FaultyProxy, rgw: S3Endpoint, bucket: str, prefix: str) -> Target:
    """An ``s3://`` target whose every request goes through the proxy."""
    return Target.from_url(
        f"s3://{bucket}/{prefix}",
        endpoint_url=proxy.url,
        key=rgw.key,
        secret=rgw.secret,
        region=rgw.region,
        retry=fast_retry(6),
    )


def vault_round(
    proxy: FaultyProxy, rgw: S3Endpoint, bucket: str, seed: int, outcomes: Counter[str]
) -> None:
    """One backup, restore and heal in a storm: exact or loud; then clean once the network is."""
    plan = proxy.plan
    plan.enabled = False
    targets = [proxied(proxy, rgw, bucket, f"r{seed}-{n}") for n in range(2)]
    vault = Vault.init(targets, key=KEY, now=NOW, chunker=SMALL, pack_size=PACKS)
    data = payload(seed)[:4000]  # a dozen chunks: RGW answers each request in tens of ms
    storm(plan, seed)
    info = None
    try:
        info = vault.backup(
            StreamSource(name="db.sql", stream=io.BytesIO(data)),
            lineage="db",
            host="h",
            now=NOW,
        )
        outcomes["backup ok"] += 1
    except VaultError as err:
        assert_loud(err, targets)
        outcomes["backup loud"] += 1
    if info is not None:
        try:
            assert vault.open_file(info, "db.sql").read() == data
            outcomes["restore ok"] += 1
        except VaultError as err:
            assert_loud(err, targets)
            outcomes["restore loud"] += 1
        try:
            vault.heal()
        except VaultError as err:
            assert_loud(err, targets)
            outcomes["heal loud"] += 1
    plan.enabled = False
    vault = Vault.open(targets, key=KEY)
    vault.heal()
    assert vault.verify(read_data=True).ok
    for snapshot in vault.snapshots():
        assert vault.open_file(snapshot, "db.sql").read() == data


def test_vault_rounds_through_a_faulty_network(proxy: FaultyProxy, rgw_s3: S3Endpoint) -> None:
    """Backup, restore and heal through the proxy: exact or loud; clean once the network is."""
    bucket = make_bucket(rgw_s3, f"faults-{uuid.uuid4().hex[:10]}")
    outcomes: Counter[str] = Counter()
    before = proxy.plan.total
    started = time.monotonic()
    seed = 0
    while time.monotonic() - started < BUDGET or seed < 3:
        vault_round(proxy, rgw_s3, bucket, seed, outcomes)
        seed += 1
    print(f"\nproxy vault rounds: {seed} {dict(outcomes)}")
    assert outcomes["backup ok"] > 0
    assert proxy.plan.total > before


def test_mirror_through_a_faulty_network(proxy: FaultyProxy, rgw_s3: S3Endpoint) -> None:
    """Mirror copies through the proxy (not server-side): a damaged copy is always reported."""
    source_bucket = make_bucket(rgw_s3, f"docs-{uuid.uuid4().hex[:10]}")
    client = s3_client(rgw_s3)
    rng = random.Random(9)  # noqa: S311 - test data
    documents = {f"docs/{n:03d}.pdf": rng.randbytes(rng.randrange(1, 5000)) for n in range(12)}
    for key, data in documents.items():
        client.put_object(Bucket=source_bucket, Key=f"root/{key}", Body=data)
    plan = proxy.plan
    before = plan.total
    failed = 0
    for seed in range(2):
        replica_bucket = make_bucket(rgw_s3, f"replica-{uuid.uuid4().hex[:10]}")
        plan.enabled = False
        source = proxied(proxy, rgw_s3, source_bucket, "root")
        replica = proxied(proxy, rgw_s3, replica_bucket, "root")
        storm(plan, 1000 + seed)
        try:
            report = mirror(source, [replica], workers=4, server_side=False)
        except VaultError as err:
            assert_loud(err, [source, replica])
            failed += 1
        else:
            bad = {o.key for o in report.failed}
            failed += len(bad)
            plan.enabled = False
            for key in replica.list("docs"):
                if key not in bad:
                    assert replica.read(key) == documents[key], key
        plan.enabled = False
        again = mirror(source, [replica], workers=4, server_side=False)
        assert again.ok, again.failed
        stored = {
            key: client.get_object(Bucket=replica_bucket, Key=f"root/{key}")["Body"].read()
            for key in documents
        }
        assert stored == documents
    print(f"\nproxy mirror: {failed} copies reported failed, {plan.total - before} faults")
    assert plan.total > before


def test_every_proxy_fault_kind_is_injected_and_survived(
    proxy: FaultyProxy, rgw_s3: S3Endpoint
) -> None:
    """On its own, vault rounds in the storm meet every kind of network fault, and survive each.

    The test does not lean on the tests above having run first: it runs rounds (each exact or
    loud, then clean) until every kind was injected, within a minute.
    """
    bucket = make_bucket(rgw_s3, f"kinds-{uuid.uuid4().hex[:10]}")
    seen_before = Counter(proxy.plan.injected)
    outcomes: Counter[str] = Counter()
    started = time.monotonic()
    seed = 7000
    met: Counter[str] = Counter()
    while not set(KINDS) <= set(met) and time.monotonic() - started < 60:
        vault_round(proxy, rgw_s3, bucket, seed, outcomes)
        met = Counter(proxy.plan.injected) - seen_before
        seed += 1
    assert set(KINDS) <= set(met), met
