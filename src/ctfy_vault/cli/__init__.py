"""The ``ctfy-vault`` command: a thin layer over the library."""

from ctfy_vault.cli._main import main

__all__ = ["main"]


def run() -> None:
    """Console-script entry point: run `main` and exit with its code."""
    raise SystemExit(main())
