"""Running ``ctfy-vault`` in a subprocess with a config file, and what CLI tests share."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from tests.support.servers import S3Endpoint
from tests.support.snapshot_strategies import snapshot_info

LISTED = [
    snapshot_info("abc123", "db", 3),
    snapshot_info("abd456", "files", 2),
    snapshot_info("ffe789", "db", 1),
]


RAW_KEY = "5a" * 32


OTHER_KEY = "a5" * 32


TIMEOUT = 120


@attrs.frozen
class TargetSpec:
    """One ``[[targets]]`` table of a test config, with the environment its credentials need."""

    name: str
    url: str
    endpoint: S3Endpoint | None = None
    endpoint_url: str | None = None
    lock_mode: str | None = None
    policy: str | None = None  # a TOML value: this target's own retention policy

    def toml(self) -> str:
        lines = ["[[targets]]", f'name = "{self.name}"', f'url = "{self.url}"']
        if self.lock_mode is not None:
            lines.append(f'lock_mode = "{self.lock_mode}"')
        if self.policy is not None:
            lines.append(f"policy = {self.policy}")
        if self.endpoint is not None:
            variable = self.name.upper().replace("-", "_")
            lines += [
                f'endpoint_url = "{self.endpoint_url or self.endpoint.endpoint_url}"',
                f'region = "{self.endpoint.region}"',
                f'credentials_env = {{ key = "{variable}_KEY", secret = "{variable}_SECRET" }}',
            ]
        return "\n".join(lines) + "\n"

    def env(self) -> dict[str, str]:
        if self.endpoint is None:
            return {}
        variable = self.name.upper().replace("-", "_")
        return {f"{variable}_KEY": self.endpoint.key, f"{variable}_SECRET": self.endpoint.secret}


@attrs.define
class Cli:
    """Runs ``python -m ctfy_vault`` with a config file and a clean environment."""

    home: Path
    targets: list[TargetSpec]
    key: str = RAW_KEY
    secrets: list[str] = attrs.field(factory=list)

    @property
    def config(self) -> Path:
        return self.home / "ctfy-vault.toml"

    def write_config(self, targets: Sequence[TargetSpec] | None = None) -> None:
        text = '[repository]\nkey = { env = "CTFY_TEST_KEY", type = "raw" }\n\n'
        text += "\n".join(t.toml() for t in (targets or self.targets))
        text += f"""
[lineages.files]
policy = {{ last = 1 }}
sources = ["{self.home / "data"}"]

[lineages.db]
policy = "contractify"
"""
        self.config.write_text(text)

    def __call__(
        self,
        *argv: str,
        stdin: bytes | None = None,
        key: str | None = None,
        stdin_file: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CTFY_"))}
        env["CTFY_VAULT_CONFIG"] = str(self.config)
        env["CTFY_TEST_KEY"] = key or self.key
        for target in self.targets:
            env.update(target.env())
        if stdin_file is not None:
            with stdin_file.open("rb") as given:
                raw = subprocess.run(
                    [sys.executable, "-m", "ctfy_vault", *argv],
                    stdin=given,
                    capture_output=True,
                    env=env,
                    cwd=self.home,
                    timeout=TIMEOUT,
                    check=False,
                )
        else:
            raw = subprocess.run(
                [sys.executable, "-m", "ctfy_vault", *argv],
                input=stdin if stdin is not None else b"",
                capture_output=True,
                env=env,
                cwd=self.home,
                timeout=TIMEOUT,
                check=False,
            )
        done = subprocess.CompletedProcess(
            raw.args, raw.returncode, raw.stdout.decode(), raw.stderr.decode()
        )
        for secret in [self.key, OTHER_KEY, *self.secrets]:
            assert secret not in done.stdout + done.stderr, "a secret was printed"
        return done

    def ok(self, *argv: str, stdin: bytes | None = None) -> str:
        done = self(*argv, stdin=stdin)
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
        return done.stdout

    def json(self, *argv: str, stdin: bytes | None = None) -> Any:
        return json.loads(self.ok(*argv, "--json", stdin=stdin))


def sample_tree(root: Path, seed: int = 7) -> Path:
    """A small tree: a few text files, a random blob that spans chunks, a link, a folder."""
    rng = random.Random(seed)  # noqa: S311 - sample data, not secrets
    (root / "contracts").mkdir(parents=True)
    for n in range(5):
        (root / "contracts" / f"{n}.txt").write_text(f"contract {n}\n" * (n + 1))
    (root / "blob.bin").write_bytes(rng.randbytes(3 * 1024 * 1024))
    (root / "empty").mkdir()
    (root / "latest.txt").symlink_to("contracts/4.txt")
    return root


def local_cli(tmp_path: Path, names: Sequence[str] = ("ams", "dub")) -> Cli:
    """A CLI whose config names local folder targets under ``tmp_path/targets``."""
    targets = [TargetSpec(name=name, url=str(tmp_path / "targets" / name)) for name in names]
    cli = Cli(home=tmp_path, targets=targets)
    cli.write_config()
    return cli
