"""The public surface: sorted, complete ``__all__`` lists and the names DESIGN.md promises."""

from __future__ import annotations

import importlib
import inspect
import pickle

import pytest

import ctfy_vault
from ctfy_vault import exceptions

PACKAGES = [
    "ctfy_vault",
    "ctfy_vault.cli",
    "ctfy_vault.crypto",
    "ctfy_vault.escrow",
    "ctfy_vault.exceptions",
    "ctfy_vault.export",
    "ctfy_vault.links",
    "ctfy_vault.manifest",
    "ctfy_vault.mirror",
    "ctfy_vault.retention",
    "ctfy_vault.storage",
    "ctfy_vault.testing",
    "ctfy_vault.vault",
    "ctfy_vault.writer",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_importable(name: str) -> None:
    """Every ``__all__`` is sorted (constants first), has no duplicates, and each name resolves."""
    module = importlib.import_module(name)
    names = list(module.__all__)
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    assert len(set(names)) == len(names)
    for exported in names:
        assert hasattr(module, exported), exported


def test_exceptions_all_is_complete() -> None:
    """Every exception class defined in ``exceptions`` is exported."""
    defined = {
        name
        for name, value in vars(exceptions).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == exceptions.__name__
    }
    assert defined == set(exceptions.__all__)


def test_top_level_reexports_public_names() -> None:
    """The names other code is promised are importable from the top level."""
    promised = (
        "Target",
        "VaultError",
        "Policy",
        "plan",
        "RetentionPlan",
        "presign",
        "mirror",
        "Vault",
    )
    for name in (*promised, "Capabilities", "RetryPolicy"):
        assert name in ctfy_vault.__all__


def test_every_error_is_a_vault_error_and_a_builtin() -> None:
    """Leaves of the error tree inherit the builtin a caller already catches."""
    assert issubclass(exceptions.ObjectExistsError, FileExistsError)
    assert issubclass(exceptions.ObjectNotFoundError, FileNotFoundError)
    assert issubclass(exceptions.AccessDeniedError, PermissionError)
    assert issubclass(exceptions.TargetUnreachableError, ConnectionError)
    assert issubclass(exceptions.InvalidURLError, ValueError)
    assert issubclass(exceptions.PolicyError, ValueError)
    assert issubclass(exceptions.UnsupportedError, NotImplementedError)
    for name in exceptions.__all__:
        assert issubclass(getattr(exceptions, name), exceptions.VaultError)


def test_storage_errors_survive_pickling() -> None:
    """Storage errors keep their message, target and key through pickle (for process pools)."""
    err = exceptions.ObjectExistsError("write: already exists", target="s3://b", key="k")
    copy = pickle.loads(pickle.dumps(err))  # noqa: S301 - round-tripping our own object
    assert type(copy) is exceptions.ObjectExistsError
    assert (copy.target, copy.key, str(copy)) == ("s3://b", "k", str(err))


def test_targets_failed_error_holds_every_outcome() -> None:
    """A multi-target failure names each failed target and keeps the successes."""
    boom = exceptions.TransientStorageError("write failed", target="s3://b", key="k")
    err = exceptions.TargetsFailedError("backup incomplete", {"s3://a": None, "s3://b": boom})
    assert err.outcomes == {"s3://a": None, "s3://b": boom}
    assert "s3://b" in str(err)
    assert "s3://a:" not in str(err)
