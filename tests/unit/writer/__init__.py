"""Unit tests of ``ctfy_vault.writer``."""
