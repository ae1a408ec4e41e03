"""`export`: one tenant's data as one archive, streamed create-only into a destination target."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from ctfy_vault.exceptions import (
    ConfigurationError,
    InvalidObjectKeyError,
    ObjectNotFoundError,
    StorageError,
)
from ctfy_vault.export._archive import (
    CONTENT_TYPES,
    SUFFIXES,
    ArchiveFormat,
    ArchiveWriter,
    Compression,
    writer_for,
)
from ctfy_vault.export._inventory import (
    INVENTORY_CSV,
    INVENTORY_JSON,
    README_NAME,
    InventoryEntry,
    inventory_csv,
    inventory_json,
    iso,
    readme,
)
from ctfy_vault.export._names import (
    check_export_id,
    check_tenant,
    deduplicate,
    member_path,
    stamp,
)
from ctfy_vault.export._register import DEFAULT_PREFIX, RegisterEntry, register_folder
from ctfy_vault.export._sources import (
    Collected,
    ExportSource,
    Item,
    Skipped,
    SnapshotSource,
    TargetSource,
    collect,
)
from ctfy_vault.links import MAX_TTL, LinkSigner, SignedLink, presign
from ctfy_vault.storage import Target, validate_key

#: Unsafe keys quoted in the error that refuses an export (the rest are counted).
_QUOTED = 5


@attrs.frozen(kw_only=True)
class ExportProgress:
    """How far an export is, as handed to ``on_progress``.

    Attributes:
        files_done: files fully archived.
        files_total: files to archive.
        bytes_done: file bytes read so far.
        bytes_total: file bytes to read (as listed).
        path: the member being archived, or ``None`` once all files are in.
    """

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    path: str | None


@attrs.frozen(kw_only=True)
class ExportSummary:
    """A completed export.

    Attributes:
        tenant: whose data it holds.
        export_id: the random id in its names.
        key: the archive's object key on the destination.
        register_key: the key of its register record.
        format: ``zip`` or ``tar.gz``.
        created: when it was started (UTC).
        files: files archived.
        bytes: bytes of file content archived.
        archive_size: the archive's size in bytes.
        sha256: hex SHA-256 of the whole archive.
        requested_by: who asked for it, if given.
        skipped: source entries left out, with the reason (also listed in the inventory).
        link: a signed, expiring link to the archive (its URL is hidden from ``repr``), or
            ``None`` when none was asked for.
    """

    tenant: str
    export_id: str
    key: str
    register_key: str
    format: str
    created: datetime
    files: int
    bytes: int
    archive_size: int
    sha256: str
    requested_by: str | None = None
    skipped: tuple[Skipped, ...] = ()
    link: SignedLink | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (without the link's URL, which is a secret)."""
        return {
            "tenant": self.tenant,
            "export_id": self.export_id,
            "key": self.key,
            "register_key": self.register_key,
            "format": self.format,
            "created": iso(self.created),
            "files": self.files,
            "bytes": self.bytes,
            "archive_size": self.archive_size,
            "sha256": self.sha256,
            "requested_by": self.requested_by,
            "skipped": [attrs.asdict(s) for s in self.skipped],
            "link_expires_at": iso(self.link.expires_at) if self.link else None,
        }


def _sources(
    source: Target | ExportSource | Sequence[Target | ExportSource],
) -> tuple[ExportSource, ...]:
    given = [source] if isinstance(source, Target | TargetSource | SnapshotSource) else source
    out: list[ExportSource] = []
    for item in given:
        if isinstance(item, Target):
            out.append(TargetSource(target=item))
        elif isinstance(item, TargetSource | SnapshotSource):
            out.append(item)
        else:
            raise ConfigurationError(
                f"an export source is a Target, TargetSource or SnapshotSource, not "
                f"{type(item).__name__}"
            )
    if not out:
        raise ConfigurationError("an export needs at least one source")
    folders = [s.folder for s in out]
    if len(set(folders)) != len(folders):
        raise ConfigurationError(
            "each source needs its own archive folder: pass folder=... to tell them apart"
        )
    reserved = {README_NAME, INVENTORY_JSON, INVENTORY_CSV}
    if reserved & set(folders):
        raise ConfigurationError(f"archive folders may not be named {', '.join(sorted(reserved))}")
    return tuple(out)


def _requested_by(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.strip() or len(value) > 256 or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ConfigurationError("requested_by is 1-256 characters of text without control codes")
    return value


def export(
    source: Target | ExportSource | Sequence[Target | ExportSource],
    dest: Target,
    *,
    tenant: str,
    format: ArchiveFormat = "zip",
    requested_by: str | None = None,
    allow_empty: bool = False,
    skip_unsafe: bool = False,
    compression: Compression = "deflate",
    level: int = 6,
    link: bool = True,
    signer: LinkSigner | None = None,
    link_ttl: timedelta = MAX_TTL,
    prefix: str = DEFAULT_PREFIX,
    now: datetime | None = None,
    export_id: str | None = None,
    on_progress: Callable[[ExportProgress], None] | None = None,
) -> ExportSummary:
    """Export everything stored for ``tenant`` as one archive, streamed create-only into ``dest``.

    The archive (zip by default, or tar.gz) holds a top folder named after the export, with a
    ``README.txt`` for the customer, one folder per source (``documents/``, ``backup/``...),
    and ``inventory.json`` / ``inventory.csv`` listing every file's path, size, SHA-256 and
    modification time. It is produced while it is uploaded: nothing is staged in memory or on
    disk, and memory stays at about one source block plus one upload part (plus a few KiB per
    file for the listing and the inventory).

    It is written under a new name, ``<prefix>/<tenant>/archives/<tenant>-export-<UTC time>-<id>``,
    with a create-only streamed write (local disk: temporary file then ``link(2)``; S3: one
    multipart upload completed with ``If-None-Match: *``; Azure: block list committed
    create-only). A failure part-way leaves no object at that name and no register record, and
    never touches an earlier export; running the export again makes a new complete one. Then a
    register record is written create-only under ``<prefix>/<tenant>/register/`` (see `history`).

    Args:
        source: a documents `Target` (the tenant's objects under ``<tenant>/``), a
            `TargetSource` or `SnapshotSource`, or several (each with its own ``folder``).
        dest: where the archive and the register go.
        tenant: the tenant id (letters, digits, ``.``, ``_``, ``-``).
        format: ``"zip"`` (zip64 where needed, UTF-8 names) or ``"tar.gz"`` (pax).
        requested_by: who asked (recorded in the register and the README).
        allow_empty: the application knows the tenant exists: an empty tenant gives a valid
            archive with an empty inventory instead of an error.
        skip_unsafe: leave out source objects whose keys the storage layer refuses to read
            (``..`` segments, absolute, backslashes, control characters) and list them in the
            inventory, instead of refusing the export.
        compression: ``"deflate"`` or ``"store"`` (already-compressed documents gain little).
        level: deflate level, 1 (fast) to 9 (small).
        link: sign a link to the archive.
        signer: the application's link signer (needed for local and memory destinations).
        link_ttl: the link's lifetime, at most one hour.
        prefix: the folder exports and registers go under on ``dest``.
        now: the export's time (default: the system clock); it names the archive.
        export_id: the export's id (default: 16 random hex digits).
        on_progress: called as files and blocks are archived.

    Returns:
        The summary: key, counts, the archive's size and SHA-256, and the link.

    Raises:
        ObjectNotFoundError: no source holds anything for ``tenant`` (and not ``allow_empty``),
            or a snapshot source names no snapshot.
        InvalidObjectKeyError: a source object has an unsafe key (and not ``skip_unsafe``);
            nothing was written.
        ConfigurationError: a bad tenant, option, or a local destination without ``signer``.
        StorageError: a source or the destination failed, or a source object changed size
            while it was read; nothing was written at the export's name.
        IntegrityError: a snapshot file failed authentication; nothing was written.
    """
    tenant = check_tenant(tenant)
    if format not in SUFFIXES:
        raise ConfigurationError(f"format is 'zip' or 'tar.gz', not {format!r}")
    if compression not in ("deflate", "store"):
        raise ConfigurationError(f"compression is 'deflate' or 'store', not {compression!r}")
    if not 1 <= level <= 9:
        raise ConfigurationError("level is 1 to 9")
    sources = _sources(source)
    requested_by = _requested_by(requested_by)
    created = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    when = stamp(created)
    export_id = check_export_id(export_id or secrets.token_hex(8))
    validate_key(prefix, what="export prefix")
    name = f"{tenant}-export-{when}-{export_id}"
    filename = name + SUFFIXES[format]
    key = f"{prefix}/{tenant}/archives/{filename}"
    register_key = f"{register_folder(tenant, prefix)}/{when}-{export_id}.json"
    validate_key(key)
    if link:  # refuse a link that cannot be signed before any work is done (no I/O)
        presign(dest, key, ttl=link_ttl, signer=signer, filename=filename)

    found = collect(sources, tenant)
    skipped = _check_found(
        found,
        tenant,
        [s.name for s in sources],
        allow_empty=allow_empty,
        skip_unsafe=skip_unsafe,
    )
    folders = [(s.folder, _describe(s)) for s in sources]
    state = _Run(
        items=found.items,
        root=name,
        tenant=tenant,
        export_id=export_id,
        created=created,
        requested_by=requested_by,
        folders=folders,
        skipped=skipped,
        on_progress=on_progress,
    )
    writer = writer_for(format, compression=compression, level=level)
    try:
        dest.write_stream(key, state.blocks(writer))
    except Exception:
        # The destination reports whatever broke its stream as its own write failure; a source
        # that failed is named as such instead.
        if state.failure is not None:
            raise state.failure from None
        raise
    signed = None
    if link:
        signed = presign(
            dest,
            key,
            ttl=link_ttl,
            signer=signer,
            filename=filename,
            content_type=CONTENT_TYPES[format],
        )
    entry = RegisterEntry(
        tenant=tenant,
        export_id=export_id,
        key=key,
        created=created,
        format=format,
        files=len(state.inventory),
        bytes=state.bytes_done,
        size=writer.sink.size,
        sha256=writer.sink.sha256.hexdigest(),
        requested_by=requested_by,
        link_expires_at=signed.expires_at if signed else None,
    )
    dest.write(register_key, entry.to_json())
    return ExportSummary(
        tenant=tenant,
        export_id=export_id,
        key=key,
        register_key=register_key,
        format=format,
        created=created,
        files=entry.files,
        bytes=entry.bytes,
        archive_size=entry.size,
        sha256=entry.sha256,
        requested_by=requested_by,
        skipped=skipped,
        link=signed,
    )


def _check_found(
    found: Collected, tenant: str, names: list[str], *, allow_empty: bool, skip_unsafe: bool
) -> tuple[Skipped, ...]:
    if found.unsafe and not skip_unsafe:
        quoted = ", ".join(repr(s.source_path) for s in found.unsafe[:_QUOTED])
        more = len(found.unsafe) - _QUOTED
        raise InvalidObjectKeyError(
            f"tenant {tenant!r}: {len(found.unsafe)} source object(s) have keys that cannot be "
            f"exported safely ({quoted}{f' and {more} more' if more > 0 else ''}); rename them "
            "at the source, or pass skip_unsafe=True to leave them out and list them in the "
            "inventory"
        )
    if not found.found and not allow_empty:
        raise ObjectNotFoundError(
            f"tenant {tenant!r} not found: no {' and no '.join(found.where)}; if the tenant "
            "exists and holds nothing, pass allow_empty=True for an empty export",
            target=", ".join(names),
            key=tenant,
        )
    return found.unsafe + found.skipped


def _describe(source: ExportSource) -> str:
    if isinstance(source, TargetSource):
        return "your documents, as stored"
    return f"your files from backup {source.name}"


@attrs.define
class _Run:
    """One export's archive stream: the files, then the inventory; with the running totals."""

    items: tuple[Item, ...]
    root: str
    tenant: str
    export_id: str
    created: datetime
    requested_by: str | None
    folders: list[tuple[str, str]]
    skipped: tuple[Skipped, ...]
    on_progress: Callable[[ExportProgress], None] | None
    inventory: list[InventoryEntry] = attrs.Factory(list)
    bytes_done: int = 0
    failure: Exception | None = None

    def _progress(self, path: str | None) -> None:
        if self.on_progress is not None:
            self.on_progress(
                ExportProgress(
                    files_done=len(self.inventory),
                    files_total=len(self.items),
                    bytes_done=self.bytes_done,
                    bytes_total=sum(item.size for item in self.items),
                    path=path,
                )
            )

    def blocks(self, writer: ArchiveWriter) -> Iterator[bytes]:
        """Yield the archive's bytes; on any failure the writer is released and the error raised."""
        try:
            yield from self._members(writer)
            yield from writer.close()
        except Exception as err:
            self.failure = err
            writer.abort()
            raise
        except BaseException:  # GeneratorExit: the destination stopped pulling
            writer.abort()
            raise

    def _members(self, writer: ArchiveWriter) -> Iterator[bytes]:
        text = readme(
            root=self.root,
            tenant=self.tenant,
            export_id=self.export_id,
            created=self.created,
            requested_by=self.requested_by,
            folders=self.folders,
        )
        yield from writer.add(f"{self.root}/{README_NAME}", len(text), self.created, [text])
        taken: set[str] = set()
        for item in self.items:
            path = deduplicate(f"{item.folder}/{member_path(item.relative)}", taken)
            digest = hashlib.sha256()
            yield from writer.add(
                f"{self.root}/{path}", item.size, item.modified, self._read(item, path, digest)
            )
            self.inventory.append(
                InventoryEntry(
                    path=path,
                    size=item.size,
                    sha256=digest.hexdigest(),
                    modified=item.modified,
                    source=item.folder,
                    source_path=item.source_path,
                )
            )
            self._progress(path)
        self._progress(None)
        listing = inventory_json(
            self.inventory,
            self.skipped,
            tenant=self.tenant,
            export_id=self.export_id,
            created=self.created,
        )
        yield from writer.add(
            f"{self.root}/{INVENTORY_JSON}", len(listing), self.created, [listing]
        )
        table = inventory_csv(self.inventory)
        yield from writer.add(f"{self.root}/{INVENTORY_CSV}", len(table), self.created, [table])

    def _read(self, item: Item, path: str, digest: hashlib._Hash) -> Iterator[bytes]:
        count = 0
        for block in item.blocks():
            count += len(block)
            if count > item.size:
                break
            digest.update(block)
            self.bytes_done += len(block)
            yield block
            self._progress(path)
        if count != item.size:
            # The listing promised another size (a tar header already carries it): the object
            # changed while it was exported, so this archive would not be a consistent copy.
            raise StorageError(
                f"changed while being exported ({count} bytes read, {item.size} listed); "
                "run the export again",
                target=item.origin,
                key=item.source_path,
            )
