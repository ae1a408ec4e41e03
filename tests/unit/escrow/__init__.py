"""Unit tests of ``ctfy_vault.escrow``."""
