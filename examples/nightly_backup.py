"""Nightly backup of an application server: database, uploaded files, weekly the full server.

Meant for cron. Each run:

1. backs up the database: the vault runs ``pg_dump`` (plain SQL, which deduplicates night after
   night) as a `CommandSource` and stores its output as one file, lineage ``db``. The snapshot is
   committed only when ``pg_dump`` exits 0, so a dump that fails or is killed half way is never
   kept (and never pushes a good one out of the retention schedule); ``pg_dump``'s own messages
   go to standard error;
2. backs up the uploaded-files folder(s), lineage ``server-files``;
3. on the weekly day (Sunday by default, or with ``--full-server``) backs up the server's folders,
   lineage ``full-server``;
4. prunes: ``db`` and ``server-files`` under ``Policy.contractify()`` (daily 14 days, weekly 8
   weeks, monthly 6 months, yearly 1 year), ``full-server`` under its own weekly policy. Prune runs
   only when every backup of the run succeeded, so a failing night never shortens the history.
   On S3 buckets with Object Lock, each backup and prune locks every kept snapshot as long as its
   policy needs, and prune leaves what is still locked;
5. optionally re-reads a sample of the stored data (``--check-fraction``).

Settings: targets with ``--target`` (repeat it: Amsterdam, Ireland, a second provider), the key
from ``CTFY_VAULT_KEY`` (32 bytes as 64 hex digits or base64) or ``CTFY_VAULT_PASSPHRASE``, the
database connection from libpq's usual variables (``PGHOST``, ``PGPORT``, ``PGUSER``,
``PGPASSWORD`` or ``~/.pgpass``). S3 URLs take their endpoint from ``AWS_ENDPOINT_URL`` and
credentials from the environment. ``--init`` creates the repository on the first run.

Exit codes (as ``ctfy-vault``'s): 0 everything done; 1 a step failed; 2 bad usage or
configuration; 3 partial: a target missed a write (the others hold it; run ``ctfy-vault heal``).

Crontab (``/etc/cron.d/ctfy-vault``; ``examples/nightly_backup.cron`` holds the same), at 02:30 UTC
every night, never two runs at once, the secrets in a root-only file::

    CRON_TZ=UTC
    30 2 * * *  root  flock -n /run/ctfy-nightly.lock sh -c '. /etc/ctfy-vault/env && exec \
        /opt/ctfy/venv/bin/python /opt/ctfy/nightly_backup.py --database app \
        --files /srv/app/uploads --target s3://backups-ams/app --target s3://backups-dub/app \
        --target az://backups/app' >>/var/log/ctfy-nightly.log 2>&1
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from ctfy_vault.crypto import Credential, Passphrase, RawKey
from ctfy_vault.exceptions import ConfigurationError, TargetsFailedError, VaultError
from ctfy_vault.retention import Policy
from ctfy_vault.storage import Target
from ctfy_vault.vault import BackupInfo, Vault
from ctfy_vault.writer import CommandSource

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3

#: Each lineage's retention: the contract's schedule for the nightly lineages, and for the weekly
#: full-server copy one a week for 8 weeks and one a month for 6 months.
POLICIES: Mapping[str, Policy] = {
    "db": Policy.contractify(),
    "server-files": Policy.contractify(),
    "full-server": Policy(within_weekly="8w", within_monthly="6m"),
}
#: What "the full server" means by default: configuration, data and software installed by hand.
FULL_SERVER_PATHS = ("/etc", "/home", "/opt", "/root", "/srv", "/usr/local", "/var/lib", "/var/www")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

log = logging.getLogger("nightly_backup")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Nightly backup: database, uploaded files, weekly the full server; then prune.",
    )
    parser.add_argument(
        "--target", action="append", required=True, metavar="URL", help="a target (repeat it)"
    )
    parser.add_argument("--database", help="the PostgreSQL database to dump (lineage db)")
    parser.add_argument(
        "--files", action="append", default=[], metavar="PATH", help="uploaded files (repeat it)"
    )
    parser.add_argument(
        "--full-server-path",
        action="append",
        metavar="PATH",
        help=f"a folder of the full-server backup (default: {' '.join(FULL_SERVER_PATHS)})",
    )
    parser.add_argument(
        "--full-server-day",
        choices=WEEKDAYS,
        default="sunday",
        help="the weekday (UTC) of the full-server backup",
    )
    parser.add_argument(
        "--full-server", action="store_true", help="back up the full server today, whatever day"
    )
    parser.add_argument("--pg-dump", default="pg_dump", help="the pg_dump program to run")
    parser.add_argument("--host", default=socket.gethostname(), help="recorded in the snapshots")
    parser.add_argument(
        "--grace-hours",
        type=float,
        default=24.0,
        help="how long an unreferenced chunk waits before prune deletes it (default 24)",
    )
    parser.add_argument("--no-prune", action="store_true", help="back up only")
    parser.add_argument(
        "--dry-run-prune", action="store_true", help="plan the prune, change nothing"
    )
    parser.add_argument(
        "--check-fraction",
        type=float,
        default=0.0,
        help="after pruning, re-read and authenticate this share of the chunks (0 to 1)",
    )
    parser.add_argument("--init", action="store_true", help="create the repository if missing")
    parser.add_argument(
        "--now",
        type=datetime.fromisoformat,
        help="the run's time, ISO 8601 with a zone (default: the clock); for tests and replays",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every step")
    args = parser.parse_args(argv)
    if args.now is not None and args.now.tzinfo is None:
        parser.error("--now needs a time zone, e.g. 2026-11-26T02:30:00+00:00")
    if not 0.0 <= args.check_fraction <= 1.0:
        parser.error("--check-fraction must be between 0 and 1")
    return args


def credential(environ: Mapping[str, str]) -> Credential:
    """The repository key from the environment: a raw key, else a passphrase."""
    if "CTFY_VAULT_KEY" in environ:
        return RawKey.from_env("CTFY_VAULT_KEY", environ)
    if environ.get("CTFY_VAULT_PASSPHRASE"):
        return Passphrase(environ["CTFY_VAULT_PASSPHRASE"])
    raise ConfigurationError("set CTFY_VAULT_KEY or CTFY_VAULT_PASSPHRASE")


def build_target(url: str) -> Target:
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if url.startswith("s3://") and endpoint:
        return Target.from_url(url, endpoint_url=endpoint)
    return Target.from_url(url)


def open_vault(args: argparse.Namespace, now: datetime) -> Vault:
    targets = [build_target(url) for url in args.target]
    key = credential(os.environ)
    try:
        return Vault.open(targets, key=key)
    except TargetsFailedError:
        if not args.init:
            raise
    log.info("creating the repository on %d target(s)", len(targets))
    return Vault.init(targets, key=key, now=now)


def describe(info: BackupInfo) -> str:
    uploaded = sum(outcome.bytes_uploaded for outcome in info.outcomes)
    return (
        f"{info.lineage} {info.snapshot_id[:12]}: {info.files} entries, {info.size:,} bytes; "
        f"read {info.bytes_read:,}, wrote {uploaded:,} over {len(info.outcomes)} target(s)"
    )


class Run:
    """One night's work; remembers the worst outcome as an exit code."""

    def __init__(self, vault: Vault, args: argparse.Namespace, now: datetime) -> None:
        self.vault = vault
        self.args = args
        self.now = now
        self.code = EXIT_OK

    def fail(self, code: int) -> None:
        """Record a step's exit code; a failure outranks a partial success."""
        self.code = EXIT_FAILED if EXIT_FAILED in (code, self.code) else max(code, self.code)

    def backup(self, what: str, sources: CommandSource | list[str], lineage: str) -> None:
        """Back up one lineage; log the outcome and record a failure instead of raising."""
        try:
            # On buckets with Object Lock, the snapshot and what it reuses are locked as long as
            # the lineage's schedule needs (elsewhere lock_policy changes nothing).
            info = self.vault.backup(
                sources,
                lineage=lineage,
                host=self.args.host,
                now=self.now,
                lock_policy=POLICIES[lineage],
            )
        except TargetsFailedError as err:
            log.error("%s: not every target committed: %s", what, err)
            self.fail(EXIT_PARTIAL)
        except (VaultError, OSError) as err:  # SourceFailedError: pg_dump failed, nothing kept
            log.error("%s failed: %s", what, err)
            self.fail(EXIT_FAILED)
        else:
            for warning in info.warnings:
                log.warning("%s: %s: %s", what, warning.path, warning.reason)
            log.info("%s: %s", what, describe(info))

    def database(self, name: str) -> None:
        """Back up database ``name``: pg_dump's output as ``<name>.sql``, kept only if it exits 0."""
        program = shutil.which(self.args.pg_dump)
        if program is None:
            log.error("database %s: %s not found", name, self.args.pg_dump)
            self.fail(EXIT_FAILED)
            return
        argv = [program, "--no-owner", "--no-privileges", "--format=plain", "--dbname", name]
        self.backup(f"database {name}", CommandSource(name=f"{name}.sql", argv=argv), "db")

    def full_server_today(self) -> bool:
        """Whether tonight is the full-server night (or ``--full-server`` was given)."""
        return (
            bool(self.args.full_server) or WEEKDAYS[self.now.weekday()] == self.args.full_server_day
        )

    def prune(self) -> None:
        """Apply every lineage's policy; skipped when a backup of this run failed."""
        if self.code != EXIT_OK:
            log.warning("a backup failed: not pruning tonight, so the history is not shortened")
            return
        report = self.vault.prune(
            POLICIES,
            now=self.now,
            grace=timedelta(hours=self.args.grace_hours),
            host=self.args.host,
            dry_run=self.args.dry_run_prune,
        )
        verb = "would forget" if report.dry_run else "forgot"
        for lineage, plan in report.plans.items():
            log.info("prune %s: keep %d, %s %d", lineage, len(plan.keep), verb, len(plan.forget))
        log.info(
            "prune: %d chunk(s) deleted (%s bytes), %d waiting out the grace period%s",
            report.chunks_deleted,
            f"{report.bytes_deleted:,}",
            report.chunks_pending,
            f"; sweep skipped: {report.sweep_skipped}" if report.sweep_skipped else "",
        )
        for target, error in report.errors.items():
            log.error("prune on %s: %s", target, error)
        if not report.ok:
            self.fail(EXIT_PARTIAL)

    def check(self) -> None:
        """Re-read and authenticate a share of the stored chunks."""
        report = self.vault.verify(read_data=self.args.check_fraction)
        for problem in report.problems:
            log.error("check: %s on %s: %s", problem.kind, problem.target, problem.detail)
        if not report.ok:
            self.fail(EXIT_FAILED)
        else:
            log.info("check: ok, %d chunk object(s) re-read", report.chunks_read)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    now: datetime = (args.now or datetime.now(UTC)).astimezone(UTC)
    try:
        vault = open_vault(args, now)
    except ConfigurationError as err:
        log.error("configuration: %s", err)
        return EXIT_USAGE
    except VaultError as err:
        log.error("cannot open the repository: %s", err)
        return EXIT_FAILED

    run = Run(vault, args, now)
    if args.database:
        run.database(args.database)
    if args.files:
        run.backup("server files", list(args.files), "server-files")
    if run.full_server_today():
        paths = args.full_server_path or [p for p in FULL_SERVER_PATHS if os.path.isdir(p)]
        run.backup("full server", paths, "full-server")
    if not args.no_prune:
        try:
            run.prune()
        except VaultError as err:  # another prune holds the lock, or no target answered
            log.error("prune failed: %s", err)
            run.fail(EXIT_FAILED)
    if args.check_fraction:
        run.check()
    log.log(logging.INFO if run.code == EXIT_OK else logging.ERROR, "done, exit code %d", run.code)
    return run.code


if __name__ == "__main__":
    sys.exit(main())
