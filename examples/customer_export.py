"""A customer's full export: documents plus their folder in a backup, one archive, a signed link.

Run it as ``python examples/customer_export.py``. It builds a temporary documents folder for two
tenants and a one-target vault with a backup of the application's files, exports tenant ``acme``
(documents and its folder in the latest snapshot) into an exports folder, checks the signed link the
way the application's download endpoint would, unpacks the archive with the standard library and
compares every file with the inventory, then shows the tenant's export register and the yearly rule.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ctfy_vault import Target
from ctfy_vault.crypto import RawKey
from ctfy_vault.export import SnapshotSource, export, history
from ctfy_vault.links import LinkSigner, verify_link
from ctfy_vault.vault import Vault


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="ctfy-export-example-") as scratch:
        root = Path(scratch)
        documents = Target.from_url(str(root / "documents"))
        documents.write("acme/contracts/4711.pdf", b"%PDF-1.7 contract 4711")
        documents.write("acme/contracts/Überweisung März.pdf", b"%PDF-1.7 payment")
        documents.write("globex/contracts/1.pdf", b"%PDF another tenant")

        files = root / "server-files" / "tenants" / "acme"
        files.mkdir(parents=True)
        (files / "settings.json").write_text('{"language": "nl"}')
        now = datetime.now(UTC)
        vault = Vault.init([Target.from_url(str(root / "vault"))], key=RawKey(bytes(32)), now=now)
        snapshot = vault.backup(str(root / "server-files"), lineage="server-files", now=now)

        exports = Target.from_url(str(root / "exports"))
        signer = LinkSigner(secret=os.urandom(32), base_url="https://app.example/download")
        summary = export(
            [
                documents,
                SnapshotSource(vault=vault, snapshot=snapshot, prefix="server-files/tenants/acme"),
            ],
            exports,
            tenant="acme",
            requested_by="jan@acme.example",
            signer=signer,
        )
        print(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))

        if summary.link is None:
            raise SystemExit("no link was signed")
        granted = verify_link(summary.link.url, signer)  # what the download endpoint does
        archive = exports.read(granted.key)
        if hashlib.sha256(archive).hexdigest() != summary.sha256:
            raise SystemExit("the archive does not match its summary")

        with zipfile.ZipFile(io.BytesIO(archive)) as unpacked:
            top = unpacked.namelist()[0].split("/", 1)[0]
            inventory = json.loads(unpacked.read(f"{top}/inventory.json"))
            for row in inventory["files"]:
                data = unpacked.read(f"{top}/{row['path']}")
                if hashlib.sha256(data).hexdigest() != row["sha256"]:
                    raise SystemExit(f"{row['path']} does not match the inventory")
                print(f"  ok  {row['path']}  ({row['size']} bytes, from {row['source_path']})")

        year_ago = datetime.now(UTC) - timedelta(days=365)
        register = history(exports, "acme")
        print(f"register: {len(register)} export(s); last {register[-1].created:%Y-%m-%d %H:%M}")
        free = not any(entry.created > year_ago for entry in register[:-1])
        print(f"this export was {'free' if free else 'charged'} under 'one free export per year'")


if __name__ == "__main__":
    main()
