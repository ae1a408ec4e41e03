"""Unit tests of ``ctfy_vault.crypto``."""
