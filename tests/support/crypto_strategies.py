"""Hypothesis strategies for the crypto and manifest tests: sealers, names, payloads, manifests."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from ctfy_vault.crypto import ChunkerKey, Cipher, Kind, MasterKeys, Sealer
from ctfy_vault.manifest import FileEntry, FileType, Forgotten, Manifest, PruneRecord

FIXED_REPO_ID = bytes(range(16))
FIXED_KEYS = MasterKeys(data_key=bytes(range(32)), chunk_id_key=bytes(range(32, 64)))


repo_ids = st.binary(min_size=16, max_size=16)
keys = st.builds(
    MasterKeys,
    data_key=st.binary(min_size=32, max_size=32),
    chunk_id_key=st.binary(min_size=32, max_size=32),
)
# Any chunker key, derived or not: a seed pyfastcdc accepts and any permutation of the byte values.
chunker_keys = st.builds(
    ChunkerKey,
    seed=st.integers(0, 2**63 - 1),
    permutation=st.permutations(range(256)).map(bytes),
)
ciphers = st.sampled_from([Cipher.AES_256_GCM, Cipher.CHACHA20_POLY1305])
kinds = st.sampled_from(list(Kind))
names = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="\x7f"),
    min_size=1,
    max_size=40,
)
# Mixed payloads: random bytes (stored as is) and repetitive text (compressed).
payloads = st.one_of(
    st.binary(max_size=2048),
    st.builds(lambda word, n: word * n, st.binary(min_size=1, max_size=8), st.integers(1, 500)),
)


@st.composite
def sealers(draw: st.DrawFn) -> Sealer:
    """An encrypted sealer with drawn keys, repository id and cipher."""
    return Sealer(repo_id=draw(repo_ids), keys=draw(keys), cipher=draw(ciphers))


# -- manifests -------------------------------------------------------------------------------

_segment = st.text(
    alphabet=st.characters(
        min_codepoint=0x20,
        max_codepoint=0x10FF,
        exclude_characters="/\x7f",
        exclude_categories=["Cs"],
    ),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in {".", ".."})
paths = st.lists(_segment, min_size=1, max_size=4).map("/".join)
ident = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,15}", fullmatch=True)
times = st.datetimes(
    min_value=datetime(2000, 1, 1),  # made aware by timezones=
    max_value=datetime(2100, 1, 1),
    timezones=st.just(UTC),
)
digests = st.binary(min_size=32, max_size=32)
label_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=10
)


@st.composite
def file_entries(draw: st.DrawFn, path: str) -> FileEntry:
    """A file, directory or symlink entry at ``path``."""
    kind = draw(st.sampled_from(list(FileType)))
    mode = draw(st.integers(0, 0o7777))
    mtime_ns = draw(st.integers(-(2**62), 2**62))
    if kind is FileType.FILE:
        chunks = tuple(draw(st.lists(digests, max_size=4)))
        return FileEntry(
            path=path,
            type=kind,
            mode=mode,
            mtime_ns=mtime_ns,
            size=draw(st.integers(0, 2**50)),
            chunks=chunks,
            sha256=draw(digests),
        )
    if kind is FileType.SYMLINK:
        return FileEntry(path=path, type=kind, mode=mode, mtime_ns=mtime_ns, link=draw(label_text))
    return FileEntry(path=path, type=kind, mode=mode, mtime_ns=mtime_ns)


@st.composite
def manifests(draw: st.DrawFn, max_files: int = 8) -> Manifest:
    """A snapshot manifest with up to ``max_files`` entries."""
    unique_paths = draw(st.lists(paths, max_size=max_files, unique=True))
    return Manifest(
        snapshot_id=draw(ident),
        lineage=draw(ident),
        created=draw(times),
        host=draw(label_text),
        tags=draw(st.frozensets(label_text, max_size=3)),
        labels=draw(st.dictionaries(label_text, label_text, max_size=3)),
        sources=tuple(draw(st.lists(label_text, max_size=3))),
        files=tuple(draw(file_entries(path)) for path in unique_paths),
        previous=draw(st.none() | digests),
    )


@st.composite
def prune_records(draw: st.DrawFn) -> PruneRecord:
    """A prune record forgetting a few snapshots."""
    forgotten = draw(
        st.lists(
            st.builds(Forgotten, snapshot_id=ident, hash=digests),
            max_size=5,
            unique_by=lambda f: f.snapshot_id,
        )
    )
    return PruneRecord(
        record_id=draw(ident),
        lineage=draw(ident),
        created=draw(times),
        host=draw(label_text),
        forgotten=tuple(forgotten),
        previous=draw(st.none() | digests),
    )


entries = st.one_of(manifests(), prune_records())
