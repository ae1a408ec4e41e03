"""Errors that name the real cause: a missing bucket, an unreachable endpoint, restore misuse."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ctfy_vault.exceptions import (
    ConfigurationError,
    ObjectExistsError,
    ObjectNotFoundError,
    StorageError,
)
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault
from ctfy_vault.writer import StreamSource
from tests.support.cli import Cli, TargetSpec, local_cli, sample_tree
from tests.support.servers import S3Endpoint
from tests.support.vaults import KEY
from tests.support.writer_strategies import NOW, memory_target


def test_a_missing_bucket_is_said_to_be_missing(moto_s3: S3Endpoint) -> None:
    """Not 'not found': the bucket itself does not exist."""
    target = Target.from_url(
        "s3://no-such-bucket-at-all/repo",
        endpoint_url=moto_s3.endpoint_url,
        region=moto_s3.region,
        key=moto_s3.key,
        secret=moto_s3.secret,
    )
    with pytest.raises(ObjectNotFoundError, match=r"bucket .*does not exist"):
        target.read("config")
    with pytest.raises(StorageError, match=r"bucket .*does not exist"):
        Vault.init([target], key=KEY, now=NOW)


def test_an_unreachable_endpoint_is_named_without_path_or_query() -> None:
    """scheme://host:port only: the path names keys, a signed query would carry a signature."""
    target = Target.from_url(
        "s3://bucket/repo",
        endpoint_url="http://127.0.0.1:9",
        region="us-east-1",
        key="k",
        secret="s",
        retry=None,
    )
    with pytest.raises(StorageError) as caught:
        target.read("config")
    assert "cannot reach the endpoint http://127.0.0.1:9" in str(caught.value)
    assert "127.0.0.1:9/" not in str(caught.value)


def test_restore_onto_a_file_or_with_an_include_matching_nothing_is_refused(
    tmp_path: Path,
) -> None:
    """A file is refused even with overwrite; an include matching nothing too.

    The file: ObjectExistsError saying so; the include: ConfigurationError. Nothing is written.
    """
    vault = Vault.init([memory_target("a")], key=KEY, now=NOW)
    info = vault.backup(StreamSource(name="d", stream=io.BytesIO(b"x")), lineage="db", now=NOW)
    afile = tmp_path / "afile"
    afile.write_text("mine")
    with pytest.raises(ObjectExistsError, match="is not a folder"):
        vault.restore(info, afile, overwrite=True)
    assert afile.read_text() == "mine"
    with pytest.raises(ConfigurationError, match="nothing in the snapshot matches"):
        vault.restore(info, tmp_path / "new", include=["nope/*"])
    assert not (tmp_path / "new").exists()


@pytest.mark.slow  # subprocesses; the whole suite runs it
def test_the_command_line_names_the_causes(tmp_path: Path, moto_s3: S3Endpoint) -> None:
    """Missing bucket, unreachable endpoint, restore misuse, an uninitialised target."""
    targets = [
        TargetSpec(name="missing", url="s3://no-such-bucket-cli/repo", endpoint=moto_s3),
        TargetSpec(
            name="away",
            url="s3://bucket/repo",
            endpoint=moto_s3,
            endpoint_url="http://127.0.0.1:9",
        ),
    ]
    cli = Cli(home=tmp_path, targets=targets)
    cli.write_config()
    done = cli("snapshots")
    assert done.returncode == 1
    assert "bucket (or container) does not exist" in done.stderr
    assert "cannot reach the endpoint http://127.0.0.1:9" in done.stderr
    (tmp_path / "local").mkdir()
    local = local_cli(tmp_path / "local")
    fresh = local("snapshots")
    assert fresh.returncode == 1
    assert "init" in fresh.stderr
    sample_tree(local.home / "data")
    local.json("init")
    snapshot = local.json("backup", "files")["id"]
    onto = local.home / "afile"
    onto.write_text("mine")
    for extra in ([], ["--overwrite"]):
        refused = local("restore", snapshot, str(onto), *extra)
        assert refused.returncode == 1
        assert "is a file, not a folder" in refused.stderr
    assert onto.read_text() == "mine"
    nothing = local("restore", snapshot, str(local.home / "out"), "--include", "nope/*")
    assert nothing.returncode == 2
    assert "nothing in the snapshot matches" in nothing.stderr
    assert not (local.home / "out").exists()
