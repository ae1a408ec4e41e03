"""``ctfy-vault copy --from-config OTHER.toml``: options, output, exit codes, and a real run."""

from __future__ import annotations

import io
import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from ctfy_vault.cli import ExitCode, main
from ctfy_vault.crypto import RawKey
from ctfy_vault.storage import Target
from ctfy_vault.vault import KnownHeads, Vault, origin_tag
from ctfy_vault.writer import StreamSource
from tests.support.cli import OTHER_KEY, RAW_KEY, local_cli, sample_tree
from tests.support.copies import catalog, chains, tree_state
from tests.support.writer_strategies import NOW

SOURCE_HEX = "11" * 32
DEST_HEX = "22" * 32
MINUTE = timedelta(minutes=1)


@attrs.frozen
class Pair:
    """A source and a destination repository on folder targets, each with its own config file."""

    source: Vault
    dest: Vault
    source_config: Path
    dest_config: Path
    heads: Path


def write_config(path: Path, folders: list[Path], variable: str, heads: Path | str) -> Path:
    """A config naming ``folders`` as targets, its raw key in ``variable``."""
    targets = "".join(f'[[targets]]\nurl = "{folder}"\n\n' for folder in folders)
    known = "false" if heads == "off" else f'"{heads}"'
    path.write_text(
        f'[repository]\nkey = {{ env = "{variable}", type = "raw" }}\nknown_heads = {known}\n\n'
        f"{targets}"
    )
    return path


SOURCE_FOLDERS = ("src-ams", "src-dub")


@pytest.fixture(scope="module")
def built_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the source's target folders: db backed up three times, files once.

    Built once for the module; each test copies the folders before it runs.
    """
    root = tmp_path_factory.mktemp("copy-source")
    source = Vault.init(
        [Target.from_url(str(root / name)) for name in SOURCE_FOLDERS],
        key=RawKey(bytes.fromhex(SOURCE_HEX)),
        now=NOW,
    )
    for n in range(3):
        dump = StreamSource(name="db.sql", stream=io.BytesIO(b"INSERT %d;\n" % n * 100))
        source.backup(dump, lineage="db", host="db1", now=NOW + n * MINUTE)
    tree = sample_tree(root / "data")
    source.backup(tree, lineage="files", host="web1", now=NOW + 5 * MINUTE, tags=["weekly"])
    return root


@pytest.fixture
def pair(built_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Pair:
    """A source holding two lineages (db three times, files once) and an empty destination."""
    monkeypatch.setenv("COPY_SOURCE_KEY", SOURCE_HEX)
    monkeypatch.setenv("COPY_DEST_KEY", DEST_HEX)
    source_folders = [tmp_path / name for name in SOURCE_FOLDERS]
    for folder in source_folders:
        shutil.copytree(built_source / folder.name, folder, symlinks=True)
    dest_folders = [tmp_path / "dst-fra", tmp_path / "dst-ire"]
    source = Vault.open(
        [Target.from_url(str(f)) for f in source_folders], key=RawKey(bytes.fromhex(SOURCE_HEX))
    )
    dest = Vault.init(
        [Target.from_url(str(f)) for f in dest_folders],
        key=RawKey(bytes.fromhex(DEST_HEX)),
        now=NOW,
    )
    heads = tmp_path / "state" / "dest.heads.json"
    return Pair(
        source=source,
        dest=dest,
        source_config=write_config(
            tmp_path / "source.toml", source_folders, "COPY_SOURCE_KEY", "off"
        ),
        dest_config=write_config(tmp_path / "dest.toml", dest_folders, "COPY_DEST_KEY", heads),
        heads=heads,
    )


def run(pair: Pair, *argv: str) -> tuple[int, str]:
    """Run ``ctfy-vault copy`` in this process into the destination; exit code and stdout."""
    out = io.StringIO()
    code = main(
        [
            "copy",
            "--config",
            str(pair.dest_config),
            "--from-config",
            str(pair.source_config),
            *argv,
        ],
        out=out,
    )
    return code, out.getvalue()


def run_json(pair: Pair, *argv: str) -> Any:
    """Run ``copy --json``, which must exit 0; the document it prints."""
    code, text = run(pair, *argv, "--json")
    assert code == ExitCode.OK, text
    return json.loads(text)


def test_copy_copies_every_snapshot_then_nothing(pair: Pair) -> None:
    """Exit 0 with each copied snapshot in the JSON; run again, everything is skipped."""
    first = run_json(pair)
    source_ids = sorted(s.snapshot_id for s in pair.source.snapshots())
    assert sorted(item["id"] for item in first["copied"]) == source_ids
    assert first["skipped"] == []
    assert first["source"] == pair.source.repo_id.hex()
    assert first["bytes_read"] > 0
    assert [t["committed"] for t in first["targets"]] == [True, True]
    for item in first["copied"]:
        assert origin_tag(pair.source.repo_id, item["id"]) in item["tags"]
        assert all(t["committed"] for t in item["targets"])
    again = run_json(pair)
    assert again["copied"] == []
    assert sorted(item["id"] for item in again["skipped"]) == source_ids
    assert again["bytes_written"] == 0
    dest = Vault.open(pair.dest.targets, key=RawKey(bytes.fromhex(DEST_HEX)))
    assert chains(dest) == chains(pair.source)
    assert dest.verify(read_data=True).ok


def test_copy_records_each_lineages_new_head(pair: Pair) -> None:
    """The destination's known-heads file names the copied heads afterwards."""
    run_json(pair)
    known = KnownHeads.load(pair.heads)
    assert known is not None
    dest = Vault.open(pair.dest.targets, key=RawKey(bytes.fromhex(DEST_HEX)))
    assert known.get("db") == dest.find("latest:db").head
    assert known.get("files") == dest.find("latest:files").head


def test_snapshot_and_lineage_options_choose_what_is_copied(pair: Pair) -> None:
    """``--snapshot`` takes refs (repeatable); ``--lineage`` narrows where they are looked up."""
    oldest = min(pair.source.snapshots("db"), key=lambda s: s.created)
    done = run_json(pair, "--snapshot", oldest.snapshot_id[:10], "--snapshot", "latest:files")
    assert [item["id"] for item in done["copied"]] == [
        oldest.snapshot_id,
        pair.source.find("latest:files").snapshot_id,
    ]
    done = run_json(pair, "--lineage", "db", "--snapshot", "latest")
    assert [item["id"] for item in done["copied"]] == [pair.source.find("latest:db").snapshot_id]


def test_copy_prints_a_summary_per_snapshot_and_target(pair: Pair) -> None:
    """Without ``--json``: a line per copied snapshot and per target, then nothing the second time."""
    code, text = run(pair)
    assert code == ExitCode.OK
    assert text.startswith(
        f"copied 4 snapshot(s) from repository {pair.source.repo_id.hex()}; 0 already here\n"
    )
    for info in pair.source.snapshots():
        assert f"  {info.lineage} {info.snapshot_id} ({info.name}):" in text
    assert text.count("chunk(s) uploaded") == 2
    code, text = run(pair)
    assert code == ExitCode.OK
    assert text.startswith("copied 0 snapshot(s)")
    assert "4 already here" in text


def test_a_reference_matching_nothing_exits_1_and_copies_nothing(
    pair: Pair, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown snapshot is one SnapshotNotFoundError line, exit 1; nothing is copied."""
    code, text = run(pair, "--snapshot", "feedbeef")
    assert (code, text) == (ExitCode.FAILED, "")
    assert capsys.readouterr().err == (
        "ctfy-vault: SnapshotNotFoundError: no such snapshot [repository: feedbeef]\n"
    )
    assert pair.dest.snapshots() == []


def test_a_malformed_reference_is_a_usage_error(pair: Pair) -> None:
    """``--snapshot 'not a ref'`` is refused by the parser: exit 2."""
    with pytest.raises(SystemExit) as caught:
        run(pair, "--snapshot", "not a ref")
    assert caught.value.code == ExitCode.USAGE


def test_copying_from_the_same_repository_exits_2(
    pair: Pair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The destination's own config, or another config of the same repository: exit 2."""
    out = io.StringIO()
    same = ["copy", "--config", str(pair.dest_config), "--from-config", str(pair.dest_config)]
    assert main(same, out=out) == ExitCode.USAGE
    assert "the destination's own config" in capsys.readouterr().err
    twin = tmp_path / "twin.toml"
    shutil.copy(pair.dest_config, twin)
    again = ["copy", "--config", str(pair.dest_config), "--from-config", str(twin)]
    assert main(again, out=out) == ExitCode.USAGE
    assert "same repository" in capsys.readouterr().err


def test_a_snapshot_older_than_the_destination_head_exits_1_naming_the_lineage(
    pair: Pair, capsys: pytest.CaptureFixture[str]
) -> None:
    """A destination lineage with a newer head refuses the copy: ChainOrderError, exit 1."""
    newer = StreamSource(name="db.sql", stream=io.BytesIO(b"newer"))
    pair.dest.backup(newer, lineage="db", host="h", now=NOW + timedelta(days=1))
    code, _text = run(pair)
    assert code == ExitCode.FAILED
    err = capsys.readouterr().err
    assert err.startswith("ctfy-vault: ChainOrderError: lineage db: snapshot ")
    assert len(pair.dest.snapshots()) == 1


def test_a_wiped_destination_target_exits_3_then_heal_and_copy_again(
    pair: Pair, capsys: pytest.CaptureFixture[str]
) -> None:
    """A destination target lost its config: exit 3 after one snapshot; heal, copy again: done.

    With every target required the copy stops at the first snapshot a target missed; the message
    names heal and the rerun.
    """
    wiped = pair.dest.targets[1]
    wiped.delete("config")
    code, _text = run(pair, "--json")
    assert code == ExitCode.PARTIAL
    err = capsys.readouterr().err
    assert "DegradedTargetError" in err
    assert "run copy again" in err
    assert "run `ctfy-vault heal`" in err
    assert len(pair.dest.snapshots()) == 1
    dest = Vault.open(pair.dest.targets, key=RawKey(bytes.fromhex(DEST_HEX)))
    dest.heal()
    done = run_json(pair)
    assert (len(done["copied"]), len(done["skipped"])) == (3, 1)
    assert dest.verify(read_data=True).ok


def test_help_lists_copy_and_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    """``ctfy-vault --help`` lists copy; ``copy --help`` its options."""
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "copy" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["copy", "--help"])
    text = capsys.readouterr().out
    for option in ("--from-config", "--snapshot", "--lineage", "--json", "--known-heads"):
        assert option in text


@pytest.mark.slow
def test_end_to_end_copy_between_folder_repositories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the console: init both, back up, copy, check --read-data, restore alike, copy again."""
    for home in ("a", "b"):
        (tmp_path / home).mkdir()
    src = local_cli(tmp_path / "a", ("ams", "dub"))
    dst = local_cli(tmp_path / "b", ("fra",))
    dst = attrs.evolve(dst, key=OTHER_KEY)
    for cli in (src, dst):
        cli.ok("init")
    sample_tree(tmp_path / "a" / "data")
    src.ok("backup", "files")
    src.ok("backup", "db", "--stdin", "--name", "app.sql", stdin=b"INSERT 1;\n" * 5000)
    # The source's config reads its key from a variable of its own (the CLI helper clears CTFY_*).
    source_config = tmp_path / "source.toml"
    source_config.write_text(src.config.read_text().replace('"CTFY_TEST_KEY"', '"E2E_SOURCE_KEY"'))
    monkeypatch.setenv("E2E_SOURCE_KEY", RAW_KEY)
    report = dst.json("copy", "--from-config", str(source_config))
    assert len(report["copied"]) == 2
    dst.ok("check", "--read-data")
    snapshots = {s["id"]: s for s in dst.json("snapshots")}
    assert set(snapshots) == {s["id"] for s in src.json("snapshots")}
    for ident in snapshots:
        src.ok("restore", ident, str(tmp_path / "out-a" / ident))
        dst.ok("restore", ident, str(tmp_path / "out-b" / ident))
        assert tree_state(tmp_path / "out-b" / ident) == tree_state(tmp_path / "out-a" / ident)
    again = dst.json("copy", "--from-config", str(source_config))
    assert (again["copied"], len(again["skipped"])) == ([], 2)
    source = Vault.open(src_targets(tmp_path / "a"), key=RawKey(bytes.fromhex(RAW_KEY)))
    dest = Vault.open(src_targets(tmp_path / "b"), key=RawKey(bytes.fromhex(OTHER_KEY)))
    origins = frozenset(origin_tag(source.repo_id, s.snapshot_id) for s in source.snapshots())
    assert catalog(dest, drop_tags=origins) == catalog(source)


def src_targets(home: Path) -> list[Target]:
    """The folder targets ``local_cli`` configured under ``home``."""
    return [Target.from_url(str(folder)) for folder in sorted((home / "targets").iterdir())]
