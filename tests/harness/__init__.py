"""Harnesses: crashes, storage and network faults, hostile input, memory bounds, secret leaks."""
