"""Unit tests of ``ctfy_vault.retention``."""
