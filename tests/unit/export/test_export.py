"""Tenant exports on local disk and in memory: round trips, names, empty/missing, failures, register."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tarfile
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ctfy_vault.crypto import RawKey
from ctfy_vault.exceptions import (
    ConfigurationError,
    FormatError,
    InvalidObjectKeyError,
    ObjectExistsError,
    ObjectNotFoundError,
    StorageError,
)
from ctfy_vault.export import (
    ExportProgress,
    ExportSummary,
    SnapshotSource,
    TargetSource,
    export,
    history,
)
from ctfy_vault.links import LinkSigner, verify_link
from ctfy_vault.manifest import FileType
from ctfy_vault.storage import Target
from ctfy_vault.testing import memory_target
from ctfy_vault.vault import Vault

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SIGNER = LinkSigner(b"s" * 32, "https://app.example/download")

#: The tenant's documents: names with accents, CJK, emoji and spaces; an empty file; a 3 MiB one
#: (several read blocks).
DOCUMENTS: dict[str, bytes] = {
    "contracts/4711.pdf": b"%PDF-1.7 contract 4711\n" * 100,
    "contracts/Überweisung März €.pdf": b"%PDF euro",
    "contracts/契約書.docx": b"PK docx bytes",
    "notes/😀 smile.txt": b"",
    "big/scan.tiff": os.urandom(3 * 2**20 + 17),
}


def _seed(target: Target, tenant: str = "acme", files: dict[str, bytes] = DOCUMENTS) -> None:
    for name, data in files.items():
        target.write(f"{tenant}/{name}", data)
    target.write("other-tenant/secret.pdf", b"not yours")


@pytest.fixture
def docs(tmp_path: Path) -> Target:
    """A local documents target holding tenant ``acme`` and another tenant."""
    target = Target.from_url(str(tmp_path / "docs"))
    _seed(target)
    return target


@pytest.fixture
def dest(tmp_path: Path) -> Target:
    """An empty local destination for exports."""
    return Target.from_url(str(tmp_path / "exports"))


def _members(data: bytes, archive_format: str) -> dict[str, bytes]:
    """Unpack an archive with the standard library; member name -> bytes."""
    if archive_format == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert archive.testzip() is None
            return {info.filename: archive.read(info) for info in archive.infolist()}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        out = {}
        for info in archive.getmembers():
            assert info.isfile()
            extracted = archive.extractfile(info)
            assert extracted is not None
            out[info.name] = extracted.read()
        return out


def _strip_root(members: dict[str, bytes], summary: ExportSummary) -> dict[str, bytes]:
    root = summary.key.rsplit("/", 1)[-1].removesuffix(".zip").removesuffix(".tar.gz") + "/"
    assert all(name.startswith(root) for name in members)
    return {name[len(root) :]: data for name, data in members.items()}


def _unpack(dest: Target, summary: ExportSummary) -> dict[str, bytes]:
    return _strip_root(_members(dest.read(summary.key), summary.format), summary)


def _inventory(files: dict[str, bytes]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(files["inventory.json"].decode("utf-8"))
    return document


class TestRoundTrip:
    @pytest.mark.parametrize("archive_format", ["zip", "tar.gz"])
    def test_every_byte_and_hash_matches_the_source(
        self, docs: Target, dest: Target, archive_format: Any
    ) -> None:
        """Unpacked with the standard library, every file equals its source byte for byte."""
        summary = export(docs, dest, tenant="acme", format=archive_format, signer=SIGNER, now=NOW)
        files = _unpack(dest, summary)
        exported = {k.removeprefix("documents/"): v for k, v in files.items() if "/" in k}
        assert exported == DOCUMENTS
        inventory = _inventory(files)
        assert inventory["totals"] == {
            "files": len(DOCUMENTS),
            "bytes": sum(map(len, DOCUMENTS.values())),
        }
        for row in inventory["files"]:
            source = DOCUMENTS[row["source_path"].removeprefix("acme/")]
            assert row["size"] == len(source)
            assert row["sha256"] == hashlib.sha256(source).hexdigest()
            assert row["path"] == "documents/" + row["source_path"].removeprefix("acme/")
            assert row["source"] == "documents"
        assert summary.files == len(DOCUMENTS)
        assert summary.bytes == sum(map(len, DOCUMENTS.values()))

    def test_summary_names_the_stored_archive(self, docs: Target, dest: Target) -> None:
        """Size and SHA-256 in the summary are those of the stored object; the name is unique."""
        summary = export(docs, dest, tenant="acme", signer=SIGNER, now=NOW, export_id="ab" * 8)
        stored = dest.read(summary.key)
        assert summary.archive_size == len(stored)
        assert summary.sha256 == hashlib.sha256(stored).hexdigest()
        assert summary.key == (
            "exports/acme/archives/acme-export-20261126T120000Z-abababababababab.zip"
        )
        assert summary.created == NOW
        assert "secret" not in json.dumps(summary.to_dict())

    def test_other_tenants_are_not_exported(self, docs: Target, dest: Target) -> None:
        """Only the tenant's prefix is read: another tenant's documents never appear."""
        summary = export(docs, dest, tenant="acme", signer=SIGNER)
        assert not any(b"not yours" in data for data in _unpack(dest, summary).values())

    def test_inventory_csv_matches_json_and_has_modified_times(
        self, docs: Target, dest: Target
    ) -> None:
        """The CSV lists the same rows as the JSON; modification times are UTC ISO 8601."""
        files = _unpack(dest, export(docs, dest, tenant="acme", signer=SIGNER))
        rows = list(csv.DictReader(io.StringIO(files["inventory.csv"].decode("utf-8-sig"))))
        listed = _inventory(files)["files"]
        assert [r["path"] for r in rows] == [r["path"] for r in listed]
        assert [int(r["size"]) for r in rows] == [r["size"] for r in listed]
        assert [r["sha256"] for r in rows] == [r["sha256"] for r in listed]
        for row in listed:
            modified = datetime.fromisoformat(row["modified"].replace("Z", "+00:00"))
            assert abs(modified - datetime.now(UTC)) < timedelta(minutes=10)

    def test_readme_explains_the_layout(self, docs: Target, dest: Target) -> None:
        """The README names the tenant, the folders and the inventory files."""
        summary = export(docs, dest, tenant="acme", signer=SIGNER, requested_by="an@acme.be")
        text = _unpack(dest, summary)["README.txt"].decode("utf-8")
        for expected in ("acme", "documents/", "inventory.json", "inventory.csv", "an@acme.be"):
            assert expected in text
        assert "SHA-256" in text

    def test_zip_names_are_utf8_flagged_and_times_in_utc(self, docs: Target, dest: Target) -> None:
        """Non-ASCII member names carry the zip UTF-8 flag; unzip tools read them right."""
        summary = export(docs, dest, tenant="acme", signer=SIGNER)
        with zipfile.ZipFile(io.BytesIO(dest.read(summary.key))) as archive:
            infos = {info.filename.split("/", 1)[1]: info for info in archive.infolist()}
        info = infos["documents/contracts/契約書.docx"]
        assert info.flag_bits & 0x800
        assert info.flag_bits & 0x08  # streamed: a data descriptor follows each member
        assert infos["documents/contracts/4711.pdf"].external_attr >> 16 == 0o100644

    def test_tar_names_are_utf8(self, docs: Target, dest: Target) -> None:
        """tar.gz members keep non-ASCII names (pax headers)."""
        summary = export(docs, dest, tenant="acme", format="tar.gz", signer=SIGNER)
        names = _unpack(dest, summary)
        assert "documents/notes/😀 smile.txt" in names

    def test_store_mode_round_trips(self, docs: Target, dest: Target) -> None:
        """compression='store' writes uncompressed members that unpack the same."""
        summary = export(docs, dest, tenant="acme", signer=SIGNER, compression="store")
        with zipfile.ZipFile(io.BytesIO(dest.read(summary.key))) as archive:
            assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}
        assert (
            _unpack(dest, summary)["documents/contracts/4711.pdf"]
            == DOCUMENTS["contracts/4711.pdf"]
        )

    def test_memory_targets_work(self) -> None:
        """Memory targets serve as source and destination (the application's own tests)."""
        source, dest = memory_target(), memory_target()
        _seed(source, files={"a.txt": b"A"})
        summary = export(source, dest, tenant="acme", signer=SIGNER)
        assert _unpack(dest, summary)["documents/a.txt"] == b"A"

    def test_progress_reports_every_file_then_the_end(self, docs: Target, dest: Target) -> None:
        """on_progress sees each file and a last report with no current path."""
        seen: list[ExportProgress] = []
        export(docs, dest, tenant="acme", signer=SIGNER, on_progress=seen.append)
        assert seen[-1].path is None
        assert seen[-1].files_done == seen[-1].files_total == len(DOCUMENTS)
        assert seen[-1].bytes_done == seen[-1].bytes_total

    def test_zip64_is_used_where_sizes_need_it(
        self, docs: Target, dest: Target, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With the zip64 thresholds lowered, zip64 records appear and the archive still unpacks."""
        monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 1000)
        monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 3)
        summary = export(docs, dest, tenant="acme", signer=SIGNER)
        data = dest.read(summary.key)
        assert b"PK\x06\x06" in data  # the zip64 end of central directory record
        monkeypatch.undo()
        exported = {k.removeprefix("documents/"): v for k, v in _unpack(dest, summary).items()}
        assert {k: exported[k] for k in DOCUMENTS} == DOCUMENTS


class TestNames:
    def _unsafe_local(self, docs: Target, tmp_path: Path) -> None:
        folder = tmp_path / "docs" / "acme" / "weird"
        folder.mkdir()
        (folder / "back\\slash.txt").write_bytes(b"backslash")
        (folder / "ctl\x01char.txt").write_bytes(b"control")

    def test_unsafe_source_keys_refuse_the_export(
        self, docs: Target, dest: Target, tmp_path: Path
    ) -> None:
        """Keys the storage layer will not read are refused by default, and nothing is written."""
        self._unsafe_local(docs, tmp_path)
        with pytest.raises(InvalidObjectKeyError, match="skip_unsafe") as caught:
            export(docs, dest, tenant="acme", signer=SIGNER)
        assert "2 source object(s)" in str(caught.value)
        assert list(dest.list()) == []

    def test_skip_unsafe_lists_them_in_the_inventory(
        self, docs: Target, dest: Target, tmp_path: Path
    ) -> None:
        """With skip_unsafe the others are exported and the left-out keys are listed with why."""
        self._unsafe_local(docs, tmp_path)
        summary = export(docs, dest, tenant="acme", signer=SIGNER, skip_unsafe=True)
        skipped = _inventory(_unpack(dest, summary))["skipped"]
        assert {s["source_path"] for s in skipped} == {
            "acme/weird/back\\slash.txt",
            "acme/weird/ctl\x01char.txt",
        }
        assert {s.source_path for s in summary.skipped} == {s["source_path"] for s in skipped}
        assert summary.files == len(DOCUMENTS)

    def test_snapshot_names_are_mapped_safely(self, tmp_path: Path) -> None:
        """Snapshot paths with backslashes or control characters become '_' and never escape."""
        data = tmp_path / "data" / "acme"
        data.mkdir(parents=True)
        (data / "a\\..\\..\\evil.txt").write_bytes(b"1")
        (data / "a_.._.._evil.txt").write_bytes(b"2")
        (data / "tab\there.txt").write_bytes(b"3")
        (data / "link").symlink_to("/etc/passwd")
        vault, info = _vault_with(tmp_path / "data")
        dest = memory_target()
        source = SnapshotSource(vault=vault, snapshot=info, prefix="data/acme")
        summary = export(source, dest, tenant="acme", signer=SIGNER)
        archive = dest.read(summary.key)
        extract_to = tmp_path / "unpacked"
        with zipfile.ZipFile(io.BytesIO(archive)) as unpack:
            for name in unpack.namelist():
                assert "\\" not in name
                assert ".." not in name.split("/")
                assert not any(ord(ch) < 32 for ch in name)
            unpack.extractall(extract_to)  # noqa: S202 - checking that it stays inside
        for path in extract_to.rglob("*"):
            assert path.resolve().is_relative_to(extract_to.resolve())
        files = _strip_root(_members(archive, "zip"), summary)
        rows = {r["source_path"]: r["path"] for r in _inventory(files)["files"]}
        mapped = {rows["data/acme/a\\..\\..\\evil.txt"], rows["data/acme/a_.._.._evil.txt"]}
        assert mapped == {"backup/a_.._.._evil.txt", "backup/a_.._.._evil~2.txt"}
        assert rows["data/acme/tab\there.txt"] == "backup/tab_here.txt"
        assert {files[path] for path in mapped} == {b"1", b"2"}
        assert [s.source_path for s in summary.skipped] == ["data/acme/link"]

    def test_a_hard_link_exports_its_content_and_a_fifo_is_skipped(self, tmp_path: Path) -> None:
        """A hard link (its data outside the tenant's folder) exports as its file; a FIFO is left."""
        root = tmp_path / "data"
        (root / "acme").mkdir(parents=True)
        (root / "a-shared.bin").write_bytes(b"shared bytes")  # sorts first: it holds the data
        os.link(root / "a-shared.bin", root / "acme" / "copy.bin")
        os.mkfifo(root / "acme" / "pipe")
        vault, info = _vault_with(root)
        kinds = {e.path: e.type for e in vault.manifest(info).files}
        assert kinds["data/acme/copy.bin"] is FileType.HARDLINK
        dest = memory_target()
        source = SnapshotSource(vault=vault, snapshot=info, prefix="data/acme")
        summary = export(source, dest, tenant="acme", signer=SIGNER)
        files = _strip_root(_members(dest.read(summary.key), "zip"), summary)
        rows = {r["source_path"]: r["path"] for r in _inventory(files)["files"]}
        assert files[rows["data/acme/copy.bin"]] == b"shared bytes"
        assert [(s.source_path, s.reason) for s in summary.skipped] == [
            ("data/acme/pipe", "FIFO: not a regular file, no content to export")
        ]


def _vault_with(folder: Path) -> tuple[Vault, Any]:
    vault = Vault.init([memory_target()], key=RawKey(bytes(32)), now=NOW)
    info = vault.backup(str(folder), lineage="files", host="h", now=NOW)
    return vault, info


class TestSources:
    def test_documents_and_snapshot_in_one_archive(self, docs: Target, tmp_path: Path) -> None:
        """A target source and a snapshot source land in their own folders of one archive."""
        folder = tmp_path / "srv" / "acme"
        folder.mkdir(parents=True)
        (folder / "db.sql").write_bytes(b"INSERT 1;")
        vault, info = _vault_with(tmp_path / "srv")
        dest = memory_target()
        summary = export(
            [docs, SnapshotSource(vault=vault, snapshot=info.name, prefix="srv/acme")],
            dest,
            tenant="acme",
            signer=SIGNER,
        )
        files = _unpack(dest, summary)
        assert files["backup/db.sql"] == b"INSERT 1;"
        assert files["documents/contracts/4711.pdf"] == DOCUMENTS["contracts/4711.pdf"]
        row = next(r for r in _inventory(files)["files"] if r["path"] == "backup/db.sql")
        assert row["sha256"] == hashlib.sha256(b"INSERT 1;").hexdigest()
        assert row["source"] == "backup"

    def test_two_sources_need_distinct_folders(self, docs: Target) -> None:
        """Two sources in one folder would mix: refused."""
        with pytest.raises(ConfigurationError, match="folder"):
            export([docs, docs], memory_target(), tenant="acme", signer=SIGNER)

    def test_prefix_overrides_the_tenant_folder(self, docs: Target) -> None:
        """TargetSource(prefix=...) reads another folder for the tenant."""
        dest = memory_target()
        source = TargetSource(target=docs, prefix="acme/contracts", folder="contracts")
        files = _unpack(dest, export(source, dest, tenant="acme", signer=SIGNER))
        assert sorted(k for k in files if k.startswith("contracts/")) == [
            "contracts/4711.pdf",
            "contracts/Überweisung März €.pdf",
            "contracts/契約書.docx",
        ]

    @pytest.mark.parametrize("tenant", ["", "..", "a/b", "-x", "a b", "ü", "x" * 129])
    def test_bad_tenant_ids_are_refused(self, docs: Target, tenant: str) -> None:
        """A tenant id is one safe name segment."""
        with pytest.raises(ConfigurationError):
            export(docs, memory_target(), tenant=tenant, signer=SIGNER)

    def test_a_local_destination_needs_a_signer_before_any_work(
        self, docs: Target, dest: Target
    ) -> None:
        """Without a signer a local link cannot be made: refused before anything is written."""
        with pytest.raises(ConfigurationError, match="signer"):
            export(docs, dest, tenant="acme")
        assert list(dest.list()) == []
        assert export(docs, dest, tenant="acme", link=False).link is None


class TestEmptyAndMissing:
    def test_missing_tenant_is_a_clear_error(self, docs: Target, dest: Target) -> None:
        """No object under the tenant's prefix: an error naming the tenant, nothing written."""
        with pytest.raises(ObjectNotFoundError, match="tenant 'nobody' not found") as caught:
            export(docs, dest, tenant="nobody", signer=SIGNER)
        assert isinstance(caught.value, FileNotFoundError)
        assert "allow_empty" in str(caught.value)
        assert list(dest.list()) == []

    @pytest.mark.parametrize("archive_format", ["zip", "tar.gz"])
    def test_empty_tenant_gives_a_valid_empty_archive(
        self, docs: Target, dest: Target, archive_format: Any
    ) -> None:
        """allow_empty: a valid archive holding the README and an empty inventory."""
        summary = export(
            docs, dest, tenant="newcomer", signer=SIGNER, allow_empty=True, format=archive_format
        )
        files = _unpack(dest, summary)
        assert set(files) == {"README.txt", "inventory.json", "inventory.csv"}
        assert _inventory(files)["files"] == []
        assert files["inventory.csv"].decode("utf-8-sig").strip() == (
            "path,size,sha256,modified,source,source_path"
        )
        assert (summary.files, summary.bytes) == (0, 0)
        assert len(history(dest, "newcomer")) == 1

    def test_snapshot_folder_without_files_is_an_empty_tenant(self, tmp_path: Path) -> None:
        """A tenant folder present in the snapshot but empty is empty, not missing."""
        (tmp_path / "srv" / "acme").mkdir(parents=True)
        (tmp_path / "srv" / "other.txt").write_bytes(b"x")
        vault, info = _vault_with(tmp_path / "srv")
        dest = memory_target()
        source = SnapshotSource(vault=vault, snapshot=info, prefix="srv/acme")
        assert export(source, dest, tenant="acme", signer=SIGNER).files == 0
        with pytest.raises(ObjectNotFoundError, match="tenant 'ghost'"):
            export(
                SnapshotSource(vault=vault, snapshot=info, prefix="srv/ghost"),
                dest,
                tenant="ghost",
                signer=SIGNER,
            )

    def test_unknown_snapshot_is_not_a_missing_tenant(self, tmp_path: Path) -> None:
        """A snapshot that does not exist fails as such, not as an empty tenant."""
        (tmp_path / "srv").mkdir()
        vault, _ = _vault_with(tmp_path / "srv")
        with pytest.raises(ObjectNotFoundError, match="no such snapshot"):
            export(
                SnapshotSource(vault=vault, snapshot="nope"),
                memory_target(),
                tenant="acme",
                signer=SIGNER,
                allow_empty=True,
            )


class TestCreateOnlyAndFailures:
    def test_second_export_gets_a_new_name_and_the_first_is_unchanged(
        self, docs: Target, dest: Target
    ) -> None:
        """Re-running makes a new complete export; the earlier archive keeps its bytes."""
        first = export(docs, dest, tenant="acme", signer=SIGNER, now=NOW)
        before = dest.read(first.key)
        second = export(docs, dest, tenant="acme", signer=SIGNER, now=NOW)
        assert second.key != first.key
        assert second.register_key != first.register_key
        assert dest.read(first.key) == before
        assert [e.export_id for e in history(dest, "acme")] == sorted(
            [first.export_id, second.export_id]
        )

    def test_an_existing_name_is_never_overwritten(self, docs: Target, dest: Target) -> None:
        """The same time and id cannot replace an export: the write is refused."""
        first = export(docs, dest, tenant="acme", signer=SIGNER, now=NOW, export_id="1" * 16)
        before = dest.read(first.key)
        with pytest.raises(ObjectExistsError):
            export(docs, dest, tenant="acme", signer=SIGNER, now=NOW, export_id="1" * 16)
        assert dest.read(first.key) == before
        assert len(history(dest, "acme")) == 1

    @pytest.mark.parametrize("archive_format", ["zip", "tar.gz"])
    def test_a_failing_source_read_leaves_nothing(
        self,
        docs: Target,
        dest: Target,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        archive_format: Any,
    ) -> None:
        """A source read that raises mid-stream: no archive, no register record, no temp file."""
        earlier = export(docs, dest, tenant="acme", signer=SIGNER)
        earlier_bytes = dest.read(earlier.key)
        register_before = history(dest, "acme")
        real = Target.read_range

        def failing(self: Target, key: str, start: int, end: int) -> bytes:
            if key == "acme/big/scan.tiff" and start >= 2**20:
                raise OSError("disk read failed")
            return real(self, key, start, end)

        monkeypatch.setattr(Target, "read_range", failing)
        with pytest.raises(OSError, match="disk read failed"):
            export(docs, dest, tenant="acme", signer=SIGNER, format=archive_format)
        assert list(dest.list("exports/acme/archives")) == [earlier.key]
        assert dest.read(earlier.key) == earlier_bytes
        assert history(dest, "acme") == register_before
        assert os.listdir(tmp_path / "exports" / ".ctfy-tmp") == []

    def test_an_object_that_changes_size_fails_the_export(
        self, docs: Target, dest: Target, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A document that grows while exported fails the export; nothing is written."""
        real = Target.read

        def grown(self: Target, key: str) -> bytes:
            data = real(self, key)
            return data + b"more" if key == "acme/contracts/4711.pdf" else data

        monkeypatch.setattr(Target, "read", grown)
        with pytest.raises(StorageError, match="changed while being exported"):
            export(docs, dest, tenant="acme", signer=SIGNER, format="tar.gz")
        assert list(dest.list("exports")) == []


class TestLinkAndRegister:
    def test_the_link_opens_the_archive(self, docs: Target, dest: Target) -> None:
        """The HMAC link verifies, names the archive and dies within the hour."""
        summary = export(docs, dest, tenant="acme", signer=SIGNER)
        assert summary.link is not None
        granted = verify_link(summary.link.url, SIGNER)
        assert granted.key == summary.key
        assert granted.content_type == "application/zip"
        assert dest.read(granted.key) == dest.read(summary.key)
        assert summary.link.expires_at - datetime.now(UTC) <= timedelta(hours=1)
        assert summary.link.url not in repr(summary)

    def test_a_link_longer_than_an_hour_is_refused(self, docs: Target, dest: Target) -> None:
        """link_ttl above one hour is refused before any work."""
        with pytest.raises(ConfigurationError):
            export(docs, dest, tenant="acme", signer=SIGNER, link_ttl=timedelta(hours=2))
        assert list(dest.list()) == []

    def test_register_records_each_export(self, docs: Target, dest: Target) -> None:
        """The register holds date, size, hash, who asked and the link's expiry."""
        summary = export(docs, dest, tenant="acme", signer=SIGNER, requested_by="an@acme.be")
        (entry,) = history(dest, "acme")
        assert entry.key == summary.key
        assert entry.size == summary.archive_size
        assert entry.sha256 == summary.sha256
        assert entry.requested_by == "an@acme.be"
        assert summary.link is not None
        assert entry.link_expires_at == summary.link.expires_at
        assert entry.created == summary.created
        assert history(dest, "someone-else") == ()

    def test_one_free_export_per_year_is_a_filter(self, docs: Target, dest: Target) -> None:
        """The history gives what an application needs for its yearly rule."""
        export(docs, dest, tenant="acme", signer=SIGNER, now=NOW - timedelta(days=400))
        export(docs, dest, tenant="acme", signer=SIGNER, now=NOW - timedelta(days=10))
        recent = [e for e in history(dest, "acme") if e.created > NOW - timedelta(days=365)]
        assert len(recent) == 1

    def test_an_altered_register_record_is_reported(self, docs: Target, dest: Target) -> None:
        """A record that is not a register record fails loudly."""
        dest.write("exports/acme/register/zzz.json", b"{}")
        with pytest.raises(FormatError):
            history(dest, "acme")
