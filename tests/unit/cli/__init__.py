"""Unit tests of ``ctfy_vault.cli``."""
