"""Unit tests of ``ctfy_vault.repository``."""
