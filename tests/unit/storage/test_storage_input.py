"""Bad keys, bad URLs, bad options and unreachable endpoints: each gets its own clear error."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctfy_vault.exceptions import (
    InvalidObjectKeyError,
    InvalidURLError,
    NotAFolderError,
    TargetUnreachableError,
    UnsupportedError,
)
from ctfy_vault.storage import MAX_KEY_BYTES, RetryPolicy, Target, validate_key
from ctfy_vault.storage._backends import _HOST, STALE_TEMPORARY_AGE, sweep_temporaries
from tests.support.strategies import object_keys


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "is empty"),
        ("../etc/passwd", "path traversal"),
        ("a/../../b", "path traversal"),
        ("a/./b", "path traversal"),
        ("/abs/key", "absolute"),
        ("a//b", "empty segment"),
        ("a/b/", "empty segment"),
        ("a\\..\\b", "backslash"),
        ("bad\x00key", "control character"),
        ("line\nbreak", "control character"),
        ("del\x7f", "control character"),
        ("x" * (MAX_KEY_BYTES + 1), "the limit is 1024"),
        ("é" * 513, "the limit is 1024"),  # 1026 bytes of UTF-8
        (".ctfy-tmp/x", "reserved"),
        (".ctfy-probe/x", "reserved"),
    ],
)
def test_bad_keys_are_refused_before_io(key: str, problem: str, tmp_path: Path) -> None:
    """Each unsafe key is refused with a message naming its problem, and nothing is written."""
    target = Target.from_url(str(tmp_path / "t"))
    with pytest.raises(InvalidObjectKeyError, match=problem) as info:
        target.write(key, b"x")
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidObjectKeyError):
        target.read(key)
    assert not (tmp_path / "t").exists()


def test_key_length_counts_the_target_prefix(tmp_path: Path) -> None:
    """On S3 the bucket prefix counts toward the 1024-byte object-key limit (checked before I/O)."""
    target = Target.from_url(
        "s3://bucket/" + "p" * 100, endpoint_url="http://127.0.0.1:9", key="k", secret="s"
    )
    with pytest.raises(InvalidObjectKeyError, match="with the target's prefix"):
        target.write("k" * 1000, b"x")


def test_non_string_key_is_refused() -> None:
    """A key that is not a str is refused with its type named."""
    with pytest.raises(InvalidObjectKeyError, match="must be a str, not bytes"):
        validate_key(b"abc")


@given(object_keys())
def test_valid_keys_are_accepted_unchanged(key: str) -> None:
    """Every key built from safe segments is accepted and returned unchanged."""
    assert validate_key(key) == key


@given(st.text(max_size=60))
def test_any_text_is_accepted_or_refused_cleanly(text: str) -> None:
    """Arbitrary text either passes or raises InvalidObjectKeyError; accepted keys cannot escape."""
    try:
        key = validate_key(text)
    except InvalidObjectKeyError:
        return
    segments = key.split("/")
    assert all(segment not in ("", ".", "..") for segment in segments)
    assert not key.startswith("/")
    assert not any(ord(ch) < 0x20 for ch in key)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "empty"),
        ("ftp://host/path", "unknown scheme 'ftp'"),
        ("gs://bucket", "unknown scheme 'gs'"),
        ("s3://", "need a bucket"),
        ("s3://Upper_Case", "invalid S3 bucket name"),
        ("s3://ab", "invalid S3 bucket name"),
        ("s3://AKIA:secret@bucket/x", "credentials in a target URL"),
        ("s3://bucket/x?X-Amz-Signature=abc", "query or fragment"),
        ("s3://bucket/a/../b", "bad path"),
        ("az://", "need a container"),
        ("az://Bad--Name", "invalid Azure container name"),
        ("memory://", "need a name"),
        ("file://otherhost/x", "local path"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url: str, problem: str) -> None:
    """Each bad URL gets an InvalidURLError (a ValueError) that says what is wrong."""
    with pytest.raises(InvalidURLError, match=problem) as info:
        Target.from_url(url)
    assert isinstance(info.value, ValueError)


def test_secret_never_appears_in_url_errors() -> None:
    """A URL carrying credentials is refused without echoing them."""
    with pytest.raises(InvalidURLError) as info:
        Target.from_url("s3://AKIAEXAMPLE:verysecretvalue@bucket/x")
    assert "verysecretvalue" not in str(info.value)


def test_unknown_options_are_named() -> None:
    """Misspelt backend options are refused, listing the ones that exist."""
    with pytest.raises(InvalidURLError, match=r"unknown option.*endpoint.*known: addressing_style"):
        Target.from_url("s3://bucket", endpoint="http://x")
    with pytest.raises(InvalidURLError, match="take no options"):
        Target.from_url("memory://x", key="k")
    with pytest.raises(InvalidURLError, match="addressing_style must be"):
        Target.from_url("s3://bucket", addressing_style="sideways")
    with pytest.raises(InvalidURLError, match="endpoint_url must be an http"):
        Target.from_url("s3://bucket", endpoint_url="127.0.0.1:9000")


def test_azure_needs_an_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """An Azure target with no account or connection string says what it needs."""
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_NAME"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(InvalidURLError, match="account_name or connection_string"):
        Target.from_url("az://container/x")


def test_missing_azure_extra_is_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without adlfs, an Azure URL raises UnsupportedError naming the extra to install."""
    import sys

    monkeypatch.setitem(sys.modules, "adlfs", None)
    with pytest.raises(UnsupportedError, match=r"ctfy-vault\[azure\]") as info:
        Target.from_url("az://container/x", account_name="acct")
    assert isinstance(info.value, NotImplementedError)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_s3_endpoint() -> None:
    """An S3 endpoint nobody listens on gives TargetUnreachableError naming the target."""
    port = _closed_port()
    target = Target.from_url(
        "s3://bucket/x",
        endpoint_url=f"http://127.0.0.1:{port}",
        key="k",
        secret="s",
        retry=RetryPolicy(attempts=2, initial=0.01),
    )
    started = time.monotonic()
    with pytest.raises(TargetUnreachableError) as info:
        target.write("obj", b"x")
    assert isinstance(info.value, ConnectionError)
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "2 attempts" in str(info.value)
    assert time.monotonic() - started < 30


def test_unreachable_azure_endpoint() -> None:
    """An Azure endpoint nobody listens on gives TargetUnreachableError naming the target."""
    port = _closed_port()
    conn = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )
    target = Target.from_url(
        "az://container/x",
        name="azure-unreachable",
        connection_string=conn,
        retry=RetryPolicy(attempts=2, initial=0.01),
    )
    with pytest.raises(TargetUnreachableError) as info:
        target.write("obj", b"x")
    assert "azure-unreachable" in str(info.value)
    assert conn not in str(info.value)


def test_unresolvable_host() -> None:
    """An endpoint whose host name does not resolve is reported as unreachable."""
    target = Target.from_url(
        "s3://bucket/x",
        endpoint_url="http://no-such-host.invalid:9000",
        key="k",
        secret="s",
        retry=RetryPolicy(attempts=1),
    )
    with pytest.raises(TargetUnreachableError):
        target.read("obj")


@pytest.mark.parametrize("key", ["a/b", "a/b/c"])
@pytest.mark.parametrize("streamed", [False, True])
def test_a_local_write_under_a_file_says_the_parent_is_a_file(
    tmp_path: Path, key: str, streamed: bool
) -> None:
    """Writing ``a/b`` where ``a`` is an object: NotAFolderError saying so, never "exists"."""
    target = Target.from_url(str(tmp_path))
    target.write("a", b"file")
    write = (
        (lambda: target.write_stream(key, [b"data"]))
        if streamed
        else (lambda: target.write(key, b"data"))
    )
    with pytest.raises(NotAFolderError) as caught:
        write()
    assert isinstance(caught.value, NotADirectoryError)
    assert not isinstance(caught.value, FileExistsError)
    assert "a parent of the key is an object (a file), not a folder" in str(caught.value)
    assert caught.value.key == key
    assert target.read("a") == b"file"
    assert list((tmp_path / ".ctfy-tmp").iterdir()) == []


def _ended_pid() -> int:
    """The id of a process of this host that has already ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporaries_are_swept_when_a_target_writes(tmp_path: Path) -> None:
    """Old files and files of ended writers go; fresh ones, live writers' and links stay."""
    tmp = tmp_path / ".ctfy-tmp"
    tmp.mkdir()
    day_ago = time.time() - STALE_TEMPORARY_AGE - 3600
    old = tmp / "w-elsewhere-1-abc"
    old.write_bytes(b"killed")
    os.utime(old, (day_ago, day_ago))
    fresh = tmp / "w-otherhost-5-fresh"
    fresh.write_bytes(b"maybe a live write on another host")
    ended = tmp / f"w-{_HOST}-{_ended_pid()}-dead_"
    ended.write_bytes(b"its writer is gone")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        alive = tmp / f"w-{_HOST}-{live.pid}-live_"
        alive.write_bytes(b"a write in progress")
        outside = tmp_path / "outside.txt"
        outside.write_bytes(b"never touched")
        os.utime(outside, (day_ago, day_ago))
        (tmp / "w-link").symlink_to(outside)
        os.utime(tmp / "w-link", (day_ago, day_ago), follow_symlinks=False)
        (tmp / "w-folder").mkdir()
        os.utime(tmp / "w-folder", (day_ago, day_ago))
        target = Target.from_url(str(tmp_path))
        target.write("objects/x", b"data")
        left = sorted(path.name for path in tmp.iterdir())
        assert left == sorted([fresh.name, alive.name, "w-folder", "w-link"])
        assert outside.read_bytes() == b"never touched"
        assert target.read("objects/x") == b"data"
    finally:
        live.kill()
        live.wait()


def test_a_linked_temporary_folder_is_not_swept(tmp_path: Path) -> None:
    """When ``.ctfy-tmp`` is a link to another folder, nothing in that folder is removed."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / "w-old"
    victim.write_bytes(b"not ours to remove")
    day_ago = time.time() - STALE_TEMPORARY_AGE - 3600
    os.utime(victim, (day_ago, day_ago))
    root = tmp_path / "root"
    root.mkdir()
    (root / ".ctfy-tmp").symlink_to(elsewhere)
    with pytest.raises(OSError, match=r"Not a directory|symbolic links"):
        sweep_temporaries(str(root / ".ctfy-tmp"), reference=time.time())
    Target.from_url(str(root)).write("k", b"v")
    assert victim.read_bytes() == b"not ours to remove"
