"""Unit tests of ``ctfy_vault.export``."""
