"""The package graph of DESIGN.md: each package imports only the packages below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT

SOURCE = REPO_ROOT / "src" / "ctfy_vault"

#: What each package (or top-level module) of the library may import of the library, directly.
#: cli -> vault -> writer -> repository -> storage; manifest -> crypto; retention is pure.
ALLOWED: dict[str, frozenset[str]] = {
    "exceptions": frozenset(),
    "_version": frozenset(),
    # Forwards moved names (with a warning) by module name, importing nothing itself.
    "_compat": frozenset(),
    "_files": frozenset({"exceptions"}),
    "retention": frozenset({"exceptions"}),
    "storage": frozenset({"exceptions"}),
    "crypto": frozenset({"exceptions", "_compat"}),
    "manifest": frozenset({"crypto", "exceptions"}),
    "repository": frozenset({"storage", "crypto", "manifest", "exceptions", "_files"}),
    "writer": frozenset({"repository", "storage", "crypto", "manifest", "exceptions", "_compat"}),
    "vault": frozenset(
        {
            "writer",
            "repository",
            "storage",
            "crypto",
            "manifest",
            "retention",
            "exceptions",
            "_compat",
        }
    ),
    "links": frozenset({"storage", "exceptions"}),
    "mirror": frozenset({"storage", "exceptions", "_files"}),
    "escrow": frozenset({"crypto", "storage", "exceptions", "_files"}),
    # An export reads a tenant's snapshots through the vault, as the CLI does.
    "export": frozenset({"vault", "links", "manifest", "storage", "exceptions", "_version"}),
    "testing": frozenset({"storage"}),
    # Run metrics in the Prometheus text format: a leaf beside the others, used by the CLI.
    "metrics": frozenset({"exceptions"}),
    "cli": frozenset(
        {
            "metrics",
            "vault",
            "writer",
            "repository",
            "retention",
            "links",
            "mirror",
            "export",
            "escrow",
            "manifest",
            "crypto",
            "storage",
            "exceptions",
            "_files",
            "_version",
        }
    ),
    "__main__": frozenset({"cli"}),
    # The front door re-exports the public names of the packages a user needs.
    "__init__": frozenset(
        {
            "vault",
            "writer",
            "retention",
            "links",
            "mirror",
            "manifest",
            "crypto",
            "storage",
            "exceptions",
            "_compat",
            "_version",
        }
    ),
}

#: Imports that point up the graph, allowed only lazily (inside a function or ``TYPE_CHECKING``):
#: crypto keeps the key-slot storage names that moved to the repository importable.
LAZY_ONLY: frozenset[tuple[str, str]] = frozenset({("crypto", "repository")})


def _package(path: Path) -> str:
    parts = path.relative_to(SOURCE).parts
    return parts[0] if len(parts) > 1 else path.stem


def _imports(tree: ast.Module) -> list[tuple[str, bool]]:
    """Each library package imported, with whether the import runs when the module is loaded."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, eager: bool) -> None:
        for child in ast.iter_child_nodes(node):
            now = eager
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) or (
                isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test)
            ):
                now = False
            if isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = [child.module]
            elif isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            else:
                names = []
            for name in names:
                parts = name.split(".")
                if parts[0] == "ctfy_vault" and len(parts) > 1:
                    found.append((parts[1], now))
            visit(child, now)

    visit(tree, True)
    return found


def _graph() -> dict[str, set[tuple[str, bool]]]:
    graph: dict[str, set[tuple[str, bool]]] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        package = _package(path)
        for target, eager in _imports(ast.parse(path.read_text(), str(path))):
            if target != package:
                graph.setdefault(package, set()).add((target, eager))
    return graph


def test_every_package_has_a_place_in_the_graph() -> None:
    """Each package and top-level module of the library is listed in the allowed graph."""
    found = {_package(path) for path in SOURCE.rglob("*.py")}
    assert found <= set(ALLOWED), sorted(found - set(ALLOWED))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_what_lies_below_it(package: str) -> None:
    """No package imports one the graph does not put below it (lazy compatibility aside)."""
    wrong = sorted(
        (target, eager)
        for target, eager in _graph().get(package, set())
        if target not in ALLOWED[package] and ((package, target) not in LAZY_ONLY or eager)
    )
    assert not wrong, f"{package} imports {wrong}"


def test_the_allowed_graph_has_no_cycle() -> None:
    """The graph points one way: following the allowed imports never comes back."""

    def reach(start: str, seen: set[str]) -> set[str]:
        for target in ALLOWED.get(start, frozenset()):
            if target not in seen:
                seen.add(target)
                reach(target, seen)
        return seen

    for package in ALLOWED:
        assert package not in reach(package, set()), package


def test_the_repository_layer_sits_between_the_writer_and_storage() -> None:
    """The repository imports storage, crypto and manifest, and never writer, vault or cli."""
    imported = {target for target, _eager in _graph()["repository"]}
    assert {"storage", "crypto", "manifest"} <= imported
    assert not imported & {"writer", "vault", "cli"}
    assert "repository" in {target for target, _eager in _graph()["writer"]}
    assert "repository" in {target for target, _eager in _graph()["vault"]}
