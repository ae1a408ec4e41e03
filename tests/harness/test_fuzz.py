"""Hostile input: the parsers of stored data and of the CLI config refuse garbage with library errors.

Each parser is fed mutated valid documents (byte flips, insertions, cuts) and structurally mutated
ones (a field replaced by any JSON value). Mutated manifests are sealed with the real key first, so
they get past authentication and reach the decoder. The property everywhere: the parser returns a
value or raises a `VaultError`; nothing else escapes, no example takes longer than the deadline, and a
declared size never drives an allocation. Then crafted manifests try to escape a restore.

atheris is not used: these parsers are pure Python over ``json``/``tomllib``/``zstandard``, where
hypothesis' structured mutations reach deeper than byte-level coverage guidance would, and a second
fuzzing engine would need its own CI job.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import os
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctfy_vault.cli._config import load_config, parse_config
from ctfy_vault.crypto import Kind, MasterKeys, RawKey, Sealer
from ctfy_vault.crypto._seal import FLAG_ZSTD, make_aead, seal_payload
from ctfy_vault.crypto._slots import KeySlot, decode_slot, encode_slot, open_slot
from ctfy_vault.exceptions import (
    ConfigurationError,
    FormatError,
    IntegrityError,
    VaultError,
)
from ctfy_vault.manifest import FileEntry, FileType, Manifest, decode, encode, open_entry
from ctfy_vault.vault import RepoConfig, Vault
from tests.support.crypto_strategies import FIXED_KEYS, FIXED_REPO_ID, manifests, prune_records
from tests.support.vaults import KEY, new_vault, plant, repo_sealer
from tests.support.writer_strategies import NOW

SEALER = Sealer(repo_id=FIXED_REPO_ID, keys=FIXED_KEYS)
#: Examples run per parser, counted for the report (printed at the end with ``-s``).
RUN: Counter[str] = Counter()
FUZZ = settings(
    max_examples=int(os.environ.get("CTFY_FUZZ_EXAMPLES", "200")),
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
)
#: The manifest strategies cost more to draw: fewer examples keep the module within a minute.
FUZZ_MANIFESTS = settings(FUZZ, max_examples=max(1, FUZZ.max_examples * 2 // 3))


@pytest.fixture(scope="module", autouse=True)
def _report_examples() -> Iterator[None]:
    """Print how many examples each parser was fed."""
    yield
    print(f"\nfuzz examples run: {sum(RUN.values())} {dict(sorted(RUN.items()))}")


T = TypeVar("T")


def accepted_or_refused(parse: Callable[[], T], *refusals: type[VaultError]) -> T | None:
    """Run ``parse``: return what it returns, or ``None`` when it raises one of ``refusals``.

    Any other exception fails the test, another library error included: a parser documented to
    refuse with `FormatError` must not pass by raising something else. The caller checks what an
    accepted input gave.
    """
    assert refusals, "name the errors that count as a refusal"
    try:
        return parse()
    except refusals:
        return None


# -- mutation strategies -------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
#: Values a careless or hostile writer would try in particular.
nasty_values = st.sampled_from(
    [
        None,
        True,
        -1,
        0,
        2**63,
        10**30,
        1.5,
        "",
        "../../etc/passwd",
        "/abs",
        "a\x00b",
        "\ud800",
        "ab" * 40,
        [],
        {},
        [None],
        {"a": 1},
        "chardev",
        "fifo",
        "device",
    ]
)


@st.composite
def byte_mutations(draw: st.DrawFn, original: bytes) -> bytes:
    """Flip, insert, delete or cut bytes of ``original`` (a few edits)."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "insert", "delete", "cut", "dup"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if action == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif action == "insert":
            data[at:at] = draw(
                st.binary(min_size=1, max_size=8) | st.sampled_from([b"\n", b"{", b'"'])
            )
        elif action == "delete" and data:
            del data[at : at + draw(st.integers(1, 8))]
        elif action == "cut":
            del data[at:]
        elif action == "dup" and data:
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


@st.composite
def json_mutations(draw: st.DrawFn, document: dict[str, Any]) -> dict[str, Any]:
    """Replace, drop or add one field anywhere in ``document`` (nested objects included)."""
    copy: dict[str, Any] = json.loads(json.dumps(document))
    node: Any = copy
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict | list) and child and draw(st.booleans()):
            node = child
            continue
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "replace":
            node[key] = draw(nasty_values | json_values)
        elif action == "drop" and isinstance(node, dict):
            del node[key]
        elif isinstance(node, dict):
            node[draw(st.text(max_size=6))] = draw(json_values)
        else:
            node.append(draw(json_values))
        break
    return copy


def canonical(value: object) -> bytes:
    """Sorted keys, no spaces, UTF-8: the form the manifest and key slot encoders write."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )


# -- manifests -------------------------------------------------------------------------------------


def _lines(entry: Manifest) -> list[bytes]:
    return list(encode(entry))


def _seal_plaintext(name: str, plaintext: bytes, kind: Kind = Kind.MANIFEST) -> bytes:
    return bytes(SEALER.seal_stream(kind, name, [plaintext]))


@FUZZ_MANIFESTS
@given(entry=manifests(max_files=3) | prune_records(), data=st.data())
def test_manifest_decoder_takes_mutated_bytes(entry: Any, data: st.DataObject) -> None:
    """A canonical encoding with bytes flipped, added or cut decodes or raises FormatError."""
    RUN["manifest bytes"] += 1
    mutated = data.draw(byte_mutations(b"".join(encode(entry))))
    decoded = accepted_or_refused(lambda: decode([mutated]), FormatError)
    if decoded is not None:  # the decoder takes only canonical lines, so it re-encodes the same
        entry_back, digest = decoded
        assert b"".join(encode(entry_back)) == mutated
        assert digest == hashlib.sha256(mutated).digest()


@FUZZ_MANIFESTS
@given(entry=manifests(max_files=3), data=st.data())
def test_sealed_manifest_with_mutated_fields_opens_or_raises(
    entry: Manifest, data: st.DataObject
) -> None:
    """A manifest line whose field was replaced, sealed with the real key, opens or is refused."""
    RUN["manifest fields (sealed)"] += 1
    lines = _lines(entry)
    index = data.draw(st.integers(0, len(lines) - 1))
    lines[index] = canonical(data.draw(json_mutations(json.loads(lines[index])))) + b"\n"
    plaintext = b"".join(lines)
    blob = _seal_plaintext(entry.name, plaintext)
    opened = accepted_or_refused(lambda: open_entry(SEALER, entry.name, blob), FormatError)
    if opened is not None:
        assert b"".join(encode(opened.entry)) == plaintext
        assert opened.hash == hashlib.sha256(plaintext).digest()


@FUZZ_MANIFESTS
@given(entry=manifests(max_files=3) | prune_records(), data=st.data())
def test_sealed_manifest_with_mutated_bytes_opens_or_raises(
    entry: Any, data: st.DataObject
) -> None:
    """Garbage inside a valid seal (a buggy or hostile writer with the key) is a FormatError."""
    RUN["manifest bytes (sealed)"] += 1
    plaintext = data.draw(byte_mutations(b"".join(encode(entry))))
    blob = _seal_plaintext(
        entry.name, plaintext, data.draw(st.sampled_from([Kind.MANIFEST, Kind.PRUNE_RECORD]))
    )
    opened = accepted_or_refused(lambda: open_entry(SEALER, entry.name, blob), FormatError)
    if opened is not None:
        assert b"".join(encode(opened.entry)) == plaintext
        assert opened.hash == hashlib.sha256(plaintext).digest()


@FUZZ_MANIFESTS
@given(entry=manifests(max_files=3), data=st.data())
def test_mutated_manifest_blob_fails_authentication(entry: Manifest, data: st.DataObject) -> None:
    """Any edit of a stored (sealed) manifest is refused before decoding."""
    RUN["manifest blob"] += 1
    blob = bytes(SEALER.seal_stream(Kind.MANIFEST, entry.name, encode(entry)))
    mutated = data.draw(byte_mutations(blob))
    if mutated == blob:
        return
    with pytest.raises((IntegrityError, FormatError)):
        open_entry(SEALER, entry.name, mutated)


def test_declared_totals_do_not_allocate() -> None:
    """A header declaring 10**18 files and bytes is refused without allocating for them."""
    header = json.loads(_lines(Manifest(snapshot_id="s", lineage="db", created=NOW, host="h"))[0])
    header.update(files=10**18, size=10**18, chunks=10**18)
    tracemalloc.start()
    try:
        with pytest.raises(FormatError):
            decode([canonical(header) + b"\n"])
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20


def test_manifest_nested_deeply_is_a_format_error() -> None:
    """A line of 100,000 nested arrays is refused as a FormatError, not a RecursionError."""
    name = "20261101T020000.000000Z-deep"
    with pytest.raises(FormatError):
        open_entry(SEALER, name, _seal_plaintext(name, b"[" * 100_000 + b"\n"))


# -- key slots -------------------------------------------------------------------------------------


def _slot_document() -> tuple[KeySlot, bytes]:
    slot = KeySlot(key_id="k1", type="raw", created=NOW, salt=bytes(16))
    document = encode_slot(slot, FIXED_KEYS, KEY, repo_id=FIXED_REPO_ID, nonce=bytes(12))
    return slot, document


@FUZZ
@given(data=st.data())
def test_key_slot_decoder_takes_mutated_documents(data: st.DataObject) -> None:
    """A key slot with bytes or fields mutated decodes or raises FormatError; opening it fails."""
    RUN["key slot"] += 1
    _slot, document = _slot_document()
    if data.draw(st.booleans()):
        mutated = data.draw(byte_mutations(document))
    else:
        mutated = canonical(data.draw(json_mutations(json.loads(document))))

    decoded = accepted_or_refused(lambda: decode_slot(mutated), FormatError)
    if decoded is None:
        return
    slot, blob = decoded
    keys = accepted_or_refused(
        lambda: open_slot(slot, blob, KEY, repo_id=FIXED_REPO_ID), IntegrityError, FormatError
    )
    assert keys is None or keys == FIXED_KEYS  # only the untouched slot (or a no-op edit) opens


def test_key_slot_declaring_huge_scrypt_cost_is_refused() -> None:
    """A slot asking scrypt for 2**40 x 8 x 128 bytes is refused before anything is derived."""
    _slot, document = _slot_document()
    value = json.loads(document)
    value.update(
        type="passphrase", kdf={"name": "scrypt", "n": 2**40, "r": 8, "p": 1, "salt": "00"}
    )
    with pytest.raises(FormatError):
        decode_slot(canonical(value))


def test_key_slot_larger_than_the_limit_is_refused() -> None:
    """A multi-megabyte key slot is refused without being parsed."""
    with pytest.raises(FormatError):
        decode_slot(b" " * (4 * 2**20) + b"{}")


# -- chunks ----------------------------------------------------------------------------------------


@FUZZ
@given(plain=st.binary(max_size=3000) | st.just(b"abc" * 2000), data=st.data())
def test_chunk_open_takes_mutated_blobs(plain: bytes, data: st.DataObject) -> None:
    """A mutated chunk blob opens to its own plaintext or raises; it never opens to other bytes."""
    RUN["chunk"] += 1
    chunk = SEALER.seal_chunk(plain)
    mutated = data.draw(byte_mutations(bytes(chunk.blob)))
    try:
        opened = SEALER.open_chunk(chunk.id, mutated)
    except VaultError:
        return
    assert opened == plain


@FUZZ
@given(
    payload=st.binary(max_size=200) | st.binary(max_size=64).map(lambda b: b * 100), data=st.data()
)
def test_chunk_with_garbage_inside_a_valid_seal_is_refused(
    payload: bytes, data: st.DataObject
) -> None:
    """A payload marked compressed but holding garbage (sealed with the key) raises, never crashes."""
    RUN["chunk payload (sealed)"] += 1
    frame = zstandard.ZstdCompressor().compress(payload)
    body = data.draw(st.sampled_from([frame, payload]) | byte_mutations(frame))
    blob = seal_payload(
        make_aead(SEALER.cipher, FIXED_KEYS.data_key),
        cipher=SEALER.cipher,
        kind=Kind.CHUNK,
        flags=FLAG_ZSTD,
        nonce=os.urandom(12),
        repo_id=FIXED_REPO_ID,
        name=b"00" * 32,
        payload=body,
    )
    opened = accepted_or_refused(
        lambda: SEALER.open(Kind.CHUNK, "00" * 32, blob, max_size=2**16), FormatError
    )
    if opened is not None:
        assert len(opened) <= 2**16
        if body == frame:
            assert opened == payload


def test_chunk_declaring_a_huge_size_is_refused_without_allocating() -> None:
    """A compressed chunk declaring more than the limit is refused before decompression."""
    bomb = zstandard.ZstdCompressor().compress(bytes(8 * 2**20))
    blob = SEALER.seal(Kind.CHUNK, "00" * 32, b"", compress=False)
    sealed = seal_payload(
        make_aead(SEALER.cipher, FIXED_KEYS.data_key),
        cipher=SEALER.cipher,
        kind=Kind.CHUNK,
        flags=FLAG_ZSTD,
        nonce=bytes(12),
        repo_id=FIXED_REPO_ID,
        name=b"00" * 32,
        payload=bomb,
    )
    assert blob
    tracemalloc.start()
    try:
        with pytest.raises(FormatError):
            SEALER.open(Kind.CHUNK, "00" * 32, sealed, max_size=2**20)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20


# -- repository config -----------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_repository_config_parser_takes_mutated_documents(data: st.DataObject) -> None:
    """A config with bytes or fields mutated parses or raises FormatError."""
    RUN["repository config"] += 1
    document = RepoConfig(repo_id=bytes(16)).to_json()
    if data.draw(st.booleans()):
        mutated = data.draw(byte_mutations(document) | st.binary(max_size=64))
    else:
        mutated = canonical(data.draw(json_mutations(json.loads(document))))
    config = accepted_or_refused(lambda: RepoConfig.from_json(mutated), FormatError)
    if config is not None:
        assert RepoConfig.from_json(config.to_json()) == config


def test_repository_config_nested_deeply_is_a_format_error() -> None:
    """Regression: 100,000 nested arrays in ``config`` raised RecursionError from Vault.open."""
    with pytest.raises(FormatError):
        RepoConfig.from_json(b"[" * 100_000)


# -- CLI config ------------------------------------------------------------------------------------

VALID_TOML = """\
[repository]
key = { env = "CTFY_KEY", type = "raw" }

[[targets]]
url = "s3://backups/db"
name = "ams"
endpoint_url = "https://ams3.digitaloceanspaces.com"
region = "ams3"
credentials_env = { key = "SPACES_KEY", secret = "SPACES_SECRET" }

[[targets]]
url = "/srv/backups"

[lineages.db]
policy = "contractify"
sources = ["/var/backups/db.sql"]
tags = ["daily"]

[lineages.files]
policy = { daily = 14, weekly = 8, monthly = 6, yearly = 1 }
"""


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if math.isfinite(value) else "1"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
        )
    return '""'


@FUZZ
@given(data=st.data())
def test_cli_config_parser_takes_mutated_text(data: st.DataObject) -> None:
    """A config with characters changed, lines dropped or values replaced: ConfigurationError only."""
    RUN["cli config"] += 1
    lines = VALID_TOML.splitlines()
    choice = data.draw(st.sampled_from(["bytes", "line", "value", "text"]))
    if choice == "bytes":
        text = data.draw(byte_mutations(VALID_TOML.encode())).decode("utf-8", "replace")
    elif choice == "line":
        index = data.draw(st.integers(0, len(lines) - 1))
        del lines[index]
        text = "\n".join(lines)
    elif choice == "value":
        index = data.draw(st.sampled_from([i for i, line in enumerate(lines) if " = " in line]))
        key = lines[index].split(" = ", 1)[0]
        lines[index] = f"{key} = {_toml_value(data.draw(nasty_values | json_values))}"
        text = "\n".join(lines)
    else:
        text = data.draw(st.text(max_size=200))

    def parse() -> None:
        config = parse_config(text, path=Path("fuzz.toml"))
        config.policies()
        for lineage in config.lineages:
            config.lineage(lineage)

    with contextlib.suppress(ConfigurationError):
        parse()


def test_cli_config_file_that_is_not_utf8_is_a_configuration_error(tmp_path: Path) -> None:
    """A config file with invalid UTF-8 is refused as a ConfigurationError naming the file."""
    path = tmp_path / "bad.toml"
    path.write_bytes(VALID_TOML.encode() + b"\xff\xfe")
    with pytest.raises(ConfigurationError, match=r"bad\.toml"):
        load_config(path)


def test_cli_config_nested_deeply_is_a_configuration_error() -> None:
    """A TOML value of 5,000 nested arrays is refused as a ConfigurationError."""
    with pytest.raises(ConfigurationError):
        parse_config("a = " + "[" * 5000 + "]" * 5000, path=Path("deep.toml"))


def test_cli_config_key_file_of_unknown_user_is_a_configuration_error() -> None:
    """``file = "~nosuchuser/key"`` is refused as a ConfigurationError, not a RuntimeError."""
    text = '[repository]\nkey = { file = "~ctfy-no-such-user/key" }\n[[targets]]\nurl = "/srv/b"\n'
    with pytest.raises(ConfigurationError):
        parse_config(text, path=Path("user.toml"))


def test_cli_config_key_file_with_nul_is_a_configuration_error() -> None:
    """A key file path holding NUL fails as a ConfigurationError when the key is read."""
    text = '[repository]\nkey = { file = "/tmp/k\\u0000ey" }\n[[targets]]\nurl = "/srv/b"\n'
    config = parse_config(text, path=Path("nul.toml"))
    with pytest.raises(ConfigurationError):
        config.key.credential({})


# -- restore of crafted manifests ------------------------------------------------------------------


def _empty_file(path: str, **kwargs: Any) -> FileEntry:
    return FileEntry(
        path=path,
        type=FileType.FILE,
        mode=0o644,
        mtime_ns=0,
        sha256=hashlib.sha256(b"").digest(),
        **kwargs,
    )


def _plant_lines(vault: Vault, snapshot_id: str, files: list[dict[str, Any]]) -> str:
    """Seal a manifest whose file lines are given as raw dicts (past the model's own checks)."""
    header = json.loads(
        _lines(Manifest(snapshot_id=snapshot_id, lineage="files", created=NOW, host="h"))[0]
    )
    header.update(files=len(files), size=sum(f.get("size", 0) for f in files), chunks=0)
    name = f"{NOW.strftime('%Y%m%dT%H%M%S.%fZ')}-{snapshot_id}"
    text = canonical(header) + b"\n" + b"".join(canonical(f) + b"\n" for f in files)
    blob = bytes(repo_sealer(vault).seal_stream(Kind.MANIFEST, name, [text]))
    for target in vault.targets:
        target.write(f"snapshots/{name}", blob)
    return name


def _outside(tmp_path: Path, dest: Path) -> list[str]:
    return sorted(
        str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if dest not in (p, *p.parents)
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"type": "chardev"},  # a device without its numbers
        {"type": "blockdev"},
        {"type": "blockdev", "device": [8, -1]},
        {"type": "fifo", "device": [8, 0]},  # numbers on a fifo
        {"type": "fifo", "link": "/dev/sda"},
        {"type": "socket"},
        {"type": "device"},
        {"type": "hardlink"},  # a hard link to nothing
        {"type": "hardlink", "link": "/etc/shadow"},
        {"type": "hardlink", "link": "../outside"},
        {"type": "hardlink", "link": "dev/sdb"},  # a path the manifest does not hold
    ],
)
def test_restore_refuses_malformed_device_and_special_file_entries(
    tmp_path: Path, changes: dict[str, Any]
) -> None:
    """A device without numbers, a socket, a hard link to nothing earlier...: refused, nothing made."""
    vault = new_vault()
    line: dict[str, Any] = {
        "chunks": [],
        "link": None,
        "mode": 0o666,
        "mtime_ns": 0,
        "path": "dev/sda",
        "sha256": None,
        "size": 0,
        "type": "fifo",
        **changes,
    }
    name = _plant_lines(vault, "special", [line])
    dest = tmp_path / "out"
    with pytest.raises(FormatError):
        vault.restore(name, dest)
    assert not dest.exists()


def test_restore_refuses_absurd_declared_sizes_without_allocating(tmp_path: Path) -> None:
    """A file entry claiming 2**62 bytes over one real chunk fails its integrity check, in bounded memory."""
    vault = new_vault()
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"real data " * 100)
    info = vault.backup([src], lineage="files", host="h", now=NOW)
    (real,) = [e for e in vault.manifest(info).files if e.type is FileType.FILE]
    lying = FileEntry(
        path="src/f",
        type=FileType.FILE,
        mode=0o644,
        mtime_ns=0,
        size=2**62,
        chunks=real.chunks,
        sha256=real.sha256,
    )
    name = plant(
        vault,
        Manifest(
            snapshot_id="huge",
            lineage="files",
            created=NOW + timedelta(hours=1),
            host="h",
            files=[lying],
        ),
    )
    dest = tmp_path / "out"
    tracemalloc.start()
    try:
        with pytest.raises(IntegrityError):
            vault.restore(name, dest)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20


def test_restore_refuses_a_file_below_a_file_or_a_link(tmp_path: Path) -> None:
    """``a`` and ``a/b`` both files, or ``a`` a link and ``a/x`` a file: refused, nothing outside."""
    vault = new_vault()
    first = plant(
        vault,
        Manifest(
            snapshot_id="nested",
            lineage="files",
            created=NOW,
            host="h",
            files=[_empty_file("a"), _empty_file("a/b")],
        ),
    )
    second = plant(
        vault,
        Manifest(
            snapshot_id="through",
            lineage="files",
            created=NOW + timedelta(seconds=1),
            host="h",
            files=[
                FileEntry(path="a", type=FileType.SYMLINK, mode=0o777, mtime_ns=0, link="b"),
                _empty_file("a/x"),
            ],
        ),
    )
    before = _outside(tmp_path, tmp_path / "out1")
    for n, name in enumerate((first, second), 1):
        dest = tmp_path / f"out{n}"
        # Refused either as the library's FormatError or by the OS (the CLI reports both).
        with pytest.raises((FormatError, OSError)):
            vault.restore(name, dest)
        assert not (dest / "a").is_symlink()
    assert [p for p in _outside(tmp_path, tmp_path / "out1") if not p.startswith("out2")] == before


def test_restore_of_a_name_too_long_for_the_filesystem_fails_inside_dest(tmp_path: Path) -> None:
    """A 300-byte path segment fails with the OS's error; nothing is written outside ``dest``."""
    vault = new_vault()
    name = plant(
        vault,
        Manifest(
            snapshot_id="long",
            lineage="files",
            created=NOW,
            host="h",
            files=[_empty_file("x" * 300)],
        ),
    )
    dest = tmp_path / "out"
    with pytest.raises(OSError, match="too long"):
        vault.restore(name, dest)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_raw_key_from_env_takes_only_32_bytes() -> None:
    """Garbage in a raw key variable is a ConfigurationError that does not quote the value."""
    for text in ["", "zz" * 32, base64.b64encode(bytes(31)).decode(), "0" * 63, "\x00" * 64]:
        with pytest.raises(ConfigurationError) as caught:
            RawKey.from_env("K", {"K": text})
        assert text not in str(caught.value) or not text


def test_master_keys_round_trip_is_the_only_way_through_a_slot() -> None:
    """Sanity: the unmutated slot used by the fuzzers opens to the fixed keys."""
    slot, document = _slot_document()
    parsed, blob = decode_slot(document)
    assert parsed == slot
    assert open_slot(parsed, blob, KEY, repo_id=FIXED_REPO_ID) == FIXED_KEYS
    assert MasterKeys(data_key=bytes(32), chunk_id_key=bytes(32)) != FIXED_KEYS
