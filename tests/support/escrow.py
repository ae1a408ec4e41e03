"""Git repositories for escrow tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

# A fixed identity and dates make commits (and so commit ids) the same on every run.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Escrow Test",
    "GIT_AUTHOR_EMAIL": "escrow@example.invalid",
    "GIT_COMMITTER_NAME": "Escrow Test",
    "GIT_COMMITTER_EMAIL": "escrow@example.invalid",
    "GIT_AUTHOR_DATE": "2026-01-02T03:04:05+00:00",
    "GIT_COMMITTER_DATE": "2026-01-02T03:04:05+00:00",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}

FILES = {
    "README.md": b"# product\n",
    "src/app/main.py": b"print('hello')\n" * 50,
    "src/app/\u00e9t\u00e9.py": b"summer = True\n",
    "docs/" + "n" * 120 + ".txt": b"a long name needs a pax header\n",
}


def make_repo(root: Path) -> Path:
    """A git repository with two commits and an uncommitted change; returns its folder."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    write_tree(root, FILES)
    (root / "run.sh").write_bytes(b"#!/bin/sh\nexec python src/app/main.py\n")
    (root / "run.sh").chmod(0o755)
    os.symlink("src/app/main.py", root / "main-link")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    (root / "CHANGELOG.md").write_bytes(b"v2\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "second")
    git(root, "tag", "v2")
    # Working-tree changes that must never reach a deposit:
    (root / "README.md").write_bytes(b"UNCOMMITTED EDIT\n")
    (root / "scratch.txt").write_bytes(b"untracked\n")
    return root


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity and dates; return its output."""
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    )
    return done.stdout


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    """Create ``files`` (relative path -> content) under ``root``."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
