"""Development tasks: ``nox -s tests``, ``lint``, ``typecheck``, ``build``, ``docs``, ``bench``.

``clean_install`` checks the built wheel in an environment without test dependencies. ``publish``
uploads the sdist and wheel to the package index named by the twine variables; ``publish_roundtrip``
runs it against a local password-protected index and installs the package back from there.
"""

from __future__ import annotations

import os
import shutil
import sys
import urllib.parse
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "build", "docs"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml("pyproject.toml")


def _groups(*names: str) -> list[str]:
    requirements: list[str] = []
    for name in names:
        requirements.extend(nox.project.dependency_groups(PYPROJECT, name))
    return requirements


@nox.session
def tests(session: nox.Session) -> None:
    """Run the whole test suite against memory, local disk, moto, Ceph RGW and Azurite."""
    session.install(".[azure]", *_groups("test"))
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session(name="tests-fast")
def tests_fast(session: nox.Session) -> None:
    """Run, on every core, the tests that need no server, no moto and are not slow (fewer examples)."""
    session.install(".[azure]", *_groups("fast"))
    session.run(
        "pytest",
        "-q",
        "-n",
        "auto",
        "-m",
        "not server and not slow and not moto",
        "--hypothesis-profile=fast",
        *session.posargs,
    )


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    session.install(*_groups("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check the package, tests, benchmarks and examples with mypy --strict."""
    session.install("-e", ".[azure]", *_groups("typecheck"))
    session.run("mypy")


@nox.session
def build(session: nox.Session) -> None:
    """Build the sdist and wheel and check their metadata."""
    _build(session)


def _build(session: nox.Session) -> list[str]:
    """Build a fresh sdist and wheel into ``dist/``, check them, and return their paths."""
    shutil.rmtree(ROOT / "dist", ignore_errors=True)
    session.install(*_groups("build"))
    session.run("python", "-m", "build", "--outdir", "dist")
    distributions = sorted(map(str, (ROOT / "dist").glob("*")))
    session.run("twine", "check", "--strict", *distributions)
    return distributions


#: What twine reads from the environment to upload; nothing of it is ever put on a command line,
#: because nox echoes every command it runs.
TWINE_VARIABLES = ("TWINE_REPOSITORY_URL", "TWINE_USERNAME", "TWINE_PASSWORD")


@nox.session
def publish(session: nox.Session) -> None:
    """Build the sdist and wheel, then upload them with twine to the index the environment names.

    The index and its credentials come only from ``TWINE_REPOSITORY_URL``, ``TWINE_USERNAME`` and
    ``TWINE_PASSWORD``. The session refuses to start, naming the variable (never a value), when one
    is unset or the URL holds credentials, so a forgotten URL can never fall back to the public PyPI.
    """
    missing = [name for name in TWINE_VARIABLES if not os.environ.get(name)]
    if missing:
        session.error(f"set {', '.join(missing)} in the environment (see docs/release.md)")
    url = urllib.parse.urlsplit(os.environ["TWINE_REPOSITORY_URL"])
    if url.username is not None or url.password is not None:
        session.error("TWINE_REPOSITORY_URL holds credentials: set them in TWINE_USERNAME/PASSWORD")
    distributions = _build(session)
    session.run("twine", "upload", "--non-interactive", "--disable-progress-bar", *distributions)


@nox.session
def clean_install(session: nox.Session) -> None:
    """Install the wheel alone (no test dependencies) and run the S3 and Azure paths through it.

    The S3 server is moto, started with the ``tests`` session's interpreter because moto is a test
    dependency; ``-- --azurite-env FILE`` adds the Azure checks against a running Azurite.
    """
    server_python = ROOT / ".nox" / "tests" / "bin" / "python"
    if not server_python.exists():
        session.error("run `nox -s tests` first: moto is started from its environment")
    wheels = ROOT / "dist" / "clean-install"
    shutil.rmtree(wheels, ignore_errors=True)
    session.run("python", "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(wheels), ".")
    (wheel,) = wheels.glob("*.whl")
    session.run("python", "-m", "pip", "install", str(wheel))
    check = ["python", "scripts/clean_install_check.py", "--server-python", str(server_python)]
    session.run(*check)
    if session.posargs:
        session.run("python", "-m", "pip", "install", f"{wheel}[azure]")
        session.run(*check, *session.posargs)


@nox.session
def publish_roundtrip(session: nox.Session) -> None:
    """Publish to a local password-protected index, install from it alone and run the demo.

    ``scripts/publish_roundtrip.sh`` runs ``nox -s publish`` with this very interpreter's nox.
    """
    session.install(*_groups("publish-roundtrip"))
    env = {"NOX_PYTHON": sys.executable}
    session.run("bash", "scripts/publish_roundtrip.sh", env=env, external=True)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation; any warning is an error."""
    session.install(".[azure]", *_groups("docs"))
    shutil.rmtree(ROOT / "docs" / "_build", ignore_errors=True)
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmarks; results are ratios to baselines measured in the same run.

    ``nox -s bench -- suite`` runs only the issue-10 suite beside restic and rclone (Debian's
    packages, installed here if missing); ``BENCH_SCALE=0.0625`` makes it a smoke run.
    """
    session.install(".[azure]", *_groups("bench"))
    session.run("bash", "scripts/bench_peers.sh", external=True)
    session.run("python", "benchmarks/run.py", *session.posargs)
