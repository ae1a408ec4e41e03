"""Source-code escrow: deposit, verify and open over folders and git repositories."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest

from ctfy_vault import escrow
from ctfy_vault.crypto import RecipientIdentity, SigningKey
from ctfy_vault.escrow import (
    Receipt,
    deposit,
    generate_key_files,
    list_deposits,
    open_deposit,
    read_identity,
    read_receipt,
    read_signing_key,
    source_tree,
    verify_deposit,
)
from ctfy_vault.exceptions import (
    ConfigurationError,
    FormatError,
    IntegrityError,
    ObjectExistsError,
)
from ctfy_vault.storage import Target
from ctfy_vault.testing import memory_target
from tests.support.escrow import FILES, GIT_ENV, git, make_repo, write_tree

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
NOTARY = RecipientIdentity(bytes(range(32)))
TRUSTEE = RecipientIdentity(bytes(range(32, 64)))
STRANGER = RecipientIdentity(bytes(range(64, 96)))
DEPOSITOR = SigningKey(bytes(range(96, 128)))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with committed files and uncommitted edits."""
    return make_repo(tmp_path / "product")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A plain folder with files, an empty folder and a symlink."""
    root = tmp_path / "plain"
    write_tree(root, FILES)
    (root / "empty").mkdir()
    os.symlink("README.md", root / "readme-link")
    return root


@pytest.fixture
def target() -> Target:
    """A fresh in-memory target."""
    return memory_target()


def members(archive: bytes) -> dict[str, bytes | str | None]:
    """Map each tar member to its content (files), link target (symlinks) or None (folders)."""
    out: dict[str, bytes | str | None] = {}
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        for member in tar:
            if member.isfile():
                handle = tar.extractfile(member)
                assert handle is not None
                out[member.name] = handle.read()
            elif member.issym():
                out[member.name] = member.linkname
            else:
                out[member.name] = None
    return out


def make_deposit(source: Path, target: Target, **options: object) -> Receipt:
    """Deposit ``source`` for the notary, signed by the depositor."""
    options.setdefault("recipients", [NOTARY.public])
    return deposit(source, target, signing_key=DEPOSITOR, now=NOW, **options)  # type: ignore[arg-type]


def opened_bytes(target: Target, name: str, identity: RecipientIdentity, out: Path) -> bytes:
    """Open a deposit to a file and return the archive bytes."""
    open_deposit(target, name, identity, out=out)
    return out.read_bytes()


# -- round trips -----------------------------------------------------------------------------


def test_git_round_trip_has_the_committed_tree_only(
    repo: Path, target: Target, tmp_path: Path
) -> None:
    """A git deposit holds HEAD's committed files, modes and symlinks, not working-tree edits."""
    receipt = make_deposit(repo, target)
    assert receipt.source_kind == "git"
    assert receipt.commit == git(repo, "rev-parse", "HEAD").strip()
    assert receipt.ref == "HEAD"
    archive = opened_bytes(target, receipt.deposit, NOTARY, tmp_path / "out.tar")
    content = members(archive)
    assert content["README.md"] == b"# product\n"  # the committed text, not the edit
    assert "scratch.txt" not in content
    assert content["CHANGELOG.md"] == b"v2\n"
    assert content["src/app/\u00e9t\u00e9.py"] == b"summer = True\n"
    assert content["main-link"] == "src/app/main.py"
    assert content["src/app"] is None
    with tarfile.open(tmp_path / "out.tar") as tar:
        modes = {m.name: m.mode for m in tar}
        owners = {(m.uid, m.gid, m.uname, m.gname) for m in tar}
        mtimes = {m.mtime for m in tar}
    assert modes["run.sh"] == 0o755
    assert modes["README.md"] == 0o644
    assert owners == {(0, 0, "", "")}
    assert mtimes == {int(datetime.fromisoformat(GIT_ENV["GIT_COMMITTER_DATE"]).timestamp())}
    assert receipt.archive_entries == len(content)


def test_git_ref_selects_an_older_commit(repo: Path, target: Target, tmp_path: Path) -> None:
    """--ref deposits that commit's tree: the first commit has no CHANGELOG."""
    receipt = make_deposit(repo, target, ref="HEAD~1")
    content = members(opened_bytes(target, receipt.deposit, NOTARY, tmp_path / "old.tar"))
    assert "CHANGELOG.md" not in content
    assert receipt.commit == git(repo, "rev-parse", "HEAD~1").strip()


def test_unknown_ref_is_a_configuration_error(repo: Path, target: Target) -> None:
    """An unknown ref fails before anything is written."""
    with pytest.raises(ConfigurationError, match="git rev-parse failed"):
        make_deposit(repo, target, ref="no-such-branch")
    assert list(target.list()) == []


def test_folder_round_trip_and_extract(folder: Path, target: Target, tmp_path: Path) -> None:
    """A folder deposit opens and extracts to the same files, folders and symlinks."""
    receipt = make_deposit(folder, target)
    assert (receipt.source_kind, receipt.commit, receipt.ref) == ("folder", None, None)
    assert receipt.source == "folder plain"
    out = tmp_path / "extracted"
    opened = open_deposit(target, receipt.deposit, NOTARY, out=out, extract=True)
    assert opened.extracted
    assert opened.sha256 == receipt.archive_sha256
    for name, content in FILES.items():
        assert (out / name).read_bytes() == content
    assert (out / "empty").is_dir()
    assert os.readlink(out / "readme-link") == "README.md"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ctfy-escrow-")] == []


def test_multiple_recipients_each_open(folder: Path, target: Target, tmp_path: Path) -> None:
    """Every recipient opens the same archive; the receipt lists both key ids."""
    receipt = make_deposit(folder, target, recipients=[NOTARY.public, TRUSTEE.public])
    assert [r.key_id for r in receipt.recipients] == [NOTARY.key_id, TRUSTEE.key_id]
    first = opened_bytes(target, receipt.deposit, NOTARY, tmp_path / "a.tar")
    second = opened_bytes(target, receipt.deposit, TRUSTEE, tmp_path / "b.tar")
    assert first == second


def test_empty_folder_deposits(tmp_path: Path, target: Target) -> None:
    """An empty folder gives a valid, empty archive."""
    empty = tmp_path / "nothing"
    empty.mkdir()
    receipt = make_deposit(empty, target)
    assert members(opened_bytes(target, receipt.deposit, NOTARY, tmp_path / "e.tar")) == {}


def test_deposit_is_create_only(folder: Path, target: Target) -> None:
    """The same name (same time and id) is refused, never overwritten."""
    make_deposit(folder, target, randbytes=bytes)
    with pytest.raises(ObjectExistsError):
        make_deposit(folder, target, randbytes=bytes)


def test_failed_archive_leaves_nothing(
    folder: Path, target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source that fails while streaming stores no ciphertext and no receipt."""

    def broken(self: escrow.SourceTree) -> escrow.ArchiveStream:
        def blocks() -> Iterator[bytes]:
            yield b"x" * 100_000
            raise ConfigurationError("README.md changed while it was archived; run again")

        return escrow.ArchiveStream(1, blocks())

    monkeypatch.setattr(escrow.SourceTree, "archive", broken)
    local = Target.from_url(str(folder.parent / "store"))
    with pytest.raises(ConfigurationError, match="changed while"):
        make_deposit(folder, local)
    assert list(local.list()) == []


def test_a_file_changing_during_archiving_is_refused(folder: Path) -> None:
    """A file that grows between listing and reading stops the archive."""
    stream = source_tree(folder).archive()
    (folder / "README.md").write_bytes(b"# product, now longer\n")
    with pytest.raises(ConfigurationError, match="changed while"):
        b"".join(stream)


def test_unknown_receipt_version_is_a_format_error(small_deposit: Receipt, target: Target) -> None:
    """A receipt of a later version is a FormatError, not an integrity failure."""

    def bump(data: bytearray) -> bytes:
        document = json.loads(bytes(data))
        document["version"] = 2
        return json.dumps(document).encode()

    _tamper(target, small_deposit.receipt_object, bump)
    with pytest.raises(FormatError, match="version 2"):
        verify_deposit(target, small_deposit.deposit)


def test_list_deposits(folder: Path, target: Target) -> None:
    """Deposits with a receipt are listed oldest first."""
    one = make_deposit(folder, target)
    two = deposit(
        folder, target, recipients=[NOTARY.public], signing_key=DEPOSITOR, now=NOW.replace(hour=13)
    )
    assert list_deposits(target) == [one.deposit, two.deposit]


# -- the depositor and strangers cannot read ---------------------------------------------------


def test_non_recipient_key_fails(folder: Path, target: Target, tmp_path: Path) -> None:
    """A key the deposit was not made to gets the one opaque IntegrityError and no output."""
    receipt = make_deposit(folder, target)
    with pytest.raises(IntegrityError) as info:
        open_deposit(target, receipt.deposit, STRANGER, out=tmp_path / "x.tar")
    assert not (tmp_path / "x.tar").exists()
    assert list(tmp_path.glob(".ctfy-escrow-*")) == []
    assert "recipient" in str(info.value)


def test_depositor_signing_key_is_not_a_decryption_key(folder: Path, target: Target) -> None:
    """The depositor's only secret (its signing seed) used as an X25519 key opens nothing."""
    receipt = make_deposit(folder, target)
    as_identity = RecipientIdentity(DEPOSITOR.value)
    with pytest.raises(IntegrityError):
        open_deposit(target, receipt.deposit, as_identity, out=Path(os.devnull + ".none"))


# -- tampering -------------------------------------------------------------------------------


def _tamper(target: Target, key: str, change: Callable[[bytearray], bytes]) -> None:
    data = bytearray(target.read(key))
    target.delete(key)
    target.write(key, change(data))


def _flip(offset: int) -> Callable[[bytearray], bytes]:
    def change(data: bytearray) -> bytes:
        data[offset] ^= 0x01
        return bytes(data)

    return change


@pytest.fixture
def small_deposit(target: Target, tmp_path: Path) -> Receipt:
    """A deposit spread over three 4 KiB chunks, for tampering."""
    root = tmp_path / "small"
    write_tree(root, {"a.txt": b"alpha\n", "b.txt": b"bravo\n"})
    return make_deposit(root, target, chunk_size=4096, recipients=[NOTARY.public, TRUSTEE.public])


def test_flipped_byte_anywhere_fails(
    small_deposit: Receipt, target: Target, tmp_path: Path
) -> None:
    """Flipping a byte anywhere (every header byte, tags, chunk edges, a stride between) fails."""
    key = small_deposit.ciphertext_object
    original = target.read(key)
    header = 60 + 88 * 2
    offsets = {*range(header + 32), *range(header, len(original), 61)}
    for edge in range(header + 4096 + 16, len(original), 4096 + 16):  # each chunk's tag and start
        offsets.update(range(edge - 17, edge + 2))
    offsets.update(range(len(original) - 20, len(original)))
    for offset in sorted(offsets):
        _tamper(target, key, _flip(offset))
        with pytest.raises(IntegrityError):
            verify_deposit(target, small_deposit.deposit)
        errors = (IntegrityError, FormatError) if offset < 9 else IntegrityError
        with pytest.raises(errors):
            open_deposit(target, small_deposit.deposit, NOTARY, out=tmp_path / "x.tar")
        assert not (tmp_path / "x.tar").exists()
        _tamper(target, key, lambda _data: original)


@pytest.mark.parametrize("cut", [1, 16, 17, 4096, 4112, 4113])
def test_truncation_fails(small_deposit: Receipt, target: Target, tmp_path: Path, cut: int) -> None:
    """Cutting bytes off the end, even whole chunks, is detected."""
    key = small_deposit.ciphertext_object
    _tamper(target, key, lambda data: bytes(data[:-cut]))
    with pytest.raises(IntegrityError):
        open_deposit(target, small_deposit.deposit, NOTARY, out=tmp_path / "x.tar")
    with pytest.raises(IntegrityError):
        verify_deposit(target, small_deposit.deposit)


def test_appended_bytes_fail(small_deposit: Receipt, target: Target, tmp_path: Path) -> None:
    """Bytes appended after the final chunk are detected."""
    _tamper(target, small_deposit.ciphertext_object, lambda data: bytes(data) + bytes(32))
    with pytest.raises(IntegrityError):
        open_deposit(target, small_deposit.deposit, NOTARY, out=tmp_path / "x.tar")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("archive.sha256", "0" * 64),
        ("ciphertext.size", 1),
        ("source.commit", "f" * 40),
        ("created", "2020-01-01T00:00:00.000000Z"),
        ("signature", "AAAA"),
    ],
)
def test_tampered_receipt_fails_verification(
    small_deposit: Receipt, target: Target, field: str, value: object
) -> None:
    """Changing any signed receipt field (or the signature) makes verification fail."""

    def change(data: bytearray) -> bytes:
        document = json.loads(bytes(data))
        where = document
        *parents, last = field.split(".")
        for part in parents:
            where = where[part]
        where[last] = value
        return json.dumps(document).encode()

    _tamper(target, small_deposit.receipt_object, change)
    with pytest.raises(IntegrityError):
        verify_deposit(target, small_deposit.deposit)


def test_receipt_resigned_by_another_key_fails_when_pinned(
    small_deposit: Receipt, target: Target
) -> None:
    """A forger's re-signed receipt verifies only against itself, not the pinned depositor."""
    forger = SigningKey(bytes(32))
    forged = attrs.evolve(small_deposit, signer=forger.public).sign(forger)
    _tamper(target, small_deposit.receipt_object, lambda _data: forged.encode())
    assert verify_deposit(target, small_deposit.deposit).signer == forger.public
    with pytest.raises(IntegrityError):
        verify_deposit(target, small_deposit.deposit, signer=DEPOSITOR.public)


def test_receipt_moved_to_another_name_fails(small_deposit: Receipt, target: Target) -> None:
    """A genuine receipt copied under another deposit's name does not verify there."""
    other = small_deposit.deposit[:-16] + "0" * 16
    target.write(other + ".receipt.json", target.read(small_deposit.receipt_object))
    with pytest.raises(IntegrityError):
        verify_deposit(target, other)


def test_pinned_signer_verifies(small_deposit: Receipt, target: Target) -> None:
    """Verifying with the depositor's public key returns the receipt; the ciphertext matches."""
    receipt = verify_deposit(target, small_deposit.deposit, signer=DEPOSITOR.public)
    assert receipt == small_deposit
    assert read_receipt(target, small_deposit.receipt_object) == small_deposit


def test_bad_deposit_names_are_refused(target: Target) -> None:
    """Names that are not deposit names fail before any read."""
    for name in ("../x", "escrow/whatever", ""):
        with pytest.raises(ConfigurationError):
            verify_deposit(target, name)


def test_open_never_overwrites(small_deposit: Receipt, target: Target, tmp_path: Path) -> None:
    """An existing output file or non-empty folder is refused."""
    existing = tmp_path / "there.tar"
    existing.write_bytes(b"keep")
    with pytest.raises(ConfigurationError):
        open_deposit(target, small_deposit.deposit, NOTARY, out=existing)
    with pytest.raises(ConfigurationError):
        open_deposit(target, small_deposit.deposit, NOTARY, out=tmp_path, extract=True)
    assert existing.read_bytes() == b"keep"


def test_open_copies_where_hard_links_are_unsupported(
    small_deposit: Receipt, target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without hard links the archive is copied to a new file instead, still never overwriting."""

    def no_links(*_args: object) -> None:
        raise PermissionError("links not supported here")

    monkeypatch.setattr(os, "link", no_links)
    opened = open_deposit(target, small_deposit.deposit, NOTARY, out=tmp_path / "copy.tar")
    assert (tmp_path / "copy.tar").stat().st_size == opened.size
    assert [p.name for p in tmp_path.glob(".ctfy-escrow-*")] == []


# -- reproducibility -------------------------------------------------------------------------


def _archive(path: Path, **options: object) -> bytes:
    return b"".join(source_tree(path, **options).archive())  # type: ignore[arg-type]


def test_same_ref_gives_the_same_archive_across_clones(repo: Path, tmp_path: Path) -> None:
    """Two clones (one with local edits) give byte-identical archives for the same ref."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    (clone / "src" / "app" / "main.py").write_bytes(b"edited in the clone\n")
    (clone / "run.sh").chmod(0o644)
    assert _archive(repo) == _archive(clone) == _archive(repo, ref="v2")
    assert _archive(repo, ref="HEAD~1") != _archive(repo)


def test_same_ref_gives_the_same_plaintext_hash_in_deposits(repo: Path, target: Target) -> None:
    """Two deposits of one ref have equal plaintext hashes but different ciphertexts."""
    first = make_deposit(repo, target)
    second = deposit(
        repo, target, recipients=[NOTARY.public], signing_key=DEPOSITOR, now=NOW.replace(hour=14)
    )
    assert first.archive_sha256 == second.archive_sha256
    assert first.ciphertext_sha256 != second.ciphertext_sha256


def test_folder_archive_ignores_times_owners_and_permissions(folder: Path) -> None:
    """Touching files or changing non-executable permission bits does not change the archive."""
    before = _archive(folder)
    os.utime(folder / "README.md", (1, 1))
    (folder / "README.md").chmod(0o600)
    assert _archive(folder) == before
    (folder / "README.md").chmod(0o700)
    assert _archive(folder) != before


def test_folder_kind_can_be_forced_on_a_git_repository(repo: Path) -> None:
    """kind='folder' archives the working files, .git included, when asked explicitly."""
    content = members(_archive(repo, kind="folder"))
    assert content["README.md"] == b"UNCOMMITTED EDIT\n"
    assert ".git/HEAD" in content


def test_sources_are_checked(tmp_path: Path) -> None:
    """A missing folder, a ref for a folder or a dash-ref are configuration errors."""
    with pytest.raises(ConfigurationError):
        source_tree(tmp_path / "missing")
    with pytest.raises(ConfigurationError):
        source_tree(tmp_path, ref="HEAD")
    with pytest.raises(ConfigurationError):
        source_tree(tmp_path, kind="git", ref="--output=/tmp/x")


# -- keys and secrets ------------------------------------------------------------------------


def test_key_files_are_private_and_never_overwritten(tmp_path: Path) -> None:
    """Key generation writes the private key with mode 0600 and its .pub; a second run is refused."""
    files = generate_key_files(tmp_path / "notary.key", now=NOW)
    assert stat.S_IMODE(files.private_path.stat().st_mode) == 0o600
    identity = read_identity(files.private_path)
    assert identity.public.text == files.public_key
    assert files.public_key in files.public_path.read_text()
    assert identity.secret_text() not in files.public_path.read_text()
    with pytest.raises(ConfigurationError):
        generate_key_files(tmp_path / "notary.key", now=NOW)
    signing = generate_key_files(tmp_path / "dep.key", role="signing", now=NOW)
    assert read_signing_key(signing.private_path).public.text == signing.public_key
    with pytest.raises(ConfigurationError):
        read_identity(signing.private_path)  # a signing key is not a recipient key


def test_secrets_never_appear_in_reprs_or_errors(
    small_deposit: Receipt, target: Target, tmp_path: Path
) -> None:
    """Private keys show in no repr and no error text, even when pasted in the wrong place."""
    secrets = [NOTARY.secret_text(), DEPOSITOR.secret_text(), NOTARY.value.hex()]
    texts = [repr(NOTARY), repr(DEPOSITOR), repr(small_deposit)]
    try:
        open_deposit(target, small_deposit.deposit, STRANGER, out=tmp_path / "x")
    except IntegrityError as err:
        texts.append(str(err))
    for wrong in (NOTARY.secret_text(), NOTARY.secret_text()[:-2] + "AA"):
        for parse in (escrow.recipient_key, escrow.verify_key):
            with pytest.raises(ConfigurationError) as info:
                parse(wrong)
            texts.append(str(info.value))
    key_file = tmp_path / "k"
    key_file.write_text(DEPOSITOR.secret_text() + "\n" + NOTARY.secret_text() + "\n")
    with pytest.raises(ConfigurationError) as bad_file:
        read_identity(key_file)
    texts.append(str(bad_file.value))
    for text in texts:
        for secret in secrets:
            assert secret not in text
            assert secret[30:50] not in text


def test_public_surface_is_sorted_and_complete() -> None:
    """``escrow.__all__`` is sorted (constants first), unique, and resolves."""
    names = list(escrow.__all__)
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(escrow, name), name


def test_escrow_imports_no_storage_backend_until_used() -> None:
    """Importing ``escrow`` loads no cloud SDK (it only needs a target's methods)."""
    import sys

    code = (
        "import sys, ctfy_vault.escrow; "
        "print(sorted(m for m in ('s3fs', 'boto3', 'adlfs') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def iter_blocks(data: bytes, size: int) -> Iterator[bytes]:
    """Cut ``data`` into blocks of ``size`` bytes."""
    for start in range(0, len(data), size):
        yield data[start : start + size]
