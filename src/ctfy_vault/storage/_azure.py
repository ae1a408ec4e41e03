"""Azure Blob through adlfs: create-only uploads, SAS signing, and the container settings.

Nothing here logs or raises a URL: a signed URL is a secret until it expires.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from ctfy_vault.exceptions import UnsupportedError
from ctfy_vault.storage._anonymous import unsigned_urls
from ctfy_vault.storage._backends import (
    FsspecBackend,
    LinkRequest,
    Retrying,
    Support,
    upload_overwriting,
)
from ctfy_vault.storage._errors import describe
from ctfy_vault.storage._keys import MAX_KEY_BYTES


class AzureBackend(FsspecBackend):
    """Azure Blob through adlfs: ``overwrite=False`` uploads and ``If-None-Match: *`` block commits."""

    kind = "azure"
    create_method = "overwrite=False / If-None-Match: * (block list commit)"
    atomic_create = True
    supports = Support(
        replace=True,
        presign=True,
        presign_start=True,
        presign_client_ip=True,
        anonymous_probe=True,
        signed_links="sas",
        key_byte_limit=MAX_KEY_BYTES,
    )
    _write_mode = "xb"

    def create(self, path: str, data: bytes, retrying: Retrying[Any]) -> None:
        """One ``upload_blob(overwrite=False)``."""
        retrying("write", lambda: self.fs.pipe_file(path, data, mode="create"))

    def replace(
        self, path: str, blocks: Iterable[bytes], part_size: int, retrying: Retrying[Any]
    ) -> int:
        """A plain upload (block list committed at the end: atomic for readers)."""
        return upload_overwriting(self.fs, path, blocks, part_size)

    def presign(self, path: str, request: LinkRequest) -> str:
        """A read-only, blob-scoped SAS; needs the account's shared key.

        A target reached with a SAS token or an Azure AD credential cannot sign. Both ends are
        signed: without ``st`` the SAS would work from any earlier time.
        """
        from azure.storage.blob import (  # noqa: PLC0415 - optional dependency
            BlobSasPermissions,
            generate_blob_sas,
        )

        start = request.start
        if start is None:
            raise UnsupportedError("an Azure SAS needs its start time")
        container, _, name = path.partition("/")
        service = self.fs.service_client
        credential: Any = getattr(service, "credential", None)
        account_key = getattr(credential, "account_key", None)
        if not account_key:
            raise UnsupportedError(
                "signing SAS links needs the account's shared key "
                "(account_key or a connection string with AccountKey)"
            )
        sas = generate_blob_sas(
            account_name=credential.account_name,
            container_name=container,
            blob_name=name,
            account_key=account_key,
            permission=BlobSasPermissions(read=True),
            start=start,
            expiry=start + timedelta(seconds=request.expires_in),
            ip=request.client_ip,
            protocol=None,
            content_disposition=request.content_disposition,
            content_type=request.content_type,
        )
        blob_url: str = service.get_blob_client(container, name).url
        return f"{blob_url}?{sas}"

    def anonymous_urls(self, path: str) -> tuple[str, str]:
        """The blob's address from a SAS with the signature stripped; the container listing."""
        start = datetime.now(UTC).replace(microsecond=0)
        signed = self.presign(path, LinkRequest(expires_in=60, start=start))
        return unsigned_urls(
            signed,
            path.partition("/")[2],
            listing_query="restype=container&comp=list",
            trailing_slash=False,
        )

    def probe_settings(self, root: str, notes: list[str]) -> dict[str, Any]:
        """Container immutability; blob versioning is an account setting it cannot report."""
        container = root.split("/", 1)[0]
        out: dict[str, Any] = {}
        try:
            from fsspec.asyn import sync  # noqa: PLC0415

            client = self.fs.service_client.get_container_client(container)
            props = sync(self.fs.loop, client.get_container_properties)
            immutable = bool(
                getattr(props, "has_immutability_policy", False)
                or getattr(props, "immutable_storage_with_versioning_enabled", False)
            )
            out["object_lock"] = immutable
        except Exception as err:  # noqa: BLE001 - reported as unknown
            notes.append(f"immutability unknown ({describe(err)})")
        notes.append("blob versioning is an account setting the container cannot report")
        return out
