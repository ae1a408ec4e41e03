"""The storage contract, the same assertions on every backend."""
