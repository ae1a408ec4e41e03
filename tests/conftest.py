"""Shared fixtures: the test servers and hygiene between tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem
from hypothesis import settings

from tests.support.servers import (
    AzureEndpoint,
    S3Endpoint,
    azurite_server,
    moto_server,
    rgw_server,
)

#: ``--hypothesis-profile=fast`` (the fast tier): properties that set no example count of their own
#: try 20 examples instead of 100. The whole suite runs the default profile.
settings.register_profile("fast", max_examples=20)

# --------------------------------------------------------------------------------------------------
# Servers (session-scoped: started once, shared by every test that asks). See tests/support/servers.py.


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[S3Endpoint]:
    """Moto's S3 in this process (no signature, expiry or Object Lock checks)."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def rgw_s3() -> Iterator[S3Endpoint]:
    """A real Ceph RADOS Gateway (CI's, or one started for this session)."""
    with rgw_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzureEndpoint]:
    """Azurite's blob service (CI's, or one started for this session)."""
    with azurite_server() as endpoint:
        yield endpoint


# Fixtures that start or need a server, a program or a download outside this process, and the marker
# each adds. A test using any of them (directly or through another fixture) gets that marker and
# ``server``, so ``-m "not rgw"`` never starts Ceph and ``nox -s tests-fast`` leaves all of them out.
FIXTURE_MARKERS: dict[str, str] = {
    "rgw_s3": "rgw",
    "azurite": "azurite",
    "postgres": "postgres",
    "restic": "restic",
    "restic_fixtures": "restic",
    "pushgateway": "pushgateway",
}
SERVER_FIXTURES = frozenset(FIXTURE_MARKERS)
#: moto runs in this process (not a server), but each request costs milliseconds: ``moto``-marked
#: tests are left out of the fast tier with the slow ones.
IN_PROCESS_MARKERS: dict[str, str] = {"moto_s3": "moto"}


#: Tiers whose every test is ``slow``: the harnesses run many seeded rounds by design.
SLOW_TIERS = ("harness",)


def _is_state_machine(item: pytest.Item) -> bool:
    cls = getattr(item, "cls", None)
    # hypothesis builds each machine's ``TestCase`` in its own module, named after the machine.
    return isinstance(cls, type) and cls.__module__ == "hypothesis.stateful"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests from the fixtures they use, their tier, and whether they run a state machine.

    A state machine (hypothesis ``RuleBasedStateMachine``) runs dozens of random programs, so it
    is ``slow`` like the harnesses; both run in the whole suite, not in the fast tier.
    """
    for item in items:
        parts = item.path.relative_to(Path(__file__).parent).parts
        if parts[0] in SLOW_TIERS or _is_state_machine(item):
            item.add_marker(pytest.mark.slow)
        used = SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
        for marker in sorted({FIXTURE_MARKERS[name] for name in used}):
            item.add_marker(getattr(pytest.mark, marker))
        if used:
            item.add_marker(pytest.mark.server)
        for name, marker in IN_PROCESS_MARKERS.items():
            if name in getattr(item, "fixturenames", ()):
                item.add_marker(getattr(pytest.mark, marker))


# --------------------------------------------------------------------------------------------------
# Hygiene


def _clear_fsspec_instance_caches() -> None:
    # Every filesystem class keeps its own instance cache, so clearing AbstractFileSystem's alone
    # would leave S3FileSystem's and AzureBlobFileSystem's (and their listing caches) alive.
    seen: set[type] = set()
    stack: list[type[fsspec.AbstractFileSystem]] = [fsspec.AbstractFileSystem]
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        cls.clear_instance_cache()
        stack.extend(cls.__subclasses__())


@pytest.fixture(autouse=True)
def _fresh_fsspec_instances() -> Iterator[None]:
    """Each test gets new fsspec filesystem objects, never one cached by an earlier test."""
    _clear_fsspec_instance_caches()
    yield
    _clear_fsspec_instance_caches()


def _clear_memory_store() -> None:
    # ``memory://`` targets share one dict per process, and listing any of them scans all of it:
    # left to grow over the suite, every later listing (backup, copy, verify, heal) gets slower.
    MemoryFileSystem.store.clear()
    MemoryFileSystem.pseudo_dirs[:] = [""]


@pytest.fixture(autouse=True)
def _empty_memory_store() -> Iterator[None]:
    """Each test starts with fsspec's shared in-memory store empty and leaves it empty.

    A fixture wider than one test cannot keep objects on ``memory://`` targets: keep their bytes
    and write them to fresh targets per test instead (see ``tests.support.copies``).
    """
    _clear_memory_store()
    yield
    _clear_memory_store()


# --------------------------------------------------------------------------------------------------
# Project fixtures (targets, vaults, keys, sample data) go below this line.


@pytest.fixture(autouse=True)
def _private_state_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI keeps known heads under ``$XDG_STATE_HOME``: a fresh folder per test, never ~."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
