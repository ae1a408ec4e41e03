"""``ctfy-vault escrow``: keygen, deposit, verify and open source-code escrow deposits."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any, TextIO

from ctfy_vault.cli._options import target_from_args
from ctfy_vault.cli._render import ExitCode, dump_line, say
from ctfy_vault.escrow import (
    KeyRole,
    Receipt,
    deposit,
    generate_key_files,
    list_deposits,
    open_deposit,
    read_identity,
    read_signing_key,
    recipient_key,
    verify_deposit,
    verify_key,
)

__all__ = ["run_deposit", "run_keygen", "run_open", "run_verify"]


def _emit(out: TextIO, as_json: bool, data: dict[str, Any], text: str) -> None:
    if as_json:
        dump_line(data, out)
    else:
        out.write(text)
        out.flush()


def _summary(receipt: Receipt) -> dict[str, Any]:
    return {**receipt.body(), "receipt": receipt.receipt_object}


def run_keygen(args: argparse.Namespace, out: TextIO) -> ExitCode:
    role: KeyRole = "signing" if args.signing else "recipient"
    files = generate_key_files(args.file, role=role, now=datetime.now(UTC))
    data: dict[str, Any] = {
        "role": files.role,
        "private_key_file": str(files.private_path),
        "public_key_file": str(files.public_path),
        "public_key": files.public_key,
        "key_id": files.key_id,
    }
    text = (
        f"{role} key {files.key_id}\n  private key: {files.private_path} (mode 0600, keep it "
        f"secret)\n  public key:  {files.public_path}\n{files.public_key}\n"
    )
    if args.print_secret:
        if args.signing:
            secret = read_signing_key(files.private_path).secret_text()
        else:
            secret = read_identity(files.private_path).secret_text()
        data["private_key"] = secret
        text += f"PRIVATE KEY (secret): {secret}\n"
    _emit(out, args.json, data, text)
    return ExitCode.OK


def run_deposit(args: argparse.Namespace, out: TextIO) -> ExitCode:
    recipients = [recipient_key(value) for value in args.recipient]
    receipt = deposit(
        args.source,
        target_from_args(args.to, args),
        recipients=recipients,
        signing_key=read_signing_key(args.signing_key),
        now=datetime.now(UTC),
        ref=args.ref,
        kind=args.kind,
        prefix=args.prefix,
    )
    where = f" at {receipt.ref} ({receipt.commit})" if receipt.commit else ""
    _emit(
        out,
        args.json,
        _summary(receipt),
        f"deposited {receipt.deposit}{where}\n"
        f"  archive     {receipt.archive_size} bytes, {receipt.archive_entries} entries, "
        f"sha256 {receipt.archive_sha256}\n"
        f"  ciphertext  {receipt.ciphertext_object}: {receipt.ciphertext_size} bytes, "
        f"sha256 {receipt.ciphertext_sha256}\n"
        f"  receipt     {receipt.receipt_object} (signed by {receipt.signer.key_id})\n"
        f"  recipients  {', '.join(r.key_id for r in receipt.recipients)}\n",
    )
    return ExitCode.OK


def run_verify(args: argparse.Namespace, out: TextIO) -> ExitCode:
    target = target_from_args(args.target, args)
    if args.name is None:
        names = list_deposits(target, args.prefix)
        _emit(out, args.json, {"deposits": names}, "".join(f"{n}\n" for n in names))
        return ExitCode.OK
    signer = verify_key(args.signer) if args.signer else None
    receipt = verify_deposit(target, args.name, signer=signer)
    pinned = "the given signer key" if signer else "the key in the receipt (use --signer to pin it)"
    if signer is None:
        say("note", "signature checked against the receipt's own key")
    _emit(
        out,
        args.json,
        {**_summary(receipt), "ok": True, "signer_pinned": signer is not None},
        f"ok: {receipt.deposit}\n  signature   valid, by {receipt.signer.key_id} ({pinned})\n"
        f"  ciphertext  {receipt.ciphertext_size} bytes, sha256 {receipt.ciphertext_sha256}\n"
        f"  archive     sha256 {receipt.archive_sha256} (checked by open)\n",
    )
    return ExitCode.OK


def run_open(args: argparse.Namespace, out: TextIO) -> ExitCode:
    signer = verify_key(args.signer) if args.signer else None
    opened = open_deposit(
        target_from_args(args.target, args),
        args.name,
        read_identity(args.identity),
        out=args.out,
        extract=args.extract,
        signer=signer,
    )
    action = "extracted into" if opened.extracted else "written to"
    _emit(
        out,
        args.json,
        {
            "deposit": opened.receipt.deposit,
            "path": str(opened.path),
            "extracted": opened.extracted,
            "size": opened.size,
            "sha256": opened.sha256,
        },
        f"opened {opened.receipt.deposit}: {opened.size} bytes, sha256 {opened.sha256} "
        f"(matches the receipt), {action} {opened.path}\n",
    )
    return ExitCode.OK
