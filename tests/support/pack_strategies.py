"""Strategies and helpers for the format v2 pack and index tests: sealed chunks, packs, nonces."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable, Sequence

from hypothesis import strategies as st

from ctfy_vault.crypto import Cipher, Kind, SealedChunk, Sealer
from ctfy_vault.repository import (
    PACK_NAME,
    PACK_VERSION,
    TRAILER_SIZE,
    Pack,
    PackBuilder,
    PackEntry,
    padme,
)
from tests.support.crypto_strategies import FIXED_KEYS, FIXED_REPO_ID

#: The smallest target size, so small hypothesis chunks still fill several packs.
SMALL_PACK = 4 * 2**10


def fixed_sealer(cipher: Cipher = Cipher.AES_256_GCM) -> Sealer:
    """A sealer with the fixed test keys and repository id (random nonces)."""
    if cipher is Cipher.NONE:
        return Sealer.plaintext(repo_id=FIXED_REPO_ID)
    return Sealer(repo_id=FIXED_REPO_ID, keys=FIXED_KEYS, cipher=cipher)


sealers = st.sampled_from([Cipher.AES_256_GCM, Cipher.CHACHA20_POLY1305, Cipher.NONE]).map(
    fixed_sealer
)

#: Distinct chunk plaintexts: random bytes (stored as is) and repetitive text (compressed).
chunk_plaintexts = st.lists(
    st.one_of(
        st.binary(max_size=3000),
        st.builds(lambda word, n: word * n, st.binary(min_size=1, max_size=6), st.integers(1, 900)),
    ),
    min_size=1,
    max_size=12,
    unique=True,
)


def nonce_sequence(nonces: Iterable[bytes]) -> Callable[[int], bytes]:
    """A ``randbytes`` that hands out the given nonces in order (for golden vectors)."""
    pending = iter(nonces)

    def randbytes(n: int) -> bytes:
        nonce = next(pending)
        assert len(nonce) == n
        return nonce

    return randbytes


def build_pack(sealer: Sealer, chunks: Sequence[SealedChunk]) -> Pack:
    """One pack holding every chunk, whatever the target size."""
    builder = PackBuilder(sealer, target_size=SMALL_PACK)
    for chunk in chunks:
        builder.add(chunk)
    return builder.finish()


def raw_pack(
    sealer: Sealer,
    chunks: Sequence[bytes],
    header_plaintext: bytes,
    *,
    trailer_plaintext: bytes | None = None,
) -> bytes:
    """Assemble a pack by hand around any header plaintext (to test what readers refuse)."""
    body = bytearray(b"".join(chunks))
    header_offset = len(body)
    header = sealer.seal(Kind.PACK_HEADER, PACK_NAME, header_plaintext, compress=False)
    body += header
    unpadded = len(body) + TRAILER_SIZE
    body += bytes(padme(unpadded) - unpadded)
    trailer = trailer_plaintext or struct.pack(">QQ", header_offset, len(header))
    body += sealer.seal(Kind.PACK_TRAILER, PACK_NAME, trailer, compress=False)
    return bytes(body)


def raw_header(entries: Sequence[PackEntry], *, version: int = PACK_VERSION) -> bytes:
    """A pack header's plaintext written from the spec, without the library's encoder."""
    return struct.pack(">BI", version, len(entries)) + b"".join(
        struct.pack(">32sQI", e.chunk_id, e.offset, e.length) for e in entries
    )


def sha256(data: bytes | bytearray | memoryview) -> bytes:
    """The SHA-256 digest (pack and index ids)."""
    return hashlib.sha256(data).digest()
