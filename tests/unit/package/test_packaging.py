"""The package declares every distribution its code imports, and ships its licence."""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
import tomllib

import pytest

from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT
SOURCE = ROOT / "src" / "ctfy_vault"


def _declared() -> dict[str, set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"": list(project["dependencies"])}
    groups.update(project.get("optional-dependencies", {}))
    return {
        extra: {_normalise(re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0]) for spec in specs}
        for extra, specs in groups.items()
    }


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_modules() -> dict[str, set[str]]:
    """Top-level third-party module names imported anywhere in the package, with the files."""
    found: dict[str, set[str]] = {}
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.partition(".")[0]
                if top not in sys.stdlib_module_names and top != "ctfy_vault":
                    found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


@functools.cache
def _distributions(module: str) -> frozenset[str]:
    """Distributions that provide ``module`` (a namespace package such as azure has several)."""
    providers = importlib.metadata.packages_distributions()
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        prefix = ".".join(parts[:depth])
        owners = {
            dist
            for dist in providers.get(parts[0], [])
            if _provides(dist, prefix.replace(".", "/"))
        }
        if owners:
            return frozenset(_normalise(dist) for dist in owners)
    return frozenset(_normalise(dist) for dist in providers.get(parts[0], []))


def _provides(dist: str, path: str) -> bool:
    files = importlib.metadata.files(dist) or []
    return any(str(file).startswith((f"{path}/", f"{path}.py")) for file in files)


@pytest.mark.slow
def test_every_imported_distribution_is_declared() -> None:
    """Each third-party import of the package is a declared dependency (core or its extra).

    Test dependencies bring many packages along (moto brings boto3), so an undeclared import passes
    every other test and fails only on a clean install.
    """
    declared = _declared()
    every = set().union(*declared.values())
    missing: dict[str, set[str]] = {}
    for module, files in _imported_modules().items():
        dists = _distributions(module)
        assert dists, f"{module} (imported in {sorted(files)}) is not installed"
        if not dists & every:
            missing[module] = files
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def _import_time_modules(tree: ast.Module) -> set[str]:
    """Modules imported when the file is imported (not in functions or ``TYPE_CHECKING`` blocks)."""
    found: set[str] = set()
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
            pending.extend([*node.body, *node.orelse])
        elif isinstance(node, ast.Try):
            pending.extend([*node.body, *node.orelse, *node.finalbody])
    return found


@pytest.mark.slow  # subprocesses; the whole suite runs it
def test_core_modules_import_only_core_dependencies() -> None:
    """What the ``azure`` extra brings is imported lazily, so a core install imports cleanly."""
    declared = _declared()
    extra_only = set().union(*(deps for extra, deps in declared.items() if extra)) - declared[""]
    eager: list[str] = []
    for path in SOURCE.rglob("*.py"):
        for module in _import_time_modules(ast.parse(path.read_text(), str(path))):
            top = module.partition(".")[0]
            if top in sys.stdlib_module_names or top == "ctfy_vault":
                continue
            if _distributions(module) & extra_only:
                eager.append(f"{path.relative_to(ROOT)} imports {module} at import time")
    assert not eager, eager


def test_licence_file_matches_the_metadata() -> None:
    """The LICENSE file is the licence the metadata names, and the build includes it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    urls = {name.lower() for name in project["urls"]}
    assert {"source", "issues"} <= urls
