"""The format 2 cycle on real servers: backup, forget, prune with repacking, damage, heal.

Each run is the same sequence on two targets of one kind (moto S3, Ceph RGW, Azurite): five
backups sharing data, a prune that repacks, a deleted pack and a flipped byte healed from the
other target, another prune, and every check of `tests.support.cycle` along the way.
"""

from __future__ import annotations

import random
import uuid

import pytest

from ctfy_vault.storage import Target
from tests.support.cycle import Cycle
from tests.support.servers import (
    AzureEndpoint,
    S3Endpoint,
    make_bucket,
    make_container,
    s3_target,
)


def _run(targets: list[Target]) -> None:
    cycle = Cycle(targets)
    for _ in range(5):
        cycle.backup()
    cycle.check_clean()
    cycle.prune(keep=2, repack_below=0.9)
    cycle.check_restores()
    cycle.check_clean()
    rng = random.Random(7)  # noqa: S311 - which pack to damage, not a secret
    cycle.damage(0, rng, delete=True)
    cycle.check_restores()
    cycle.heal()
    cycle.check_clean()
    cycle.damage(1, rng, delete=False)
    cycle.check_restores()
    cycle.heal()
    cycle.check_clean()
    cycle.backup()
    cycle.prune(keep=1, repack_below=1.0)
    cycle.check_restores()
    cycle.check_clean()


def _s3_targets(endpoint: S3Endpoint, label: str) -> list[Target]:
    return [
        s3_target(endpoint, make_bucket(endpoint, f"cycle-{label}-{n}-{uuid.uuid4().hex[:8]}"))
        for n in range(2)
    ]


def test_the_cycle_on_moto(moto_s3: S3Endpoint) -> None:
    """Backup, prune with repacking, damage and heal on two moto buckets stay exact and clean."""
    _run(_s3_targets(moto_s3, "moto"))


def test_the_cycle_on_rgw(rgw_s3: S3Endpoint) -> None:
    """The same cycle on two buckets of a real Ceph RADOS Gateway."""
    _run(_s3_targets(rgw_s3, "rgw"))


@pytest.mark.azurite
def test_the_cycle_on_azurite(azurite: AzureEndpoint) -> None:
    """The same cycle on two Azurite containers."""
    targets = [
        Target.from_url(
            f"az://{make_container(azurite, f'cycle-{n}-{uuid.uuid4().hex[:12]}')}/repo",
            connection_string=azurite.connection_string,
        )
        for n in range(2)
    ]
    _run(targets)
