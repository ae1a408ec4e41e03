"""Names that moved: still importable from their old module, with a `DeprecationWarning`."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any


def forward(module: str, moved: Mapping[str, str]) -> Callable[[str], Any]:
    """Build a module ``__getattr__`` (PEP 562) that resolves moved names lazily, warning.

    Args:
        module: the old module's name (``__name__``).
        moved: each old name and where it lives now: ``"package"`` (same name there) or
            ``"package:new_name"``.

    Returns:
        The function to bind as the old module's ``__getattr__``.
    """

    def resolve(name: str) -> Any:
        home = moved.get(name)
        if home is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        package, _, new_name = home.partition(":")
        new_name = new_name or name
        warnings.warn(
            f"{module}.{name} is deprecated: import {new_name} from {package}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(package), new_name)

    return resolve
