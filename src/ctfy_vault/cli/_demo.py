"""``ctfy-vault demo``: a complete cycle on local folders with no configuration.

Three backup targets stand for the Amsterdam and Ireland copies and a second provider; a fourth
folder stands for the live documents bucket. The demo goes through the `ctfy_vault.vault.Vault`
API only: init, two backups of generated data (the second after a small change, showing the
deduplication), the snapshot list, a refused overwrite, the retention dry run of the product's
schedule, a full verify, and a restore that is byte-compared with the source; then a signed link.
Every step prints what it did and checks what it promised; a broken promise raises
`DemoFailedError` (the command exits with 1).

All times are fixed (``now=`` arguments), and the sample data comes from a seeded generator, so
two runs print the same figures (snapshot ids and the key aside).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

from ctfy_vault._version import __version__
from ctfy_vault.crypto import Credential, RawKey
from ctfy_vault.exceptions import IntegrityError, ObjectExistsError
from ctfy_vault.links import LinkSigner, presign, verify_link
from ctfy_vault.repository import DEFAULT_PACK_SIZE, snapshot_key
from ctfy_vault.retention import Policy
from ctfy_vault.storage import Target
from ctfy_vault.vault import BackupInfo, SnapshotInfo, Vault
from ctfy_vault.writer import ChunkerParams, StreamSource

Say = Callable[[str], object]

#: Fixed times keep the demo's snapshots and plan reproducible.
FIRST_BACKUP = datetime(2026, 11, 25, 2, 30, tzinfo=UTC)
SECOND_BACKUP = FIRST_BACKUP + timedelta(days=1)
#: The backup targets, in read order: two datacenters of one provider and a second provider.
TARGET_NAMES = ("amsterdam", "ireland", "azure-copy")
#: Smaller chunks than the default (4 MiB on average) so a few MiB of data shows deduplication.
DEMO_CHUNKER = ChunkerParams(min_size=16 * 1024, avg_size=64 * 1024, max_size=256 * 1024)
#: Smaller packs than the default (16 MiB) so the demo's few MiB make several.
DEMO_PACK_SIZE = 1024 * 1024
#: Rows in the generated SQL dump (about 4 MiB).
DUMP_ROWS = 60_000
#: Days before the first backup on which the ``db`` lineage has a (back-dated) nightly dump.
DB_HISTORY_DAYS = (*range(1, 19), *range(21, 120, 7))
SEED = 4711


class DemoFailedError(RuntimeError):
    """A promise the demo checks did not hold."""


def run_demo(
    folder: Path, say: Say, *, repository_format: int = 2, key: Credential | None = None
) -> None:
    """Run every step of the demo inside ``folder``.

    Args:
        folder: an empty or missing folder; the targets, sample data and restore go inside.
        say: prints one line.
        repository_format: the layout the demo repository gets (2, or 1 to see the old one).
        key: the repository's key; a random one (not kept) by default.

    Raises:
        DemoFailedError: a checked promise did not hold.
    """
    say(f"ctfy-vault {__version__} demo in {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    targets = [Target.from_url(str(folder / name), name=name) for name in TARGET_NAMES]
    for target in targets:
        caps = target.probe()
        atomic = "atomic" if caps.atomic_create else "NOT atomic"
        say(f"  probe {target.name}: {caps.backend}, create-only is {atomic}")
    vault = _init(targets, say, repository_format, key)
    _db_history(vault, say)
    source = _sample_data(folder / "source")
    first = vault.backup(source, lineage="server-files", host="app-1", now=FIRST_BACKUP)
    _report("backup 1", first, say)
    _change_a_little(source)
    second = vault.backup(source, lineage="server-files", host="app-1", now=SECOND_BACKUP)
    _report("backup 2", second, say)
    _dedup(first, second, say)
    _list_snapshots(vault, say)
    _check_append_only(targets[0], second, say)
    _retention(vault, say)
    _verify(vault, targets, say)
    _restore(vault, source, folder / "restored", say)
    _signed_link(folder, say)
    say("demo complete")


def _init(targets: list[Target], say: Say, repository_format: int, key: Credential | None) -> Vault:
    """Create the repository on every target, then open it again as a later run would."""
    if key is None:
        key = RawKey(os.urandom(32))  # in production: RawKey.from_env(...), a KMS, a Passphrase
    Vault.init(
        targets,
        key=key,
        now=FIRST_BACKUP - timedelta(days=200),
        chunker=DEMO_CHUNKER,
        format=repository_format,
        pack_size=DEMO_PACK_SIZE if repository_format == 2 else DEFAULT_PACK_SIZE,
    )
    vault = Vault.open(targets, key=key)
    say(
        f"  init: repository {vault.repo_id.hex()[:12]}... (format {vault.config.format}) on "
        f"{len(targets)} targets ({', '.join(t.name for t in targets)}); opened again with its key"
    )
    return vault


def _dump(rows: int, night: int) -> bytes:
    """A small deterministic SQL dump; each night changes a few rows."""
    lines = [f"-- nightly dump #{night}\n"]
    lines += [f"INSERT INTO audit VALUES ({n}, 'night {night}');\n" for n in range(night % 5)]  # noqa: S608 - sample data, not a query
    lines += [f"INSERT INTO tenants VALUES ({n}, 'tenant-{n}');\n" for n in range(rows)]  # noqa: S608 - sample data, not a query
    return "".join(lines).encode()


def _db_history(vault: Vault, say: Say) -> None:
    """Back up a few months of back-dated nightly database dumps (lineage ``db``), oldest first."""
    for night, days in enumerate(sorted(DB_HISTORY_DAYS, reverse=True)):
        dump = StreamSource(name="db.sql", stream=BytesIO(_dump(200, night)))
        when = FIRST_BACKUP - timedelta(days=days)
        vault.backup(dump, lineage="db", host="db-1", now=when, tags=("nightly",))
    say(
        f"  db lineage: {len(DB_HISTORY_DAYS)} back-dated nightly dumps streamed in "
        f"(as `ctfy-vault backup db --stdin-from-command -- pg_dump ...` would)"
    )


def _sample_data(root: Path) -> Path:
    """Generate the uploaded files and a database dump of a few MiB, from a fixed seed."""
    rng = random.Random(SEED)  # noqa: S311 - reproducible sample data, not a secret
    (root / "contracts").mkdir(parents=True)
    (root / "contracts" / "4711.txt").write_text("contract 4711, signed 2026-11-24\n")
    (root / "contracts" / "4712.txt").write_text("contract 4712, signed 2026-11-25\n")
    (root / "uploads" / "tenant-42").mkdir(parents=True)
    (root / "uploads" / "tenant-42" / "logo.png").write_bytes(rng.randbytes(300 * 1024))
    (root / "uploads" / "tenant-42" / "scan.pdf").write_bytes(
        b"%PDF-1.7\n" + rng.randbytes(200 * 1024)
    )
    (root / "db").mkdir()
    rows = (
        f"INSERT INTO contracts VALUES ({n}, 'tenant-{n % 97}', '{rng.getrandbits(64):016x}', "  # noqa: S608 - sample data, not a query
        f"'{FIRST_BACKUP - timedelta(minutes=n):%Y-%m-%d %H:%M}');\n"
        for n in range(DUMP_ROWS)
    )
    (root / "db" / "app.sql").write_text("".join(rows))
    return root


def _change_a_little(root: Path) -> None:
    """Amend one contract, add one, and change a few rows in the middle of the dump."""
    (root / "contracts" / "4711.txt").write_text("contract 4711, amended 2026-11-26\n")
    (root / "contracts" / "4713.txt").write_text("contract 4713, signed 2026-11-26\n")
    dump = root / "db" / "app.sql"
    text = dump.read_text()
    middle = len(text) // 2
    cut = text.index("\n", middle) + 1
    added = "UPDATE contracts SET tenant = 'tenant-42' WHERE id = 4711;\n"
    dump.write_text(text[:cut] + added + text[cut:])


def _report(label: str, result: BackupInfo, say: Say) -> None:
    say(
        f"  {label} ({result.lineage}, {result.created:%Y-%m-%d %H:%M} UTC): {result.files} "
        f"entries, {result.size:,} bytes; read {result.bytes_read:,} bytes, "
        f"sealed {result.chunks_sealed} chunk(s)"
    )
    for outcome in result.outcomes:
        if not outcome.committed:
            raise DemoFailedError(f"{label} did not commit on {outcome.target}: {outcome.error}")
        say(
            f"    {outcome.target}: committed; {outcome.chunks_uploaded} chunk(s) uploaded, "
            f"{outcome.chunks_present} already there, {outcome.bytes_uploaded:,} bytes written"
        )


def _dedup(first: BackupInfo, second: BackupInfo, say: Say) -> None:
    """Check that the second backup stored only what changed, on every target."""
    for before, after in zip(first.outcomes, second.outcomes, strict=True):
        if after.chunks_present == 0 or after.chunks_uploaded >= after.chunks_present:
            raise DemoFailedError(
                f"backup 2 deduplicated badly on {after.target}: {after.chunks_uploaded} "
                f"uploaded, {after.chunks_present} already there"
            )
        if after.bytes_uploaded * 4 > before.bytes_uploaded:
            raise DemoFailedError(
                f"backup 2 wrote {after.bytes_uploaded:,} bytes to {after.target}, not much "
                f"less than backup 1's {before.bytes_uploaded:,}"
            )
    per_target = second.outcomes[0]
    total = per_target.chunks_uploaded + per_target.chunks_present
    share = per_target.bytes_uploaded / max(first.outcomes[0].bytes_uploaded, 1)
    say(
        f"  dedup: backup 2 uploaded {per_target.chunks_uploaded} of {total} chunks per target "
        f"({per_target.chunks_present} already present); {per_target.bytes_uploaded:,} bytes "
        f"written per target, {share:.1%} of backup 1's"
    )


def _list_snapshots(vault: Vault, say: Say) -> None:
    listed = vault.snapshots()
    expected = len(DB_HISTORY_DAYS) + 2
    if len(listed) != expected:
        raise DemoFailedError(f"{len(listed)} snapshots listed, {expected} written")
    say(f"  snapshots: {len(listed)}, newest first:")
    for info in listed[:4]:
        say(
            f"    {info.created:%Y-%m-%d %H:%M}  {info.lineage:<12} {info.snapshot_id[:12]}  "
            f"{info.host:<5} {info.files:>3} entries {info.size:>10,} bytes"
        )
    say(f"    ... and {len(listed) - 4} older ones")


def _check_append_only(target: Target, result: BackupInfo, say: Say) -> None:
    key = snapshot_key(result.name)
    stored = target.read(key)
    try:
        target.write(key, b"a tampered manifest")
    except ObjectExistsError:
        if target.read(key) != stored:
            raise DemoFailedError("the refused overwrite changed the stored manifest") from None
        say(f"  append-only: overwriting {key} was refused; stored bytes unchanged")
        return
    raise DemoFailedError(f"overwriting {key} was not refused")


def _retention(vault: Vault, say: Say) -> None:
    """Show the dry-run plan of the product's schedule on each lineage, with the reasons."""
    policy = Policy.contractify()
    plans = vault.forget(policy, now=SECOND_BACKUP, dry_run=True)
    say(f"  forget --dry-run, policy {policy}:")
    for lineage, result in plans.items():
        say(f"    {lineage}: keep {len(result.keep)}, forget {len(result.forget)}")
        for info in result.keep:
            reasons = ", ".join(str(reason) for reason in result.reasons[info])
            say(f"      keep   {info.created:%Y-%m-%d}  {reasons}")
        if result.forget:
            days = " ".join(f"{info.created:%m-%d}" for info in result.forget)
            say(f"      forget {days}  (no rule keeps them)")
    db = plans.get("db")
    if db is None or not db.forget or not db.keep:
        raise DemoFailedError("the retention plan of the db lineage forgets or keeps nothing")
    if len(db.keep) + len(db.forget) != len(DB_HISTORY_DAYS):
        raise DemoFailedError("the retention plan lost or invented snapshots")
    if any(not db.reasons[info] for info in db.keep):
        raise DemoFailedError("a kept snapshot has no reason")
    files = plans.get("server-files")
    if files is None or len(files.keep) != 2:
        raise DemoFailedError("the retention plan would forget a fresh server-files snapshot")
    if len(vault.snapshots()) != len(DB_HISTORY_DAYS) + 2:
        raise DemoFailedError("the dry run changed the repository")


def _objects(target: Target) -> set[str]:
    return set(target.list())


def _verify(vault: Vault, targets: list[Target], say: Say) -> None:
    report = vault.verify(read_data=True)
    if not report.ok:
        problems = "; ".join(
            f"{p.kind} on {p.target or 'repository'}: {p.key or ''} {p.detail}"
            for p in report.problems[:5]
        )
        raise DemoFailedError(f"verify found problems: {problems or report.chain}")
    listings = [_objects(target) for target in targets]
    if any(listing != listings[0] for listing in listings[1:]):
        raise DemoFailedError("the targets hold different objects")
    say(
        f"  verify --read-data: ok; {report.snapshots} snapshots, {report.chunks_read} chunks "
        f"re-read and authenticated; chains intact; all {len(targets)} targets hold the "
        f"same {len(listings[0])} objects"
    )


def _files(root: Path) -> Iterator[Path]:
    return (path for path in sorted(root.rglob("*")) if path.is_file())


def _restore(vault: Vault, source: Path, dest: Path, say: Say) -> None:
    """Restore the newest server-files snapshot into a fresh folder and byte-compare it."""
    latest: SnapshotInfo = vault.snapshots("server-files")[0]
    report = vault.restore(latest, dest)
    # A folder is backed up under its own name, so it comes back as dest/<name>.
    expected = {path.relative_to(source): path for path in _files(source)}
    restored = {path.relative_to(dest / source.name): path for path in _files(dest / source.name)}
    if set(dest.iterdir()) != {dest / source.name}:
        raise DemoFailedError(f"the restore wrote more than {source.name}/ into {dest}")
    if set(restored) != set(expected):
        missing = sorted(map(str, set(expected) - set(restored)))
        extra = sorted(map(str, set(restored) - set(expected)))
        raise DemoFailedError(f"the restore differs in files: missing {missing}, extra {extra}")
    for name, path in expected.items():
        if restored[name].read_bytes() != path.read_bytes():
            raise DemoFailedError(f"restored {name} differs from the source")
    say(
        f"  restore {latest.snapshot_id[:12]} into {dest.name}/: {report.files} files, "
        f"{report.bytes:,} bytes, every one byte-identical to the source"
    )


def _signed_link(folder: Path, say: Say) -> None:
    documents = Target.from_url(str(folder / "documents"), name="documents")
    documents.write("tenant-42/contract-4711.pdf", b"%PDF-1.7 contract 4711")
    signer = LinkSigner(secret=os.urandom(32), base_url="http://127.0.0.1:8080/download")
    link = presign(documents, "tenant-42/contract-4711.pdf", signer=signer, filename="4711.pdf")
    verify_link(link.url, signer)
    try:
        verify_link(link.url.replace("4711", "4712", 1), signer)
    except IntegrityError:
        say(
            f"  signed link: valid until {link.expires_at:%H:%M:%S} UTC; a tampered copy is refused"
        )
        return
    raise DemoFailedError("a tampered signed link was accepted")
