"""``ctfy-vault tag``: add, remove or set snapshots' tags, as tag records in their chains."""

from __future__ import annotations

import argparse
from typing import TextIO

from ctfy_vault.cli._context import now, open_vault
from ctfy_vault.cli._render import ExitCode, dump, report_failed_targets, table
from ctfy_vault.exceptions import ConfigurationError, TargetsFailedError

__all__ = ["tag"]


def tag(args: argparse.Namespace, out: TextIO) -> ExitCode:
    """``tag SNAPSHOT... --add/--remove/--set``: one tag record per snapshot whose tags change.

    A snapshot whose tags would not change gets no record (nothing is written for it).
    """
    if args.set is not None and (args.add or args.remove):
        raise ConfigurationError("--set replaces the tags: use it without --add and --remove")
    if args.set is None and not (args.add or args.remove):
        raise ConfigurationError("tag needs --add, --remove or --set")
    _config, vault = open_vault(args)
    infos = [vault.find(ref) for ref in args.snapshots]  # every reference checked first
    results: list[tuple[str, tuple[str, ...], bool]] = []
    for info in infos:
        if args.set is not None:
            wanted = set(args.set)
            add, remove = sorted(wanted - set(info.tags)), sorted(set(info.tags) - wanted)
        else:
            add = sorted(set(args.add) - set(info.tags))
            remove = sorted(set(args.remove) & set(info.tags))
        if not (add or remove):
            results.append((info.snapshot_id, info.tags, False))
            continue
        try:
            changed = vault.tag(info, now=now(), add=add, remove=remove)
        except TargetsFailedError as err:
            return report_failed_targets("tag", err)
        results.append((changed.snapshot_id, changed.tags, True))
    if args.json:
        dump([{"id": i, "tags": list(t), "changed": c} for i, t, c in results], out)
    else:
        rows = [["ID", "TAGS", "CHANGED"]]
        rows.extend([i[:12], ",".join(t), "yes" if c else "no"] for i, t, c in results)
        table(rows, out)
    return ExitCode.OK
