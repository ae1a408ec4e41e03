"""``ctfy-vault demo``: a complete cycle on local folders with no configuration.

Two backup targets stand for the Amsterdam and Ireland copies; a third folder stands for the live
documents bucket. Every step prints what it did and checks what it promised; a broken promise makes
the demo fail (exit code 1).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ctfy_vault._version import __version__
from ctfy_vault.crypto import MasterKeys, RawKey, Sealer, create_key_slot, new_repo_id, unlock
from ctfy_vault.exceptions import IntegrityError, ObjectExistsError
from ctfy_vault.links import LinkSigner, presign, verify_link
from ctfy_vault.manifest import verify_chain
from ctfy_vault.retention import Policy, plan
from ctfy_vault.storage import Target
from ctfy_vault.writer import BackupResult, Writer, heal

Say = Callable[[str], object]

#: Fixed times keep the demo's snapshots and plan reproducible.
FIRST_BACKUP = datetime(2026, 11, 25, 2, 30, tzinfo=UTC)


class DemoFailedError(RuntimeError):
    """A promise the demo checks did not hold."""


def run_demo(folder: Path, say: Say) -> None:
    """Run every step of the demo inside ``folder``.

    Raises:
        DemoFailedError: a checked promise did not hold.
    """
    say(f"ctfy-vault {__version__} demo in {folder}")
    targets = [Target.from_url(str(folder / name), name=name) for name in ("amsterdam", "ireland")]
    for target in targets:
        caps = target.probe()
        atomic = "atomic" if caps.atomic_create else "NOT atomic"
        say(f"  probe {target.name}: {caps.backend}, create-only is {atomic}")
    sealer = _init(targets, say)
    source = _sample_data(folder / "source")
    writer = Writer(targets, sealer)
    first = writer.backup([source], lineage="server-files", host="demo", now=FIRST_BACKUP)
    _report("backup 1", first, say)
    (source / "contracts" / "4711.txt").write_text("contract 4711, amended 2026-11-26\n")
    second = writer.backup(
        [source],
        lineage="server-files",
        host="demo",
        now=FIRST_BACKUP + timedelta(days=1),
        previous=first.hash,
        parent=first.manifest,
    )
    _report("backup 2", second, say)
    _check_append_only(targets[0], second, say)
    _retention(say)
    _verify(targets, sealer, [first, second], say)
    _signed_link(folder, say)
    say("demo complete")


def _init(targets: list[Target], say: Say) -> Sealer:
    """Create a repository: master keys wrapped in a key slot, copied to every target by heal."""
    repo_id = new_repo_id()
    keys = MasterKeys.generate()
    access = RawKey(os.urandom(32))  # in production: RawKey.from_env(...) or a KMS
    slot = create_key_slot(
        targets[0], repo_id=repo_id, keys=keys, credential=access, now=FIRST_BACKUP
    )
    sealer = Sealer(repo_id=repo_id, keys=unlock(targets[0], repo_id=repo_id, credential=access))
    healed = heal(targets, sealer=sealer)
    copied = sum(len(outcome.copied) for outcome in healed.outcomes)
    say(f"  init: key slot {slot.key_id} on {targets[0].name}; heal copied {copied} object(s)")
    return sealer


def _sample_data(root: Path) -> Path:
    (root / "contracts").mkdir(parents=True)
    (root / "contracts" / "4711.txt").write_text("contract 4711, signed 2026-11-24\n")
    (root / "contracts" / "4712.txt").write_text("contract 4712, signed 2026-11-25\n")
    rows = (f"INSERT INTO contracts VALUES ({n}, 'tenant-{n % 7}');\n" for n in range(50_000))  # noqa: S608 - sample data, not a query
    (root / "db.sql").write_text("".join(rows))
    return root


def _report(label: str, result: BackupResult, say: Say) -> None:
    say(f"  {label}: {result.bytes_read} bytes read, {result.chunks_sealed} chunk(s) sealed")
    for outcome in result.outcomes:
        if not outcome.committed:
            raise DemoFailedError(f"{label} did not commit on {outcome.target}: {outcome.error}")
        say(
            f"    {outcome.target}: committed; {outcome.chunks_uploaded} chunk(s) uploaded, "
            f"{outcome.chunks_present} already there"
        )


def _check_append_only(target: Target, result: BackupResult, say: Say) -> None:
    key = f"snapshots/{result.name}"
    stored = target.read(key)
    try:
        target.write(key, b"a tampered manifest")
    except ObjectExistsError:
        if target.read(key) != stored:
            raise DemoFailedError("the refused overwrite changed the stored manifest") from None
        say(f"  append-only: overwriting {key} was refused; stored bytes unchanged")
        return
    raise DemoFailedError(f"overwriting {key} was not refused")


def _retention(say: Say) -> None:
    """Show the dry-run plan of the product's schedule over a year of nightly backups."""
    policy = Policy.contractify()
    first = FIRST_BACKUP - timedelta(days=364)
    nightly = [first + timedelta(days=n) for n in range(365) if n % 61 != 17]  # a few missed
    result = plan(nightly, policy)
    say(f"  retention dry run, policy {policy}, {len(nightly)} nightly snapshots:")
    say(f"    keep {len(result.keep)}, forget {len(result.forget)}; newest kept because:")
    say("    " + ", ".join(str(reason) for reason in result.reasons[result.keep[0]]))
    oldest = ", ".join(str(reason) for reason in result.reasons[result.keep[-1]])
    say(f"    oldest kept {result.keep[-1]:%Y-%m-%d}: {oldest}")


def _verify(targets: list[Target], sealer: Sealer, results: list[BackupResult], say: Say) -> None:
    chain = verify_chain([result.manifest for result in results])
    if not chain.ok:
        raise DemoFailedError(f"the snapshot chain is broken: {chain}")
    healed = heal(targets, sealer=sealer)
    missing = sum(len(outcome.copied) for outcome in healed.outcomes)
    if missing:
        raise DemoFailedError(f"the targets disagreed: heal had to copy {missing} object(s)")
    listings = [sorted(target.list()) for target in targets]
    if listings[0] != listings[1]:
        raise DemoFailedError("the targets hold different objects")
    say(f"  verify: chain of {len(results)} snapshots intact; both targets hold the same objects")


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
