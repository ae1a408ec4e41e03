"""The command line's shape: one exit-code enum, argparse only in the parser, `Vault.find` for refs."""

from __future__ import annotations

import ast
import io
import re
from datetime import timedelta
from io import BytesIO
from pathlib import Path

import pytest

import ctfy_vault.cli
from ctfy_vault.cli import ExitCode, main
from ctfy_vault.cli._parser import build_parser
from ctfy_vault.crypto import RawKey
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault
from ctfy_vault.writer import StreamSource
from tests.support.writer_strategies import NOW

CLI = Path(ctfy_vault.cli.__file__).parent
#: What only the parser module may call: building parsers, arguments and commands.
ARGPARSE_BUILDING = {
    "ArgumentParser",
    "add_argument",
    "add_parser",
    "add_subparsers",
    "set_defaults",
}


def modules() -> dict[str, ast.Module]:
    """Every module of the command-line package, parsed."""
    found = {path.name: ast.parse(path.read_text(), str(path)) for path in CLI.glob("*.py")}
    assert "_parser.py" in found
    assert "_render.py" in found
    return found


def project_file(name: str) -> Path:
    """A file at the project's root (the folder holding ``pyproject.toml``)."""
    folder = Path(__file__).resolve().parent
    while not (folder / "pyproject.toml").exists():
        assert folder != folder.parent, "no pyproject.toml above the tests"
        folder = folder.parent
    return folder / name


def test_no_cli_module_defines_exit_constants() -> None:
    """No ``EXIT_*`` name is assigned anywhere in the cli package: `ExitCode` is the one list."""
    for name, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                targets = list(node.targets)
            elif isinstance(node, ast.AnnAssign | ast.AugAssign):
                targets = [node.target]
            else:
                continue
            for assigned in (t.id for t in targets if isinstance(t, ast.Name)):
                assert not assigned.startswith("EXIT_"), f"{name}:{node.lineno} defines {assigned}"


def test_exit_code_is_the_only_int_enum() -> None:
    """Exactly one IntEnum in the cli package: `ExitCode`, in the renderer."""
    enums = [
        (name, node.name)
        for name, tree in modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and any("IntEnum" in ast.unparse(base) for base in node.bases)
    ]
    assert enums == [("_render.py", "ExitCode")]
    assert {code.name: code.value for code in ExitCode} == {
        "OK": 0,
        "FAILED": 1,
        "USAGE": 2,
        "PARTIAL": 3,
        "INTERRUPTED": 130,
    }


def test_only_the_parser_builds_argparse() -> None:
    """Parsers, arguments and commands are built in ``_parser.py`` and nowhere else."""
    for name, tree in modules().items():
        if name == "_parser.py":
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            assert called not in ARGPARSE_BUILDING, f"{name}:{node.lineno} calls {called}"


def test_every_exit_code_is_documented() -> None:
    """Each `ExitCode` value is in the ``--help`` epilog and in the docs' exit-code table."""
    epilog = build_parser().epilog or ""
    table = project_file("docs/cli.md").read_text()
    documented = {int(code) for code in re.findall(r"^\| `(\d+)` \|", table, re.MULTILINE)}
    assert documented == {int(code) for code in ExitCode}
    for code in ExitCode:
        assert re.search(rf"(^|[ ;]){int(code)} ", epilog, re.MULTILINE), code


# -- ls and restore go through Vault.find --------------------------------------------------------


@pytest.fixture
def repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    """A config for two folder targets holding 17 snapshots of ``db``; the ids, newest first."""
    folders = [tmp_path / "ams", tmp_path / "dub"]
    key = RawKey(bytes(range(32)))
    vault = Vault.init([Target.from_url(str(f)) for f in folders], key=key, now=NOW)
    for minutes in range(17):  # 17 hex ids: two of them share a first digit
        dump = StreamSource(name="db.sql", stream=BytesIO(f"dump {minutes}".encode()))
        vault.backup(dump, lineage="db", host="h", now=NOW + timedelta(minutes=minutes))
    config = tmp_path / "ctfy-vault.toml"
    targets = "".join(f'[[targets]]\nurl = "{folder}"\n\n' for folder in folders)
    config.write_text(
        '[repository]\nkey = { env = "CTFY_FIND_KEY", type = "raw" }\nknown_heads = false\n\n'
        f"{targets}[lineages.db]\n"
    )
    monkeypatch.setenv("CTFY_FIND_KEY", bytes(range(32)).hex())
    return config, [s.snapshot_id for s in vault.snapshots()]


def run_cli(*argv: str) -> tuple[int, str]:
    """Run ``ctfy-vault`` in this process; return the exit code and standard output."""
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_ls_and_restore_resolve_latest_and_prefixes(
    repository: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """``ls latest:db`` and ``restore PREFIX`` pick the snapshot `Vault.find` picks; exit 0."""
    config, ids = repository
    code, text = run_cli("ls", "latest:db", "--json", "--config", str(config))
    assert (code, type(code)) == (ExitCode.OK, ExitCode)
    assert '"path": "db.sql"' in text
    oldest = ids[-1]
    prefix = next(
        oldest[:n] for n in range(1, 33) if sum(i.startswith(oldest[:n]) for i in ids) == 1
    )
    code, text = run_cli("restore", prefix, str(tmp_path / "out"), "--config", str(config))
    assert code == ExitCode.OK
    assert f"restored snapshot {oldest} into" in text
    assert (tmp_path / "out" / "db.sql").read_text() == "dump 0"


def test_a_reference_matching_nothing_exits_1_naming_it(
    repository: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """No snapshot of the lineage: exit 1 and one line naming the error and the reference."""
    config, _ids = repository
    code, text = run_cli("ls", "latest:files", "--config", str(config))
    assert (code, text) == (ExitCode.FAILED, "")
    assert capsys.readouterr().err == (
        "ctfy-vault: SnapshotNotFoundError: no snapshot of lineage files "
        "[repository: latest:files]\n"
    )


def test_an_ambiguous_prefix_exits_2_listing_the_candidates(
    repository: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A prefix of several ids is a usage error (exit 2) that lists them; nothing is restored."""
    config, ids = repository
    digit = next(d for d in "0123456789abcdef" if sum(i.startswith(d) for i in ids) >= 2)
    code, _text = run_cli("restore", digit, str(tmp_path / "out"), "--config", str(config))
    assert code == ExitCode.USAGE
    listed = ", ".join([i for i in ids if i.startswith(digit)][:5])
    assert capsys.readouterr().err == (
        f"ctfy-vault: error: snapshot prefix {digit!r} is ambiguous: {listed}\n"
    )
    assert not (tmp_path / "out").exists()
