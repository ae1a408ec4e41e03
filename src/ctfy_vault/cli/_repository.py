"""The repository's own commands: ``init``, ``key add|list|remove`` and ``lock show|break``."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TextIO

from ctfy_vault.cli._config import KeySource
from ctfy_vault.cli._context import load, now, open_vault
from ctfy_vault.cli._render import (
    ExitCode,
    dump,
    report_failed_targets,
    table,
    utc_time,
    write_error,
)
from ctfy_vault.crypto import Credential
from ctfy_vault.exceptions import ConfigurationError, LockError, TargetsFailedError
from ctfy_vault.repository import DEFAULT_PACK_SIZE
from ctfy_vault.vault import LockInfo, Vault

__all__ = [
    "init",
    "key_add",
    "key_list",
    "key_passwd",
    "key_remove",
    "lock_break",
    "lock_show",
]


def init(args: argparse.Namespace, out: TextIO) -> ExitCode:
    """``init``: create the repository on every configured target."""
    config = load(args)
    targets = config.build_targets(os.environ)
    credential = config.key.credential(os.environ)
    try:
        vault = Vault.init(
            targets,
            key=credential,
            now=now(),
            format=args.repository_format,
            pack_size=args.pack_size or DEFAULT_PACK_SIZE,
        )
    except TargetsFailedError as err:
        return report_failed_targets("init", err)
    if args.json:
        dump(
            {
                "repo_id": vault.repo_id.hex(),
                "format": vault.config.format,
                "targets": [t.name for t in targets],
            },
            out,
        )
    else:
        out.write(
            f"created repository {vault.repo_id.hex()} (format {vault.config.format}) on "
            f"{len(targets)} target(s):\n"
        )
        for target in targets:
            out.write(f"  {target.name}\n")
    return ExitCode.OK


def _new_credential(args: argparse.Namespace, what: str) -> Credential:
    """The key in ``--new-env`` or ``--new-file`` (exactly one of them)."""
    if (args.new_env is None) == (args.new_file is None):
        raise ConfigurationError(f"{what} needs exactly one of --new-env VARIABLE or --new-file")
    source = KeySource(
        type=args.type,
        env=args.new_env,
        file=Path(args.new_file) if args.new_file is not None else None,
        setting="--new-env",
    )
    return source.credential(os.environ)


def key_add(args: argparse.Namespace, out: TextIO) -> ExitCode:
    """``key add``: a slot for the key in ``--new-env`` or ``--new-file``."""
    credential = _new_credential(args, "key add")

    def add(vault: Vault) -> str:
        slot = vault.add_key(credential, now=now())
        return f"added key slot {slot.key_id} ({slot.type})"

    return _change_keys(args, out, "key add", add)


def key_passwd(args: argparse.Namespace, out: TextIO) -> ExitCode:
    """``key passwd``: replace the slot the configured key opened with one for the new key."""
    credential = _new_credential(args, "key passwd")

    def change(vault: Vault) -> str:
        old = vault.key_id
        slot = vault.change_key(credential, now=now())
        return (
            f"key changed: new key slot {slot.key_id} ({slot.type}), slot {old} removed; "
            "update the configured key to the new one"
        )

    return _change_keys(args, out, "key passwd", change)


def key_list(args: argparse.Namespace, out: TextIO) -> ExitCode:
    """``key list``: every key slot; the one the configured key opened is marked."""
    _config, vault = open_vault(args)
    slots = vault.keys()
    if args.json:
        dump(
            [
                {
                    "id": s.key_id,
                    "type": s.type,
                    "created": s.created,
                    "in_use": s.key_id == vault.key_id,
                }
                for s in slots
            ],
            out,
        )
        return ExitCode.OK
    rows = [["", "ID", "TYPE", "CREATED (UTC)"]]
    rows.extend(
        ["*" if s.key_id == vault.key_id else "", s.key_id, s.type, utc_time(s.created)]
        for s in slots
    )
    table(rows, out)
    out.write("* the slot the configured key opens\n")
    return ExitCode.OK


def key_remove(args: argparse.Namespace, out: TextIO) -> ExitCode:
    """``key remove KEY_ID``: remove one slot (the library refuses the last)."""

    def remove(vault: Vault) -> str:
        vault.remove_key(args.key_id)
        return f"removed key slot {args.key_id}"

    return _change_keys(args, out, "key remove", remove)


def _change_keys(
    args: argparse.Namespace, out: TextIO, what: str, change: Callable[[Vault], str]
) -> ExitCode:
    """Open the vault and change its key slots on every target; print what ``change`` says."""
    _config, vault = open_vault(args)
    try:
        done = change(vault)
    except TargetsFailedError as err:
        return report_failed_targets(what, err)
    out.write(f"{done}\n")
    return ExitCode.OK


def lock_show(args: argparse.Namespace, out: TextIO) -> ExitCode:
    """``lock show``: who holds the prune lock, and whether it is stale."""
    _config, vault = open_vault(args)
    held = vault.lock_info()
    moment = now()
    if args.json:
        dump(None if held is None else _lock_dict(held, moment), out)
    elif held is None:
        out.write("not locked\n")
    else:
        state = "stale (may be broken)" if held.stale(moment) else "held"
        out.write(f"locked by {held.describe()}: {state}\n")
    return ExitCode.OK


def _lock_dict(held: LockInfo, moment: datetime) -> dict[str, object]:
    return {
        "lock_id": held.lock_id,
        "host": held.host,
        "pid": held.pid,
        "created": held.created,
        "expires": held.expires,
        "stale": held.stale(moment),
    }


def lock_break(args: argparse.Namespace, out: TextIO) -> ExitCode:
    """``lock break``: remove a stale lock (any lock with ``--force``)."""
    _config, vault = open_vault(args)
    try:
        held = vault.break_lock(now=now(), force=args.force)
    except LockError as err:
        write_error("lock break", err)
        return ExitCode.FAILED
    out.write(f"broke the lock of {held.describe()}\n")
    return ExitCode.OK
