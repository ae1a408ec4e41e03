"""Where things are: the project's root, its scripts and the test data (golden vectors)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
SCRIPTS: Final = REPO_ROOT / "scripts"
DATA: Final = REPO_ROOT / "tests" / "data"
