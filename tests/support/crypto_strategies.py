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


ids = st.integers(0, 2**32 - 1)
owner_names = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    min_size=1,
    max_size=8,
)
xattr_sets = st.dictionaries(
    st.sampled_from(["user.", "security.", "trusted.", "system."]).flatmap(
        lambda prefix: owner_names.map(lambda name: prefix + name)
    ),
    st.binary(max_size=40),
    max_size=3,
)


@st.composite
def owners(draw: st.DrawFn) -> dict[str, object]:
    """The optional owner fields: none, numbers only, or numbers with names."""
    found: dict[str, object] = {}
    if draw(st.booleans()):
        found["uid"] = draw(ids)
        found["user"] = draw(st.none() | owner_names)
    if draw(st.booleans()):
        found["gid"] = draw(ids)
        found["group"] = draw(st.none() | owner_names)
    return found


@st.composite
def file_entries(draw: st.DrawFn, path: str) -> FileEntry:
    """An entry at ``path`` of any type but a hard link, with or without the optional fields."""
    kind = draw(st.sampled_from([t for t in FileType if t is not FileType.HARDLINK]))
    common: dict[str, object] = {
        "path": path,
        "type": kind,
        "mode": draw(st.integers(0, 0o7777)),
        "mtime_ns": draw(st.integers(-(2**62), 2**62)),
        "xattrs": draw(xattr_sets),
        **draw(owners()),
    }
    if kind is FileType.FILE:
        chunks = tuple(draw(st.lists(digests, max_size=4)))
        return FileEntry(
            **common,  # type: ignore[arg-type]
            size=draw(st.integers(0, 2**50)),
            chunks=chunks,
            sha256=draw(digests),
        )
    if kind is FileType.SYMLINK:
        return FileEntry(**common, link=draw(label_text))  # type: ignore[arg-type]
    if kind in (FileType.CHARDEV, FileType.BLOCKDEV):
        return FileEntry(**common, device=(draw(ids), draw(ids)))  # type: ignore[arg-type]
    return FileEntry(**common)  # type: ignore[arg-type]


_LINKABLE = (FileType.FILE, FileType.FIFO, FileType.CHARDEV, FileType.BLOCKDEV)


@st.composite
def manifests(draw: st.DrawFn, max_files: int = 8) -> Manifest:
    """A snapshot manifest with up to ``max_files`` entries, some of them hard links."""
    unique_paths = sorted(draw(st.lists(paths, max_size=max_files, unique=True)))
    files: list[FileEntry] = []
    for path in unique_paths:
        linkable = [entry.path for entry in files if entry.type in _LINKABLE]
        if linkable and draw(st.integers(0, 3)) == 0:
            files.append(
                FileEntry(
                    path=path,
                    type=FileType.HARDLINK,
                    mode=draw(st.integers(0, 0o7777)),
                    mtime_ns=draw(st.integers(-(2**62), 2**62)),
                    link=draw(st.sampled_from(linkable)),
                    **draw(owners()),  # type: ignore[arg-type]
                )
            )
        else:
            files.append(draw(file_entries(path)))
    return Manifest(
        snapshot_id=draw(ident),
        lineage=draw(ident),
        created=draw(times),
        host=draw(label_text),
        tags=draw(st.frozensets(label_text, max_size=3)),
        labels=draw(st.dictionaries(label_text, label_text, max_size=3)),
        sources=tuple(draw(st.lists(label_text, max_size=3))),
        files=tuple(files),
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
