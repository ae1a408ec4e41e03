"""Backend options shared by every command that takes target URLs (never secrets)."""

from __future__ import annotations

import argparse
from typing import Any

from ctfy_vault.exceptions import ConfigurationError
from ctfy_vault.storage import Target

#: Options that carry credentials: refused on the command line, where shells and ps keep them.
SECRET_OPTIONS = frozenset(
    {"key", "secret", "token", "account_key", "connection_string", "sas_token", "credential"}
)
_S3_FLAGS = ("endpoint_url", "region", "addressing_style")


def add_target_options(parser: argparse.ArgumentParser, *, scope: str = "the target") -> None:
    """Add ``--endpoint-url``, ``--region``, ``--addressing-style`` and ``--option KEY=VALUE``."""
    parser.add_argument(
        "--endpoint-url", help=f"S3-compatible endpoint for {scope} (Spaces, Ceph, MinIO)"
    )
    parser.add_argument("--region", help="S3 region")
    parser.add_argument(
        "--addressing-style", choices=("path", "virtual", "auto"), help="S3 addressing style"
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another backend option for s3:// and az:// URLs (e.g. account_name=...); not for secrets",
    )


def target_from_args(url: str, args: argparse.Namespace) -> Target:
    """Build a target from a URL and the shared options that apply to its scheme.

    Raises:
        ConfigurationError: a malformed ``--option`` or one that would carry a secret.
        InvalidURLError: the URL or an option is wrong.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else "file"
    options: dict[str, Any] = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"--option needs KEY=VALUE, got {item!r}")
        if key in SECRET_OPTIONS:
            raise ConfigurationError(
                f"--option {key}=... would put a secret on the command line; use the environment"
            )
        if scheme in ("s3", "az", "abfs", "abfss"):
            options[key] = value
    if scheme == "s3":
        options.update({name: getattr(args, name) for name in _S3_FLAGS if getattr(args, name)})
    return Target.from_url(url, **options)
