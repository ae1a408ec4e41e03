"""Unit tests of ``ctfy_vault.storage``."""
