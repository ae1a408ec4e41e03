"""``ctfy-vault escrow``: keygen, deposit, verify and open source-code escrow deposits."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from ctfy_vault.cli._options import add_target_options, target_from_args
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

EXIT_OK = 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``escrow`` subcommand and its actions on ``subparsers``.

    Returns:
        The subcommand's parser.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "escrow",
        help="deposit source code encrypted to a notary's key; verify and open deposits",
        description=(
            "Source-code escrow: a deterministic archive of a folder or a git commit, encrypted to "
            "the notary's (and optionally a trustee's) X25519 public key, stored create-only with "
            "a receipt signed by the depositor. See docs/escrow.md."
        ),
    )
    actions = parser.add_subparsers(dest="escrow_command", metavar="ACTION", required=True)

    keygen = actions.add_parser(
        "keygen",
        help="generate a recipient (notary) key pair, or a depositor signing key with --signing",
        description=(
            "Write a new private key to FILE (mode 0600, never overwritten) and its public key to "
            "FILE.pub, and print the public key. The private key is printed only with "
            "--print-secret."
        ),
    )
    keygen.add_argument("file", help="the private key file to create")
    keygen.add_argument(
        "--signing", action="store_true", help="an Ed25519 depositor signing key (not X25519)"
    )
    keygen.add_argument(
        "--print-secret", action="store_true", help="also print the private key (a secret)"
    )
    keygen.add_argument("--json", action="store_true", help="print JSON")
    keygen.set_defaults(run=_keygen)

    dep = actions.add_parser(
        "deposit",
        help="archive a folder or git commit, encrypt it to recipients, store it with a receipt",
        description=(
            "Archive SOURCE (a folder, or a git repository's committed tree at --ref: never the "
            "working files), encrypt it to every --recipient and write it create-only to --to "
            "with a receipt signed by --signing-key. The depositor cannot decrypt the result."
        ),
    )
    dep.add_argument("source", help="a folder or a git repository")
    dep.add_argument(
        "--recipient",
        action="append",
        required=True,
        metavar="PUBKEY",
        help="a recipient public key, as text or a .pub file (repeat for several)",
    )
    dep.add_argument("--to", required=True, metavar="TARGET_URL", help="where to store it")
    dep.add_argument(
        "--signing-key", required=True, metavar="FILE", help="the depositor's signing key file"
    )
    dep.add_argument("--ref", help="git ref to deposit (default HEAD)")
    dep.add_argument(
        "--kind", choices=("folder", "git"), help="treat SOURCE as this (default: detect .git)"
    )
    dep.add_argument("--prefix", default="escrow/", help="folder in the target (default escrow/)")
    dep.add_argument("--json", action="store_true", help="print the receipt as JSON")
    add_target_options(dep)
    dep.set_defaults(run=_deposit)

    ver = actions.add_parser(
        "verify",
        help="check a deposit's receipt signature and ciphertext (no private key needed)",
        description=(
            "Check the receipt's Ed25519 signature and that the stored ciphertext has the size "
            "and SHA-256 the receipt names. Pass --signer to require the depositor's known key. "
            "Without NAME, list the deposits."
        ),
    )
    ver.add_argument("target", metavar="TARGET_URL")
    ver.add_argument("name", nargs="?", help="the deposit name (as deposit printed it)")
    ver.add_argument("--signer", metavar="PUBKEY", help="the depositor's public key (text or file)")
    ver.add_argument("--prefix", default="escrow/", help="folder listed without NAME")
    ver.add_argument("--json", action="store_true", help="print JSON")
    add_target_options(ver)
    ver.set_defaults(run=_verify)

    opn = actions.add_parser(
        "open",
        help="decrypt a deposit with a recipient's private key and check it against its receipt",
        description=(
            "Decrypt NAME with the recipient key in --identity, check it against the signed "
            "receipt, then write the tar archive to --out (never overwritten) or, with "
            "--extract, extract it into the new or empty folder --out."
        ),
    )
    opn.add_argument("target", metavar="TARGET_URL")
    opn.add_argument("name", help="the deposit name")
    opn.add_argument("--identity", required=True, metavar="FILE", help="recipient private key file")
    opn.add_argument("--out", required=True, help="archive file, or folder with --extract")
    opn.add_argument("--extract", action="store_true", help="extract instead of writing the tar")
    opn.add_argument("--signer", metavar="PUBKEY", help="the depositor's public key (text or file)")
    opn.add_argument("--json", action="store_true", help="print JSON")
    add_target_options(opn)
    opn.set_defaults(run=_open)
    return parser


def _emit(out: TextIO, as_json: bool, data: dict[str, Any], text: str) -> None:
    if as_json:
        out.write(json.dumps(data, sort_keys=True) + "\n")
    else:
        out.write(text)
    out.flush()


def _summary(receipt: Receipt) -> dict[str, Any]:
    return {**receipt.body(), "receipt": receipt.receipt_object}


def _keygen(args: argparse.Namespace, out: TextIO) -> int:
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
    return EXIT_OK


def _deposit(args: argparse.Namespace, out: TextIO) -> int:
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
    return EXIT_OK


def _verify(args: argparse.Namespace, out: TextIO) -> int:
    target = target_from_args(args.target, args)
    if args.name is None:
        names = list_deposits(target, args.prefix)
        _emit(out, args.json, {"deposits": names}, "".join(f"{n}\n" for n in names))
        return EXIT_OK
    signer = verify_key(args.signer) if args.signer else None
    receipt = verify_deposit(target, args.name, signer=signer)
    pinned = "the given signer key" if signer else "the key in the receipt (use --signer to pin it)"
    if signer is None:
        sys.stderr.write("ctfy-vault: note: signature checked against the receipt's own key\n")
    _emit(
        out,
        args.json,
        {**_summary(receipt), "ok": True, "signer_pinned": signer is not None},
        f"ok: {receipt.deposit}\n  signature   valid, by {receipt.signer.key_id} ({pinned})\n"
        f"  ciphertext  {receipt.ciphertext_size} bytes, sha256 {receipt.ciphertext_sha256}\n"
        f"  archive     sha256 {receipt.archive_sha256} (checked by open)\n",
    )
    return EXIT_OK


def _open(args: argparse.Namespace, out: TextIO) -> int:
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
    return EXIT_OK
