"""The known-file attack on chunk sizes: it works on format v1, and the keyed chunker stops it.

A storage provider that already holds a file (a leaked document, a public installer) wants to know
whether a repository stores it. It reads what anyone with bucket access reads, the plaintext
``config`` (chunker settings) and the object sizes, and adds what the software publishes: the
sealing overhead. With format v1's unkeyed chunker it can compute the chunk boundaries itself, so
the stored sizes are predictable exactly. The keyed chunker (format v2) cuts where only the
repository's keys say.

The file is random, so no chunk is compressed and each stored size is its length plus `OVERHEAD`;
for compressible data the attacker would compress each predicted chunk at the public level, which
is just as deterministic.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyfastcdc import FastCDC

from ctfy_vault.crypto import OVERHEAD, ChunkerKey, Sealer, derive_chunker_key
from ctfy_vault.repository import INDEX_PREFIX, OBJECTS_PREFIX, PACKS_PREFIX, padme, unlock
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault
from ctfy_vault.writer import DEFAULT_CHUNKER, iter_chunks
from tests.support.vaults import KEY
from tests.support.writer_strategies import FAST_RETRY, NOW

FILE_SIZE = 12 * 2**20
LOW_24 = 2**24 - 1
# The bounded stand-in for sweeping all 2**24 low seed values: this many values around the true
# ones. It contains the true low bits, so a sweep that could succeed at all succeeds in it.
WINDOW = 2048


def known_file(path: Path) -> bytes:
    """Write the 12 MiB file the attacker also holds, and return its bytes."""
    data = random.Random(12).randbytes(FILE_SIZE)  # noqa: S311 - test data, not secrets
    path.write_bytes(data)
    return data


def public_chunker(config: bytes, seed: int = 0) -> FastCDC:
    """FastCDC as the plaintext ``config`` describes it (and, for the search, a guessed seed)."""
    chunker = json.loads(config)["chunker"]
    assert chunker["algorithm"] == "fastcdc2020"
    return FastCDC(
        chunker["avg_size"],
        min_size=chunker["min_size"],
        max_size=chunker["max_size"],
        seed=seed,
    )


def predict(data: bytes, cdc: FastCDC) -> Counter[int]:
    """The object sizes the attacker expects: each chunk's length plus the public overhead."""
    return Counter(chunk.length + OVERHEAD for chunk in cdc.cut_buf(data))


def first_size(data: bytes, cdc: FastCDC) -> int:
    """Only the first predicted object size: the cheap filter of a brute-force search."""
    return next(iter(cdc.cut_buf(data))).length + OVERHEAD


def search(data: bytes, config: bytes, stored: Counter[int], seeds: Iterator[int]) -> int | None:
    """Try each seed with the default gear table; the first whose prediction is exact, if any."""
    for seed in seeds:
        cdc = public_chunker(config, seed)
        if first_size(data, cdc) in stored and predict(data, cdc) == stored:
            return seed
    return None


def window(seed: int) -> Iterator[int]:
    """Seeds with the true upper bits and low 24 bits near the true ones, the true one among them."""
    upper, low = seed & ~LOW_24, seed & LOW_24
    for guess in range(low - WINDOW // 2, low + WINDOW // 2):
        yield upper | (guess & LOW_24)


def keyed_sizes(data: bytes, sealer: Sealer, key: ChunkerKey) -> Counter[int]:
    """The sizes of the objects the keyed chunker's chunks seal to, under the repository's keys."""
    chunks = iter_chunks(_Reader(data), DEFAULT_CHUNKER, key)
    return Counter(len(sealer.seal_chunk(chunk).blob) for chunk in chunks)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)

    def read(self, size: int, /) -> bytes:
        piece, self._view = self._view[:size], self._view[size:]
        return piece.tobytes()


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, Counter[int], Sealer]:
    """A v1 repository on local disk holding the known file: its config, stored sizes, sealer."""
    root = tmp_path_factory.mktemp("known-file")
    data = known_file(root / "installer.bin")
    target = Target.from_url(str(root / "repo"), name="disk", retry=FAST_RETRY)
    vault = Vault.init([target], key=KEY, now=NOW, format=1)
    vault.backup([root / "installer.bin"], lineage="files", host="h", now=NOW)
    stored = Counter(entry.size for entry in target.entries(OBJECTS_PREFIX))
    keys = unlock(target, repo_id=vault.repo_id, credential=KEY)
    return data, target.read("config"), stored, Sealer(repo_id=vault.repo_id, keys=keys)


def test_v1_object_sizes_are_predicted_exactly(
    scene: tuple[bytes, bytes, Counter[int], Sealer],
) -> None:
    """From the file, the plaintext config and OVERHEAD alone, every v1 object size is predicted."""
    data, config, stored, _sealer = scene
    assert sum(stored.values()) >= 5  # a 12 MiB file cut into about 1.5 MiB chunks
    assert predict(data, public_chunker(config)) == stored


def test_keyed_chunks_defeat_the_public_prediction(
    scene: tuple[bytes, bytes, Counter[int], Sealer],
) -> None:
    """Keyed with the repository's own keys, the sealed sizes no longer match the prediction."""
    data, config, _stored, sealer = scene
    assert sealer.keys is not None
    keyed = keyed_sizes(data, sealer, derive_chunker_key(sealer.keys))
    predicted = predict(data, public_chunker(config))
    assert keyed != predicted
    # Boundaries are unrelated, so sizes coincide only by chance (about 1 in 10,000 per run for
    # a single one); at most one is allowed so the test cannot fail by bad luck.
    assert sum((keyed & predicted).values()) <= 1
    assert sum(keyed.values()) >= 5


@pytest.mark.slow
def test_seed_search_without_the_permutation_fails(
    scene: tuple[bytes, bytes, Counter[int], Sealer],
) -> None:
    """Searching the seed's low 24 bits finds a seed-only chunker, never the keyed one."""
    data, config, _stored, sealer = scene
    assert sealer.keys is not None
    key = derive_chunker_key(sealer.keys)
    # Control: were the seed the whole secret, this search would recover it, and 48 bits of it
    # would do (the cut test never reads the hash's upper bits).
    seed_only = predict(data, public_chunker(config, key.seed))
    assert search(data, config, seed_only, window(key.seed & (2**48 - 1))) is not None
    # With the permutation the same search, true seed included, predicts nothing.
    keyed = keyed_sizes(data, sealer, key)
    assert search(data, config, keyed, window(key.seed)) is None
    assert predict(data, public_chunker(config, key.seed)) != keyed


def test_v2_stored_sizes_predict_nothing(
    tmp_path: Path, scene: tuple[bytes, bytes, Counter[int], Sealer]
) -> None:
    """On v2 the same file stores as padded packs: no stored size is a predicted chunk's."""
    data, _v1_config, _stored, _sealer = scene
    (tmp_path / "installer.bin").write_bytes(data)
    target = Target.from_url(str(tmp_path / "repo"), name="disk", retry=FAST_RETRY)
    vault = Vault.init([target], key=KEY, now=NOW)
    vault.backup([tmp_path / "installer.bin"], lineage="files", host="h", now=NOW)
    config = target.read("config")
    assert json.loads(config)["format"] == 2
    stored = [
        entry.size for prefix in (PACKS_PREFIX, INDEX_PREFIX) for entry in target.entries(prefix)
    ]
    assert len(stored) >= 2  # the pack and its index object
    assert not list(target.entries(OBJECTS_PREFIX))
    predicted = predict(data, public_chunker(config))
    assert sum(predicted.values()) >= 5
    # The v1 attack fails outright: not one stored object has a predicted chunk's size ...
    assert not set(stored) & set(predicted)
    # ... and every stored size is a Padme value, so sizes move in steps that hide the chunks'.
    assert all(padme(size) == size for size in stored)
