"""The ``ctfy-vault`` command line: every command, option and help text, and nothing else.

`parse` turns the words into a namespace whose ``run`` is the command's function (in the command
modules: `_repository`, `_backup`, `_copy`, `_browse`, `_maintenance`, `_status`, `_tools`, `_mirror`,
`_export`, `_escrow`), called as ``run(args, out)`` and returning an `ExitCode`. Option values are checked as
they are parsed (see `ctfy_vault.cli._options`): a bad value is a usage error, exit code 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TextIO

from ctfy_vault._version import __version__
from ctfy_vault.cli import (
    _backup,
    _browse,
    _completion,
    _copy,
    _escrow,
    _export,
    _maintenance,
    _mirror,
    _repository,
    _status,
    _tag,
    _tools,
)
from ctfy_vault.cli._completion import SHELLS
from ctfy_vault.cli._export import SECRET_ENV
from ctfy_vault.cli._options import (
    KEEP_COUNTS,
    KEEP_WINDOWS,
    count_option,
    duration_option,
    read_data_option,
    reference_option,
    seconds_option,
    share_option,
    size_option,
    subset_option,
)
from ctfy_vault.repository import MAX_PACK_SIZE, MIN_PACK_SIZE

__all__ = [
    "FROM_COMMAND",
    "Run",
    "add_escrow",
    "add_export",
    "add_mirror",
    "add_target_options",
    "build_parser",
    "parse",
    "split_command",
]

#: A command's function: the parsed arguments and standard output in, the exit code out.
Run = Callable[[argparse.Namespace, TextIO], int]
#: The ``backup`` option whose command follows ``--`` (see `split_command`).
FROM_COMMAND: Final = "--stdin-from-command"
#: The longest ``mirror --watch`` interval: 31 days (longer sleeps gain nothing and may not be
#: representable).
_MAX_INTERVAL: Final = 31 * 86400.0
#: Each ``mirror`` worker is a thread with its own connections.
_MAX_WORKERS: Final = 256
_SNAPSHOT_HELP: Final = "name, id, unique id prefix, latest or latest:LINEAGE"

_EPILOG: Final = """\
exit codes: 0 success; 1 the operation failed (or check found a problem); 2 bad usage or
configuration; 3 partial: some target failed while others succeeded (run heal when it is back);
130 interrupted (Ctrl-C).
The repository commands read ctfy-vault.toml (--config PATH, or $CTFY_VAULT_CONFIG); see docs/cli.md.
"""


def split_command(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """Split ``backup ... --stdin-from-command ... -- CMD ARGS...`` at its ``--``.

    argparse cannot hand everything after ``--`` to one option (it drops later ``--`` and mixes
    the words with the positional PATHS), so the command is cut off before parsing.

    Args:
        argv: the command line after the program name.

    Returns:
        The words to parse, and the command after the first ``--`` when ``--stdin-from-command``
        comes before it (``None`` otherwise: nothing is split).
    """
    words = list(argv)
    if "--" not in words:
        return words, None
    cut = words.index("--")
    if FROM_COMMAND not in words[:cut]:
        return words, None
    return words[:cut], words[cut + 1 :]


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the command line after the program name (argparse exits 2 on bad usage).

    Returns:
        The namespace; ``run`` is the command's function, ``producer`` the command after
        ``backup --stdin-from-command --``.
    """
    words, command = split_command(argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(words)
    if extra:
        # argparse takes ``backup LINEAGE PATHS...`` in one go, so PATHS after an option
        # (``backup files --tag x /srv``) come back unparsed: they are more PATHS.
        if getattr(args, "command", None) == "backup" and not any(
            word.startswith("-") for word in extra
        ):
            args.paths = [*args.paths, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if command is not None:
        args.producer = command
    _merge_global(parser, args)
    return args


def _merge_global(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Options given before the command count as given to it (restic's global flags).

    The main parser keeps them under ``global_<name>``: a command's own default would
    otherwise overwrite the value given before it.
    """
    if getattr(args, "global_config", None) is not None and getattr(args, "config", None) is None:
        args.config = args.global_config
    if getattr(args, "global_json", False):
        args.json = True
    if args.quiet and args.verbose:
        parser.error("--quiet and --verbose cannot be used together")


def build_parser() -> argparse.ArgumentParser:
    """The whole ``ctfy-vault`` parser, every command registered."""
    parser = argparse.ArgumentParser(
        prog="ctfy-vault",
        description="Multi-cloud, retained, append-only, encrypted backups.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="how warnings on standard error look: text lines (default) or JSON lines "
        "(time, level, logger, message; never a secret)",
    )
    parser.add_argument(
        "--config",
        dest="global_config",
        metavar="PATH",
        help="the TOML config, for every command (also accepted after the command)",
    )
    parser.add_argument(
        "--json",
        dest="global_json",
        action="store_true",
        help="print JSON, for every command that reports (also accepted after the command)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bar and no notes: only results, warnings and errors",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also show the library's informational messages on standard error",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="never draw a progress bar, even on a terminal"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_repository_commands(commands)
    _add_tools(commands)
    add_mirror(commands)
    add_export(commands)
    add_escrow(commands)
    return parser


# -- building blocks -----------------------------------------------------------------------------


def _command(
    commands: Any,
    name: str,
    run: Run,
    help_text: str,
    description: str | None = None,
    *,
    parents: Sequence[argparse.ArgumentParser] = (),
) -> argparse.ArgumentParser:
    """Register one command (or action) whose function is ``run``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, parents=list(parents), help=help_text, description=description
    )
    parser.set_defaults(run=run)
    return parser


def _actions(
    commands: Any, name: str, help_text: str, description: str
) -> tuple[argparse.ArgumentParser, Any]:
    """Register a command made of actions (``key add``); return it and its actions."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=description
    )
    actions = parser.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=True)
    return parser, actions


def _shared() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The parents of the repository commands: ``--config``, and ``--json`` for listings."""
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument(
        "--config",
        metavar="PATH",
        help="the TOML config (default: $CTFY_VAULT_CONFIG, else ./ctfy-vault.toml)",
    )
    listing = argparse.ArgumentParser(add_help=False)
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return config, listing


def _metrics_parent() -> argparse.ArgumentParser:
    """``--metrics-file`` and ``--metrics-push``: the run's metrics for Prometheus."""
    metrics = argparse.ArgumentParser(add_help=False)
    group = metrics.add_argument_group("metrics (Prometheus text format)")
    group.add_argument(
        "--metrics-file",
        metavar="PATH",
        type=Path,
        help="write the run's metrics to PATH for node exporter's textfile collector (one "
        "file per job, replaced whole: ctfy-backup-db.prom)",
    )
    group.add_argument(
        "--metrics-push",
        metavar="URL",
        help="push the run's metrics to the Pushgateway at URL (http[s]://[user:password@]host:"
        "port), grouped by operation and lineage",
    )
    return metrics


def _add_json(parser: argparse.ArgumentParser, help_text: str = "print JSON") -> None:
    parser.add_argument("--json", action="store_true", help=help_text)


def add_target_options(parser: argparse.ArgumentParser, *, scope: str = "the target") -> None:
    """Add ``--endpoint-url``, ``--region``, ``--addressing-style`` and ``--option KEY=VALUE``.

    `ctfy_vault.cli._options.target_from_args` builds the target from them (never a secret).
    """
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


def _add_known_heads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--known-heads",
        metavar="FILE",
        help="the file holding each lineage's last verified head (default: [repository] "
        "known_heads, else $XDG_STATE_HOME/ctfy-vault/REPO-ID.heads.json)",
    )


def _add_snapshot(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("snapshot", type=reference_option, help=_SNAPSHOT_HELP)


# -- the repository commands ---------------------------------------------------------------------


def _add_repository_commands(commands: Any) -> None:
    config, listing = _shared()
    both = [config, listing]
    init = _command(
        commands,
        "init",
        _repository.init,
        "create the repository on every configured target",
        "Create an encrypted repository on every target of the config: a config document, master "
        "keys and one key slot for the configured key. Refuses targets that already hold one.",
        parents=both,
    )
    init.add_argument(
        "--format",
        type=int,
        choices=(1, 2),
        default=2,
        dest="repository_format",
        help="repository layout: 2 (default: chunks in padded packs, keyed chunking) or 1 "
        "(one object per chunk, for tools that read only format 1)",
    )
    init.add_argument(
        "--pack-size",
        type=size_option("--pack-size", minimum=MIN_PACK_SIZE, maximum=MAX_PACK_SIZE),
        default=None,
        metavar="SIZE",
        help="format 2: close packs at this size (default 16MiB; 4KiB to 1GiB; suffixes KiB, "
        "MiB, GiB)",
    )
    _add_backup(commands, both)
    _add_copy(commands, both)
    _add_browsing(commands, both)
    _add_maintenance(commands, both)
    _add_key_and_lock(commands, config, both)


def _add_backup(commands: Any, both: list[argparse.ArgumentParser]) -> None:
    backup = _command(
        commands,
        "backup",
        _backup.backup,
        "back up a lineage's sources (or PATHS, or a command's output) as one snapshot",
        "Back up PATHS (default: the lineage's configured sources) as one snapshot on every "
        "target. Without LINEAGE, every lineage with sources is backed up in turn. Unchanged "
        "files are not read again; chunks already stored are not uploaded again. With "
        "--stdin-from-command -- CMD ARGS..., CMD is run (without a shell) and its standard "
        "output is stored as one file: the snapshot is committed only if CMD exits 0, so a "
        "database dump that fails half way is never kept (exit code 1, nothing committed). "
        "A lineage whose known head the storage lost (see check) is not backed up (exit code 1) "
        "unless --accept-rollback; each new snapshot is recorded as its lineage's known head. "
        "Exit code 3 when some target failed while others committed (repair with heal).",
        parents=[*both, _metrics_parent()],
    )
    backup.usage = (
        "%(prog)s [-h] [--config PATH] [--json] [--tag TAG] [--host HOST] [LINEAGE] [PATHS ...]\n"
        "       %(prog)s LINEAGE --stdin-from-command [--name NAME] [options] -- CMD [ARGS ...]\n"
        "       %(prog)s LINEAGE --stdin --name NAME [options]"
    )
    backup.add_argument("lineage", nargs="?", help="a lineage of the config")
    backup.add_argument("paths", nargs="*", help="files and folders (default: the sources)")
    backup.add_argument(
        FROM_COMMAND,
        action="store_true",
        help="run the command given after -- (no shell) and back up its standard output as one "
        "file (--name, default: the program's name); nothing is committed unless it exits 0",
    )
    backup.add_argument(
        "--stdin",
        action="store_true",
        help="back up standard input as one file (with --name); a failure of the program "
        "piping into it goes unnoticed without `set -o pipefail`: prefer --stdin-from-command",
    )
    backup.add_argument("--name", help="the file name the stream is stored under")
    backup.set_defaults(producer=None)
    backup.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    backup.add_argument("--host", help="the host recorded (default: this machine's name)")
    _add_known_heads(backup)
    backup.add_argument(
        "--accept-rollback",
        action="store_true",
        help="back up even when the storage lost a lineage's known head (deleted or rolled "
        "back): chain onto the head it holds now and record the new snapshot as known",
    )
    chosen = backup.add_argument_group("what is taken (restic's flags)")
    chosen.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="leave out entries matching PATTERN (fnmatch: a name anywhere, or with / the "
        "absolute path; an excluded folder goes whole; repeatable)",
    )
    chosen.add_argument(
        "--exclude-file",
        action="append",
        default=[],
        metavar="FILE",
        type=Path,
        help="read exclude patterns from FILE, one per line (# comments, blank lines ignored)",
    )
    chosen.add_argument(
        "--files-from",
        action="append",
        default=[],
        metavar="FILE",
        type=Path,
        help="read the paths to back up from FILE, one per line (# comments, blank lines "
        "ignored), besides PATHS",
    )
    chosen.add_argument(
        "--full-paths",
        action="store_true",
        help="store the sources under their absolute paths, as restic does (two sources named "
        "config then do not clash); or full_paths = true in the lineage's table",
    )
    chosen.add_argument(
        "--one-file-system",
        action="store_true",
        help="do not descend into folders on another filesystem (mount points stay, empty)",
    )
    chosen.add_argument(
        "--dry-run",
        action="store_true",
        help="say what would be read and recorded; read no file, run no command, write nothing",
    )


def _add_copy(commands: Any, both: list[argparse.ArgumentParser]) -> None:
    copy = _command(
        commands,
        "copy",
        _copy.copy,
        "copy snapshots of another repository into this one, re-chunked and re-sealed",
        "Copy the snapshots (default: all) of the repository OTHER.toml describes (its targets "
        "and its own key) into this one: each file is read from the source, re-chunked and "
        "sealed under this repository's keys, and each snapshot keeps its lineage, id, time, "
        "host, tags and file metadata, chained oldest first onto this repository's head of its "
        "lineage, with a copied-from=SOURCE-ID/SNAPSHOT-ID tag. Snapshots already here (same "
        "lineage and id, or that tag) are skipped, so an interrupted copy resumes when run "
        "again. A snapshot older than this repository's head of its lineage is refused before "
        "anything is copied (exit code 1). Exit code 3 when some target failed while others "
        "committed (repair with heal).",
        parents=both,
    )
    copy.add_argument(
        "--from-config",
        required=True,
        metavar="OTHER.toml",
        help="the config of the repository to copy from (its targets and its key)",
    )
    copy.add_argument(
        "--snapshot",
        action="append",
        default=[],
        type=reference_option,
        metavar="REF",
        help=f"copy this snapshot ({_SNAPSHOT_HELP}; repeatable; default: all)",
    )
    copy.add_argument(
        "--lineage",
        action="append",
        default=[],
        help="copy only this lineage (repeatable); --snapshot is looked up among its snapshots",
    )
    _add_known_heads(copy)


def _add_browsing(commands: Any, both: list[argparse.ArgumentParser]) -> None:
    snapshots = _command(
        commands,
        "snapshots",
        _browse.snapshots,
        "list the snapshots, newest first",
        "List every snapshot any target holds, newest first.",
        parents=both,
    )
    snapshots.add_argument("--lineage", help="only this lineage")

    ls = _command(
        commands,
        "ls",
        _browse.ls,
        "list the files of a snapshot",
        "List the entries of SNAPSHOT (a name, an id, a unique id prefix, latest or "
        "latest:LINEAGE) at and under PATH.",
        parents=both,
    )
    _add_snapshot(ls)
    ls.add_argument("path", nargs="?", help="a path inside the snapshot (default: everything)")

    restore = _command(
        commands,
        "restore",
        _browse.restore,
        "restore a snapshot into a local folder, every chunk authenticated",
        "Restore SNAPSHOT into DEST. DEST must be empty or missing unless --overwrite. Paths that "
        "would escape DEST and links pointing outside it are refused.",
        parents=both,
    )
    _add_snapshot(restore)
    restore.add_argument("dest", type=Path, help="the destination folder")
    restore.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="PATTERN",
        help="restore only this path, folder or glob (repeatable)",
    )
    restore.add_argument(
        "--overwrite", action="store_true", help="restore into a non-empty folder, replacing files"
    )


_KEEP_COUNT_HELP: Final = {
    "last": "keep the N newest snapshots (N or unlimited)",
    **{
        rule: f"keep the newest snapshot of each of the N latest {rule} periods (N or unlimited)"
        for rule in KEEP_COUNTS[1:]
    },
}


def _add_keep_flags(parser: argparse.ArgumentParser) -> None:
    """Restic's ``--keep-*`` flags: a policy given on the command line (see `keep_policy`)."""
    group = parser.add_argument_group(
        "a policy on the command line (restic's flags; it replaces the configured policies)"
    )
    for rule in KEEP_COUNTS:
        group.add_argument(
            f"--keep-{rule}",
            metavar="N",
            help=_KEEP_COUNT_HELP[rule],
        )
    for rule in KEEP_WINDOWS:
        group.add_argument(
            f"--keep-{rule}",
            metavar="DURATION",
            help=(
                "keep every snapshot"
                if rule == "within"
                else f"keep the newest snapshot of each {rule.removeprefix('within-')} period"
            )
            + " newer than DURATION before the newest (1y2m3d4h)",
        )
    group.add_argument(
        "--keep-tag",
        action="append",
        default=[],
        metavar="TAG",
        help="keep every snapshot with this tag (repeatable)",
    )
    group.add_argument(
        "--keep-tz", metavar="ZONE", help="the zone periods are counted in (default UTC)"
    )


def _add_maintenance(commands: Any, both: list[argparse.ArgumentParser]) -> None:
    forget = _command(
        commands,
        "forget",
        _maintenance.forget,
        "show (--dry-run) or apply each lineage's retention policy",
        "Plan each configured lineage's retention policy over its own snapshots: a table of "
        "snapshot, lineage, keep or forget, and the rules that keep it. With --dry-run nothing "
        "changes; without it, this is prune with the default grace period.",
        parents=both,
    )
    forget.add_argument("--lineage", help="only this lineage")
    forget.add_argument("--dry-run", action="store_true", help="change nothing")
    _add_keep_flags(forget)

    prune = _command(
        commands,
        "prune",
        _maintenance.prune,
        "forget what the policies no longer keep and delete unreferenced chunks, under a lock",
        "Apply each lineage's retention policy under the exclusive prune lock: write prune "
        "records, delete forgotten snapshots, and delete chunks no snapshot references once "
        "they have been unreferenced for the grace period.",
        parents=[*both, _metrics_parent()],
    )
    prune.add_argument("--lineage", help="only this lineage (chunks are swept repository-wide)")
    _add_keep_flags(prune)
    prune.add_argument(
        "--grace",
        type=duration_option("--grace"),
        metavar="DURATION",
        help="how long an unreferenced chunk waits before deletion (e.g. 24h, 2d, 0; default 24h)",
    )
    prune.add_argument(
        "--repack-below",
        type=share_option,
        metavar="SHARE",
        help="format 2: repack a pack whose live share of bytes fell below this fraction or "
        "percentage (e.g. 0.5, 50%%; 0 never repacks; default 0.8)",
    )
    prune.add_argument("--dry-run", action="store_true", help="plan and count, change nothing")

    check = _command(
        commands,
        "check",
        _maintenance.check,
        "verify structure, chain and agreement of the targets, optionally the data",
        "Check every target: each snapshot opens, names only chunks the target holds, the "
        "lineages' hash chains have no unexplained gap, no lineage lost the head recorded in "
        "the known-heads file, and the targets agree. Exit code 1 when anything is wrong; a "
        "clean check records the current heads in the file.",
        parents=[*both, _metrics_parent()],
    )
    check.add_argument(
        "--read-data",
        nargs="?",
        const=True,
        default=False,
        type=read_data_option,
        metavar="FRACTION|N%",
        help="also re-read and authenticate chunks: all, or a share (0.1 or 10%%)",
    )
    check.add_argument(
        "--read-data-subset",
        type=subset_option,
        metavar="N/T",
        help="also re-read group N of T of the data (restic's meaning: the same packs every "
        "time; groups 1 to T together read everything, e.g. one a night with T=7)",
    )
    _add_known_heads(check)

    tags = _command(
        commands,
        "tag",
        _tag.tag,
        "add, remove or set snapshots' tags (a record in the chain; nothing is rewritten)",
        "Change the tags of SNAPSHOTS: each change is a tag record appended to the snapshot's "
        "lineage (sealed, create-only, on every target, verified with the chain); the manifest "
        "itself is never rewritten. snapshots then shows the new tags, and retention keeps by "
        "them (a policy's tags).",
        parents=both,
    )
    tags.add_argument("snapshots", nargs="+", metavar="SNAPSHOT", type=reference_option)
    tags.add_argument("--add", action="append", default=[], metavar="TAG", help="add TAG")
    tags.add_argument("--remove", action="append", default=[], metavar="TAG", help="remove TAG")
    tags.add_argument(
        "--set", action="append", metavar="TAG", help="make the tags exactly these (repeatable)"
    )

    status = _command(
        commands,
        "status",
        _status.status,
        "how current each lineage is: newest snapshot's age, lagging targets, locks",
        "Per lineage and target: the newest snapshot and its age, the targets lagging behind "
        "it, the prune lock's holder, the chunks waiting to be deleted and which targets have "
        "Object Lock. Reads listings only, no data. With --max-age, exit code 1 when a "
        "lineage's newest snapshot is older (for cron and monitoring); exit code 3 when a "
        "target lags behind or cannot be listed.",
        parents=[*both, _metrics_parent()],
    )
    status.add_argument("lineage", nargs="?", help="only this lineage")
    status.add_argument(
        "--max-age",
        type=duration_option("--max-age"),
        metavar="DURATION",
        help="a lineage whose newest snapshot is older is stale: exit code 1 (26h, 8d, 1w)",
    )

    heal = _command(
        commands,
        "heal",
        _maintenance.heal,
        "copy to each target what it lacks from another; --repair replaces damaged copies",
        "Copy every object a target lacks from a target that holds it, verified and create-only, "
        "and judge every copy of the config, key slots and manifests (and, with --read-data or "
        "--repair, of every chunk). Whatever is found and not fixed is listed and makes the exit "
        "code 1. Without --repair nothing is deleted or overwritten. With --repair a damaged copy "
        "is replaced from a good one, and what no good copy proves damaged (a stray name under "
        "objects/ or snapshots/, a snapshot object that opens on no target) is moved to "
        "quarantine/<time>/ on its target, never deleted outright.",
        parents=both,
    )
    heal.add_argument(
        "--repair",
        action="store_true",
        help="replace damaged copies from good ones and quarantine strays (reads every object)",
    )
    heal.add_argument(
        "--read-data",
        action="store_true",
        help="also re-read and judge every chunk copy (without --repair: report only)",
    )


def _add_key_and_lock(
    commands: Any, config: argparse.ArgumentParser, both: list[argparse.ArgumentParser]
) -> None:
    _key, keys = _actions(
        commands, "key", "manage key slots (add, list, passwd, remove)", "Manage key slots."
    )
    key_add = _command(
        keys,
        "add",
        _repository.key_add,
        "add a slot for another passphrase or raw key",
        "Add a key slot for a new passphrase or raw key, read from an environment "
        "variable or an owner-only file; the configured key opens the repository.",
        parents=[config],
    )
    key_add.add_argument("--new-env", metavar="VARIABLE", help="the new key's variable")
    key_add.add_argument("--new-file", metavar="PATH", help="the new key's file (mode 600)")
    key_add.add_argument("--type", choices=("passphrase", "raw"), default="passphrase")
    _command(keys, "list", _repository.key_list, "list the key slots", parents=both)
    key_remove = _command(
        keys,
        "remove",
        _repository.key_remove,
        "remove a key slot (never the last)",
        parents=[config],
    )
    key_remove.add_argument("key_id", help="the slot's id (see key list)")
    key_passwd = _command(
        keys,
        "passwd",
        _repository.key_passwd,
        "change the configured key in one step (a new slot, then the old one goes)",
        "Change the key that opens the repository: a slot for the new passphrase or raw key "
        "(from an environment variable or an owner-only file) is written to every target, then "
        "the slot the configured key opened is removed. A failure in between leaves both keys "
        "working. Update the config (or its variable or file) to the new key afterwards.",
        parents=[config],
    )
    key_passwd.add_argument("--new-env", metavar="VARIABLE", help="the new key's variable")
    key_passwd.add_argument("--new-file", metavar="PATH", help="the new key's file (mode 600)")
    key_passwd.add_argument("--type", choices=("passphrase", "raw"), default="passphrase")

    _lock, locks = _actions(
        commands, "lock", "show or break the prune lock", "Show or break the prune lock."
    )
    _command(locks, "show", _repository.lock_show, "show who holds the lock", parents=both)
    lock_break = _command(
        locks,
        "break",
        _repository.lock_break,
        "remove a stale lock (past expiry, holder gone)",
        "Remove the prune lock when it is stale: past its expiry and its holder "
        "not running. --force removes any lock: only when you know the holder is gone.",
        parents=[config],
    )
    lock_break.add_argument("--force", action="store_true", help="remove even a live lock")


# -- probe and demo ------------------------------------------------------------------------------


def _add_tools(commands: Any) -> None:
    probe = _command(
        commands,
        "probe",
        _tools.probe,
        "show what a storage target can do (create-only, versioning, object lock, links)",
        "Probe a storage target: writes one small object under .ctfy-probe/ twice (the second "
        "create-only write must be refused), deletes it where allowed, and reads versioning and "
        "Object Lock settings. Credentials come from the environment (AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, AZURE_STORAGE_CONNECTION_STRING, ...), never from arguments.",
    )
    probe.add_argument(
        "url",
        nargs="?",
        help="target URL (file://, s3://, az://, abfs://, memory://); default: a temporary folder",
    )
    _add_json(probe, "print JSON instead of a table")
    add_target_options(probe)

    shells = _command(
        commands,
        "completion",
        _completion.completion,
        "print a shell completion script (bash, zsh or tcsh)",
        "Print a completion script for SHELL, generated from the commands and options. bash: "
        "ctfy-vault completion bash > /etc/bash_completion.d/ctfy-vault (or source it from "
        '~/.bashrc); zsh: ctfy-vault completion zsh > "${fpath[1]}/_ctfy-vault".',
    )
    shells.add_argument("shell", choices=SHELLS, help="the shell")

    demo = _command(
        commands,
        "demo",
        _tools.demo,
        "run a complete cycle on local folders with no configuration",
        "Create an encrypted repository on three local folder targets, stream in back-dated "
        "database dumps, back up sample data twice (the second run uploads only what "
        "changed), list snapshots, show that an overwrite is refused, print the retention dry "
        "run with reasons, verify every chunk on every target, restore and byte-compare, and "
        "hand out a signed link that a tampered copy cannot use. Exits 1 if a promise fails.",
    )
    demo.add_argument("--dir", type=Path, help="folder to work in (default: a new temporary one)")


# -- mirror, export, escrow ----------------------------------------------------------------------


def add_mirror(commands: Any) -> argparse.ArgumentParser:
    """Register ``mirror`` on ``commands`` (from ``add_subparsers``); return its parser."""
    parser = _command(
        commands,
        "mirror",
        _mirror.run,
        "copy new and changed objects from a bucket to replicas, never deleting",
        "Copy every object that is new or changed at SOURCE to each REPLICA. Nothing on a "
        "replica is ever deleted; when an object changed, the replica keeps the previous "
        "version (bucket versioning, or the .ctfy-versions/ folder). Objects deleted at the "
        "source are listed, not removed. Credentials come from the environment "
        "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AZURE_STORAGE_CONNECTION_STRING, ...).",
        parents=[_metrics_parent()],
    )
    parser.add_argument("source", help="source URL (s3://, az://, file://, or a folder)")
    parser.add_argument("replicas", nargs="+", metavar="replica", help="replica URL(s)")
    parser.add_argument(
        "--state", metavar="FILE", help="JSON state file: makes runs incremental across restarts"
    )
    parser.add_argument(
        "--watch",
        type=seconds_option("--watch", maximum=_MAX_INTERVAL),
        metavar="SECONDS",
        help="run again every SECONDS (continuous synchronisation) until interrupted",
    )
    parser.add_argument(
        "--runs",
        type=count_option("--runs", minimum=1, maximum=2**31),
        metavar="N",
        help="with --watch, stop after N runs",
    )
    parser.add_argument(
        "--workers",
        type=count_option("--workers", minimum=1, maximum=_MAX_WORKERS),
        default=16,
        help=f"objects copied concurrently (1 to {_MAX_WORKERS})",
    )
    _add_json(parser, "print one JSON report per run")
    add_target_options(parser, scope="every s3:// URL")
    return parser


def add_export(commands: Any) -> argparse.ArgumentParser:
    """Register ``export`` on ``commands`` (from ``add_subparsers``); return its parser."""
    parser = _command(
        commands,
        "export",
        _export.run,
        "export one tenant's documents as one archive with an inventory and a signed link",
        "Stream everything stored under the tenant's prefix at SOURCE into one archive (zip "
        "or tar.gz) written create-only under a new name in DEST, with a README and an "
        "inventory (path, size, SHA-256, modification time; JSON and CSV), record it in the "
        "tenant's export register, and print a signed link valid at most one hour. Local "
        f"destinations sign links for your download endpoint: --link-base-url and {SECRET_ENV} "
        "(hex). Credentials come from the environment, never from arguments.",
    )
    parser.add_argument("source", help="documents URL (s3://, az://, file://, or a folder)")
    parser.add_argument("dest", help="destination URL for the archive and the register")
    parser.add_argument("--tenant", required=True, help="the tenant id")
    parser.add_argument(
        "--prefix",
        help="the tenant's folder at SOURCE (default: the tenant id; '' for all of SOURCE)",
    )
    parser.add_argument("--format", choices=("zip", "tar.gz"), default="zip", help="archive type")
    parser.add_argument("--store", action="store_true", help="do not compress (faster)")
    parser.add_argument("--requested-by", help="who asked for the export (for the register)")
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="the tenant exists: export an empty archive rather than fail when it holds nothing",
    )
    parser.add_argument(
        "--skip-unsafe",
        action="store_true",
        help="leave out objects with unsafe keys (listed in the inventory) instead of failing",
    )
    parser.add_argument(
        "--link-minutes",
        type=count_option("--link-minutes", minimum=1, maximum=60),
        default=60,
        help="signed link lifetime, 1-60 minutes (a link lives at most one hour)",
    )
    parser.add_argument("--link-base-url", help="download endpoint that serves local exports")
    parser.add_argument("--no-link", action="store_true", help="do not sign a link")
    _add_json(parser, "print the summary as JSON")
    add_target_options(parser, scope="every s3:// URL")
    return parser


def add_escrow(commands: Any) -> argparse.ArgumentParser:
    """Register ``escrow`` and its actions on ``commands`` (from ``add_subparsers``).

    Returns:
        The ``escrow`` parser.
    """
    parser, actions = _actions(
        commands,
        "escrow",
        "deposit source code encrypted to a notary's key; verify and open deposits",
        "Source-code escrow: a deterministic archive of a folder or a git commit, encrypted to "
        "the notary's (and optionally a trustee's) X25519 public key, stored create-only with "
        "a receipt signed by the depositor. See docs/escrow.md.",
    )
    keygen = _command(
        actions,
        "keygen",
        _escrow.run_keygen,
        "generate a recipient (notary) key pair, or a depositor signing key with --signing",
        "Write a new private key to FILE (mode 0600, never overwritten) and its public key to "
        "FILE.pub, and print the public key. The private key is printed only with "
        "--print-secret.",
    )
    keygen.add_argument("file", help="the private key file to create")
    keygen.add_argument(
        "--signing", action="store_true", help="an Ed25519 depositor signing key (not X25519)"
    )
    keygen.add_argument(
        "--print-secret", action="store_true", help="also print the private key (a secret)"
    )
    _add_json(keygen)

    deposit = _command(
        actions,
        "deposit",
        _escrow.run_deposit,
        "archive a folder or git commit, encrypt it to recipients, store it with a receipt",
        "Archive SOURCE (a folder, or a git repository's committed tree at --ref: never the "
        "working files), encrypt it to every --recipient and write it create-only to --to "
        "with a receipt signed by --signing-key. The depositor cannot decrypt the result.",
    )
    deposit.add_argument("source", help="a folder or a git repository")
    deposit.add_argument(
        "--recipient",
        action="append",
        required=True,
        metavar="PUBKEY",
        help="a recipient public key, as text or a .pub file (repeat for several)",
    )
    deposit.add_argument("--to", required=True, metavar="TARGET_URL", help="where to store it")
    deposit.add_argument(
        "--signing-key", required=True, metavar="FILE", help="the depositor's signing key file"
    )
    deposit.add_argument("--ref", help="git ref to deposit (default HEAD)")
    deposit.add_argument(
        "--kind", choices=("folder", "git"), help="treat SOURCE as this (default: detect .git)"
    )
    deposit.add_argument(
        "--prefix", default="escrow/", help="folder in the target (default escrow/)"
    )
    _add_json(deposit, "print the receipt as JSON")
    add_target_options(deposit)

    verify = _command(
        actions,
        "verify",
        _escrow.run_verify,
        "check a deposit's receipt signature and ciphertext (no private key needed)",
        "Check the receipt's Ed25519 signature and that the stored ciphertext has the size "
        "and SHA-256 the receipt names. Pass --signer to require the depositor's known key. "
        "Without NAME, list the deposits.",
    )
    verify.add_argument("target", metavar="TARGET_URL")
    verify.add_argument("name", nargs="?", help="the deposit name (as deposit printed it)")
    _add_signer(verify)
    verify.add_argument("--prefix", default="escrow/", help="folder listed without NAME")
    _add_json(verify)
    add_target_options(verify)

    opener = _command(
        actions,
        "open",
        _escrow.run_open,
        "decrypt a deposit with a recipient's private key and check it against its receipt",
        "Decrypt NAME with the recipient key in --identity, check it against the signed "
        "receipt, then write the tar archive to --out (never overwritten) or, with "
        "--extract, extract it into the new or empty folder --out.",
    )
    opener.add_argument("target", metavar="TARGET_URL")
    opener.add_argument("name", help="the deposit name")
    opener.add_argument(
        "--identity", required=True, metavar="FILE", help="recipient private key file"
    )
    opener.add_argument("--out", required=True, help="archive file, or folder with --extract")
    opener.add_argument("--extract", action="store_true", help="extract instead of writing the tar")
    _add_signer(opener)
    _add_json(opener)
    add_target_options(opener)
    return parser


def _add_signer(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--signer", metavar="PUBKEY", help="the depositor's public key (text or file)"
    )
