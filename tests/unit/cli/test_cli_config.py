"""The ``ctfy-vault.toml`` loader, snapshot references, ``--read-data`` and the progress line."""

from __future__ import annotations

import io
import os
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctfy_vault.cli._config import (
    CONFIG_ENV,
    DEFAULT_CONFIG,
    config_path,
    load_config,
    parse_config,
)
from ctfy_vault.cli._heads import heads_path
from ctfy_vault.cli._options import parse_read_data
from ctfy_vault.cli._progress import Progress, format_bytes
from ctfy_vault.cli._render import exit_code_for_partial
from ctfy_vault.crypto import Passphrase, RawKey
from ctfy_vault.exceptions import ConfigurationError, ObjectNotFoundError, StorageError
from ctfy_vault.retention import Policy
from ctfy_vault.testing import memory_target
from ctfy_vault.vault import Vault
from ctfy_vault.vault import find_snapshot as resolve_snapshot
from tests.support.cli import LISTED
from tests.support.paths import REPO_ROOT
from tests.support.snapshot_strategies import snapshot_info as snapshot

FILE = Path("/etc/ctfy/ctfy-vault.toml")

GOOD = """
[repository]
key = { env = "CTFY_VAULT_PASSPHRASE" }

[[targets]]
url = "s3://backups/contractify"
name = "ams3"
endpoint_url = "https://ams3.digitaloceanspaces.com"
region = "ams3"
options = { addressing_style = "path" }
credentials_env = { key = "SPACES_KEY", secret = "SPACES_SECRET" }

[[targets]]
url = "/srv/backup-copy"

[lineages.db]
policy = "contractify"
sources = ["/var/backups/db.sql"]

[lineages.full-server]
policy = { weekly = 8 }
sources = ["/srv"]
tags = ["full"]

[lineages.uploads]
policy = "daily=7,weekly=4"

[lineages.scratch]
"""


def error_of(text: str) -> str:
    """Return the message of the configuration error parsing ``text`` raises."""
    with pytest.raises(ConfigurationError) as caught:
        parse_config(text, path=FILE)
    return str(caught.value)


def test_a_full_config_parses() -> None:
    """Every documented section and form of policy is read."""
    config = parse_config(GOOD, path=FILE)
    assert config.key.env == "CTFY_VAULT_PASSPHRASE"
    assert config.key.type == "passphrase"
    assert [t.name for t in config.targets] == ["ams3", "/srv/backup-copy"]
    spaces = config.targets[0]
    assert spaces.options == {
        "addressing_style": "path",
        "endpoint_url": "https://ams3.digitaloceanspaces.com",
        "region": "ams3",
    }
    assert spaces.credentials_env == {"key": "SPACES_KEY", "secret": "SPACES_SECRET"}
    assert config.lineages["db"].policy == Policy.contractify()
    assert config.lineages["full-server"].policy == Policy(weekly=8)
    assert config.lineages["full-server"].tags == ("full",)
    assert config.lineages["uploads"].policy == Policy(daily=7, weekly=4)
    assert config.lineages["scratch"].policy is None
    assert sorted(config.policies()) == ["db", "full-server", "uploads"]


def test_the_example_config_parses() -> None:
    """``examples/ctfy-vault.toml`` is a valid config."""
    example = REPO_ROOT / "examples" / "ctfy-vault.toml"
    config = load_config(example)
    assert config.targets
    assert config.lineages


def test_missing_config_file_names_the_file_and_the_override(tmp_path: Path) -> None:
    """A missing file is a configuration error naming it and how to point elsewhere."""
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigurationError, match=r"nope\.toml not found") as caught:
        load_config(missing)
    assert "--config" in str(caught.value)
    assert CONFIG_ENV in str(caught.value)


def test_config_path_prefers_the_flag_then_the_environment() -> None:
    """``--config`` wins over ``CTFY_VAULT_CONFIG``, which wins over ./ctfy-vault.toml."""
    assert config_path("a.toml", {CONFIG_ENV: "b.toml"}) == Path("a.toml")
    assert config_path(None, {CONFIG_ENV: "b.toml"}) == Path("b.toml")
    assert config_path(None, {}) == Path(DEFAULT_CONFIG)
    assert config_path(None, {CONFIG_ENV: "  "}) == Path(DEFAULT_CONFIG)


def test_invalid_toml_is_a_configuration_error() -> None:
    """Broken TOML names the file."""
    assert str(FILE) in error_of("[repository\n")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (GOOD + "\n[backup]\nhost = 'x'\n", "'backup'"),
        (GOOD.replace("[repository]", "[repository]\ncipher = 'x'"), "'repository.cipher'"),
        (GOOD.replace('name = "ams3"', 'name = "ams3"\nbucket = "x"'), "'targets[0].bucket'"),
        (GOOD.replace('tags = ["full"]', 'tags = ["full"]\nkeep = 3'), "'lineages.full-server"),
        (
            GOOD.replace('{ env = "CTFY_VAULT_PASSPHRASE" }', '{ env = "X", kind = "raw" }'),
            "'repository.key.kind'",
        ),
    ],
)
def test_unknown_keys_are_refused_naming_key_and_file(text: str, named: str) -> None:
    """A typo is never ignored: the error names the unknown key and the file."""
    message = error_of(text)
    assert named in message
    assert str(FILE) in message


@pytest.mark.parametrize("option", ["secret", "key", "token", "account_key", "connection_string"])
def test_secret_options_are_refused(option: str) -> None:
    """A credential written into ``options`` is refused, pointing at ``credentials_env``."""
    text = GOOD.replace(
        'options = { addressing_style = "path" }', f'options = {{ {option} = "hunter2" }}'
    )
    message = error_of(text)
    assert repr(option) in message
    assert "credentials_env" in message
    assert "hunter2" not in message


def test_a_key_written_into_the_file_is_refused() -> None:
    """``key = "..."`` is refused without echoing it."""
    message = error_of(GOOD.replace('{ env = "CTFY_VAULT_PASSPHRASE" }', '"hunter2"'))
    assert "never write the key" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (GOOD.split("[[targets]]", maxsplit=1)[0], "at least one [[targets]]"),
        (GOOD.replace('{ env = "CTFY_VAULT_PASSPHRASE" }', "{ }"), "exactly one of env or file"),
        (
            GOOD.replace('{ env = "CTFY_VAULT_PASSPHRASE" }', '{ env = "A", type = "rsa" }'),
            "passphrase' or 'raw'",
        ),
        (GOOD.replace('url = "/srv/backup-copy"', 'url = "/x"\nname = "ams3"'), "unique: ams3"),
        (GOOD.replace("policy = { weekly = 8 }", "policy = { weekly = -1 }"), "full-server"),
        (GOOD.replace('policy = "daily=7,weekly=4"', 'policy = "bogus=1"'), "uploads.policy"),
        (GOOD.replace("[lineages.scratch]", "[lineages.'a b']"), "lineage name"),
        (GOOD.replace('sources = ["/srv"]', 'sources = "/srv"'), "list of non-empty strings"),
        (GOOD.replace("credentials_env = { key", "credentials_env = { region"), "region"),
        (
            GOOD.replace('options = { addressing_style = "path" }', 'options = { name = "x" }'),
            "not a backend option",
        ),
        (
            GOOD.replace('options = { addressing_style = "path" }', 'options = { region = "x" }'),
            "given twice",
        ),
    ],
)
def test_bad_values_are_configuration_errors(text: str, fragment: str) -> None:
    """Missing or wrong-typed values are refused with a message saying what is wrong."""
    assert fragment in error_of(text)


def test_a_target_policy_stands_for_every_lineage_with_one_and_by_lineage_wins() -> None:
    """``policy`` and ``policies`` in ``[[targets]]`` make the per-target retention."""
    text = GOOD.replace(
        'url = "/srv/backup-copy"',
        'url = "/srv/backup-copy"\npolicy = { yearly = 7 }\npolicies = { db = "contractify" }',
    )
    config = parse_config(text, path=FILE)
    assert config.target_policies() == {
        "/srv/backup-copy": {
            "db": Policy.contractify(),
            "full-server": Policy(yearly=7),
            "uploads": Policy(yearly=7),
        }
    }
    assert parse_config(GOOD, path=FILE).target_policies() == {}


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ("policies = { nowhere = { last = 1 } }", "targets[1].policies]: lineage 'nowhere'"),
        ("policies = { db = { last = -1 } }", "targets[1].policies.db"),
        ("policy = 7", "targets[1].policy"),
        ('policies = "last=1"', "targets[1].policies"),
    ],
)
def test_bad_target_policies_are_named(extra: str, fragment: str) -> None:
    """A target policy for an unknown lineage, or a malformed one, names where it is."""
    text = GOOD.replace('url = "/srv/backup-copy"', f'url = "/srv/backup-copy"\n{extra}')
    assert fragment in error_of(text)


def test_unknown_lineage_lists_the_configured_ones() -> None:
    """Asking for a lineage that is not configured names the file and the known lineages."""
    config = parse_config(GOOD, path=FILE)
    with pytest.raises(ConfigurationError, match="'dbb' is not configured") as caught:
        config.lineage("dbb")
    assert "db, full-server, scratch, uploads" in str(caught.value)


def test_missing_key_variable_is_named_not_shown() -> None:
    """An unset key variable is told by its setting (the "name" may be the key); nothing else."""
    config = parse_config(GOOD, path=FILE)
    with pytest.raises(
        ConfigurationError, match=r"named by repository\.key\.env is not set"
    ) as err:
        config.key.credential({})
    assert "CTFY_VAULT_PASSPHRASE" not in str(err.value)
    assert config.key.credential({"CTFY_VAULT_PASSPHRASE": "s3cret"}) == Passphrase("s3cret")


def test_missing_credential_variable_is_named() -> None:
    """A target whose credential variable is unset fails naming the setting and target."""
    config = parse_config(GOOD, path=FILE)
    with pytest.raises(ConfigurationError, match=r"named by credentials_env\.key of") as caught:
        config.build_targets({"SPACES_SECRET": "x"})
    assert "ams3" in str(caught.value)
    assert "SPACES_KEY" not in str(caught.value)


def test_targets_build_with_their_credentials() -> None:
    """Credentials come from the named variables; the target's repr does not show them."""
    config = parse_config(GOOD, path=FILE)
    targets = config.build_targets({"SPACES_KEY": "AKIAEXAMPLE", "SPACES_SECRET": "hunter2"})
    assert [t.name for t in targets] == ["ams3", "/srv/backup-copy"]
    assert "hunter2" not in repr(targets)


def test_raw_key_from_the_environment() -> None:
    """``type = "raw"`` reads 32 bytes as hex or base64; a bad value is named, not shown."""
    config = parse_config(
        GOOD.replace('{ env = "CTFY_VAULT_PASSPHRASE" }', '{ env = "K", type = "raw" }'),
        path=FILE,
    )
    assert config.key.credential({"K": "ab" * 32}) == RawKey(bytes([0xAB]) * 32)
    with pytest.raises(ConfigurationError, match="K must hold 32 bytes") as caught:
        config.key.credential({"K": "tooshort"})
    assert "tooshort" not in str(caught.value)


def test_key_file_must_be_private(tmp_path: Path) -> None:
    """A key file readable by group or others is refused; an owner-only one is read."""
    secret = tmp_path / "passphrase"
    secret.write_text("correct horse\n")
    secret.chmod(0o644)
    config_file = tmp_path / "ctfy-vault.toml"
    config_file.write_text(
        GOOD.replace('{ env = "CTFY_VAULT_PASSPHRASE" }', '{ file = "passphrase" }')
    )
    config = load_config(config_file)
    assert config.key.file == secret  # relative to the config file
    with pytest.raises(ConfigurationError, match="group or others"):
        config.key.credential({})
    secret.chmod(0o600)
    assert config.key.credential({}) == Passphrase("correct horse")


def test_raw_key_file(tmp_path: Path) -> None:
    """A raw key file holds 64 hex digits; anything else is refused without showing it."""
    secret = tmp_path / "key"
    secret.write_text("cd" * 32 + "\n")
    os.chmod(secret, 0o600)
    text = GOOD.replace(
        '{ env = "CTFY_VAULT_PASSPHRASE" }', f'{{ file = "{secret}", type = "raw" }}'
    )
    config = parse_config(text, path=FILE)
    assert config.key.credential({}) == RawKey(bytes([0xCD]) * 32)
    secret.write_text("not a key")
    with pytest.raises(ConfigurationError, match="must hold 32 bytes") as caught:
        config.key.credential({})
    assert "not a key" not in str(caught.value)


_NAMES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,20}", fullmatch=True)
_WORDS = st.from_regex(r"[a-z_]{1,12}", fullmatch=True)


@given(unknown=_WORDS.filter(lambda w: w not in ("repository", "targets", "lineages")))
def test_any_unknown_top_level_key_is_named(unknown: str) -> None:
    """Property: whatever the unknown top-level key, the error names it."""
    assert repr(unknown) in error_of(GOOD + f"\n[{unknown}]\nx = 1\n")


@given(
    names=st.lists(_NAMES, min_size=1, max_size=5, unique=True),
    lineages=st.lists(_NAMES, max_size=5, unique=True),
)
def test_target_and_lineage_names_round_trip(names: list[str], lineages: list[str]) -> None:
    """Property: every valid target and lineage name written comes back, in order."""
    text = '[repository]\nkey = { env = "K" }\n'
    text += "".join(f'[[targets]]\nurl = "/srv/{n}"\nname = "{n}"\n' for n in names)
    text += "".join(f'[lineages."{n}"]\npolicy = "daily=3"\n' for n in lineages)
    tomllib.loads(text)  # the test's own TOML is valid
    config = parse_config(text, path=FILE)
    assert [t.name for t in config.targets] == names
    assert sorted(config.lineages) == sorted(lineages)


# -- snapshot references -------------------------------------------------------------------------


def test_latest_and_latest_of_a_lineage() -> None:
    """``latest`` is the newest snapshot; ``latest:LINEAGE`` the newest of that lineage."""
    assert resolve_snapshot(LISTED, "latest").snapshot_id == "abc123"
    assert resolve_snapshot(LISTED, "latest:files").snapshot_id == "abd456"
    with pytest.raises(ObjectNotFoundError):
        resolve_snapshot(LISTED, "latest:nope")


def test_names_ids_and_unique_prefixes() -> None:
    """A snapshot is found by name, id, or a unique id prefix; an ambiguous prefix is refused."""
    assert resolve_snapshot(LISTED, LISTED[2].name) is LISTED[2]
    assert resolve_snapshot(LISTED, "ffe789") is LISTED[2]
    assert resolve_snapshot(LISTED, "abd") is LISTED[1]
    with pytest.raises(ConfigurationError, match="ambiguous"):
        resolve_snapshot(LISTED, "ab")
    with pytest.raises(ObjectNotFoundError):
        resolve_snapshot(LISTED, "0000")


@given(st.data())
def test_every_unique_prefix_resolves(data: st.DataObject) -> None:
    """Property: any prefix of an id that no other id shares resolves to that snapshot."""
    ids = data.draw(
        st.lists(st.from_regex(r"[0-9a-f]{8}", fullmatch=True), min_size=1, max_size=6, unique=True)
    )
    listed = [snapshot(i, "db", n) for n, i in enumerate(ids)]
    chosen = data.draw(st.sampled_from(ids))
    length = data.draw(st.integers(1, 8))
    prefix = chosen[:length]
    if sum(i.startswith(prefix) for i in ids) == 1:
        assert resolve_snapshot(listed, prefix).snapshot_id == chosen


# -- --read-data, exit codes, progress -----------------------------------------------------------


def test_read_data_forms() -> None:
    """Absent, bare, a fraction, a percentage; anything else is a usage error."""
    assert parse_read_data(None) is False
    assert parse_read_data("") is True
    assert parse_read_data("0.25") == 0.25
    assert parse_read_data("10%") == pytest.approx(0.1)
    assert parse_read_data("100%") is True
    for bad in ("1.5", "-1", "x", "200%"):
        with pytest.raises(ConfigurationError):
            parse_read_data(bad)


@given(st.integers(0, 100))
def test_percentages_are_fractions(percent: int) -> None:
    """Property: ``N%`` reads N/100 of the data (100% reads all)."""
    value = parse_read_data(f"{percent}%")
    assert value is True if percent == 100 else value == pytest.approx(percent / 100)


def test_partial_only_when_some_target_succeeded() -> None:
    """Exit code 3 needs one success and one failure; all failed is 1."""
    down = StorageError("down", target="b")
    assert exit_code_for_partial({"a": None, "b": down}) == 3
    assert exit_code_for_partial({"a": down, "b": down}) == 1


def test_progress_draws_only_when_enabled() -> None:
    """Off a terminal nothing is drawn; on one, a bar with the label, share, bytes and files."""
    quiet = io.StringIO()
    with Progress("backup db", total_bytes=100, stream=quiet) as bar:
        bar(50, 1)
    assert quiet.getvalue() == ""
    assert (bar.bytes, bar.files) == (50, 1)
    shown = io.StringIO()
    with Progress(
        "backup db", total_bytes=4096, total_files=4, stream=shown, enabled=True, min_interval=0
    ) as drawn:
        drawn(1024, 1)
        drawn.set(2048, 2)
    text = shown.getvalue()
    assert "backup db" in text
    assert "50%" in text
    assert "2/4 files" in text
    assert (drawn.bytes, drawn.files) == (2048, 2)


def test_formats() -> None:
    """Byte counts in summaries use binary units."""
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(3 * 1024**3) == "3.0 GiB"


def test_backup_and_restore_report_progress(tmp_path: Path) -> None:
    """The callbacks the bars use see every byte and file read, reused and written."""
    source = tmp_path / "data"
    source.mkdir()
    (source / "a.txt").write_bytes(b"a" * 1000)
    (source / "b.txt").write_bytes(b"b" * 3000)
    now = datetime(2026, 11, 26, tzinfo=UTC)
    vault = Vault.init([memory_target(), memory_target()], key=RawKey(bytes(32)), now=now)
    seen: list[tuple[int, int]] = []
    first = vault.backup(
        [source], lineage="files", host="h", now=now, progress=lambda b, f: seen.append((b, f))
    )
    assert (sum(b for b, _ in seen), sum(f for _, f in seen)) == (4000, 2)
    seen.clear()
    vault.backup(
        [source],
        lineage="files",
        host="h",
        now=now + timedelta(hours=1),
        progress=lambda b, f: seen.append((b, f)),
    )
    assert (sum(b for b, _ in seen), sum(f for _, f in seen)) == (4000, 2)  # reused files count
    seen.clear()
    vault.restore(first, tmp_path / "out", progress=lambda b, f: seen.append((b, f)))
    assert (sum(b for b, _ in seen), sum(f for _, f in seen)) == (4000, 2)


KEY_LINE = 'key = { env = "CTFY_VAULT_PASSPHRASE" }'
REPO = bytes.fromhex("00112233445566778899aabbccddeeff")


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("", True),
        ("known_heads = true", True),
        ("known_heads = false", False),
        ('known_heads = "/var/lib/ctfy/heads.json"', Path("/var/lib/ctfy/heads.json")),
        ('known_heads = "state/heads.json"', FILE.parent / "state" / "heads.json"),
    ],
)
def test_known_heads_setting(setting: str, expected: Path | bool) -> None:
    """[repository] known_heads is a file (relative to the config), true (default) or false."""
    config = parse_config(GOOD.replace(KEY_LINE, f"{KEY_LINE}\n{setting}"), path=FILE)
    assert config.known_heads == expected


@pytest.mark.parametrize("value", ['""', "3", "[]"])
def test_bad_known_heads_setting_is_refused(value: str) -> None:
    """known_heads of another type is refused, naming the key."""
    message = error_of(GOOD.replace(KEY_LINE, f"{KEY_LINE}\nknown_heads = {value}"))
    assert "repository.known_heads" in message
    assert "file path, or false" in message


def test_known_heads_file_is_chosen_flag_then_config_then_state_home(tmp_path: Path) -> None:
    """--known-heads wins, then the config's file, then $XDG_STATE_HOME, then ~/.local/state."""
    default = parse_config(GOOD, path=FILE)
    named = parse_config(GOOD.replace(KEY_LINE, f'{KEY_LINE}\nknown_heads = "h.json"'), path=FILE)
    off = parse_config(GOOD.replace(KEY_LINE, f"{KEY_LINE}\nknown_heads = false"), path=FILE)
    state = {"XDG_STATE_HOME": str(tmp_path)}
    leaf = f"ctfy-vault/{REPO.hex()}.heads.json"
    assert heads_path(named, REPO, "/x/flag.json", state) == Path("/x/flag.json")
    assert heads_path(off, REPO, "/x/flag.json", state) == Path("/x/flag.json")
    assert heads_path(named, REPO, None, state) == FILE.parent / "h.json"
    assert heads_path(off, REPO, None, state) is None
    assert heads_path(default, REPO, None, state) == tmp_path / leaf
    home = Path.home() / ".local" / "state" / leaf
    assert heads_path(default, REPO, None, {}) == home
    assert heads_path(default, REPO, None, {"XDG_STATE_HOME": "relative"}) == home


def test_a_target_lock_mode_is_read_and_reaches_the_target() -> None:
    """``lock_mode`` per target, either case; compliance by default; a bad one is named."""
    text = GOOD.replace('name = "ams3"\n', 'name = "ams3"\nlock_mode = "governance"\n')
    config = parse_config(text, path=FILE)
    assert [t.lock_mode for t in config.targets] == ["GOVERNANCE", "COMPLIANCE"]
    folder = config.targets[1].build({})
    assert folder.lock_mode == "COMPLIANCE"
    message = error_of(GOOD.replace('name = "ams3"\n', 'name = "ams3"\nlock_mode = "soft"\n'))
    assert "lock_mode" in message
    assert "'soft'" in message
    assert "lock_mode" in error_of(GOOD.replace("addressing_style = ", "lock_mode = "))


def test_a_target_data_storage_class_is_read_and_checked() -> None:
    """``data_storage_class`` in a target table, either case; a folder with one is refused."""
    text = GOOD.replace('name = "ams3"\n', 'name = "ams3"\ndata_storage_class = "standard_ia"\n')
    config = parse_config(text, path=FILE)
    assert [t.data_storage_class for t in config.targets] == ["STANDARD_IA", None]
    folder = GOOD.replace(
        'url = "/srv/backup-copy"\n',
        'url = "/srv/backup-copy"\ndata_storage_class = "glacier_ir"\n',
    )
    with pytest.raises(ConfigurationError, match="for S3"):
        parse_config(folder, path=FILE).targets[1].build({})
