"""Unit tests of ``ctfy_vault.vault``."""
