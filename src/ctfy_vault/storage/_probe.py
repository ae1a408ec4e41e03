"""What a target can do, found out by asking it (and by trying a create-only write twice)."""

from __future__ import annotations

from typing import Any

import attrs

from ctfy_vault.storage._backends import Support


@attrs.frozen(kw_only=True)
class Capabilities:
    """A target's probed capabilities; ``None`` means the backend could not tell.

    The probed fields say what this endpoint and bucket do; ``supports`` carries the backend's
    static `Support` flags (also `Target.supports`, known without a probe).

    Attributes:
        backend: ``local``, ``memory``, ``s3``, ``azure`` or the fsspec protocol.
        atomic_create: a second create-only write of the probe object was refused and left the first
            bytes in place. False means the endpoint ignored the condition: writes fall back to
            check-then-write, which a concurrent writer can race.
        create_method: how create-only writes are made on this backend.
        atomic_create_multipart: (S3) a conditional multipart completion over an existing object
            was refused. False (Ceph RGW 16 does this) means large streamed writes rely on a HEAD
            right before completion: a narrow race, not an atomic guarantee.
        versioning: bucket versioning is enabled.
        object_lock: S3 Object Lock (or Azure immutability) is enabled for the bucket/container.
        object_lock_default: the default retention, e.g. ``"GOVERNANCE 30 days"``.
        lock_holds: (S3 with Object Lock) a lock set in the target's `Target.lock_mode` could be
            neither shortened nor removed with the credential in use (tried on a probe
            object, bypassing governance where allowed); ``False``: this credential, and so a
            thief of it, can undo the locks.
        signed_links: how signed links are made (``sigv4``, ``sas``, ``hmac``) or ``None``.
        supports: the backend's `Support` flags (``None`` only when built by hand).
        public_read: an unsigned GET of the probe object or an unsigned listing was served: a
            broken "files are never public" promise. ``None`` where there is no endpoint.
        endpoint: the service endpoint, when it is not the provider's default.
        addressing_style: S3 ``path``/``virtual``/``auto``.
        checksum_mode: botocore's request checksum setting used for this endpoint.
        notes: anything else worth knowing (quirks found, probe objects left behind).
    """

    backend: str
    atomic_create: bool
    create_method: str
    atomic_create_multipart: bool | None = None
    versioning: bool | None = None
    object_lock: bool | None = None
    object_lock_default: str | None = None
    lock_holds: bool | None = None
    signed_links: str | None = None
    public_read: bool | None = None
    endpoint: str | None = None
    addressing_style: str | None = None
    checksum_mode: str | None = None
    supports: Support | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        out = attrs.asdict(self)
        out["notes"] = list(self.notes)
        if self.supports is not None:
            out["supports"]["operations"] = list(self.supports.operations())
        return out

    def describe(self) -> str:
        """Return a short human-readable table, one capability per line."""

        def show(value: object) -> str:
            if value is None:
                return "unknown"
            if isinstance(value, bool):
                return "yes" if value else "no"
            return str(value)

        rows = [
            ("backend", self.backend),
            ("atomic create-only", show(self.atomic_create)),
            ("create method", self.create_method),
        ]
        if self.atomic_create_multipart is not None:
            rows.append(("atomic multipart", show(self.atomic_create_multipart)))
        rows.append(("versioning", show(self.versioning)))
        rows.append(("object lock", show(self.object_lock)))
        if self.object_lock_default:
            rows.append(("lock default", self.object_lock_default))
        if self.lock_holds is not None:
            rows.append(
                (
                    "lock holds",
                    "yes (this credential cannot shorten or remove a lock)"
                    if self.lock_holds
                    else "NO (this credential can shorten or remove locks)",
                )
            )
        rows.append(("signed links", self.signed_links or "none"))
        if self.supports is not None:
            rows.append(("operations", ", ".join(self.supports.operations()) or "none"))
        if self.public_read is not None:
            rows.append(
                ("public reads", "YES (a broken promise)" if self.public_read else "refused")
            )
        for label, value in (
            ("endpoint", self.endpoint),
            ("addressing", self.addressing_style),
            ("checksums", self.checksum_mode),
        ):
            if value:
                rows.append((label, value))
        rows.extend(("note", note) for note in self.notes)
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
