"""Unit tests of ``ctfy_vault.mirror``."""
