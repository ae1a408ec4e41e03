"""Integration tests against real servers and programs (Ceph RGW, Azurite, PostgreSQL, restic)."""
