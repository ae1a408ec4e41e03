"""The ``ctfy-vault`` command: a thin layer over the library."""

from ctfy_vault.cli._main import main

__all__ = ["main"]
