"""``ctfy-vault escrow``: keygen, deposit, verify and open from the command line."""

from __future__ import annotations

import argparse
import io
import json
import stat
from pathlib import Path

import pytest

from ctfy_vault.cli._parser import add_escrow as add_parser
from ctfy_vault.exceptions import ConfigurationError, IntegrityError
from tests.support.escrow import make_repo


def cli(argv: list[str]) -> tuple[int, str]:
    """Run ``escrow ...`` on a parser holding only the escrow command; return code and output."""
    parser = argparse.ArgumentParser(prog="ctfy-vault")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    out = io.StringIO()
    code = args.run(args, out)
    return code, out.getvalue()


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    """A notary key pair and a depositor signing key made with keygen."""
    cli(["escrow", "keygen", str(tmp_path / "notary.key")])
    cli(["escrow", "keygen", "--signing", str(tmp_path / "depositor.key")])
    return {
        "notary": tmp_path / "notary.key",
        "notary.pub": tmp_path / "notary.key.pub",
        "depositor": tmp_path / "depositor.key",
        "depositor.pub": tmp_path / "depositor.key.pub",
    }


def test_keygen_prints_the_public_key_only(tmp_path: Path) -> None:
    """Key generation prints the public key and file names; the secret stays in a 0600 file."""
    code, text = cli(["escrow", "keygen", str(tmp_path / "k")])
    secret = (tmp_path / "k").read_text().splitlines()[-1]
    assert code == 0
    assert "ctfy-escrow-x25519-public-v1:" in text
    assert secret.startswith("ctfy-escrow-x25519-secret-v1:")
    assert secret not in text
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600
    code, text = cli(["escrow", "keygen", "--json", "--print-secret", str(tmp_path / "k2")])
    assert json.loads(text)["private_key"] == (tmp_path / "k2").read_text().splitlines()[-1]


def test_deposit_verify_open_cycle(tmp_path: Path, keys: dict[str, Path]) -> None:
    """A git deposit verifies with the signer's .pub and opens with the notary's key."""
    repo = make_repo(tmp_path / "product")
    store = tmp_path / "store"
    code, text = cli(
        [
            "escrow",
            "deposit",
            str(repo),
            "--recipient",
            str(keys["notary.pub"]),
            "--to",
            str(store),
            "--signing-key",
            str(keys["depositor"]),
            "--ref",
            "v2",
            "--json",
        ]
    )
    receipt = json.loads(text)
    assert code == 0
    assert receipt["source"]["ref"] == "v2"
    name = receipt["deposit"]
    code, text = cli(["escrow", "verify", str(store)])
    assert text.strip() == name
    code, text = cli(["escrow", "verify", str(store), name, "--signer", str(keys["depositor.pub"])])
    assert code == 0
    assert text.startswith(f"ok: {name}")
    out = tmp_path / "opened"
    code, text = cli(
        [
            "escrow",
            "open",
            str(store),
            name,
            "--identity",
            str(keys["notary"]),
            "--out",
            str(out),
            "--extract",
        ]
    )
    assert code == 0
    assert "matches the receipt" in text
    assert (out / "README.md").read_bytes() == b"# product\n"
    # The depositor's own key file is not a recipient key: open refuses it.
    with pytest.raises(ConfigurationError):
        cli(
            ["escrow", "open", str(store), name, "--identity", str(keys["depositor"]), "--out", "x"]
        )


def test_open_with_another_key_fails(tmp_path: Path, keys: dict[str, Path]) -> None:
    """A second notary key opens nothing made for the first."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("a")
    _, text = cli(
        [
            "escrow",
            "deposit",
            str(source),
            "--recipient",
            keys["notary.pub"].read_text().splitlines()[-1],
            "--to",
            str(tmp_path / "store"),
            "--signing-key",
            str(keys["depositor"]),
            "--json",
        ]
    )
    cli(["escrow", "keygen", str(tmp_path / "other.key")])
    with pytest.raises(IntegrityError):
        cli(
            [
                "escrow",
                "open",
                str(tmp_path / "store"),
                json.loads(text)["deposit"],
                "--identity",
                str(tmp_path / "other.key"),
                "--out",
                str(tmp_path / "x.tar"),
            ]
        )
