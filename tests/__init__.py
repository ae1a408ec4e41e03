"""The ctfy_vault test suite, in tiers.

- ``unit/<package>``: one package's behaviour on memory, local disk and the in-process moto S3.
- ``contract``: the storage contract, run over every backend (memory, local, moto, Ceph RGW, Azurite).
- ``integration``: real servers and programs (RGW, Azurite, PostgreSQL, restic).
- ``harness``: crash, fault, fuzz, memory and secret-leak harnesses.
- ``support``: what the tiers share (servers, fault wrappers, strategies, set-ups); no tests.
"""
