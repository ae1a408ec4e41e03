"""The keyed chunker's secret (format v2): a gear-table seed and a byte permutation.

Content-defined chunking cuts where a rolling hash of the data meets a condition, so with public
parameters anyone who holds a file can compute the chunk sizes it produces, and from the stored
object sizes confirm that the file is in a repository. Format v2 keys the cut: FastCDC runs over
the data with every byte value replaced by a secret permutation of the 256 values (equivalently,
the gear table permuted) and with a secret 63-bit seed XORed into the table. The seed alone would
be weak: the cut test reads only the 48 low bits of the hash, and those depend only on the low
bits of the seed, which a known file lets an attacker recover bit by bit. The permutation adds
log2(256!), about 1684 bits, that no such bit-by-bit search reaches.

Both are derived from the repository's chunk-id key with HKDF-SHA-256, so every writer of one
repository cuts alike (and deduplicates) and nothing about the cut is stored.
``docs/crypto.md`` explains the derivation.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any, Final

import attrs
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ctfy_vault.crypto._sealer import MasterKeys
from ctfy_vault.exceptions import ConfigurationError

CHUNKER_KEY_INFO: Final = b"ctfy-vault v2 chunker"
"""The HKDF ``info`` label; it separates the chunker's key from every other use of the keys."""

_SEED_SIZE: Final = 8
# pyfastcdc's compiled cutter computes ``seed << 1`` in 64 bits and refuses a seed of 2**63 or more;
# the top bit would only reach hash bits the cut test never reads anyway.
SEED_LIMIT: Final = 2**63
_STREAM_KEY_SIZE: Final = 32


def _check_seed(_instance: object, _attribute: object, value: Any) -> None:
    if type(value) is not int or not 0 <= value < SEED_LIMIT:
        raise ConfigurationError("a chunker seed must be an integer from 0 to 2**63 - 1")


def _check_permutation(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, bytes) or len(value) != 256 or len(set(value)) != 256:
        raise ConfigurationError("a chunker permutation must be 256 bytes holding every byte value")


@attrs.frozen
class ChunkerKey:
    """The secret that makes chunk boundaries unpredictable without the repository's keys.

    Neither field appears in the repr, in ``str`` or in any error text. Build it with
    `derive_chunker_key`; the constructor is for tests and known-answer vectors.

    Attributes:
        seed: the value, below 2**63, XORed into FastCDC's gear table (``pyfastcdc``'s ``seed``).
        permutation: 256 bytes, each byte value once; data byte ``b`` is hashed as
            ``permutation[b]`` (a ``bytes.translate`` table).
    """

    seed: int = attrs.field(repr=False, validator=_check_seed)
    permutation: bytes = attrs.field(repr=False, validator=_check_permutation)
    _inverse: bytes = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        inverse = bytearray(256)
        for value, image in enumerate(self.permutation):
            inverse[image] = value
        object.__setattr__(self, "_inverse", bytes(inverse))

    @property
    def inverse(self) -> bytes:
        """The inverse permutation, a ``bytes.translate`` table that undoes `permutation`."""
        return self._inverse


def derive_chunker_key(keys: MasterKeys) -> ChunkerKey:
    """Derive a repository's chunker key from its chunk-id key.

    HKDF-SHA-256 (no salt: the input is already a uniformly random 32-byte key) with the info
    `CHUNKER_KEY_INFO` gives 40 bytes: the first 8, big-endian with the top bit cleared, are the
    seed; the other 32 key an
    HMAC-SHA-256 counter stream whose bytes drive a Fisher-Yates shuffle of the 256 byte values,
    each draw by rejection sampling so that every permutation is equally likely.

    Args:
        keys: the repository's master keys.

    Returns:
        The chunker key; the same keys always give the same one.
    """
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=_SEED_SIZE + _STREAM_KEY_SIZE,
        salt=None,
        info=CHUNKER_KEY_INFO,
    ).derive(keys.chunk_id_key)
    seed = int.from_bytes(okm[:_SEED_SIZE], "big") % SEED_LIMIT
    return ChunkerKey(seed=seed, permutation=_shuffle(_stream(okm[_SEED_SIZE:])))


def _stream(key: bytes) -> Iterator[int]:
    """An unbounded keyed byte stream: HMAC-SHA-256(key, 8-byte big-endian counter) blocks."""
    counter = 0
    while True:
        yield from hmac.digest(key, counter.to_bytes(8, "big"), hashlib.sha256)
        counter += 1


def _shuffle(draws: Iterator[int]) -> bytes:
    """Fisher-Yates over the 256 byte values, each index drawn without bias from ``draws``."""
    values = bytearray(range(256))
    for top in range(255, 0, -1):
        span = top + 1
        # Accept only bytes below the largest multiple of span, so r % span is uniform.
        limit = 256 - 256 % span
        draw = next(draws)
        while draw >= limit:
            draw = next(draws)
        pick = draw % span
        values[top], values[pick] = values[pick], values[top]
    return bytes(values)
