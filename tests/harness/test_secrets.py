"""Secrets never appear in logs, reprs, exception texts or CLI output.

Distinctive key material (a passphrase, a raw key in bytes, hex and base64, an S3 secret key, an
HMAC link secret and the signature of a signed URL) goes through the operations that log, fail,
print and show values; every captured text is then searched for each form of each secret.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import subprocess
import sys
import traceback
import urllib.parse
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest

from ctfy_vault.cli._config import KeySource, parse_config
from ctfy_vault.crypto import MasterKeys, Passphrase, RawKey, ScryptParams
from ctfy_vault.exceptions import VaultError
from ctfy_vault.links import LinkSigner, presign
from ctfy_vault.retention import Policy
from ctfy_vault.storage import Target
from ctfy_vault.testing import fast_retry, memory_target
from ctfy_vault.vault import Vault
from ctfy_vault.writer import StreamSource
from tests.support.paths import REPO_ROOT
from tests.support.servers import S3Endpoint, make_bucket
from tests.support.writer_strategies import NOW, SMALL

PASSPHRASE = "Zebra-Quartz-9146-never-log-me"
RAW = hashlib.sha256(b"ctfy-vault test raw key: never log me").digest()
S3_ACCESS = "AKIACTFYTESTACCESS01"
S3_SECRET = "S3cretKEY+ctfy/Do-Not-Leak-7Q2xW"
LINK_SECRET = hashlib.sha256(b"ctfy-vault test link secret").digest() * 2
CHEAP = ScryptParams(n=2**8, r=8, p=1)
REPO = REPO_ROOT


def forms(secret: str | bytes) -> set[str]:
    """The ways a secret could be spelled in text: itself, hex, base64 and ``repr`` of bytes."""
    if isinstance(secret, str):
        return {secret, urllib.parse.quote(secret, safe=""), secret.encode().hex()}
    b64 = base64.b64encode(secret).decode()
    return {
        secret.hex(),
        secret.hex().upper(),
        b64,
        b64.rstrip("="),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
        repr(secret)[2:-1],
    }


SECRETS: dict[str, set[str]] = {
    "passphrase": forms(PASSPHRASE),
    "raw key": forms(RAW),
    "s3 secret": forms(S3_SECRET),
    "link secret": forms(LINK_SECRET) | forms(LINK_SECRET[:32]),
}


def assert_clean(texts: Iterable[str], extra: dict[str, set[str]] | None = None) -> None:
    """No text contains any form of any secret."""
    secrets = {**SECRETS, **(extra or {})}
    joined = "\n".join(texts)
    assert joined  # something was captured
    for what, spellings in secrets.items():
        for spelling in spellings:
            assert spelling not in joined, f"the {what} leaked as {spelling!r}"


def error_texts(run: Callable[[], object]) -> list[str]:
    """``run`` must raise a library error; return its str, repr and formatted chain."""
    with pytest.raises(VaultError) as caught:
        run()
    err = caught.value
    return [str(err), repr(err), "".join(traceback.format_exception(err))]


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture the library's logs at DEBUG."""
    caplog.set_level(logging.DEBUG, logger="ctfy_vault")
    return caplog


def test_vault_operations_log_and_show_no_key_material(
    tmp_path: Path, debug_logs: pytest.LogCaptureFixture
) -> None:
    """Init, backup, restore, verify, prune, keys and failures with wrong keys stay silent on secrets."""
    targets = [memory_target(), memory_target()]
    passphrase = Passphrase(PASSPHRASE, scrypt=CHEAP)
    vault = Vault.init(targets, key=passphrase, now=NOW, chunker=SMALL)
    slot = vault.add_key(RawKey(RAW), now=NOW)
    info = vault.backup(
        StreamSource(name="db.sql", stream=io.BytesIO(b"INSERT 1;" * 500)),
        lineage="db",
        host="h",
        now=NOW,
    )
    # A damaged chunk on the first target makes restore log its fallback.
    # Format 2: a byte inside the first sealed chunk of a pack (it starts at offset 0).
    chunk = sorted(targets[0].list("packs"))[0]
    blob = bytearray(targets[0].read(chunk))
    blob[10] ^= 1
    targets[0].delete(chunk)
    targets[0].write(chunk, bytes(blob))
    vault.restore(info, tmp_path / "out")
    report = vault.verify(read_data=True)
    plans = vault.forget(Policy(last=1), now=NOW + timedelta(days=1))
    texts = [
        debug_logs.text,
        repr(vault),
        str(vault),
        repr(vault.keys()),
        repr(slot),
        repr(vault.config),
        repr(vault._sealer),  # noqa: SLF001 - the sealer holds the master keys
        repr(passphrase),
        repr(RawKey(RAW)),
        repr(MasterKeys(data_key=RAW, chunk_id_key=RAW)),
        repr(report),
        repr(plans),
        repr(info),
    ]
    texts += error_texts(
        lambda: Vault.open(targets, key=Passphrase(PASSPHRASE + "!", scrypt=CHEAP))
    )
    texts += error_texts(lambda: Vault.open(targets, key=RawKey(RAW[::-1])))
    texts += error_texts(lambda: RawKey(RAW[:31]))
    texts += error_texts(lambda: RawKey(RAW + b"!"))
    texts += error_texts(lambda: RawKey.from_env("CTFY_KEY", {"CTFY_KEY": RAW.hex()[:-2]}))
    texts += error_texts(lambda: RawKey.from_env("CTFY_KEY", {"CTFY_KEY": RAW.hex() + "00"}))
    reopened = Vault.open(targets, key=RawKey(RAW))
    texts += [repr(reopened), debug_logs.text]
    assert_clean(texts)


def test_s3_credentials_and_signed_links_stay_out_of_texts(
    moto_s3: S3Endpoint, debug_logs: pytest.LogCaptureFixture
) -> None:
    """An S3 secret key and a signed URL's signature appear in no repr, log or error."""
    bucket = make_bucket(moto_s3, f"secrets-{uuid.uuid4().hex[:8]}")
    target = Target.from_url(
        f"s3://{bucket}/docs",
        endpoint_url=moto_s3.endpoint_url,
        key=S3_ACCESS,
        secret=S3_SECRET,
        region=moto_s3.region,
        retry=fast_retry(2),
    )
    target.write("contract.pdf", b"%PDF-1.7")
    capabilities = target.probe()
    link = presign(target, "contract.pdf", ttl=timedelta(minutes=5))
    signature = urllib.parse.parse_qs(urllib.parse.urlsplit(link.url).query)["X-Amz-Signature"][0]
    assert len(signature) == 64
    signer = LinkSigner(secret=LINK_SECRET, base_url="https://app.example/download")
    local = memory_target()
    local.write("a.pdf", b"x")
    hmac_link = presign(local, "a.pdf", signer=signer, ttl=timedelta(minutes=5))
    hmac_signature = urllib.parse.parse_qs(urllib.parse.urlsplit(hmac_link.url).query)
    unreachable = Target.from_url(
        f"s3://{bucket}/docs",
        endpoint_url="http://127.0.0.1:9",
        key=S3_ACCESS,
        secret=S3_SECRET,
        region=moto_s3.region,
        retry=fast_retry(2),
    )
    texts = [
        repr(target),
        str(target),
        repr(capabilities),
        repr(link),
        str(link),
        repr(hmac_link),
        repr(signer),
        repr(unreachable),
    ]
    texts += error_texts(lambda: unreachable.read("contract.pdf"))
    texts += error_texts(unreachable.probe)
    texts += error_texts(lambda: presign(target, "../escape", ttl=timedelta(minutes=5)))
    texts += error_texts(lambda: presign(target, "contract.pdf", ttl=timedelta(hours=2)))
    texts.append(debug_logs.text)
    link_forms = {
        "signature": {signature},
        "hmac": {v[0] for v in hmac_signature.values() if len(v[0]) >= 32},
    }
    assert_clean(texts, link_forms)


def test_only_botocore_debug_logs_carry_a_signature(
    moto_s3: S3Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    """With every logger at DEBUG, a link's signature shows up only in botocore's own records.

    botocore's ``auth`` module logs each signature at DEBUG; an application must not run botocore
    at DEBUG in production (the library never configures botocore's logging).
    """
    caplog.set_level(logging.DEBUG)
    bucket = make_bucket(moto_s3, f"debug-{uuid.uuid4().hex[:8]}")
    target = Target.from_url(
        f"s3://{bucket}/docs",
        endpoint_url=moto_s3.endpoint_url,
        key=S3_ACCESS,
        secret=S3_SECRET,
        region=moto_s3.region,
    )
    target.write("a.pdf", b"x")
    link = presign(target, "a.pdf", ttl=timedelta(minutes=5))
    signature = urllib.parse.parse_qs(urllib.parse.urlsplit(link.url).query)["X-Amz-Signature"][0]
    leaking = {record.name for record in caplog.records if signature in record.getMessage()}
    assert not {name for name in leaking if not name.startswith("botocore")}, leaking
    assert not any(S3_SECRET in record.getMessage() for record in caplog.records)


def test_cli_config_errors_do_not_echo_secret_values() -> None:
    """A secret written into the config file is refused without quoting it back."""
    text = f"""\
[repository]
key = {{ env = "CTFY_KEY" }}

[[targets]]
url = "s3://bucket/db"
options = {{ secret = "{S3_SECRET}" }}
"""
    texts = error_texts(lambda: parse_config(text, path=Path("leaky.toml")))
    texts += error_texts(
        lambda: parse_config(f'[repository]\nkey = "{PASSPHRASE}"\n', path=Path("leaky.toml"))
    )
    config = parse_config(
        '[repository]\nkey = { env = "CTFY_KEY", type = "raw" }\n[[targets]]\nurl = "/srv/b"\n',
        path=Path("ok.toml"),
    )
    texts += error_texts(lambda: config.key.credential({"CTFY_KEY": RAW.hex()[:-4]}))
    texts += error_texts(
        lambda: config.key.credential({"CTFY_KEY": base64.b64encode(RAW[:20]).decode()})
    )
    texts.append(repr(config))
    assert_clean(texts)


def test_a_secret_written_where_a_variable_name_goes_is_never_echoed() -> None:
    """A secret written where a variable's name goes is unset: errors name the setting only."""
    text = f"""\
[repository]
key = {{ env = "{PASSPHRASE}" }}

[[targets]]
name = "spaces"
url = "s3://bucket/db"
credentials_env = {{ key = "AKIA_VARIABLE", secret = "{S3_SECRET}" }}
"""
    config = parse_config(text, path=Path("mistaken.toml"))
    texts = error_texts(lambda: config.key.credential({}))
    texts += error_texts(lambda: config.build_targets({"AKIA_VARIABLE": "set"}))
    texts += error_texts(lambda: KeySource(env=PASSPHRASE, setting="--new-env").credential({}))
    texts.append(repr(config))
    assert_clean(texts)
    assert "the environment variable named by repository.key.env is not set" in texts[0]
    assert "named by credentials_env.secret of target spaces is not set" in texts[3]
    assert "named by --new-env is not set" in texts[6]


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "ctfy_vault", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def test_cli_output_holds_no_secret(tmp_path: Path, moto_s3: S3Endpoint) -> None:
    """demo, probe, init, backup, snapshots, check and a wrong key print no secret."""
    bucket = make_bucket(moto_s3, f"cli-{uuid.uuid4().hex[:8]}")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "src"),
        "AWS_ACCESS_KEY_ID": S3_ACCESS,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "CTFY_PASS": PASSPHRASE,
        "CTFY_RAW": RAW.hex(),
        "CTFY_VAULT_CONFIG": str(tmp_path / "ctfy-vault.toml"),
    }
    (tmp_path / "repo").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "db.sql").write_bytes(b"INSERT 1;\n" * 100)
    (tmp_path / "ctfy-vault.toml").write_text(
        f"""\
[repository]
key = {{ env = "CTFY_PASS" }}

[[targets]]
url = "{tmp_path / "repo"}"
name = "local"

[lineages.db]
policy = "contractify"
sources = ["{tmp_path / "data"}"]
"""
    )
    outputs: list[str] = []
    runs = [
        (["demo", "--dir", str(tmp_path / "demo")], 0),
        (["probe", f"s3://{bucket}/x", "--endpoint-url", moto_s3.endpoint_url], 0),
        (["probe", f"s3://{bucket}/x", "--endpoint-url", "http://127.0.0.1:9", "--json"], None),
        (["init"], 0),
        (["backup", "db"], 0),
        (["snapshots", "--json"], 0),
        (["check", "--read-data"], 0),
    ]
    for args, expected in runs:
        code, text = _cli(args, env, tmp_path)
        if expected is not None:
            assert code == expected, (args, text)
        else:
            assert code != 0, (args, text)
        outputs.append(text)
    wrong = {**env, "CTFY_PASS": PASSPHRASE + "!"}
    code, text = _cli(["snapshots"], wrong, tmp_path)
    assert code != 0
    outputs.append(text)
    assert_clean(outputs)


def test_a_key_passed_as_the_variable_name_is_never_echoed() -> None:
    """``RawKey.from_env(<the key itself>)``: the error says the variable is unset, not its name."""
    key = os.urandom(32)
    for mistaken in (key.hex(), base64.b64encode(key).decode()):
        texts = error_texts(partial(RawKey.from_env, mistaken, {}))
        assert_clean(texts, extra={"key given as a name": {mistaken}})
        assert "is not set" in texts[0]
