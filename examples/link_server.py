"""A minimal download endpoint for local HMAC links, with the standard library's WSGI server.

Run it as ``python examples/link_server.py [FOLDER]`` (default: a temporary folder with one sample
document). It prints a signed link valid for five minutes; open it before it expires. Any change to
the link, a request after expiry or from another address gets 403.

In an application, the secret comes from its configuration (at least 32 random bytes, the same in the
process that signs and the one that serves) and ``BASE_URL`` is the endpoint's public address.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any
from wsgiref.simple_server import make_server
from wsgiref.util import request_uri

from ctfy_vault import Target
from ctfy_vault.exceptions import IntegrityError, ObjectNotFoundError
from ctfy_vault.links import LinkSigner, content_disposition, presign, verify_link

HOST, PORT = "127.0.0.1", 8765
BASE_URL = f"http://{HOST}:{PORT}/download"

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
App = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def make_app(
    target: Target, signer: LinkSigner
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """Return a WSGI app serving ``target``'s objects to holders of valid links, and nothing else."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        try:
            granted = verify_link(
                request_uri(environ, include_query=True),
                signer,
                client_ip=environ.get("REMOTE_ADDR"),
                method=method,
            )
            body = target.read(granted.key)
        except (IntegrityError, ObjectNotFoundError):
            # The same answer whatever the reason: a prober learns nothing.
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"forbidden\n"]
        headers = [
            ("Content-Type", granted.content_type or "application/octet-stream"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "private, no-store"),
        ]
        if granted.filename:
            headers.append(("Content-Disposition", content_disposition(granted.filename)))
        start_response("200 OK", headers)
        return [b""] if method == "HEAD" else [body]

    return app


def main() -> None:
    folder = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="ctfy-links-")
    target = Target.from_url(folder)
    if not target.exists("contracts/4711.pdf"):
        target.write("contracts/4711.pdf", b"%PDF-1.7 sample contract\n")
    secret = os.environ.get("CTFY_LINK_SECRET", "").encode() or secrets.token_bytes(32)
    signer = LinkSigner(secret, BASE_URL)
    link = presign(
        target,
        "contracts/4711.pdf",
        ttl=timedelta(minutes=5),
        filename="Vertrag 4711 - Überweisung.pdf",
        content_type="application/pdf",
        client_ip=HOST,
        signer=signer,
    )
    # Printed here because this demo is its own user; an application hands it to one client only.
    print(f"serving {target.name} on {BASE_URL}; link valid until {link.expires_at:%H:%M:%S} UTC:")
    print(link.url)
    with make_server(HOST, PORT, make_app(target, signer)) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
