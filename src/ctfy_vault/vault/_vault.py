"""The `Vault` facade: one repository mirrored on several targets."""

from __future__ import annotations

import io
import logging
import os
import random
import secrets
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import attrs

from ctfy_vault.crypto import Cipher, Credential, KeySlot, MasterKeys, Sealer, new_repo_id
from ctfy_vault.exceptions import (
    ConfigurationError,
    DegradedTargetError,
    FormatError,
    IntegrityError,
    LockError,
    ObjectExistsError,
    ObjectNotFoundError,
    RollbackError,
    SnapshotNotFoundError,
    StorageError,
    TargetsFailedError,
    UnsupportedError,
)
from ctfy_vault.manifest import (
    FileEntry,
    FileType,
    Forgotten,
    Manifest,
    OpenedEntry,
    TagRecord,
    check_known_heads,
    lineage_head,
    seal_entry,
)
from ctfy_vault.repository import (
    CONFIG_KEY,
    DEFAULT_CHUNKER,
    DEFAULT_PACK_SIZE,
    KEYS_PREFIX,
    LOCK_KEY,
    REPOSITORY_FORMAT,
    ChunkerParams,
    ChunkStream,
    HealReport,
    KnownHeads,
    LockInfo,
    Outcome,
    ReadData,
    Reader,
    Replicas,
    RepoConfig,
    VerifyReport,
    create_key_slot,
    has_key_slots,
    heal,
    list_key_slots,
    read_config,
    read_configs,
    read_lock,
    same_repository,
    slot_key,
    snapshot_key,
    snapshot_names,
    unlock_slot,
    verify_targets,
)
from ctfy_vault.retention import DEFAULT_LOCK_LEAD, Policy, RetentionPlan, plan, retain_until
from ctfy_vault.storage import LockMode, Target
from ctfy_vault.vault._copy import Destination, Origin, copy_snapshots
from ctfy_vault.vault._find import check_reference, find_snapshot
from ctfy_vault.vault._locks import LockReport, follow_locks
from ctfy_vault.vault._model import BackupInfo, CopyReport, RestoreReport, SnapshotInfo
from ctfy_vault.vault._prune import (
    DEFAULT_GRACE,
    DEFAULT_LOCK_TTL,
    DEFAULT_REPACK_BELOW,
    PruneReport,
    forgotten_by_records,
    forgotten_everywhere,
    forgotten_keys,
    marked_chunks,
    prune_targets,
)
from ctfy_vault.vault._restore import restore_manifest, select
from ctfy_vault.vault._status import Status, lineage_status, object_lock_of
from ctfy_vault.vault._tags import effective_tags
from ctfy_vault.writer import (
    BackupPreview,
    BackupSource,
    CommandSource,
    Require,
    Selection,
    StreamSource,
    Writer,
    preview,
)

__all__ = ["Vault"]

log = logging.getLogger("ctfy_vault.vault")

SnapshotRef = SnapshotInfo | str
#: Per-target retention: by target name, a policy for every lineage planned there, or a policy
#: per lineage (the other lineages keep the policy given for all targets).
TargetPolicies = Mapping[str, Policy | Mapping[str, Policy]]
Plans = dict[str, RetentionPlan[SnapshotInfo]]


def _targets(value: Iterable[Target]) -> tuple[Target, ...]:
    targets = tuple(value)
    if not targets:
        raise ConfigurationError("a vault needs at least one target")
    names = [target.name for target in targets]
    if len(set(names)) != len(names):
        raise ConfigurationError("target names must be unique")
    return targets


def _keyless(targets: Iterable[Target]) -> dict[str, BaseException]:
    """The targets whose ``keys/`` holds no slot at all, or cannot be listed, with the error."""
    listed = Replicas(targets).each(has_key_slots)
    found = listed.failed
    for name, has in listed.results.items():
        if not has:
            found[name] = ObjectNotFoundError(_NO_KEY_SLOT, target=name, key=_KEYS_FOLDER)
    return {name: found[name] for name in listed.outcomes if name in found}


_NO_KEY_SLOT = "holds the repository config but no key slot"
#: The key a `DegradedTargetError` for a target without key slots names.
_KEYS_FOLDER = f"{KEYS_PREFIX}/"


def _standing(target: Target, config: RepoConfig) -> BaseException | None:
    """Why ``target`` does not hold this repository (its config and a key slot), or ``None``."""
    try:
        found = read_config(target)
    except (StorageError, FormatError) as err:
        return err
    if found != config:
        return ConfigurationError(
            f"holds the config of another repository ({found.repo_id.hex()[:12]}...) or a "
            "differing one"
        )
    return _keyless([target]).get(target.name)


def _refusal(name: str, cause: BaseException) -> DegradedTargetError:
    """The error a writing operation reports for a degraded target (``cause`` chained)."""
    if isinstance(cause, ObjectNotFoundError) and cause.key == _KEYS_FOLDER:
        why = f"{_NO_KEY_SLOT}; nothing is written here until you run `ctfy-vault heal`"
    elif isinstance(cause, ObjectNotFoundError):
        why = (
            "holds no repository config (wiped, or a wrong prefix?); nothing is written here "
            "until you run `ctfy-vault heal`"
        )
    elif isinstance(cause, FormatError):
        why = (
            "holds a damaged or unknown repository config; nothing is written here until heal "
            "with repair (`Vault.heal(repair=True)`) replaces it"
        )
    elif isinstance(cause, ConfigurationError):
        why = f"{cause}; nothing is written here (check the target URL)"
    else:
        why = (
            f"could not be checked for the repository config ({type(cause).__name__}: {cause}); "
            "nothing is written here, run `ctfy-vault heal` once it is back"
        )
    err = DegradedTargetError(why, target=name)
    err.__cause__ = cause
    return err


@attrs.define
class Vault:
    """One repository of encrypted, append-only snapshots, mirrored on several targets.

    Build it with `Vault.init` (a new repository) or `Vault.open` (an existing one). Every
    write goes to every target that holds the repository (create-only, see
    `ctfy_vault.writer.Writer`); a *degraded* target, one without the repository's config or
    without any key slot (wiped, emptied, a mistyped prefix, unreachable), gets nothing but what
    `Vault.heal` copies to it (see `Vault.degraded`). Reads take each object from the first
    target that gives it intact and fall back to the next.

    Several processes may back up into one repository at once; no lock is taken.
    """

    _targets: tuple[Target, ...] = attrs.field(alias="targets", converter=_targets)
    _config: RepoConfig = attrs.field(alias="config")
    _sealer: Sealer = attrs.field(alias="sealer", repr=False)
    _degraded: dict[str, BaseException] = attrs.field(alias="degraded", factory=dict)
    _key_id: str | None = attrs.field(alias="key_id", default=None)
    _reader: Reader = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._reader = Reader(
            targets=self._targets, sealer=self._sealer, packed=self._config.packed
        )

    # -- creating and opening ----------------------------------------------------------------

    @classmethod
    def init(
        cls,
        targets: Iterable[Target],
        *,
        key: Credential,
        now: datetime,
        chunker: ChunkerParams = DEFAULT_CHUNKER,
        cipher: Cipher = Cipher.AES_256_GCM,
        format: int = REPOSITORY_FORMAT,
        pack_size: int = DEFAULT_PACK_SIZE,
    ) -> Vault:
        """Create a repository on every target: its ``config``, master keys and a key slot.

        The config and the key slot are written create-only to the first target, then copied to
        the others, create-only.

        Args:
            targets: where the repository lives; names must be unique.
            key: the passphrase or raw key that will open it (never stored).
            now: the creation time recorded in the key slot (aware).
            chunker: the FastCDC size bounds every backup will use.
            cipher: the AEAD for every object (AES-256-GCM or ChaCha20-Poly1305).
            format: the repository layout: 2 (the default: chunks in packs listed by index
                objects, cut by a chunker keyed from the repository's keys) or 1 (one object
                per chunk, unkeyed cut; for tools that read only format 1).
            pack_size: format 2: the size at which a backup closes a pack (16 MiB by default;
                4 KiB to 1 GiB).

        Returns:
            The open vault.

        Raises:
            ObjectExistsError: a target already holds a repository config or key slots.
            ConfigurationError: no target, duplicate names, a plaintext cipher, an unknown
                format or a pack size out of range.
            TargetsFailedError: a target could not be written (the others hold the repository;
                `Vault.open` after repairing it, then `heal`).
        """
        targets = _targets(targets)
        if cipher is Cipher.NONE:
            raise ConfigurationError("Vault.init creates encrypted repositories only")
        for target in targets:
            if target.exists(CONFIG_KEY) or has_key_slots(target):
                raise ObjectExistsError(
                    "a repository already exists here", target=target.name, key=CONFIG_KEY
                )
        config = RepoConfig(
            repo_id=new_repo_id(),
            chunker=chunker,
            cipher=cipher,
            format=format,
            pack_size=pack_size,
        )
        keys = MasterKeys.generate()
        first = targets[0]
        first.write(CONFIG_KEY, config.to_json())
        slot = create_key_slot(first, repo_id=config.repo_id, keys=keys, credential=key, now=now)
        sealer = Sealer(repo_id=config.repo_id, keys=keys, cipher=cipher)
        rest = Replicas(targets[1:])
        configs = rest.write(CONFIG_KEY, config.to_json(), exists_ok=False)
        slots = rest.write(slot_key(slot.key_id), _read_back(first, slot), exists_ok=False)
        Outcome[bool](outcomes={first.name: None, **configs.outcomes, **slots.failed}).require_all(
            "init could not write the repository to every target"
        )
        return cls(targets=targets, config=config, sealer=sealer, key_id=slot.key_id)

    @classmethod
    def open(cls, targets: Iterable[Target], *, key: Credential) -> Vault:
        """Open an existing repository held by every target.

        Args:
            targets: the repository's targets; names must be unique.
            key: a passphrase or raw key with a slot in the repository.

        Returns:
            The open vault.

        Raises:
            TargetsFailedError: no target holds a readable config; holds each target's error
                (check the target URLs, or create the repository with `Vault.init`). Targets
                without one, or without any key slot, while others have them are listed in
                `Vault.degraded`.
            ConfigurationError: the targets hold different repositories (the message names which
                target holds which), or one repository with differing configs.
            IntegrityError: the key opens no slot (one opaque error, whatever the cause).
        """
        targets = _targets(targets)
        configs, missing = read_configs(targets)
        config = same_repository(configs)
        missing |= _keyless(target for target in targets if target.name in configs)
        for name, err in missing.items():
            log.warning("target %s is degraded: %s", name, _refusal(name, err))
        try:
            keys, slot = Replicas(targets).first(
                lambda target: unlock_slot(target, repo_id=config.repo_id, credential=key),
                what="no key slot opens with this key",
                catch=(IntegrityError, FormatError, StorageError),
            )
        except TargetsFailedError:
            raise IntegrityError("no key slot opens with this key") from None
        sealer = Sealer(repo_id=config.repo_id, keys=keys, cipher=config.cipher)
        return cls(
            targets=targets, config=config, sealer=sealer, degraded=missing, key_id=slot.key_id
        )

    # -- properties --------------------------------------------------------------------------

    @property
    def targets(self) -> tuple[Target, ...]:
        """The targets, in the order they are read."""
        return self._targets

    @property
    def degraded(self) -> dict[str, BaseException]:
        """Targets that do not hold this repository in full, with the error that showed it.

        A target is degraded when its ``config`` cannot be read (wiped, a mistyped prefix,
        unreachable), is damaged, or is not this repository's, or when it holds no key slot at
        all. The check is made at open and again at the start of every writing operation
        (backup, prune, key add) and by heal; this is the latest result.

        Degraded targets stay in the vault and are still read from, but writing operations leave
        them alone: a backup writes nothing there (a mistyped prefix is never turned into a
        partial repository) and reports each as failed with a `DegradedTargetError`, so it never
        counts toward ``require``. `Vault.heal` is the one way back: it copies the config and key
        slots first, then the chunks and manifests.
        """
        return dict(self._degraded)

    @property
    def config(self) -> RepoConfig:
        """The repository's config (id, chunker, cipher, format)."""
        return self._config

    @property
    def repo_id(self) -> bytes:
        """The 16-byte repository id."""
        return self._config.repo_id

    # -- backup ------------------------------------------------------------------------------

    def backup(
        self,
        sources: BackupSource | Iterable[BackupSource],
        *,
        lineage: str,
        now: datetime,
        host: str | None = None,
        tags: Sequence[str] = (),
        labels: Mapping[str, str] | None = None,
        require: Require = "all",
        progress: Callable[[int, int], None] | None = None,
        retain_until: datetime | None = None,
        known_heads: KnownHeads | None = None,
        lock_policy: Policy | None = None,
        lock_lead: timedelta = DEFAULT_LOCK_LEAD,
        target_policies: TargetPolicies | None = None,
        exclude: Sequence[str] = (),
        one_file_system: bool = False,
        full_paths: bool = False,
    ) -> BackupInfo:
        """Back up paths, streams and programs' output as one new snapshot of ``lineage``.

        The lineage's newest entry is found first: its hash becomes the new snapshot's
        ``previous`` (the hash chain), and its newest snapshot is the parent, so files whose size,
        mtime and mode are unchanged are not read again (their owner and extended attributes are
        recorded as they are now). Per target the manifest is written only
        after every chunk it names is there (see `ctfy_vault.writer.Writer.backup`). A database
        dump belongs in a `CommandSource` (``CommandSource(name="app.sql", argv=["pg_dump",
        "app"])``): the snapshot is committed only if ``pg_dump`` exits 0, never with a
        truncated dump.

        With ``known_heads`` holding a head of ``lineage``, the storage must still account for it
        (present, or forgotten by a prune record, and the current head descends from it);
        otherwise the newest entries were deleted or rolled back, and chaining onto the older
        head would hide that: `RollbackError`, before any source is read. Record the new head
        with ``known_heads.advance(info.head)``.

        Args:
            sources: one path, stream (`StreamSource`) or command (`CommandSource`), or several.
            lineage: the chain this snapshot belongs to (``db``, ``server-files``...).
            now: the snapshot's creation time (aware).
            host: the machine the data comes from; this machine's name by default.
            tags: free tags.
            labels: free key/value labels.
            require: ``"all"`` or how many targets must commit.
            progress: told ``(bytes, files)`` as the sources are read; ``None`` for no reports.
            retain_until: on targets whose probe reports S3 Object Lock, every object this run
                stores is retained until then (the horizon of the lineage's policy, e.g.
                ``now + policy.horizon()``); ignored elsewhere.
            known_heads: heads kept outside the storage (from the last verify or backup); only
                ``lineage``'s is checked. ``None`` checks nothing (the chain alone).
            lock_policy: the lineage's retention policy, for Object Lock that follows it: on
                targets whose bucket has Object Lock, the new snapshot and what it stores are
                locked until the date its reasons in the policy's plan need
                (`ctfy_vault.retention.retain_until`), what it reuses is extended to that date
                before its manifest commits, and afterwards every kept snapshot of the lineage
                is brought up to its date (`Vault.lock`). Ignored when ``retain_until`` is given.
            lock_lead: how far past ``now`` a lock that the next plan must extend runs.
            target_policies: per-target retention (see `Vault.prune`), with ``lock_policy``:
                on each target named, the new snapshot and the lineage's objects are locked
                to the dates that target's own policy for the lineage needs.
            exclude: patterns of entries under path sources to leave out (`Selection`: a
                pattern without ``/`` matches a name anywhere, one with ``/`` the absolute
                path; an excluded folder goes with everything under it).
            one_file_system: do not descend into folders on another filesystem than their
                source (the mount point is recorded as an empty folder).
            full_paths: store path sources under their absolute paths (``srv/app/config``,
                the folders above recorded too), as restic does, so two sources of one name do
                not clash; by default each is stored under its name. Keep it the same for a
                lineage: unchanged files are recognised by their stored path.

        Degraded targets (see `Vault.degraded`, checked again now, and once more per target
        right before its manifest is written) get nothing: each outcome reports a
        `DegradedTargetError` naming heal, and they never count toward ``require``.

        Returns:
            The snapshot written, with each target's outcome; ``info.head`` is the new head.

        Raises:
            RollbackError: ``known_heads`` names a head of ``lineage`` the storage no longer
                accounts for (nothing is written).
            ConfigurationError: ``known_heads`` belongs to another repository.
            TargetsFailedError: fewer targets committed than required (after committing where
                possible; a degraded target counts as failed); repair with `heal`. Also raised,
                before anything is written, when no target holds the repository any more.
            ConfigurationError: a source does not exist, two share a name, or bad metadata.
            SourceFailedError: a command exited non-zero, was killed or could not be started, or
                a stream's completion check returned ``False`` (nothing is committed).
            OSError: a stream source failed (nothing is committed).
        """
        given: list[BackupSource] = (
            [sources]
            if isinstance(sources, (str, os.PathLike, StreamSource, CommandSource))
            else list(sources)
        )
        self._check_repository(known_heads)
        self._check_target_policies(target_policies)
        refused = self._writable("backup")
        previous, parent = self._lineage_head(lineage, known_heads)
        # Only a target that may lock (S3) is worth a plan; elsewhere lock_policy changes nothing.
        lockable = lock_policy is not None and any(t.supports.retain_until for t in self._targets)
        dates: datetime | dict[str, datetime] | None = retain_until
        if lock_policy is not None and lockable and retain_until is None:
            dates = self._new_snapshot_locks(
                lineage, lock_policy, target_policies or {}, now, lock_lead
            )
        writer = self._writer(require)
        try:
            result = writer.backup(
                given,
                lineage=lineage,
                host=socket.gethostname() if host is None else host,
                now=now,
                previous=previous,
                parent=parent,
                tags=tuple(tags),
                labels=dict(labels or {}),
                progress=progress,
                retain_until=dates,
                recheck=marked_chunks(self._targets),
                degraded=refused,
                guard=self._refuses,
                selection=Selection(exclude=tuple(exclude), one_file_system=one_file_system),
                full_paths=full_paths,
            )
        finally:
            self._reader.forget_packs()  # new packs and index objects: reload before reading
        info = BackupInfo.of_result(result)
        if lock_policy is None:
            return info
        if not lockable:
            return attrs.evolve(info, unlockable=tuple(t.name for t in self._targets))
        followed = self.lock(
            {lineage: lock_policy}, now=now, lead=lock_lead, target_policies=target_policies
        )
        for name, err in followed.errors.items():
            log.warning("backup: locks on %s not brought up to date: %s", name, err)
        return attrs.evolve(info, unlockable=followed.unlockable)

    def preview_backup(
        self,
        sources: BackupSource | Iterable[BackupSource],
        *,
        lineage: str,
        exclude: Sequence[str] = (),
        one_file_system: bool = False,
        full_paths: bool = False,
    ) -> BackupPreview:
        """Say what `Vault.backup` would read and record, reading no file and writing nothing.

        The sources are walked as the backup would walk them (same exclusions), and each file
        is compared with the lineage's newest snapshot (same size, mtime and mode: taken
        without reading). Commands are not run. See `ctfy_vault.writer.preview`.

        Raises:
            ConfigurationError: a source does not exist, or two share a name.
        """
        given: list[BackupSource] = (
            [sources]
            if isinstance(sources, (str, os.PathLike, StreamSource, CommandSource))
            else list(sources)
        )
        _previous, parent = self._lineage_head(lineage, None)
        return preview(
            given,
            parent=parent,
            selection=Selection(exclude=tuple(exclude), one_file_system=one_file_system),
            full_paths=full_paths,
        )

    def _new_snapshot_locks(
        self,
        lineage: str,
        policy: Policy,
        target_policies: TargetPolicies,
        now: datetime,
        lead: timedelta,
    ) -> datetime | dict[str, datetime]:
        """The retain-until date a snapshot taken at ``now`` needs (per target, when scoped)."""
        listed = self.snapshots(lineage)
        if not target_policies:
            return self._new_snapshot_lock(listed, policy, now, lead)
        catalog = list(self._reader.catalog().values())
        dates: dict[str, datetime] = {}
        for target in self._targets:
            chosen = _target_policy({lineage: policy}, target_policies.get(target.name), listed)
            assert isinstance(chosen, Mapping)  # noqa: S101 - a mapping in, a mapping out
            gone = forgotten_by_records(catalog, target.name)
            mine = [info for info in listed if info.name not in gone]
            dates[target.name] = self._new_snapshot_lock(mine, chosen[lineage], now, lead)
        return dates

    @staticmethod
    def _new_snapshot_lock(
        listed: Sequence[SnapshotInfo], policy: Policy, now: datetime, lead: timedelta
    ) -> datetime:
        """The retain-until date a snapshot taken at ``now`` needs under ``policy``."""
        new = object()
        items: list[object] = [*listed, new]

        def time_of(item: object) -> datetime:
            return now if item is new else item.created  # type: ignore[attr-defined]

        planned = plan(items, policy, now=max(now, *(time_of(i) for i in items)), key=time_of)
        dates = retain_until(planned, lead=lead)
        for item, until in zip(planned.keep, dates, strict=True):
            if item is new:
                return until
        return now + lead  # forgotten at once (older than the policy reaches): the lead only

    def lock(
        self,
        policy: Policy | Mapping[str, Policy],
        *,
        now: datetime,
        lineage: str | None = None,
        lead: timedelta = DEFAULT_LOCK_LEAD,
        mode: LockMode | None = None,
        dry_run: bool = False,
        target_policies: TargetPolicies | None = None,
    ) -> LockReport:
        """Bring Object Lock dates up to what each kept snapshot needs under its policy.

        Each lineage is planned at ``now``; each kept snapshot needs the date its reasons give
        (`ctfy_vault.retention.retain_until`), and each object is extended (never shortened)
        to the latest date among the snapshots that need it: its manifest, its packs (format
        1: its chunk objects), and the config and key slots to the latest of all. Index
        objects are not locked (heal rebuilds them from the packs). Targets whose bucket has
        no Object Lock are listed in the report's ``unlockable`` and left alone.

        `Vault.backup` with ``lock_policy`` and `Vault.prune` call this; run it on its own
        after changing a policy.

        Args:
            policy: one policy for every lineage, or one per lineage (others are left alone).
            now: the moment of planning (aware).
            lineage: only this lineage.
            lead: how far past ``now`` a lock the next plan must extend runs.
            mode: the lock mode for objects that have none yet (``COMPLIANCE``: nobody can
                shorten or remove it; ``GOVERNANCE``: a user with
                ``s3:BypassGovernanceRetention`` can); by default each target's own
                (`Target.lock_mode`).
            dry_run: change nothing: report in ``short`` every object locked for less than
                the plan needs (what ``ctfy-vault check`` reports).
            target_policies: per-target retention (see `Vault.prune`): each target's
                objects follow that target's own plans.

        Returns:
            The dates (per snapshot, the latest over the targets) and what was read and
            raised on each target.

        Raises:
            ConfigurationError: ``target_policies`` names a target the vault does not have.
        """
        self._check_target_policies(target_policies)
        plans = self._plans(policy, lineage=lineage, now=now)
        target_plans = (
            self._target_plans(policy, target_policies, lineage=lineage, now=now)
            if target_policies
            else None
        )
        opened: dict[str, OpenedEntry] = {}

        def manifest(info: SnapshotInfo) -> Manifest:
            # One listing for every kept snapshot's manifest, made only when one is needed.
            if not opened:
                opened.update(self._reader.catalog())
            entry = opened.get(info.name)
            if entry is not None and isinstance(entry.entry, Manifest):
                return entry.entry
            return self.manifest(info)

        return follow_locks(
            self._targets,
            self._reader,
            plans,
            manifest,
            lead=lead,
            mode=mode,
            packed=self._config.packed,
            dry_run=dry_run,
            target_plans=target_plans,
        )

    # -- copy --------------------------------------------------------------------------------

    def copy(
        self,
        source: Vault,
        *,
        snapshots: SnapshotRef | Iterable[SnapshotRef] | None = None,
        lineages: str | Iterable[str] | None = None,
        now: datetime,
        require: Require = "all",
        progress: Callable[[int, int], None] | None = None,
    ) -> CopyReport:
        """Copy snapshots of another repository into this one, re-chunked and re-sealed.

        Each snapshot chosen that this repository lacks is written as a backup would write it:
        every file is read from ``source`` chunk by chunk (never whole, so a file larger than
        memory copies too), cut with this repository's chunker, named with its chunk-id key and
        sealed under its keys; chunks already stored here are not stored again. The snapshot
        keeps its lineage, id and creation time (so its name), host, tags, labels, sources and
        every entry's metadata (modes, mtimes, links, empty folders and files), and is chained
        onto this repository's head of its lineage, oldest first. It gets one more tag recording
        where it came from, ``copied-from=<source repo id, hex>/<snapshot id>``
        (`ctfy_vault.vault.origin_tag`). Prune records are not copied.

        A snapshot is already here when this repository holds one of the same lineage and id,
        or one carrying that tag: it is skipped. A copy interrupted at any point (between
        snapshots or in the middle of one) therefore resumes when run again: it copies only
        what is missing and duplicates nothing; per target, as in a backup, a manifest is
        written only after every chunk it names is there.

        Args:
            source: the open repository to copy from (any format this release reads).
            snapshots: references (``latest``, ``latest:LINEAGE``, names, ids, unique id
                prefixes, as `Vault.find` takes them) or `SnapshotInfo` values of ``source``;
                one alone is accepted. ``None`` copies every snapshot.
            lineages: copy only these lineages (one name alone is accepted); references are
                then looked up among their snapshots.
            now: the moment of the copy (aware), recorded in the report; the snapshots keep
                their own creation times.
            require: ``"all"`` or how many targets must commit each snapshot (as in `backup`).
            progress: told ``(bytes, files)`` as the source's files are read.

        Returns:
            The snapshots copied (each with its targets' outcomes), those skipped, the bytes
            read and written, and each target's outcome over the whole run.

        Raises:
            ConfigurationError: ``source`` is this repository (the same repository id), a
                malformed reference or lineage name, or a naive ``now``; nothing was copied.
            SnapshotNotFoundError: a reference matches no snapshot of ``source`` (of the
                lineages given), or a lineage given has none; nothing was copied.
            AmbiguousSnapshotError: a reference is a prefix of several ids.
            ChainOrderError: a snapshot to copy is older than this repository's head of its
                lineage (a snapshot or prune record): chaining it there would break the time
                order of the chain. Checked for every snapshot before anything is written.
            ObjectExistsError: this repository holds a snapshot with the same id in another
                lineage.
            TargetsFailedError: a snapshot was committed on fewer targets than required; those
                before it are copied (run the copy again once the targets are back), or no
                target holds this repository any more (nothing was written).
            IntegrityError: a file read from ``source`` does not match its manifest (that
                snapshot commits nothing).
        """
        refused = self._writable("copy")
        origin = Origin(
            repo_id=source.repo_id,
            snapshots=source.snapshots,
            manifest=source.manifest,
            content=source._reader.content,  # the same class: another repository's reader
        )
        destination = Destination(
            repo_id=self.repo_id,
            writer=self._writer(require),
            catalog=lambda: self._reader.catalog().values(),
            head=lambda lineage: self._lineage_head(lineage)[0],
            guard=self._refuses,
            refused=refused,
            recheck=lambda: marked_chunks(self._targets),
        )
        try:
            return copy_snapshots(
                origin,
                destination,
                snapshots=snapshots,
                lineages=lineages,
                now=now,
                progress=progress,
            )
        finally:
            self._reader.forget_packs()

    # -- which targets take writes -------------------------------------------------------------

    def _writer(self, require: Require) -> Writer:
        """A writer for this repository's layout, chunker and pack size."""
        config = self._config
        return Writer(
            self._targets,
            self._sealer,
            chunker=config.chunker,
            require=require,
            format=2 if config.packed else 1,
            pack_size=config.pack_size,
        )

    def _refresh(self) -> dict[str, DegradedTargetError]:
        """Check every target for this repository's config and a key slot again (concurrently).

        Returns:
            The degraded targets' errors, by name (also kept for `Vault.degraded`).
        """
        standing = Replicas(self._targets).each(
            lambda target: _standing(target, self._config), catch=(), concurrent=True
        )
        self._degraded = {
            name: cause for name, cause in standing.results.items() if cause is not None
        }
        return {name: _refusal(name, cause) for name, cause in self._degraded.items()}

    def _writable(self, what: str) -> dict[str, DegradedTargetError]:
        """Refresh the degraded targets before a write; refuse when every target is degraded.

        Raises:
            TargetsFailedError: no target holds the repository any more (nothing was written).
        """
        refused = self._refresh()
        if len(refused) == len(self._targets):
            Outcome[None].failing(refused).require_any(
                f"{what}: no target holds this repository's config and key slots any more; "
                "check the target URLs, or create a repository with init"
            )
        return refused

    def _refuses(self, target: Target) -> DegradedTargetError | None:
        """Whether ``target`` may no longer commit (the re-check right before a manifest)."""
        cause = _standing(target, self._config)
        return None if cause is None else _refusal(target.name, cause)

    def _check_repository(self, known_heads: KnownHeads | None) -> None:
        if known_heads is not None and known_heads.repo_id != self.repo_id:
            raise ConfigurationError(
                f"the known heads are of repository {known_heads.repo_id.hex()}, not of this "
                f"one ({self.repo_id.hex()})"
            )

    def _lineage_head(
        self, lineage: str, known_heads: KnownHeads | None = None
    ) -> tuple[bytes | None, Manifest | None]:
        """Return the lineage's head hash and its newest snapshot (the parent).

        Only snapshot objects some target gives intact count (see `Reader`): a stray name under
        ``snapshots/``, or an object that opens on no target, is no entry of any lineage and
        cannot stop a backup (``verify`` reports it). An object newer than the head that no
        target could give reliably just now (a transient failure, or two reads that differ) may
        be the head: chaining past it would fork the chain, so the backup waits for it.

        Raises:
            TargetsFailedError: a snapshot object newer than the head could not be read reliably
                from any target (transient failures or reads that differ).
            RollbackError: the storage no longer accounts for the lineage's known head.
        """
        catalog = self._reader.catalog().values()
        head = lineage_head(catalog, lineage)
        newer = sorted(
            name for name in self._reader.broken_names() if head is None or name > head.name
        )
        undecided = [name for name in newer if name in self._reader.undecided_names()]
        if undecided:
            err = self._reader.broken(undecided[-1])
            outcomes = err.outcomes if isinstance(err, TargetsFailedError) else {}
            raise Outcome[None](outcomes=outcomes).error(
                f"snapshot {undecided[-1]} could not be read reliably from any target just now "
                f"(transient failures, or reads that differ) and may be the head of lineage "
                f"{lineage}; backing up now could fork its chain: back up again once the targets "
                "answer"
            )
        for name in newer:
            log.warning(
                "snapshot object %s opens on no target: it is no entry of any lineage and the "
                "backup of %s chains past it (check reports it; heal --repair quarantines it)",
                name,
                lineage,
            )
        known = known_heads.get(lineage) if known_heads is not None else None
        if known is not None:
            lost = check_known_heads(catalog, {lineage: known.hash})
            if lost:
                raise RollbackError(
                    f"lineage {lineage}: {lost[0].reason} (known head {known.name}); its newest "
                    "snapshots were deleted or rolled back, and backing up now would chain onto "
                    "an older head (run check; restore the missing entries from a copy, or "
                    "accept the storage as it is)"
                )
        ordered = sorted(catalog, key=_order, reverse=True)
        parent = next(
            (
                o.entry
                for o in ordered
                if o.entry.lineage == lineage and isinstance(o.entry, Manifest)
            ),
            None,
        )
        return (None if head is None else head.hash), parent

    # -- reading -----------------------------------------------------------------------------

    def snapshots(self, lineage: str | None = None) -> list[SnapshotInfo]:
        """List the snapshots, newest first.

        Every target that can be listed contributes (a snapshot one target missed is still
        shown); each manifest is read from the first target that gives it intact.

        Args:
            lineage: only this lineage's snapshots; all by default.

        Returns:
            The snapshots, newest first (prune records are not snapshots and are not listed).

        Raises:
            TargetsFailedError: no target could be listed.
        """
        catalog = self._reader.catalog().values()
        # A snapshot a prune record forgot is gone, also while its object stays (still under
        # Object Lock, or on a target the prune could not delete from): no plan takes it again.
        forgotten = forgotten_everywhere(catalog, (target.name for target in self._targets))
        tags = effective_tags(catalog)  # tag records change tags without rewriting manifests
        found = [
            attrs.evolve(SnapshotInfo.of(opened.entry, opened.hash), tags=tags[opened.hash])
            for opened in catalog
            if isinstance(opened.entry, Manifest)
            and opened.name not in forgotten
            and (lineage is None or opened.entry.lineage == lineage)
        ]
        return sorted(found, key=lambda info: (info.created, info.name), reverse=True)

    def tag(
        self,
        snapshot: SnapshotRef,
        *,
        now: datetime,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        host: str | None = None,
    ) -> SnapshotInfo:
        """Add and remove a snapshot's tags, as a tag record in its lineage's chain.

        The manifest is not rewritten: a `TagRecord` naming the snapshot's id and hash is
        appended to the lineage (its predecessor is the lineage's newest entry), sealed and
        written create-only to every target that holds the repository; `snapshots` then shows
        the snapshot's tags with every such record applied, and retention plans keep by them
        (``Policy(tags=...)``). See ``docs/vault.md``, "Tags".

        Args:
            snapshot: a `SnapshotInfo`, a snapshot name, id or unique id prefix.
            now: the record's time (aware).
            add: tags to add.
            remove: tags to remove (a tag the snapshot does not have is ignored).
            host: recorded in the record; this machine's name by default.

        Returns:
            The snapshot with its tags now.

        Raises:
            ConfigurationError: nothing to add or remove, a tag both added and removed, or
                an invalid tag.
            SnapshotNotFoundError: no such snapshot.
            TargetsFailedError: a target could not take the record (the others hold it;
                `heal` copies it).
        """
        refused = self._writable("tag")
        info = snapshot if isinstance(snapshot, SnapshotInfo) else self.find(snapshot)
        head = lineage_head(self._reader.catalog().values(), info.lineage)
        record = TagRecord(
            record_id=secrets.token_hex(16),
            lineage=info.lineage,
            created=now,
            host=socket.gethostname() if host is None else host,
            snapshot=Forgotten(info.snapshot_id, info.hash),
            add=tuple(add),
            remove=tuple(remove),
            previous=None if head is None else head.hash,
        )
        sealed = seal_entry(self._sealer, record)
        healthy = [t for t in self._targets if t.name not in refused]
        written = Replicas(healthy).write(
            snapshot_key(sealed.name), bytes(sealed.blob), exists_ok=False
        )
        Outcome[bool](outcomes={**written.outcomes, **refused}).require_all(
            "the tag record could not be written to every target"
        )
        return next(s for s in self.snapshots(info.lineage) if s.snapshot_id == info.snapshot_id)

    def manifest(self, snapshot: SnapshotRef) -> Manifest:
        """Return a snapshot's full manifest.

        Args:
            snapshot: a `SnapshotInfo`, a snapshot name, or a snapshot id.

        Raises:
            SnapshotNotFoundError: no snapshot has that name or id (an `ObjectNotFoundError`).
            IntegrityError: the snapshot object fails authentication on every target holding it.
            FormatError: it authenticates but its content is invalid (e.g. an escaping path).
        """
        wanted = snapshot.name if isinstance(snapshot, SnapshotInfo) else snapshot
        for opened in self._reader.catalog().values():
            entry = opened.entry
            if isinstance(entry, Manifest) and wanted in (entry.name, entry.snapshot_id):
                return entry
        err = self._reader.broken(wanted)
        if err is not None:
            raise err
        raise SnapshotNotFoundError("no such snapshot", target="repository", key=wanted)

    def ls(self, snapshot: SnapshotRef, path: str = "") -> list[FileEntry]:
        """List a snapshot's entries at and under ``path`` (everything by default), in path order.

        Raises:
            ObjectNotFoundError: no such snapshot, or nothing at ``path``.
        """
        files = self.manifest(snapshot).files
        path = path.strip("/")
        if not path:
            return list(files)
        found = [e for e in files if e.path == path or e.path.startswith(path + "/")]
        if not found:
            raise ObjectNotFoundError("no such path in the snapshot", target="repository", key=path)
        return found

    def open_file(self, snapshot: SnapshotRef, path: str) -> io.BufferedReader:
        """Open one file of a snapshot as a readable binary stream.

        Chunks are fetched as the stream is read, each authenticated (falling back to the next
        target on a missing or altered chunk); at the end the whole file's SHA-256 is checked.
        A hard link opens the file it shares an inode with.

        Raises:
            ObjectNotFoundError: no such snapshot or file.
            ConfigurationError: the path is a folder, a symbolic link, a FIFO or a device.
            TargetsFailedError: a chunk is intact on no target (raised while reading).
            IntegrityError: the content does not match the manifest (raised at the end).
        """
        wanted = path.strip("/")
        files = self.manifest(snapshot).files
        entry = next((e for e in files if e.path == wanted), None)
        if entry is not None and entry.type is FileType.HARDLINK:
            entry = next((e for e in files if e.path == entry.link), None)  # the inode's data
        if entry is None:
            raise ObjectNotFoundError("no such file in the snapshot", target="repository", key=path)
        if entry.type is not FileType.FILE:
            raise ConfigurationError(f"{wanted} is a {entry.type.value}, not a file")
        return io.BufferedReader(ChunkStream(self._reader.content(entry)))

    def restore(
        self,
        snapshot: SnapshotRef,
        dest: str | os.PathLike[str],
        *,
        include: Iterable[str] | None = None,
        overwrite: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> RestoreReport:
        """Restore a snapshot (or the entries ``include`` names) into a local folder.

        Every chunk is authenticated; a chunk missing or altered on one target is read from the
        next. Files get their mode and mtime, folders too (after their contents); links are
        created last, so nothing is written through a link, and a link pointing outside the
        destination is not created (it is listed in ``refused``). Every manifest path is checked
        before anything is written.

        A full-server snapshot comes back as a server needs it: hard links as links to one
        inode, FIFOs, devices (only as root; otherwise listed in ``refused``), extended
        attributes and POSIX ACLs, and the recorded owner and group where the process may give
        them (as root, or its own); each entry gets its owner first, then its attributes, then
        its mode (so ``chown`` does not clear a setuid bit), then its times. What is left as it
        is, is said once per kind in ``warnings``.

        Args:
            snapshot: a `SnapshotInfo`, a snapshot name or id.
            dest: the destination folder (created if missing).
            include: paths, folders or ``fnmatch`` patterns to restore; everything by default.
            overwrite: restore into a folder that is not empty, replacing files of the same name.
            progress: told ``(bytes, files)`` as files are written; ``None`` for no reports.

        Returns:
            What was written, refused, and read from a fallback target.

        Raises:
            ObjectExistsError: ``dest`` exists and is not a folder (a file, a link: even with
                ``overwrite``), or is a folder that is not empty and ``overwrite`` is off.
            ConfigurationError: ``include`` matches nothing in the snapshot (nothing is
                written).
            FormatError: a manifest path is absolute or would escape ``dest``, is listed twice,
                or lies under an entry that is a file or a link (nothing is created then).
            TargetsFailedError: a chunk is intact on no target.
            IntegrityError: a file's content does not match its manifest.
        """
        manifest = self.manifest(snapshot)
        if include is not None:
            include = list(include)
            if not select(manifest.files, include):
                shown = ", ".join(include) or "(an empty list)"
                raise ConfigurationError(f"nothing in the snapshot matches the include {shown}")
        return restore_manifest(
            self._reader,
            manifest,
            Path(dest),
            include=include,
            overwrite=overwrite,
            progress=progress,
        )

    # -- retention ---------------------------------------------------------------------------

    def forget(
        self,
        policy: Policy | Mapping[str, Policy],
        *,
        lineage: str | None = None,
        now: datetime | None = None,
        dry_run: bool = True,
        target_policies: TargetPolicies | None = None,
    ) -> dict[str, RetentionPlan[SnapshotInfo]]:
        """Plan which snapshots each lineage's policy keeps and forgets, with the reasons.

        Each lineage is planned on its own snapshots only: one lineage's policy never touches
        another's. With ``dry_run`` (the default) nothing is changed; otherwise the plans are applied
        by `Vault.prune` (with its default grace period) and returned.

        Args:
            policy: one policy for every lineage planned, or a policy per lineage (lineages
                without one are not planned).
            lineage: plan only this lineage.
            now: the moment of planning (aware); by default each lineage's newest snapshot time,
                so the plan never depends on the machine's clock.
            dry_run: only plan (the default); ``False`` prunes, and then ``now`` is required.
            target_policies: per-target retention, passed to `Vault.prune` (``dry_run=False``
                only; a dry run's per-target plans are in ``prune(dry_run=True).target_plans``).

        Returns:
            For each lineage planned, in name order, its plan over `SnapshotInfo` values (newest
            first in ``keep`` and ``forget``; ``reasons`` for each kept snapshot).

        Raises:
            LockError: see `Vault.prune` (``dry_run=False`` only).
            ConfigurationError: ``lineage`` has no policy in the mapping given.
            PolicyError: ``now`` is naive.
        """
        if not dry_run:
            if now is None:
                raise ConfigurationError("forget without dry_run prunes: give it now=")
            return self.prune(
                policy, lineage=lineage, now=now, target_policies=target_policies
            ).plans
        return self._plans(policy, lineage=lineage, now=now)

    def _plans(
        self,
        policy: Policy | Mapping[str, Policy],
        *,
        lineage: str | None,
        now: datetime | None,
        listed: Sequence[SnapshotInfo] | None = None,
    ) -> Plans:
        listed = self.snapshots() if listed is None else listed
        if isinstance(policy, Policy):
            names = {lineage} if lineage is not None else {info.lineage for info in listed}
            policies = dict.fromkeys(names, policy)
        else:
            policies = dict(policy)
            if lineage is not None:
                if lineage not in policies:
                    raise ConfigurationError(f"no retention policy for lineage {lineage!r}")
                policies = {lineage: policies[lineage]}
        return {
            name: plan([info for info in listed if info.lineage == name], policies[name], now=now)
            for name in sorted(policies)
        }

    def _check_target_policies(self, target_policies: TargetPolicies | None) -> None:
        """Refuse per-target policies for targets the vault does not have, before anything."""
        if not target_policies:
            return
        names = {target.name for target in self._targets}
        unknown = sorted(set(target_policies) - names)
        if unknown:
            raise ConfigurationError(
                f"a retention policy names target {unknown[0]!r}, which the repository does "
                f"not have (targets: {', '.join(sorted(names))})"
            )
        for name, given in target_policies.items():
            values = [given] if isinstance(given, Policy) else list(dict(given).values())
            if not all(isinstance(value, Policy) for value in values):
                raise ConfigurationError(f"the retention policy of target {name!r} is no Policy")

    def _target_plans(
        self,
        policy: Policy | Mapping[str, Policy],
        target_policies: TargetPolicies,
        *,
        lineage: str | None,
        now: datetime | None,
        names: Iterable[str] | None = None,
    ) -> dict[str, Plans]:
        """Each target's plans: its own policy over the snapshots not yet forgotten there."""
        listed = self.snapshots()
        catalog = list(self._reader.catalog().values())
        plans: dict[str, Plans] = {}
        for name in names if names is not None else (t.name for t in self._targets):
            gone = forgotten_by_records(catalog, name)
            plans[name] = self._plans(
                _target_policy(policy, target_policies.get(name), listed),
                lineage=lineage,
                now=now,
                listed=[info for info in listed if info.name not in gone],
            )
        return plans

    def prune(
        self,
        policy: Policy | Mapping[str, Policy],
        *,
        now: datetime,
        lineage: str | None = None,
        grace: timedelta = DEFAULT_GRACE,
        host: str | None = None,
        dry_run: bool = False,
        lock_ttl: timedelta = DEFAULT_LOCK_TTL,
        repack_below: float = DEFAULT_REPACK_BELOW,
        lock_lead: timedelta = DEFAULT_LOCK_LEAD,
        target_policies: TargetPolicies | None = None,
    ) -> PruneReport:
        """Apply retention: forget what each lineage's policy no longer keeps, then sweep chunks.

        Under the exclusive prune lock (``locks/prune`` on every reachable target, create-only):

        * per lineage that forgets something, a prune record naming the lineage's head and each
          forgotten snapshot's hash is written to every target, and only then are the forgotten
          manifests deleted, from the targets holding the record (``verify`` sees an explained
          gap, never a hole). Each lineage is planned on its own snapshots only;
        * chunks no remaining manifest names are marked; a prune deletes a marked chunk only
          once it was marked at least ``grace`` ago and is still unreferenced, so a backup
          running at the same time (backups take no lock) is not robbed of chunks it reuses.
          Choose ``grace`` longer than your longest backup. Nothing is deleted from chunks when
          a target cannot be listed or a snapshot object cannot be opened.

        Format 2 stores chunks in packs, so the sweep works per pack: a pack whose chunks are
        all unreferenced (and past the grace period) is deleted; a pack whose still-needed
        chunks make up less than ``repack_below`` of its chunk bytes is *repacked*: those chunks
        are copied, authenticated, into new packs (built once, the same bytes on every target),
        a new index object replaces the ones listing the old pack, and only then are the old
        index objects and packs deleted. Loose packs (in no index object, e.g. a backup's that
        has not written its index yet) are marked and deleted only when still loose after
        ``grace``. See ``docs/vault.md`` for the order of steps.

        A crash at any point leaves a repository that verifies (at worst with unreferenced
        chunks or loose packs, which the next prune sweeps); running prune again finishes the
        work.

        Degraded targets (see `Vault.degraded`, checked again first) are left alone: no lock,
        record, mark or delete there; each is listed in ``errors`` with a
        `DegradedTargetError`. Their snapshot listings still count when chunks are swept.

        Args:
            policy: one policy for every lineage, or a policy per lineage (lineages without one
                are left alone).
            now: the moment of planning and of the records (aware).
            lineage: prune only this lineage (chunks are still swept repository-wide).
            grace: how long an unreferenced chunk stays marked before deletion; ``0`` deletes at
                once (only safe when no backup can be running).
            host: recorded in the prune records; this machine's name by default.
            dry_run: plan and count, change nothing, take no lock.
            lock_ttl: how long the lock protects this prune; it stops deleting after that.
            repack_below: format 2: repack a pack once the live share of its chunk bytes falls
                below this (0 to 1; `DEFAULT_REPACK_BELOW` is 0.8: at most a fifth of a pack is
                unused, at most 4 bytes moved per byte freed). ``0`` only deletes packs with no
                live chunk; ``1`` repacks every pack holding an expired unreferenced chunk.
            lock_lead: Object Lock: after pruning, on targets whose bucket has Object Lock,
                every kept snapshot's objects are extended to the dates the plan needs
                (`Vault.lock` with this lead). Whatever is still locked is never deleted or
                repacked: it is listed in the report's ``locked`` with its date and deleted by
                a prune after that date.
            target_policies: per-target retention: by target name, that target's policy (for
                every lineage planned) or policies by lineage (the rest keep ``policy``). Each
                target is planned on its own, over the snapshots not yet forgotten there, and
                forgets what its plan forgets: a prune record per lineage and set of forgotten
                snapshots names the targets it applies to (every target holds every record,
                so each verifies the whole chain), and those snapshots stay on the other
                targets. Chunks are swept across the repository: a chunk any target's
                snapshot names stays on every target. Name targets by `Target.name`, and keep
                the names: a record forgets on the targets it names.

        Returns:
            The plans, the records written, what was forgotten (on at least one target) and
            deleted, and per-target errors; with ``target_policies``, each target's plans in
            ``target_plans``.

        Raises:
            LockError: another prune holds the lock (the message names it), or this prune's
                lock expired before it finished.
            ConfigurationError: ``lineage`` has no policy in the mapping given.
            StorageError: no target could be listed.
            TargetsFailedError: every target is degraded (nothing was changed).
            ValueError: a negative ``grace``.
            ConfigurationError: ``repack_below`` is not a number from 0 to 1, or
                ``target_policies`` names a target the vault does not have.
        """
        self._check_target_policies(target_policies)
        refused = {} if dry_run else self._writable("prune")
        scoped = target_policies or None
        report = prune_targets(
            self._targets,
            self._sealer,
            self._reader,
            lambda: self._plans(policy, lineage=lineage, now=now),
            now=now,
            grace=grace,
            host=socket.gethostname() if host is None else host,
            dry_run=dry_run,
            lock_ttl=lock_ttl,
            degraded=refused,
            packed=self._config.packed,
            pack_size=self._config.pack_size,
            repack_below=repack_below,
            plan_targets=None
            if scoped is None
            else lambda names: self._target_plans(
                policy, scoped, lineage=lineage, now=now, names=names
            ),
        )
        if not dry_run and any(t.supports.retain_until for t in self._targets):
            followed = self.lock(
                policy, now=now, lineage=lineage, lead=lock_lead, target_policies=scoped
            )
            for name, err in followed.errors.items():
                log.warning("prune: locks on %s not brought up to date: %s", name, err)
        return report

    # -- monitoring --------------------------------------------------------------------------

    def status(
        self,
        *,
        now: datetime,
        max_age: timedelta | None = None,
        lineage: str | None = None,
    ) -> Status:
        """Report how current the repository is, per lineage and target (for monitoring).

        Reads only listings, the prune lock, the sweep marks and the buckets' Object Lock
        setting: no snapshot data. Per lineage: the newest snapshot and its age at ``now``,
        each target's newest, and the targets lagging behind (a backup failed there). Also
        the prune lock's holder, the chunks waiting to be deleted, and which targets lock.

        Args:
            now: the moment ages are measured from (aware).
            max_age: a lineage whose newest snapshot is older is ``stale``; ``None``: none is.
            lineage: only this lineage.

        Returns:
            The status; ``status.ok`` when no lineage is stale, no target lags and every
            target could be listed.

        Raises:
            ConfigurationError: ``now`` is naive, ``max_age`` is negative, or ``lineage`` has
                no snapshot.
            TargetsFailedError: no target could be listed.
        """
        if now.utcoffset() is None:
            raise ConfigurationError("status needs an aware now")
        if max_age is not None and max_age < timedelta(0):
            raise ConfigurationError("max_age must not be negative")
        held = Replicas(self._targets).each(snapshot_names)
        held.require_any("no target could be listed")
        listed = self.snapshots(lineage)
        if lineage is not None and not listed:
            raise ConfigurationError(f"lineage {lineage!r} has no snapshot")
        locks = Replicas(self._targets).each(read_lock)
        return Status(
            now=now,
            max_age=max_age,
            lineages=lineage_status(
                listed,
                held.results,
                now=now,
                max_age=max_age,
                lineages=None if lineage is None else [lineage],
            ),
            unreachable=dict(held.failed),
            prune_lock=next((lock for lock in locks.results.values() if lock is not None), None),
            pending_chunks=len(marked_chunks(self._targets)),
            object_lock=object_lock_of(t for t in self._targets if t.name in held.results),
        )

    def lock_info(self) -> LockInfo | None:
        """Return the prune lock's holder as the first target that can be read names it, or ``None``.

        Raises:
            TargetsFailedError: no target could be read.
        """
        locks = Replicas(self._targets).each(read_lock)
        locks.require_any("no target could be read for its lock")
        return next((lock for lock in locks.results.values() if lock is not None), None)

    def break_lock(self, *, now: datetime, force: bool = False) -> LockInfo:
        """Remove a stale prune lock: past its expiry and its holder not alive.

        A holder on this machine is checked by process id; on another machine only expiry can
        be checked. ``force`` removes any lock (and an unreadable one): only when you know the
        holder is gone.

        Returns:
            The lock removed.

        Raises:
            LockError: there is no lock, or it is not stale (and ``force`` is off).
        """
        found: dict[str, LockInfo] = {}
        unreadable: list[Target] = []
        for target in self._targets:
            try:
                lock = read_lock(target)
            except LockError:
                unreadable.append(target)
                continue
            except StorageError:
                continue
            if lock is not None:
                found[target.name] = lock
        held = next(iter(found.values()), None)
        if held is None and not (force and unreadable):
            raise LockError("the repository is not locked")
        if held is not None and not force and not held.stale(now):
            raise LockError(f"the lock is not stale: held by {held.describe()}")
        for target in self._targets:
            lock = found.get(target.name)
            ours = lock is not None and held is not None and lock.lock_id == held.lock_id
            if ours or (force and (lock is not None or target in unreadable)):
                target.delete(LOCK_KEY)
        if held is None:
            return LockInfo(lock_id="unreadable", host="?", pid=0, created=now, expires=now)
        return held

    # -- keys --------------------------------------------------------------------------------

    def keys(self) -> list[KeySlot]:
        """List the key slots (public parts only), from the first target that lists them.

        Degraded targets (see `Vault.degraded`) are asked last: a wiped one lists no slot.
        """
        ordered = sorted(self._targets, key=lambda target: target.name in self._degraded)
        return Replicas(ordered).first(list_key_slots, what="no target could list the key slots")

    def add_key(self, credential: Credential, *, now: datetime) -> KeySlot:
        """Add a key slot for another passphrase or raw key, on every target.

        The slot is written to the first reachable target, then copied to the others (verified,
        create-only). The open vault's keys are wrapped; no existing credential is needed.
        Degraded targets (see `Vault.degraded`, checked again first) get nothing; `heal`
        copies the slot there later.

        Raises:
            TargetsFailedError: a target could not receive the slot, or is degraded (the others
                hold it).
        """
        keys = self._sealer.keys
        if keys is None:
            raise UnsupportedError("a plaintext repository has no keys")
        refused = self._writable("key add")
        healthy = Replicas(t for t in self._targets if t.name not in refused)

        def create(target: Target) -> tuple[Target, KeySlot]:
            made = create_key_slot(
                target, repo_id=self.repo_id, keys=keys, credential=credential, now=now
            )
            return target, made

        holder, slot = healthy.first(
            create, what="no target could store the key slot", failed=refused
        )
        key = slot_key(slot.key_id)
        # The holder refuses the write create-only (it has the slot), which counts as stored.
        copied = healthy.write(key, _read_back(holder, slot), exists_ok=True, failed=refused)
        copied.require_all(f"{key} could not be copied to every target")
        return slot

    @property
    def key_id(self) -> str | None:
        """The id of the key slot that opened this vault (or that `Vault.init` wrote)."""
        return self._key_id

    def change_key(self, credential: Credential, *, now: datetime) -> KeySlot:
        """Change the key that opened this vault in one step: a new slot, then the old one goes.

        The new slot is written to every target first (`Vault.add_key`), so a crash in between
        leaves both keys working, never neither; then the slot that opened this vault is
        removed from every target. Other slots are left as they are.

        Args:
            credential: the new passphrase or raw key.
            now: the creation time of the new slot (aware).

        Returns:
            The new slot; `Vault.key_id` now names it.

        Raises:
            TargetsFailedError: a target could not receive the new slot (the old one is kept
                everywhere), or the old one could not be removed everywhere (both work).
            ConfigurationError: the vault does not know which slot opened it.
        """
        old = self._key_id
        if old is None:
            raise ConfigurationError("this vault does not know which key slot opened it")
        slot = self.add_key(credential, now=now)
        self._key_id = slot.key_id
        self.remove_key(old)
        return slot

    def remove_key(self, key_id: str) -> None:
        """Remove a key slot from every target; never the last slot.

        Degraded targets are included: a removed slot left on one would be copied back by
        `heal`, and deleting never turns a mistyped prefix into a partial repository.

        Raises:
            ObjectNotFoundError: no such slot.
            ConfigurationError: it is the only slot (the repository would become unreadable).
            TargetsFailedError: a target could not be changed (the others were).
        """
        ids = [slot.key_id for slot in self.keys()]
        if key_id not in ids:
            raise ObjectNotFoundError("no such key slot", target="repository", key=key_id)
        if len(ids) == 1:
            raise ConfigurationError("refusing to remove the last key slot")
        removed = Replicas(self._targets).each(lambda target: target.delete(slot_key(key_id)))
        removed.require_all("the key slot could not be removed everywhere")
        if key_id == self._key_id:
            self._key_id = None

    # -- maintenance -------------------------------------------------------------------------

    def verify(
        self,
        read_data: ReadData = False,
        *,
        rng: random.Random | None = None,
        known_heads: KnownHeads | None = None,
    ) -> VerifyReport:
        """Check the repository and report everything wrong (never repairs, never deletes).

        * structure: on every target each snapshot object opens, and each manifest names only
          chunks that target holds (a copy that does not open says whether a good copy exists
          elsewhere, or that it opens nowhere and is therefore no snapshot);
        * strays: names under ``objects/`` or ``snapshots/`` that are no object of the repository,
          and objects heal moved to ``quarantine/``, are reported as warnings;
        * chain: every lineage's hash chain has no gap, fork or rollback (`verify_chain`);
        * known heads (``known_heads``): each lineage's earlier head is still present or
          forgotten by a prune record, every current head descends from it, and no known lineage
          has vanished. Without them, deleting a lineage's newest entries on every target
          cannot be seen (it leaves no gap);
        * agreement: every target holds the same objects (lock files aside);
        * data (``read_data``): chunk objects are re-read from every target holding them and
          authenticated; ``True`` reads all, a fraction reads that share, sampled with ``rng``.

        Format 2 (packs): a target holds a chunk when one of its index objects that opens lists
        it in a pack the target holds; an index object that does not open is an ``index``
        problem, loose and unneeded missing packs are warnings, and ``read_data`` reads whole
        packs (``corrupt-pack``) and compares them with their index records (see
        ``docs/repository.md``).

        Args:
            read_data: ``False``, ``True``, a fraction from 0 to 1 (a random share), or a
                `ReadSubset` (group ``n`` of ``t``, restic's ``--read-data-subset=n/t``: the
                same objects every time, and groups 1 to ``t`` together read everything).
            rng: the sampler for a fraction (a fresh unseeded one by default).
            known_heads: the heads of an earlier verify (``report.heads``) or backup, kept
                outside the storage.

        Returns:
            The report; ``report.ok`` is ``True`` only when nothing was found. ``report.heads``
            are the current heads: persist them when the report is ok.

        Raises:
            ValueError: ``read_data`` is out of range.
            ConfigurationError: ``known_heads`` belongs to another repository.
        """
        self._check_repository(known_heads)
        return verify_targets(
            self._targets,
            self._sealer,
            read_data=read_data,
            rng=rng,
            known_heads=known_heads,
            packed=self._config.packed,
            forgotten=self._forgotten_keys(),
        )

    def _forgotten_keys(self) -> dict[str, frozenset[str]]:
        """Per target, the keys of snapshot objects a prune record forgot there.

        They may stay where they are still locked (or where a prune could not delete them):
        verify does not count them as lacking on that target, and heal does not copy them
        there. Per-target retention forgets a snapshot on some targets only; the others
        should still hold it.
        """
        names = [target.name for target in self._targets]
        return forgotten_keys(self._reader.catalog().values(), names)

    def heal(
        self, *, repair: bool = False, read_data: bool = False, now: datetime | None = None
    ) -> HealReport:
        """Copy to each target what it lacks from another, verified and create-only; report the rest.

        Every copy of the config, the key slots and the manifests is judged as well (every
        chunk copy too with ``read_data`` or ``repair``); what is found wrong and not fixed is
        listed in each outcome's ``unfixed`` and makes ``report.ok`` false. Without ``repair``
        nothing is deleted or overwritten. With ``repair``, a copy that fails its check (a chunk
        or manifest that does not authenticate; a config or key slot that does not parse or
        differs from the copy most targets hold) is deleted and written again, create-only, from
        a copy that passes; what no good copy proves damaged (a stray name under ``objects/`` or
        ``snapshots/``, a snapshot object that opens on no target) is moved to
        ``quarantine/<now>/<key>`` on its target, never deleted outright (see
        `ctfy_vault.writer.heal`).

        Args:
            repair: also replace damaged copies and quarantine strays (the only deleting heal).
            read_data: also judge every chunk copy without repairing (reads every chunk).
            now: the time naming the quarantine folder (aware); without it, repair reports
                what it would quarantine instead.

        Heal is the one writer to degraded targets (see `Vault.degraded`): a wiped target gets
        the config and key slots first, then the chunks (format 2: the packs, then the index
        objects), then the manifests. Afterwards the degraded targets are checked again. On
        format 2, packs no index object lists (a backup stopped before its index object) are
        checked and listed in a new index object; index objects are always judged.

        Returns:
            What was copied to, repaired on, quarantined on and left unfixed on each target.

        Raises:
            TargetsFailedError: a target could not be completed (after copying what could be),
                or, with ``repair``, a damaged object has no good copy on any target.
            ConfigurationError: the vault has a single target (nothing to heal from).
        """
        try:
            return heal(
                self._targets,
                sealer=self._sealer,
                repair=repair,
                read_data=read_data,
                now=now,
                config_check=self._is_my_config,
                packed=self._config.packed,
                forgotten=self._forgotten_keys(),
            )
        finally:
            self._reader.forget_packs()
            self._refresh()

    def _is_my_config(self, data: bytes) -> bool:
        """Whether a copy of ``config`` is this repository's config (for heal)."""
        try:
            return RepoConfig.from_json(data) == self._config
        except FormatError:
            return False

    def find(self, ref: str) -> SnapshotInfo:
        """Find the snapshot a reference names, as ``ctfy-vault ls`` and ``restore`` take it.

        Args:
            ref: ``latest`` (the newest snapshot), ``latest:LINEAGE`` (the newest of a lineage),
                a snapshot's name or id, or a prefix of exactly one snapshot's id.

        Returns:
            The snapshot, for `ls`, `restore` and the other readers.

        Raises:
            ConfigurationError: the reference is malformed; checked before anything is listed.
            AmbiguousSnapshotError: a prefix of several ids (the message lists them).
            SnapshotNotFoundError: no snapshot matches (also a `LookupError`).
            TargetsFailedError: no target could be listed.
        """
        check_reference(ref)
        return find_snapshot(self.snapshots(), ref)


def _target_policy(
    policy: Policy | Mapping[str, Policy],
    override: Policy | Mapping[str, Policy] | None,
    listed: Iterable[SnapshotInfo],
) -> Policy | Mapping[str, Policy]:
    """One target's policies: ``override`` where it says something, ``policy`` elsewhere."""
    if override is None:
        return policy
    if isinstance(override, Policy):
        return override if isinstance(policy, Policy) else dict.fromkeys(policy, override)
    base = (
        dict.fromkeys({info.lineage for info in listed}, policy)
        if isinstance(policy, Policy)
        else dict(policy)
    )
    return {**base, **override}


def _order(opened: OpenedEntry) -> tuple[datetime, str]:
    return opened.entry.created, opened.name


def _read_back(target: Target, slot: KeySlot) -> bytes:
    """The stored bytes of a slot just written (copied verbatim: every copy must be the same)."""
    return target.read(slot_key(slot.key_id))
