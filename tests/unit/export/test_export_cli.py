"""``ctfy-vault export``: the summary, JSON output, signed links for local destinations, errors."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from ctfy_vault.cli._export import SECRET_ENV
from ctfy_vault.cli._parser import add_export as add_parser
from ctfy_vault.exceptions import ConfigurationError, ObjectNotFoundError
from ctfy_vault.export import history
from ctfy_vault.links import LinkSigner, verify_link
from ctfy_vault.storage import Target

SECRET = "ab" * 32
BASE = "https://app.example/download"


def _cli(argv: list[str]) -> tuple[int, str]:
    # The subcommand's own parser, as cli/_main.py wires it.
    parser = argparse.ArgumentParser(prog="ctfy-vault")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    out = io.StringIO()
    code = args.run(args, out)
    return code, out.getvalue()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A documents folder holding tenant ``acme``."""
    target = Target.from_url(str(tmp_path / "docs"))
    target.write("acme/contract.pdf", b"%PDF")
    target.write("acme/bijlage één.txt", b"tekst")
    return tmp_path / "docs"


def test_export_prints_the_summary_and_says_why_there_is_no_link(
    docs: Path, tmp_path: Path
) -> None:
    """Without a download endpoint, a local export is written and the missing link explained."""
    code, text = _cli(["export", str(docs), str(tmp_path / "out"), "--tenant", "acme"])
    assert code == 0
    assert "export acme: 2 files" in text
    assert "no link" in text
    (entry,) = history(Target.from_url(str(tmp_path / "out")), "acme")
    assert entry.link_expires_at is None
    assert (tmp_path / "out" / entry.key).is_file()


def test_json_with_a_signed_link(
    docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--json prints the summary with a link the application's endpoint verifies."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    code, text = _cli(
        [
            "export",
            str(docs),
            str(tmp_path / "out"),
            "--tenant",
            "acme",
            "--format",
            "tar.gz",
            "--requested-by",
            "klant@acme.be",
            "--link-base-url",
            BASE,
            "--link-minutes",
            "30",
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(text)
    assert summary["files"] == 2
    assert summary["format"] == "tar.gz"
    assert summary["requested_by"] == "klant@acme.be"
    granted = verify_link(summary["link"], LinkSigner(bytes.fromhex(SECRET), BASE))
    assert granted.key == summary["key"]


def test_missing_tenant_and_bad_options_fail(
    docs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing tenant raises the library's error; a link over an hour is a usage error."""
    with pytest.raises(ObjectNotFoundError, match="ghost"):
        _cli(["export", str(docs), str(tmp_path / "out"), "--tenant", "ghost"])
    with pytest.raises(SystemExit) as exited:
        _cli(["export", str(docs), str(tmp_path / "o"), "--tenant", "acme", "--link-minutes", "61"])
    assert exited.value.code == 2
    assert "argument --link-minutes: '61' is out of range (1 to 60)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    code, _ = _cli(
        ["export", str(docs), str(tmp_path / "out"), "--tenant", "ghost", "--allow-empty"]
    )
    assert code == 0


def test_short_link_secret_is_refused(
    docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link secret shorter than 32 bytes is a configuration error."""
    monkeypatch.setenv(SECRET_ENV, "abcd")
    with pytest.raises(ConfigurationError, match=SECRET_ENV):
        _cli(
            [
                "export",
                str(docs),
                str(tmp_path / "out"),
                "--tenant",
                "acme",
                "--link-base-url",
                BASE,
            ]
        )
