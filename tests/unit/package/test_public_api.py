"""The public surface: sorted, complete ``__all__`` lists and the names DESIGN.md promises."""

from __future__ import annotations

import importlib
import inspect
import pickle
import subprocess
import sys

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
    "ctfy_vault.repository",
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


def _modules_after(statement: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``statement``."""
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


HEAVY = ("cryptography", "botocore", "fsspec", "s3fs", "aiohttp", "adlfs", "azure")


@pytest.mark.parametrize(
    "statement",
    ["import ctfy_vault", "import ctfy_vault.retention", "import ctfy_vault.exceptions"],
)
def test_light_imports_load_no_heavy_library(statement: str) -> None:
    """The top level and the pure retention engine load no crypto or storage library."""
    loaded = _modules_after(statement)
    heavy = sorted(name for name in loaded if name.split(".")[0] in HEAVY)
    assert heavy == [], heavy
    library = {name for name in loaded if name.startswith("ctfy_vault")}
    assert "ctfy_vault.vault" not in library
    assert "ctfy_vault.storage" not in library


def test_front_door_names_resolve_to_their_subpackages() -> None:
    """Each front-door name is the very object its subpackage defines, and ``dir`` lists it."""
    for name in ctfy_vault.__all__:
        if name == "__version__":
            continue
        module = importlib.import_module(ctfy_vault._FRONT[name])  # noqa: SLF001 - the table under test
        assert getattr(ctfy_vault, name) is getattr(module, name), name
        assert name in dir(ctfy_vault)
    assert set(ctfy_vault._FRONT) == set(ctfy_vault.__all__) - {"__version__"}  # noqa: SLF001
    assert len(ctfy_vault.__all__) <= 25  # a front door, not the whole house


def test_moved_names_still_import_with_a_deprecation_naming_their_home() -> None:
    """A name the top level used to export still works, warning where to import it from."""
    moved = ctfy_vault._MOVED  # noqa: SLF001 - the table under test
    assert "Writer" in moved
    assert "Sealer" in moved
    for name, home in moved.items():
        with pytest.warns(DeprecationWarning, match=rf"import {name} from {home}\b"):
            value = getattr(ctfy_vault, name)
        assert value is getattr(importlib.import_module(home), name)
        assert name not in ctfy_vault.__all__


def test_an_unknown_name_is_an_attribute_error() -> None:
    """A name that never existed fails as ``AttributeError`` (so ``hasattr`` answers False)."""
    assert not hasattr(ctfy_vault, "NoSuchThing")
    with pytest.raises(AttributeError, match="NoSuchThing"):
        _ = ctfy_vault.NoSuchThing


def test_importing_the_mirror_package_keeps_the_mirror_function() -> None:
    """``ctfy_vault.mirror`` stays the function after its subpackage is imported, in any order."""
    code = (
        "import ctfy_vault.mirror, ctfy_vault, inspect\n"
        "print(inspect.isfunction(ctfy_vault.mirror))\n"
        "from ctfy_vault import mirror\n"
        "print(inspect.isfunction(mirror))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"]


@pytest.mark.parametrize("package", ["ctfy_vault.writer", "ctfy_vault.vault"])
def test_source_is_the_old_name_of_backup_source(package: str) -> None:
    """The old name ``Source`` (it named three things) warns and is `BackupSource`."""
    from ctfy_vault.writer import BackupSource

    module = importlib.import_module(package)
    assert "Source" not in module.__all__
    with pytest.warns(DeprecationWarning, match=r"import BackupSource from ctfy_vault\.writer"):
        assert module.Source == BackupSource
    assert module.BackupSource == BackupSource


def test_export_sources_have_their_own_name() -> None:
    """What an export reads is an `ExportSource`, not the backup's source."""
    from ctfy_vault.export import ExportSource, SnapshotSource, TargetSource

    assert ExportSource == TargetSource | SnapshotSource


def test_key_slot_storage_still_imports_from_crypto_with_a_warning() -> None:
    """The slot functions moved to the repository layer; the old crypto names warn and work."""
    import ctfy_vault.crypto
    import ctfy_vault.repository

    for name in ("unlock", "list_key_slots", "add_key_slot", "rotate_key_slot"):
        assert name not in ctfy_vault.crypto.__all__
        with pytest.warns(DeprecationWarning, match=rf"import {name} from ctfy_vault\.repository"):
            assert getattr(ctfy_vault.crypto, name) is getattr(ctfy_vault.repository, name)
