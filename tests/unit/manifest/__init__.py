"""Unit tests of ``ctfy_vault.manifest``."""
