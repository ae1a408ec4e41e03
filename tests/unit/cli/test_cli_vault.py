"""``ctfy-vault`` end to end, in subprocesses: local folders, moto and a real Ceph RGW."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctfy_vault.cli._parser import split_command
from tests.support.cli import OTHER_KEY, TIMEOUT, Cli, TargetSpec, local_cli, sample_tree
from tests.support.servers import S3Endpoint, make_bucket, s3_client


def tree(root: Path) -> dict[str, bytes | str]:
    """Every file's bytes and every link's target under ``root``, by relative path."""
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if path.is_symlink():
            found[relative] = "-> " + os.readlink(path)
        elif path.is_file():
            found[relative] = path.read_bytes()
        else:
            found[relative] = "dir"
    return found


def full_cycle(cli: Cli, *, thorough: bool = True) -> None:
    """init, two backups (dedup), restore byte-identical, forget, prune, check.

    ``thorough`` adds a stream backup, ``ls``, a refused and an ``--overwrite`` restore and a
    forget dry run; each subprocess costs an interpreter start, so the S3 run does without.
    """
    data = sample_tree(cli.home / "data")
    assert cli.json("init")["targets"] == [t.name for t in cli.targets]
    first = cli.json("backup", "files")
    assert all(t["committed"] and t["chunks_uploaded"] > 0 for t in first["targets"])
    (data / "contracts" / "0.txt").write_text("contract 0, amended\n")
    second = cli.json("backup", "files", "--tag", "nightly")
    assert second["tags"] == ["nightly"]
    assert second["bytes_read"] < 100  # only the edited file was read again
    for outcome in second["targets"]:
        assert outcome["chunks_present"] > 0  # deduplicated: the blob's chunks were there
        assert outcome["chunks_uploaded"] == 1
    restored = cli.home / "restored"
    report = cli.json("restore", "latest:files", str(restored))
    assert report["files"] == 6
    assert tree(restored / "data") == tree(data)
    if thorough:
        _more_of_the_cycle(cli, second["id"], restored)
    pruned = cli.json("prune", "--grace", "0")
    assert pruned["forgotten"] == [first["id"]]
    assert len(pruned["records"]) == 1
    assert [row["keep"] for row in pruned["plan"] if row["lineage"] == "files"] == [True, False]
    check = cli.json("check", "--read-data=50%")
    assert check["ok"], check["problems"]
    assert check["chunks_read"] > 0
    assert check["snapshots"] == (3 if thorough else 2)  # snapshots left and one prune record


def _more_of_the_cycle(cli: Cli, second: str, restored: Path) -> None:
    dump = "INSERT INTO contracts VALUES (1, 'café');\n".encode() * 1000 + bytes(range(256))
    stream = cli.json("backup", "db", "--stdin", "--name", "db.sql", stdin=dump)
    assert stream["files"] == 1
    listed = cli.json("snapshots")
    assert [s["lineage"] for s in listed] == ["db", "files", "files"]
    entries = cli.ok("ls", second[:8], "data")
    assert "data/contracts/0.txt" in entries
    assert "data/latest.txt -> contracts/4.txt" in entries
    refused = cli("restore", "latest:files", str(restored))
    assert refused.returncode == 1
    assert "--overwrite" in refused.stderr
    cli.ok("restore", "latest:files", str(restored), "--overwrite")
    (cli.home / "db").mkdir()
    cli.ok("restore", "latest:db", str(cli.home / "db"))
    assert (cli.home / "db" / "db.sql").read_bytes() == dump

    plan = cli.ok("forget", "--dry-run")
    assert "forget" in plan
    assert "dry run: nothing was changed" in plan


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_full_cycle_on_local_folders(tmp_path: Path) -> None:
    """The whole cycle works on two local folder targets and nothing leaks the key."""
    cli = local_cli(tmp_path)
    full_cycle(cli)
    assert "not locked" in cli.ok("lock", "show")
    slots = cli.json("key", "list")
    assert len(slots) == 1


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_a_folder_target_down_gives_exit_3_then_heal(tmp_path: Path) -> None:
    """Backup with one target down commits elsewhere and exits 3; heal makes check clean."""
    cli = local_cli(tmp_path)
    sample_tree(tmp_path / "data")
    cli.ok("init")
    cli.ok("backup", "files")
    dub = tmp_path / "targets" / "dub"
    dub.rename(tmp_path / "dub-away")
    dub.write_text("not a folder")
    (tmp_path / "data" / "new.txt").write_text("written while Ireland was down\n")
    partial = cli("backup", "files")
    assert partial.returncode == 3, partial.stderr
    assert "dub: FAILED" in partial.stderr
    assert "ams: ok" in partial.stderr
    assert len(cli.json("snapshots")) == 2  # still listed from the healthy target
    dub.unlink()
    (tmp_path / "dub-away").rename(dub)
    unhealthy = cli("check")
    assert unhealthy.returncode == 1
    assert "lacking" in unhealthy.stdout
    healed = cli.json("heal")
    assert healed["ok"]
    assert healed["targets"]["dub"]["copied"]
    assert healed["targets"]["ams"]["copied"] == []
    assert cli.json("check")["ok"]


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_a_wiped_folder_target_exits_3_naming_heal_and_gets_nothing(tmp_path: Path) -> None:
    """Target folder deleted: backup commits on the other, exits 3 naming heal, writes nothing there.

    ``heal`` brings the whole repository back and the next backup commits on both.
    """
    cli = local_cli(tmp_path)
    sample_tree(tmp_path / "data")
    cli.ok("init")
    cli.ok("backup", "files")
    dub = tmp_path / "targets" / "dub"
    shutil.rmtree(dub)
    partial = cli("backup", "files")
    assert partial.returncode == 3, partial.stderr
    assert "ams: ok" in partial.stderr
    assert "dub: FAILED: DegradedTargetError" in partial.stderr
    assert "holds no repository config (wiped, or a wrong prefix?)" in partial.stderr
    assert "ctfy-vault heal" in partial.stderr
    assert not dub.exists()  # nothing at all was written there
    healed = cli.json("heal")
    assert healed["ok"]
    copied = healed["targets"]["dub"]["copied"]
    assert "config" in copied
    assert any(key.startswith("keys/") for key in copied)
    assert len([key for key in copied if key.startswith("snapshots/")]) == 2
    again = cli.json("backup", "files")
    assert [(t["target"], t["committed"]) for t in again["targets"]] == [
        ("ams", True),
        ("dub", True),
    ]
    assert cli.json("check")["ok"]


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_a_mistyped_folder_prefix_exits_3_and_all_mistyped_exits_1(tmp_path: Path) -> None:
    """A typo in one target's folder: exit 3, the typo is not created; every target wrong: exit 1."""
    cli = local_cli(tmp_path)
    sample_tree(tmp_path / "data")
    cli.ok("init")
    ams, dub = cli.targets
    typo = attrs.evolve(dub, url=str(tmp_path / "targets" / "dbu"))
    cli.write_config([ams, typo])
    partial = cli("backup", "files")
    assert partial.returncode == 3, partial.stderr
    assert "dub: FAILED" in partial.stderr
    assert "wrong prefix" in partial.stderr
    assert "ctfy-vault heal" in partial.stderr
    assert not (tmp_path / "targets" / "dbu").exists()
    cli.write_config([attrs.evolve(ams, url=str(tmp_path / "targets" / "asm")), typo])
    lost = cli("backup", "files")
    assert lost.returncode == 1, lost.stderr
    assert "no repository config on any target" in lost.stderr
    assert "init" in lost.stderr
    assert "Traceback" not in lost.stderr
    assert sorted(p.name for p in (tmp_path / "targets").iterdir()) == ["ams", "dub"]


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_a_mistyped_s3_prefix_exits_3_then_heal(tmp_path: Path, moto_s3: S3Endpoint) -> None:
    """On moto, a target pointed at an empty prefix by a typo: exit 3, nothing under it; heal fills it."""
    bucket = make_bucket(moto_s3, f"cli-{uuid.uuid4().hex[:12]}")
    targets = [
        TargetSpec(name="one", url=f"s3://{bucket}/repo-one", endpoint=moto_s3),
        TargetSpec(name="two", url=f"s3://{bucket}/repo-two", endpoint=moto_s3),
    ]
    cli = Cli(home=tmp_path, targets=targets, secrets=[moto_s3.secret])
    cli.write_config()
    sample_tree(tmp_path / "data")
    cli.ok("init")
    cli.ok("backup", "files")
    typo = attrs.evolve(targets[1], url=f"s3://{bucket}/repo-tow")
    cli.write_config([targets[0], typo])
    partial = cli("backup", "files")
    assert partial.returncode == 3, partial.stderr
    assert "one: ok" in partial.stderr
    assert "two: FAILED: DegradedTargetError" in partial.stderr
    assert "ctfy-vault heal" in partial.stderr
    listed = s3_client(moto_s3).list_objects_v2(Bucket=bucket, Prefix="repo-tow/")
    assert listed.get("KeyCount", 0) == 0
    assert "config" in cli.json("heal")["targets"]["two"]["copied"]
    again = cli.json("backup", "files")
    assert all(t["committed"] for t in again["targets"])
    assert len(cli.json("snapshots")) == 3


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_junk_and_a_damaged_chunk_on_one_folder_then_heal_repair(tmp_path: Path) -> None:
    """Junk stops no backup; heal exits 1 naming it and a bad chunk; heal --repair cleans up."""
    cli = local_cli(tmp_path)
    sample_tree(tmp_path / "data")
    cli.ok("init")
    cli.ok("backup", "files")
    dub = tmp_path / "targets" / "dub"
    (dub / "snapshots" / "zzz").write_text("junk\n")
    (tmp_path / "data" / "new.txt").write_text("after the junk\n")
    cli.ok("backup", "files")
    cli.ok("backup", "db", "--stdin", "--name", "db.sql", stdin=b"INSERT 1;\n" * 500)
    check = cli("check")
    assert check.returncode == 0, check.stdout
    assert "unexpected (warning)" in check.stdout
    assert "snapshots/zzz" in check.stdout
    chunk = sorted(p for p in (dub / "packs").rglob("*") if p.is_file())[0]
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x01
    chunk.write_bytes(bytes(data))
    key = chunk.relative_to(dub).as_posix()
    plain = cli("heal")
    assert plain.returncode == 1
    assert "NOT FIXED snapshots/zzz" in plain.stdout
    assert "every target holds every object" not in plain.stdout
    looked = cli("heal", "--read-data", "--json")
    assert looked.returncode == 1
    report = json.loads(looked.stdout)
    assert not report["ok"]
    assert set(report["targets"]["dub"]["unfixed"]) == {"snapshots/zzz", key}
    assert cli("check", "--read-data").returncode == 1
    repaired = cli("heal", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "quarantined snapshots/zzz -> quarantine/" in repaired.stdout
    assert not (dub / "snapshots" / "zzz").exists()
    assert [p.read_text() for p in (dub / "quarantine").rglob("zzz")] == ["junk\n"]
    clean = cli.json("check", "--read-data")
    assert clean["ok"], clean["problems"]
    assert [p["kind"] for p in clean["problems"]] == ["quarantined"]


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def s3_cli(tmp_path: Path, moto_s3: S3Endpoint, rgw_s3: S3Endpoint) -> Cli:
    """Two providers: a moto bucket and a Ceph RGW bucket, each with its own credentials."""
    suffix = uuid.uuid4().hex[:12]
    targets = [
        TargetSpec(
            name="moto",
            url=f"s3://{make_bucket(moto_s3, f'cli-{suffix}')}/repo",
            endpoint=moto_s3,
        ),
        TargetSpec(
            name="rgw",
            url=f"s3://{make_bucket(rgw_s3, f'cli-{suffix}')}/repo",
            endpoint=rgw_s3,
        ),
    ]
    cli = Cli(home=tmp_path, targets=targets, secrets=[moto_s3.secret, rgw_s3.secret])
    cli.write_config()
    return cli


@pytest.mark.rgw
def test_moto_and_rgw_cycle_then_one_unreachable(s3_cli: Cli) -> None:
    """One target on moto, one on a real Ceph RGW: the cycle; then moto unreachable: exit 3.

    Back online, ``heal`` copies what moto missed and ``check --read-data`` is clean.
    """
    cli = s3_cli
    full_cycle(cli, thorough=False)
    moto, rgw = cli.targets
    cli.write_config([attrs.evolve(moto, endpoint_url=f"http://127.0.0.1:{free_port()}"), rgw])
    (cli.home / "data" / "new.txt").write_text("written while moto was unreachable\n")
    partial = cli("backup", "files")
    assert partial.returncode == 3, partial.stderr
    assert "rgw: ok" in partial.stderr
    assert "moto: FAILED" in partial.stderr
    cli.write_config()
    assert cli.json("heal")["targets"]["moto"]["copied"]
    check = cli.json("check", "--read-data")
    assert check["ok"], check["problems"]


# -- known heads ---------------------------------------------------------------------------------


def state_file(cli: Cli) -> Path:
    """Where the CLI keeps the known heads by default (tests get their own XDG_STATE_HOME)."""
    repo_id = json.loads((cli.home / "targets" / "disk" / "config").read_text())["repo_id"]
    return Path(os.environ["XDG_STATE_HOME"]) / "ctfy-vault" / f"{repo_id}.heads.json"


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_newest_snapshot_deleted_everywhere_fails_check_and_backup(
    tmp_path: Path, moto_s3: S3Endpoint
) -> None:
    """A local folder and moto: the state file catches a snapshot deleted on both targets.

    ``check`` exits 1 and keeps failing; ``backup`` refuses to chain onto the older head unless
    ``--accept-rollback``; then ``check`` is clean again.
    """
    bucket = make_bucket(moto_s3, f"heads-{uuid.uuid4().hex[:12]}")
    targets = [
        TargetSpec(name="disk", url=str(tmp_path / "targets" / "disk")),
        TargetSpec(name="moto", url=f"s3://{bucket}/repo", endpoint=moto_s3),
    ]
    cli = Cli(home=tmp_path, targets=targets, secrets=[moto_s3.secret])
    cli.write_config()
    data = sample_tree(tmp_path / "data")
    cli.ok("init")
    first = cli("backup", "files")
    assert first.returncode == 0, first.stderr
    assert "no known heads" in first.stderr  # said once, on the first run
    path = state_file(cli)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (data / "contracts" / "0.txt").write_text("contract 0, amended\n")
    second = cli("backup", "files")
    assert "no known heads" not in second.stderr
    newest = cli.json("snapshots")[0]
    assert json.loads(path.read_text())["heads"]["files"]["name"] == newest["name"]
    clean = cli.json("check")
    assert clean["ok"], clean["problems"]
    assert clean["known_heads"] == {"file": str(path), "lineages": ["files"]}

    (tmp_path / "targets" / "disk" / "snapshots" / newest["name"]).unlink()
    s3_client(moto_s3).delete_object(Bucket=bucket, Key=f"repo/snapshots/{newest['name']}")
    for _ in range(2):  # a failed check records nothing, so it keeps failing
        failed = cli("check")
        assert failed.returncode == 1, failed.stdout
        assert f"a known head is missing (known head {newest['name']})" in failed.stdout
    assert cli("check", "--known-heads", str(tmp_path / "fresh.json")).returncode == 0
    refused = cli("backup", "files")
    assert refused.returncode == 1
    assert "lineage files: a known head is missing" in refused.stderr
    assert "--accept-rollback" in refused.stderr
    assert len(cli.json("snapshots")) == 1  # nothing was written
    accepted = cli("backup", "files", "--accept-rollback")
    assert accepted.returncode == 0, accepted.stderr
    assert "backing up onto the current head anyway" in accepted.stderr
    assert cli.json("check")["ok"]


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_known_heads_file_options_and_damage(tmp_path: Path) -> None:
    """--known-heads and the config choose the file; a damaged or foreign one is a clear error."""
    cli = local_cli(tmp_path, names=("disk",))
    sample_tree(tmp_path / "data")
    cli.ok("init")
    chosen = tmp_path / "elsewhere" / "heads.json"
    cli.ok("backup", "files", "--known-heads", str(chosen))
    assert json.loads(chosen.read_text())["format"] == 1
    assert not state_file(cli).exists()
    assert "1 lineage(s) checked against" in cli.ok("check", "--known-heads", str(chosen))

    chosen.write_text(chosen.read_text()[:-10])
    damaged = cli("check", "--known-heads", str(chosen))
    assert damaged.returncode == 1
    assert f"FormatError: {chosen}" in damaged.stderr
    assert cli("backup", "files", "--known-heads", str(chosen)).returncode == 1
    assert len(cli.json("snapshots")) == 1  # the damaged file stopped the backup

    other = Cli(home=tmp_path / "other", targets=[TargetSpec("x", str(tmp_path / "other-t"))])
    (tmp_path / "other").mkdir()
    other.write_config()
    other.ok("init")
    other.ok("check", "--known-heads", str(tmp_path / "other.json"))
    foreign = cli("check", "--known-heads", str(tmp_path / "other.json"))
    assert foreign.returncode == 2
    assert "belongs to repository" in foreign.stderr

    text = cli.config.read_text()
    cli.config.write_text(text.replace("[repository]\n", '[repository]\nknown_heads = "h.json"\n'))
    cli.ok("check")
    assert json.loads((tmp_path / "h.json").read_text())["heads"]["files"]
    cli.config.write_text(text.replace("[repository]\n", "[repository]\nknown_heads = false\n"))
    assert "known heads: off" in cli.ok("check")
    assert not state_file(cli).exists()


# -- bad input -----------------------------------------------------------------------------------


def test_missing_config_exits_2(tmp_path: Path) -> None:
    """No config file: exit 2 naming the file."""
    cli = local_cli(tmp_path)
    cli.config.unlink()
    done = cli("snapshots")
    assert done.returncode == 2
    assert "ctfy-vault.toml not found" in done.stderr


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_unknown_lineage_and_bad_usage_exit_2(tmp_path: Path) -> None:
    """An unconfigured lineage, an unknown command or option: exit 2."""
    cli = local_cli(tmp_path)
    done = cli("backup", "nope")
    assert done.returncode == 2
    assert "'nope' is not configured" in done.stderr
    assert cli("frobnicate").returncode == 2
    assert cli("check", "--read-data=150%").returncode == 2
    assert cli("prune", "--grace", "soon").returncode == 2


@pytest.mark.slow  # six subprocesses; the whole suite runs it
def test_prune_repack_below_sets_the_threshold(tmp_path: Path) -> None:
    """``--repack-below 0`` leaves a pack with a dead chunk; ``100%`` then repacks it.

    A bad share is a usage error naming the value, and changes nothing.
    """
    cli = local_cli(tmp_path)
    data = sample_tree(cli.home / "data")
    cli.json("init")
    first = cli.json("backup", "files")
    (data / "contracts" / "0.txt").write_text("contract 0, amended\n")
    cli.json("backup", "files")
    before = sorted(p.name for p in (tmp_path / "targets").rglob("*") if p.is_file())
    for bad in ("1.5", "-1", "lots", "nan", "101%"):
        done = cli("prune", "--grace", "0", "--repack-below", bad)
        assert done.returncode == 2, bad
        assert "--repack-below" in done.stderr
        assert repr(bad) in done.stderr
    assert sorted(p.name for p in (tmp_path / "targets").rglob("*") if p.is_file()) == before
    kept = cli.json("prune", "--grace", "0", "--repack-below", "0")
    assert kept["forgotten"] == [first["id"]]
    assert (kept["packs_repacked"], kept["packs_written"]) == (0, 0)
    assert kept["chunks_unused"] > 0
    repacked = cli.json("prune", "--grace", "0", "--repack-below", "100%")
    assert repacked["packs_repacked"] >= 1
    assert repacked["packs_written"] >= 1
    assert repacked["chunks_unused"] == 0
    check = cli.json("check", "--read-data")
    assert check["ok"], check["problems"]
    restored = cli.home / "restored"
    cli.json("restore", "latest:files", str(restored))
    assert tree(restored / "data") == tree(data)


def test_wrong_key_is_one_opaque_error(tmp_path: Path) -> None:
    """A key that opens no slot: exit 1, one message that says nothing about the key."""
    cli = local_cli(tmp_path)
    cli.ok("init")
    done = cli("snapshots", key=OTHER_KEY)
    assert done.returncode == 1
    assert "IntegrityError" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_targets_of_different_repositories_are_refused(tmp_path: Path) -> None:
    """Two targets holding different repositories: exit 2 naming both; init twice refused."""
    cli = local_cli(tmp_path)
    ams, dub = cli.targets
    cli.write_config([ams])
    cli.ok("init")
    cli.write_config([dub])
    cli.ok("init")
    before = tree(tmp_path / "targets")
    assert cli("init").returncode == 1  # a second init is refused and changes nothing
    assert tree(tmp_path / "targets") == before
    cli.write_config()
    done = cli("snapshots")
    assert done.returncode == 2
    assert "different repositories" in done.stderr
    assert "ams" in done.stderr
    assert "dub" in done.stderr


# -- backup --stdin-from-command -------------------------------------------------------------------


def _snapshot_objects(tmp_path: Path) -> dict[str, list[str]]:
    """The snapshot objects each local target holds."""
    found: dict[str, list[str]] = {}
    for target in sorted((tmp_path / "targets").iterdir()):
        folder = target / "snapshots"
        found[target.name] = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    return found


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_stdin_from_command_commits_the_output_of_a_program_that_succeeds(tmp_path: Path) -> None:
    """``backup db --stdin-from-command -- CMD``: the output restores byte for byte; -- is kept."""
    cli = local_cli(tmp_path)
    cli.ok("init")
    script = 'head -c 2000000 /dev/zero | tr "\\0" z; printf "%s|" "$@"'
    command = ("sh", "-c", script, "sh", "a", "--", "--name")
    done = cli.ok(
        "backup", "db", "--stdin-from-command", "--json", "--name", "db.sql", "--", *command
    )
    info = json.loads(done)
    assert info["files"] == 1
    assert all(t["committed"] for t in info["targets"])
    cli.ok("backup", "db", "--stdin-from-command", "--", "printf", "named after the program")
    (tmp_path / "out").mkdir()
    cli.ok("restore", info["id"], str(tmp_path / "out"))
    assert (tmp_path / "out" / "db.sql").read_bytes() == b"z" * 2_000_000 + b"a|--|--name|"
    (tmp_path / "latest").mkdir()
    cli.ok("restore", "latest:db", str(tmp_path / "latest"))
    assert (tmp_path / "latest" / "printf").read_bytes() == b"named after the program"


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_stdin_from_command_failing_exits_1_and_commits_nothing(tmp_path: Path) -> None:
    """A producer exiting 3 or killed mid-way: exit 1, one line naming it, no snapshot anywhere."""
    cli = local_cli(tmp_path)
    cli.ok("init")
    cli.ok("backup", "db", "--stdin", "--name", "db.sql", stdin=b"the good dump of yesterday\n")
    before = _snapshot_objects(tmp_path)
    secret = "postgresql://app:hunter2-s3cr3t@db/app"
    cli.secrets.append(secret)
    cases = {
        "printf 'COPY 1\\n'; exit 3": "sh exited with status 3; nothing was committed",
        "head -c 500000 /dev/urandom; kill -KILL $$": "sh was killed by SIGKILL; nothing was committed",
    }
    for script, message in cases.items():
        command = ("sh", "-c", script, "sh", secret)
        done = cli("backup", "db", "--stdin-from-command", "--name", "db.sql", "--", *command)
        assert done.returncode == 1, done.stderr
        assert done.stderr.splitlines() == [f"ctfy-vault: backup db: {message}"]
        assert "Traceback" not in done.stderr
        assert _snapshot_objects(tmp_path) == before
    assert len(cli.json("snapshots")) == 1
    missing = cli("backup", "db", "--stdin-from-command", "--", str(tmp_path / "no-such-pg_dump"))
    assert missing.returncode == 1
    assert "no-such-pg_dump could not be started" in missing.stderr
    assert _snapshot_objects(tmp_path) == before
    assert cli.json("check")["ok"]


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_stdin_from_command_passes_the_programs_stderr_through(tmp_path: Path) -> None:
    """The program's own messages reach the user's stderr, before the one failure line."""
    cli = local_cli(tmp_path)
    cli.ok("init")
    cli.ok("check")  # records the known heads: no first-run note below
    done = cli(
        "backup",
        "db",
        "--stdin-from-command",
        "--",
        "sh",
        "-c",
        "echo 'pg_dump: error: no' >&2; exit 1",
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "pg_dump: error: no",
        "ctfy-vault: backup db: sh exited with status 1; nothing was committed",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--stdin-from-command",), "needs the command after --"),
        (("--stdin-from-command", "--"), "needs the command after --"),
        (("extra", "--stdin-from-command", "--", "true"), "takes no PATHS"),
        (("--stdin", "--stdin-from-command", "--", "true"), "not both"),
    ],
)
@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_stdin_from_command_usage_errors_exit_2(
    tmp_path: Path, argv: tuple[str, ...], message: str
) -> None:
    """No command, PATHS besides it, or --stdin as well: exit 2 with a message, nothing run."""
    cli = local_cli(tmp_path)
    cli.ok("init")
    done = cli("backup", "db", *argv)
    assert done.returncode == 2
    assert message in done.stderr
    assert _snapshot_objects(tmp_path) == {"ams": [], "dub": []}


_WORDS = st.lists(st.sampled_from(["backup", "db", "--name", "x", "--", "--stdin-from-command"]))


@given(_WORDS)
def test_split_command_cuts_at_the_first_dashdash_after_the_option(argv: list[str]) -> None:
    """The command is everything after the first ``--``, when the option comes before it."""
    words, command = split_command(argv)
    if "--" in argv and "--stdin-from-command" in argv[: argv.index("--")]:
        assert command is not None
        assert [*words, "--", *command] == argv
        assert "--" not in words
    else:
        assert (words, command) == (argv, None)


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_stdin_from_command_needs_a_lineage(tmp_path: Path) -> None:
    """Without a LINEAGE before it, the command is not taken for one."""
    cli = local_cli(tmp_path)
    cli.ok("init")
    done = cli("backup", "--stdin-from-command", "--", "true")
    assert done.returncode == 2
    assert "needs a LINEAGE" in done.stderr


@pytest.mark.slow  # a subprocess or more per step; the whole suite runs it
def test_stdin_from_a_pipe_warns_that_the_pipe_hides_failures(tmp_path: Path) -> None:
    """``--stdin`` on a pipe warns about pipefail and names --stdin-from-command; a file does not."""
    cli = local_cli(tmp_path)
    cli.ok("init")
    piped = cli("backup", "db", "--stdin", "--name", "db.sql", stdin=b"dump")
    assert piped.returncode == 0
    assert "set -o pipefail" in piped.stderr
    assert "--stdin-from-command" in piped.stderr
    dump = tmp_path / "dump.sql"
    dump.write_bytes(b"dump from a file")
    redirected = cli("backup", "db", "--stdin", "--name", "db.sql", stdin_file=dump)
    assert redirected.returncode == 0
    assert redirected.stderr == ""


def test_help_lists_every_command() -> None:
    """``--help`` names every command and the exit codes."""
    done = subprocess.run(
        [sys.executable, "-m", "ctfy_vault", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    )
    for command in (
        "init",
        "backup",
        "snapshots",
        "ls",
        "restore",
        "forget",
        "prune",
        "check",
        "heal",
        "key",
        "lock",
        "probe",
        "demo",
        "mirror",
    ):
        assert f"    {command}" in done.stdout
    assert "3 partial" in done.stdout


@pytest.mark.slow  # several subprocesses; the whole suite runs it
def test_a_target_with_its_own_policy_keeps_its_own_snapshots(tmp_path: Path) -> None:
    """``policy`` in a ``[[targets]]`` table: prune, forget --dry-run and check follow it."""
    targets = [
        TargetSpec(name="near", url=str(tmp_path / "targets" / "near")),
        TargetSpec(name="far", url=str(tmp_path / "targets" / "far"), policy="{ last = 3 }"),
    ]
    cli = Cli(home=tmp_path, targets=targets)
    cli.write_config()
    data = sample_tree(cli.home / "data")
    cli.json("init")
    ids = []
    for day in range(4):
        (data / "contracts" / "0.txt").write_text(f"contract 0, version {day}\n")
        ids.append(cli.json("backup", "files")["id"])
    planned = cli.json("forget", "--dry-run")
    keeps = {
        name: [row["snapshot"] for row in rows if row["keep"] and row["lineage"] == "files"]
        for name, rows in planned["targets"].items()
    }
    assert keeps == {"near": ids[-1:], "far": ids[:0:-1]}
    shown = cli.ok("forget", "--dry-run")
    assert "target far:" in shown
    assert "target near:" in shown
    pruned = cli.json("prune", "--grace", "0")
    assert set(pruned["forgotten"]) == set(ids[:3])
    assert len(pruned["records"]) == 2
    listed = {row["id"] for row in cli.json("snapshots")}
    assert listed == set(ids[1:])
    check = cli.json("check", "--read-data")
    assert check["ok"], check["problems"]
    only_far = cli.home / "only-far"
    cli.json("restore", ids[1], str(only_far))
    assert (only_far / "data" / "contracts" / "0.txt").read_text() == "contract 0, version 1\n"
