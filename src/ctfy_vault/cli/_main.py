"""``ctfy-vault``: argument parsing and output only; every decision is made by the library."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from ctfy_vault._version import __version__
from ctfy_vault.cli._mirror import add_parser as _add_mirror
from ctfy_vault.exceptions import ConfigurationError, ObjectExistsError, VaultError
from ctfy_vault.retention import Policy, plan
from ctfy_vault.storage import Target

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ctfy-vault",
        description="Multi-cloud, retained, append-only, encrypted backups.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    probe = commands.add_parser(
        "probe",
        help="show what a storage target can do (create-only, versioning, object lock, links)",
        description=(
            "Probe a storage target: writes one small object under .ctfy-probe/ twice (the second "
            "create-only write must be refused), deletes it where allowed, and reads versioning and "
            "Object Lock settings. Credentials come from the environment (AWS_ACCESS_KEY_ID, "
            "AWS_SECRET_ACCESS_KEY, AZURE_STORAGE_CONNECTION_STRING, ...), never from arguments."
        ),
    )
    probe.add_argument(
        "url",
        nargs="?",
        help="target URL (file://, s3://, az://, abfs://, memory://); default: a temporary folder",
    )
    probe.add_argument("--json", action="store_true", help="print JSON instead of a table")
    probe.add_argument("--endpoint-url", help="S3-compatible endpoint (Spaces, Ceph, MinIO)")
    probe.add_argument("--region", help="S3 region")
    probe.add_argument(
        "--addressing-style", choices=("path", "virtual", "auto"), help="S3 addressing style"
    )
    probe.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another backend option (e.g. account_name=...); not for secrets",
    )
    probe.set_defaults(run=_probe)

    demo = commands.add_parser(
        "demo",
        help="run a complete cycle on local folders with no configuration",
        description=(
            "Create two local folder targets, probe them, write objects create-only to both, show "
            "that a second write under the same name is refused and changes nothing, and print the "
            "retention dry run of the product's schedule over a year of nightly backups."
        ),
    )
    demo.add_argument("--dir", type=Path, help="folder to work in (default: a new temporary one)")
    demo.set_defaults(run=_demo)
    _add_mirror(commands)
    return parser


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"--option needs KEY=VALUE, got {item!r}")
        if key in ("key", "secret", "token", "account_key", "connection_string", "sas_token"):
            raise ConfigurationError(
                f"--option {key}=... would put a secret on the command line; use the environment"
            )
        options[key] = value
    for name in ("endpoint_url", "region", "addressing_style"):
        value = getattr(args, name)
        if value:
            options[name] = value
    return options


def _probe(args: argparse.Namespace, out: TextIO) -> int:
    options = _options(args)
    if args.url is None:
        with tempfile.TemporaryDirectory(prefix="ctfy-probe-") as folder:
            return _print_probe(Target.from_url(folder, **options), args.json, out)
    return _print_probe(Target.from_url(args.url, **options), args.json, out)


def _print_probe(target: Target, as_json: bool, out: TextIO) -> int:
    caps = target.probe()
    if as_json:
        json.dump({"target": target.name, **caps.to_dict()}, out, indent=2, sort_keys=True)
        out.write("\n")
    else:
        out.write(f"target              {target.name}\n{caps.describe()}\n")
    return EXIT_OK


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    if args.dir is not None:
        return _run_demo(args.dir, out)
    with tempfile.TemporaryDirectory(prefix="ctfy-demo-") as folder:
        return _run_demo(Path(folder), out)


def _run_demo(folder: Path, out: TextIO) -> int:
    say: Callable[[str], object] = lambda text: out.write(text + "\n")  # noqa: E731 - tiny local
    targets = [Target.from_url(str(folder / name), name=name) for name in ("amsterdam", "ireland")]
    say(f"ctfy-vault {__version__} demo in {folder}")
    for target in targets:
        caps = target.probe()
        atomic = "atomic" if caps.atomic_create else "NOT atomic"
        say(f"  {target.name}: {caps.backend}, create-only is {atomic} ({caps.create_method})")
    payload = b"contract 4711, signed 2026-11-26\n"
    for target in targets:
        target.write("documents/contract-4711.txt", payload)
        target.write_stream(
            "dumps/db.sql", (b"INSERT INTO contracts VALUES (%d);\n" % i for i in range(10_000))
        )
    say("  wrote documents/contract-4711.txt and dumps/db.sql to both targets, create-only")
    for target in targets:
        try:
            target.write("documents/contract-4711.txt", b"tampered\n")
        except ObjectExistsError:
            kept = target.read("documents/contract-4711.txt") == payload
            say(f"  {target.name}: overwrite refused; stored bytes unchanged: {kept}")
            if not kept:
                return EXIT_FAILED
        else:
            say(f"  {target.name}: overwrite was NOT refused")
            return EXIT_FAILED
    for target in targets:
        keys = sorted(target.list())
        sizes = ", ".join(f"{key} ({target.size(key)} B)" for key in keys)
        say(f"  {target.name} holds: {sizes}")
    _demo_retention(say)
    say("demo complete")
    return EXIT_OK


def _demo_retention(say: Callable[[str], object]) -> None:
    """Show the dry-run plan of the product's schedule over a year of nightly backups."""
    policy = Policy.contractify()
    first = datetime(2025, 11, 27, 2, 30, tzinfo=UTC)
    nightly = [first + timedelta(days=n) for n in range(365) if n % 61 != 17]  # a few missed nights
    result = plan(nightly, policy)
    say(f"  retention dry run, policy {policy}, {len(nightly)} nightly snapshots:")
    say(f"    keep {len(result.keep)}, forget {len(result.forget)}; newest kept because:")
    say("    " + ", ".join(str(reason) for reason in result.reasons[result.keep[0]]))
    say(
        f"    oldest kept {result.keep[-1]:%Y-%m-%d}: "
        + ", ".join(str(reason) for reason in result.reasons[result.keep[-1]])
    )


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run ``ctfy-vault`` with ``argv`` (default: the process arguments); return the exit code."""
    stream = out or sys.stdout
    args = _parser().parse_args(argv)
    run: Callable[[argparse.Namespace, TextIO], int] = args.run
    try:
        return run(args, stream)
    except ConfigurationError as err:
        sys.stderr.write(f"ctfy-vault: error: {err}\n")
        return EXIT_USAGE
    except VaultError as err:
        sys.stderr.write(f"ctfy-vault: {type(err).__name__}: {err}\n")
        return EXIT_FAILED
