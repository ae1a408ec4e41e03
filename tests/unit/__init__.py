"""Unit tests, by package (memory, local disk and in-process moto only, besides a few marked tests)."""
