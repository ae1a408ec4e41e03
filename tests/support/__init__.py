"""Helpers shared by the test tiers: servers, fault wrappers, strategies, vault and CLI set-ups."""
