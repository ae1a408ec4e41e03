"""Unit tests of ``ctfy_vault.links``."""
