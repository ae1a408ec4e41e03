"""A real PostgreSQL database backed up from ``pg_dump``'s output, restored and compared.

``pg_dump`` runs as a `CommandSource` (``backup --stdin-from-command`` in the CLI) or on a pipe;
one killed mid-dump or unable to connect commits nothing and fails the backup.

The server is Debian's PostgreSQL, started on 127.0.0.1 by ``scripts/postgres.sh`` (or the one
``CTFY_TEST_POSTGRES_ENV`` names: the env file the script writes). A server that cannot start makes
these tests fail, never skip.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

from ctfy_vault.crypto import RawKey
from ctfy_vault.exceptions import SourceFailedError
from ctfy_vault.retention import Policy
from ctfy_vault.storage import Target
from ctfy_vault.vault import Vault
from ctfy_vault.writer import ChunkerParams, CommandSource, StreamSource
from tests.support.paths import SCRIPTS
from tests.support.servers import ServerStartError, read_env_file

POSTGRES_ENV_VAR = "CTFY_TEST_POSTGRES_ENV"
SCRIPT_TIMEOUT = 900  # a cold `apt-get install postgresql` included
NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
TABLES = ("tenants", "documents", "audit")
ROWS = {"tenants": 500, "documents": 3000, "audit": 2000}

SCHEMA = """
CREATE TABLE tenants (
    id serial PRIMARY KEY,
    name text NOT NULL,
    country char(2) NOT NULL
);
CREATE TABLE documents (
    id bigserial PRIMARY KEY,
    tenant_id integer NOT NULL REFERENCES tenants (id),
    title text NOT NULL,
    body bytea NOT NULL,
    signed_at timestamptz,
    amount numeric(12, 2)
);
CREATE TABLE audit (
    id bigserial PRIMARY KEY,
    entry jsonb NOT NULL,
    note text
);
CREATE INDEX documents_tenant ON documents (tenant_id);
INSERT INTO tenants (name, country)
    SELECT 'Zoë Ørsted \u2013 日本語 ' || i || E' tab\\there',
           (ARRAY['BE', 'NL', 'IE', 'DE'])[i % 4 + 1]
    FROM generate_series(1, 500) AS i;
INSERT INTO documents (tenant_id, title, body, signed_at, amount)
    SELECT i % 500 + 1,
           'contract #' || i || ' \u2014 \u201cquoted\u201d ' || repeat('ß', i % 7),
           decode(md5(i::text), 'hex') || '\\x00ff0a0d5c27'::bytea
               || decode(repeat(md5((i * 7)::text), i % 40), 'hex'),
           CASE WHEN i % 10 = 0 THEN NULL
                ELSE timestamptz '2026-01-01 00:00+00' + i * interval '37 minutes' END,
           (i * 12.34) % 100000
    FROM generate_series(1, 3000) AS i;
INSERT INTO audit (entry, note)
    SELECT jsonb_build_object(
               'event', 'sign', 'doc', i, 'who', 'usér-' || (i % 13), 'tags', jsonb_build_array('a', i)
           ),
           CASE WHEN i % 3 = 0 THEN E'multi\\nline\\r\\nnote ' || i ELSE NULL END
    FROM generate_series(1, 2000) AS i;
"""


@attrs.frozen
class Postgres:
    """A running server: the connection environment its env file gives, and its binaries."""

    env: dict[str, str] = attrs.field(repr=False)
    bin: Path

    def tool(self, name: str) -> str:
        """The path of a PostgreSQL program (``psql``, ``pg_dump``, ``createdb``)."""
        return str(self.bin / name)

    def environ(self) -> dict[str, str]:
        """This process's environment plus the connection variables."""
        return {**os.environ, **self.env}

    def psql(self, database: str, sql: str) -> str:
        """Run SQL in ``database``; stop at the first error; return the unaligned output."""
        done = subprocess.run(
            [self.tool("psql"), "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-d", database],
            input=sql,
            capture_output=True,
            text=True,
            env=self.environ(),
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def createdb(self, prefix: str) -> str:
        """Create a database with a fresh name and return the name."""
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        subprocess.run([self.tool("createdb"), name], env=self.environ(), check=True)
        return name

    def load(self, database: str, dump: Path) -> None:
        """Replay a plain-SQL dump into ``database``, stopping at the first error."""
        done = subprocess.run(
            [self.tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-f", dump],
            capture_output=True,
            text=True,
            env=self.environ(),
            check=False,
        )
        assert done.returncode == 0, done.stderr

    def dump_argv(self, database: str) -> list[str]:
        """The ``pg_dump`` command line of ``database`` (plain SQL on standard output)."""
        return [self.tool("pg_dump"), "--no-owner", "--no-privileges", "-d", database]

    def pg_dump(self, database: str) -> subprocess.Popen[bytes]:
        """Start ``pg_dump`` of ``database`` (plain SQL) with its output on a pipe."""
        return subprocess.Popen(
            self.dump_argv(database), stdout=subprocess.PIPE, env=self.environ()
        )

    def contents(self, database: str) -> dict[str, bytes]:
        """Each table's rows in id order, as ``COPY ... TO STDOUT`` writes them, plus sequences."""
        found: dict[str, bytes] = {}
        for table in TABLES:
            done = subprocess.run(
                [
                    self.tool("psql"),
                    "-X",
                    "-d",
                    database,
                    "-c",
                    f"COPY (SELECT * FROM {table} ORDER BY id) TO STDOUT",  # noqa: S608 - fixed names
                ],
                capture_output=True,
                env=self.environ(),
                check=True,
            )
            found[table] = done.stdout
        found["sequences"] = self.psql(
            database, "SELECT sequencename, last_value FROM pg_sequences ORDER BY 1;"
        ).encode()
        return found


def _run_script(action: str, env: dict[str, str]) -> None:
    try:
        done = subprocess.run(
            ["bash", str(SCRIPTS / "postgres.sh"), action],
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ServerStartError(f"scripts/postgres.sh {action} timed out") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-60:])
        raise ServerStartError(f"scripts/postgres.sh {action} failed:\n{tail}")


def _postgres_of(env_file: Path) -> Postgres:
    values = read_env_file(env_file)
    names = ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PG_BIN")
    missing = [name for name in names if not values.get(name)]
    if missing:
        raise ServerStartError(f"{env_file} lacks {', '.join(missing)}")
    env = {name: values[name] for name in names if name.startswith("PG") and name != "PG_BIN"}
    return Postgres(env=env, bin=Path(values["PG_BIN"]))


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server on loopback: CI's (``CTFY_TEST_POSTGRES_ENV``) or one started here."""
    given = os.environ.get(POSTGRES_ENV_VAR, "").strip()
    if given:
        yield _postgres_of(Path(given))
        return
    # mkdtemp is private (0700); the server runs as the `postgres` user and must enter it.
    workdir = Path(tempfile.mkdtemp(prefix="ctfy-postgres-"))
    workdir.chmod(0o755)
    env = {"PG_DIR": str(workdir / "pg"), "PG_PORT": "auto"}
    try:
        _run_script("start", env)
        yield _postgres_of(workdir / "pg" / "env")
    finally:
        try:
            _run_script("stop", env)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def source_db(postgres: Postgres) -> str:
    """A database with three tables and a few thousand rows (unicode, bytea, jsonb, NULLs)."""
    name = postgres.createdb("shop")
    postgres.psql(name, SCHEMA)
    return name


def test_server_listens_on_loopback_only(postgres: Postgres) -> None:
    """The script's server listens on 127.0.0.1 only, with no Unix socket, and wants a password."""
    settings = postgres.psql(
        "postgres",
        "SELECT current_setting('listen_addresses'), current_setting('unix_socket_directories');",
    )
    assert settings.strip() == "127.0.0.1|"
    rules = postgres.psql(
        "postgres", "SELECT type, address, auth_method FROM pg_hba_file_rules ORDER BY line_number;"
    )
    assert rules.strip() == "host|127.0.0.1|scram-sha-256"


def test_source_database_is_filled(postgres: Postgres, source_db: str) -> None:
    """The sample database has the rows the comparison relies on."""
    counts = postgres.contents(source_db)
    for table, rows in ROWS.items():
        assert counts[table].count(b"\n") == rows
    assert "日本語".encode() in counts["tenants"]
    # bytea in COPY's text form: \\x, the md5 prefix, then the fixed bytes with NUL, CR, LF.
    assert re.search(rb"\t\\\\x[0-9a-f]{32}00ff0a0d5c27", counts["documents"])


def test_pg_dump_stream_backup_and_restore_through_the_api(
    postgres: Postgres, source_db: str, tmp_path: Path
) -> None:
    """``pg_dump`` piped into ``Vault.backup`` restores into a new database with equal tables."""
    targets = [Target.from_url(str(tmp_path / name), name=name) for name in ("ams", "dub")]
    key = RawKey(os.urandom(32))
    vault = Vault.init(targets, key=key, now=NOW)
    dump = postgres.pg_dump(source_db)
    assert dump.stdout is not None
    with dump:
        info = vault.backup(
            StreamSource(name="db.sql", stream=dump.stdout), lineage="db", host="db-1", now=NOW
        )
    assert dump.returncode == 0
    assert all(outcome.committed for outcome in info.outcomes)

    vault = Vault.open(targets, key=key)
    assert [s.snapshot_id for s in vault.snapshots("db")] == [info.snapshot_id]
    report = vault.restore(vault.snapshots("db")[0], tmp_path / "restore")
    restored = tmp_path / "restore" / "db.sql"
    assert report.files == 1
    assert report.bytes == restored.stat().st_size == info.size
    assert b"CREATE TABLE public.documents" in restored.read_bytes()
    with vault.open_file(info, "db.sql") as stream:
        assert (
            hashlib.sha256(stream.read()).digest() == hashlib.sha256(restored.read_bytes()).digest()
        )

    copy = postgres.createdb("restored")
    postgres.load(copy, restored)
    assert postgres.contents(copy) == postgres.contents(source_db)
    assert vault.verify(read_data=True).ok


def test_a_changed_database_is_a_second_snapshot_in_the_chain(
    postgres: Postgres, source_db: str, tmp_path: Path
) -> None:
    """A second nightly dump after some changes restores to the changed data; both stay listed."""
    targets = [Target.from_url(str(tmp_path / "ams"), name="ams")]
    key = RawKey(os.urandom(32))
    vault = Vault.init(targets, key=key, now=NOW)
    work = postgres.createdb("nightly")
    postgres.load(work, _dump_file(postgres, source_db, tmp_path / "seed.sql"))

    infos = []
    for night in range(2):
        if night:
            postgres.psql(work, "UPDATE tenants SET name = name || ' (renamed)' WHERE id % 50 = 0;")
            postgres.psql(work, "DELETE FROM audit WHERE id > 1990;")
        with postgres.pg_dump(work) as dump:
            assert dump.stdout is not None
            infos.append(
                vault.backup(
                    StreamSource(name="db.sql", stream=dump.stdout),
                    lineage="db",
                    host="db-1",
                    now=NOW + timedelta(days=night),
                )
            )
        assert dump.returncode == 0
    assert [s.snapshot_id for s in vault.snapshots("db")] == [i.snapshot_id for i in infos[::-1]]
    assert infos[1].previous == infos[0].hash

    for info, expected in ((infos[0], source_db), (infos[1], work)):
        dest = tmp_path / f"restore-{info.snapshot_id[:8]}"
        vault.restore(info, dest)
        copy = postgres.createdb("night")
        postgres.load(copy, dest / "db.sql")
        assert postgres.contents(copy) == postgres.contents(expected)


def _children(parent: int, name: str) -> list[int]:
    """The pids of ``parent``'s child processes running the program ``name`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == parent and comm == name:
            found.append(int(entry.name))
    return found


def _written(pid: int) -> int:
    """Bytes a process has written so far (``wchar`` of /proc/PID/io)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError(f"no wchar for {pid}")


def _free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _snapshot_keys(targets: list[Target]) -> dict[str, list[str]]:
    return {target.name: sorted(target.list("snapshots")) for target in targets}


def test_pg_dump_as_a_command_source_restores_equal_tables(
    postgres: Postgres, source_db: str, tmp_path: Path
) -> None:
    """``CommandSource(argv=[pg_dump ...])``: committed after pg_dump exits 0; tables restore equal."""
    targets = [Target.from_url(str(tmp_path / name), name=name) for name in ("ams", "dub")]
    vault = Vault.init(targets, key=RawKey(os.urandom(32)), now=NOW)
    dump = CommandSource(name="db.sql", argv=postgres.dump_argv(source_db), env=postgres.environ())
    info = vault.backup(dump, lineage="db", host="db-1", now=NOW)
    assert all(outcome.committed for outcome in info.outcomes)
    vault.restore(info, tmp_path / "restore")
    copy = postgres.createdb("command")
    postgres.load(copy, tmp_path / "restore" / "db.sql")
    assert postgres.contents(copy) == postgres.contents(source_db)


def test_pg_dump_killed_mid_dump_commits_nothing_and_prune_keeps_the_good_dump(
    postgres: Postgres, source_db: str, tmp_path: Path
) -> None:
    """SIGKILL to pg_dump after 128 KiB of its output: nothing committed; the day's good dump stays.

    The issue's scenario: the fragment would be the day's newest snapshot, kept as its daily, and
    the complete dump of the same morning forgotten by the next prune.
    """
    targets = [Target.from_url(str(tmp_path / name), name=name) for name in ("ams", "dub")]
    small = ChunkerParams(min_size=16 * 1024, avg_size=32 * 1024, max_size=64 * 1024)
    key = RawKey(os.urandom(32))
    vault = Vault.init(targets, key=key, now=NOW, chunker=small)
    argv = postgres.dump_argv(source_db)
    good = vault.backup(
        CommandSource(name="db.sql", argv=argv, env=postgres.environ()), lineage="db", now=NOW
    )
    before = _snapshot_keys(targets)
    stored = {target.name: set(target.list("")) for target in targets}

    killed: list[int] = []
    read = 0

    def kill_pg_dump(done: int, _files: int) -> None:
        # pg_dump can be at most a pipe's worth ahead of this reader: killed here, it is mid-dump.
        nonlocal read
        read += done
        if read > 128 * 1024 and not killed:
            (pid,) = _children(os.getpid(), "pg_dump")
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    with pytest.raises(SourceFailedError) as caught:
        vault.backup(
            CommandSource(name="db.sql", argv=argv, env=postgres.environ()),
            lineage="db",
            now=NOW + timedelta(hours=1),
            progress=kill_pg_dump,
        )
    assert killed
    assert str(caught.value) == f"{argv[0]} was killed by SIGKILL; nothing was committed"
    assert caught.value.returncode == -signal.SIGKILL
    assert _snapshot_keys(targets) == before
    for target in targets:
        now_stored = set(target.list(""))
        assert stored[target.name] <= now_stored  # nothing stored before is gone
        # Format 2 drops the pack being filled when the source fails; only full packs (and their
        # index objects) of the fragment may have been stored, unreferenced.
        added = now_stored - stored[target.name]
        assert all(key.startswith(("packs/", "index/")) for key in added), added
    assert _children(os.getpid(), "pg_dump") == []

    vault = Vault.open(targets, key=key)
    report = vault.prune(
        {"db": Policy.contractify()}, now=NOW + timedelta(hours=2), grace=timedelta(0)
    )
    assert report.forgotten == ()
    assert [s.snapshot_id for s in vault.snapshots("db")] == [good.snapshot_id]
    assert vault.verify(read_data=True).ok
    vault.restore(good, tmp_path / "restore")
    copy = postgres.createdb("survivor")
    postgres.load(copy, tmp_path / "restore" / "db.sql")
    assert postgres.contents(copy) == postgres.contents(source_db)


def test_pg_dump_that_cannot_connect_commits_nothing(
    postgres: Postgres, source_db: str, tmp_path: Path
) -> None:
    """pg_dump pointed at a port nothing listens on exits 1: SourceFailedError, no snapshot."""
    targets = [Target.from_url(str(tmp_path / "ams"), name="ams")]
    vault = Vault.init(targets, key=RawKey(os.urandom(32)), now=NOW)
    env = {**postgres.environ(), "PGPORT": str(_free_port())}
    argv = postgres.dump_argv(source_db)
    with pytest.raises(SourceFailedError) as caught:
        vault.backup(CommandSource(name="db.sql", argv=argv, env=env), lineage="db", now=NOW)
    assert str(caught.value) == f"{argv[0]} exited with status 1; nothing was committed"
    assert vault.snapshots() == []
    assert _snapshot_keys(targets) == {"ams": []}


def _dump_file(postgres: Postgres, database: str, path: Path) -> Path:
    with path.open("wb") as out:
        subprocess.run(
            [postgres.tool("pg_dump"), "--no-owner", "-d", database],
            stdout=out,
            env=postgres.environ(),
            check=True,
        )
    return path


# --------------------------------------------------------------------------------------------------
# Through the command line (issue 6's CLI: `init`, `backup --stdin`, `restore latest:<lineage>`).


def _cli_run(
    *args: str, env: dict[str, str], stdin: int | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctfy_vault", *args],
        stdin=stdin,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )


def _cli(*args: str, env: dict[str, str], stdin: int | None = None) -> str:
    done = _cli_run(*args, env=env, stdin=stdin)
    assert done.returncode == 0, f"ctfy-vault {' '.join(args)}: {done.returncode}\n{done.stderr}"
    return done.stdout


def _cli_config(postgres: Postgres, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A config with two local folder targets and lineage ``db``, and the environment to run it."""
    config = tmp_path / "ctfy-vault.toml"
    config.write_text(
        "[repository]\n"
        'key = { env = "CTFY_VAULT_PASSPHRASE" }\n'
        "\n[[targets]]\n"
        f'url = "{tmp_path / "target-a"}"\n'
        "\n[[targets]]\n"
        f'url = "{tmp_path / "target-b"}"\n'
        "\n[lineages.db]\n"
        'policy = "contractify"\n'
        "sources = []\n"
    )
    env = {**postgres.environ(), "CTFY_VAULT_PASSPHRASE": "correct horse battery staple"}
    return config, env


def test_pg_dump_piped_into_the_cli(postgres: Postgres, source_db: str, tmp_path: Path) -> None:
    """CLI: ``pg_dump | ctfy-vault backup db --stdin``, then ``restore latest:db``, compare tables."""
    config, env = _cli_config(postgres, tmp_path)
    _cli("init", "--config", str(config), env=env)
    with postgres.pg_dump(source_db) as dump:
        assert dump.stdout is not None
        _cli(
            "backup",
            "db",
            "--stdin",
            "--name",
            "db.sql",
            "--config",
            str(config),
            env=env,
            stdin=dump.stdout.fileno(),
        )
    assert dump.returncode == 0
    dest = tmp_path / "restore"
    _cli("restore", "latest:db", str(dest), "--config", str(config), env=env)
    restored = next(p for p in dest.rglob("db.sql") if p.is_file())
    copy = postgres.createdb("cli")
    postgres.load(copy, restored)
    assert postgres.contents(copy) == postgres.contents(source_db)
    a = sorted(p.relative_to(tmp_path / "target-a") for p in (tmp_path / "target-a").rglob("*"))
    b = sorted(p.relative_to(tmp_path / "target-b") for p in (tmp_path / "target-b").rglob("*"))
    assert a == b


def _restore_and_compare(
    postgres: Postgres, config: Path, env: dict[str, str], source_db: str, dest: Path
) -> None:
    _cli("restore", "latest:db", str(dest), "--config", str(config), env=env)
    copy = postgres.createdb("cli")
    postgres.load(copy, dest / "db.sql")
    assert postgres.contents(copy) == postgres.contents(source_db)


def test_pg_dump_from_command_in_the_cli_round_trips_and_shows_no_password(
    postgres: Postgres, source_db: str, tmp_path: Path
) -> None:
    """``backup db --stdin-from-command -- pg_dump URI``: restores equal; the URI's password unseen."""
    config, env = _cli_config(postgres, tmp_path)
    password = env.pop("PGPASSWORD")
    uri = f"postgresql://{env['PGUSER']}:{password}@{env['PGHOST']}:{env['PGPORT']}/{source_db}"
    _cli("init", "--config", str(config), env=env)
    argv = [postgres.tool("pg_dump"), "--no-owner", "--no-privileges", "--dbname", uri]
    backup = ("backup", "db", "--stdin-from-command", "--name", "db.sql", "--config", str(config))
    done = _cli_run(*backup, "--", *argv, env=env)
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr
    listed = _cli("snapshots", "--json", "--config", str(config), env=env)
    assert all(password not in text for text in (done.stdout, done.stderr, listed))
    _restore_and_compare(postgres, config, env, source_db, tmp_path / "restore")


def test_pg_dump_killed_mid_dump_in_the_cli_exits_1_and_commits_nothing(
    postgres: Postgres, source_db: str, tmp_path: Path
) -> None:
    """pg_dump killed after 16 KiB of its 2 MB dump: exit 1 naming it, no snapshot is added."""
    config, env = _cli_config(postgres, tmp_path)
    _cli("init", "--config", str(config), env=env)
    argv = postgres.dump_argv(source_db)
    backup = ("backup", "db", "--stdin-from-command", "--name", "db.sql", "--config", str(config))
    _cli(*backup, "--", *argv, env=env)
    before = _cli("snapshots", "--json", "--config", str(config), env=env)

    with subprocess.Popen(
        [sys.executable, "-m", "ctfy_vault", *backup, "--", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as cli:
        deadline = time.monotonic() + 60
        while not (found := _children(cli.pid, "pg_dump")):
            assert cli.poll() is None, "the backup ended before pg_dump started"
            assert time.monotonic() < deadline, "pg_dump never started"
            time.sleep(0.001)
        (pid,) = found
        # With the reader stopped pg_dump fills the pipe (64 KiB) and blocks: it is mid-dump.
        os.kill(cli.pid, signal.SIGSTOP)
        try:
            while _written(pid) < 16 * 1024:
                assert time.monotonic() < deadline, "pg_dump wrote nothing"
                time.sleep(0.01)
            os.kill(pid, signal.SIGKILL)
        finally:
            os.kill(cli.pid, signal.SIGCONT)
        out, err = cli.communicate(timeout=300)
    assert cli.returncode == 1, err
    assert err.splitlines()[-1] == (
        f"ctfy-vault: backup db: {argv[0]} was killed by SIGKILL; nothing was committed"
    )
    assert out == ""
    assert _cli("snapshots", "--json", "--config", str(config), env=env) == before
    _restore_and_compare(postgres, config, env, source_db, tmp_path / "restore")


def test_pg_dump_that_cannot_connect_fails_the_cli_backup(
    postgres: Postgres, source_db: str, tmp_path: Path
) -> None:
    """pg_dump on a port nothing listens on: its own error, then exit 1 and no snapshot."""
    config, env = _cli_config(postgres, tmp_path)
    _cli("init", "--config", str(config), env=env)
    _cli("check", "--config", str(config), env=env)  # records the known heads: no first-run note
    wrong = {**env, "PGPORT": str(_free_port())}
    argv = postgres.dump_argv(source_db)
    done = _cli_run(
        "backup", "db", "--stdin-from-command", "--config", str(config), "--", *argv, env=wrong
    )
    assert done.returncode == 1
    assert "pg_dump" in done.stderr.splitlines()[0]  # pg_dump's own message comes through
    assert done.stderr.splitlines()[-1] == (
        f"ctfy-vault: backup db: {argv[0]} exited with status 1; nothing was committed"
    )
    assert env["PGPASSWORD"] not in done.stdout + done.stderr
    assert _cli("snapshots", "--json", "--config", str(config), env=env).strip() == "[]"


# --------------------------------------------------------------------------------------------------
# examples/nightly_backup.py, run as cron would run it, night after night.

EXAMPLE = SCRIPTS.parent / "examples" / "nightly_backup.py"


def _night(
    when: str, *extra: str, env: dict[str, str], targets: list[Path]
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(EXAMPLE), "--now", when, "--grace-hours", "0", "-v"]
    for target in targets:
        argv += ["--target", str(target)]
    return subprocess.run(
        [*argv, *extra], capture_output=True, text=True, env=env, check=False, timeout=300
    )


def test_nightly_example_backs_up_and_prunes(
    postgres: Postgres, source_db: str, tmp_path: Path
) -> None:
    """The cron example backs up db, files and the full server, prunes per lineage, fails loudly."""
    key = os.urandom(32)
    env = {**postgres.environ(), "CTFY_VAULT_KEY": key.hex(), "PATH": os.environ["PATH"]}
    targets = [tmp_path / "ams", tmp_path / "dub"]
    uploads = tmp_path / "uploads"
    (uploads / "tenant-42").mkdir(parents=True)
    server = tmp_path / "etc"
    server.mkdir()
    (server / "app.conf").write_text("workers = 4\n")
    common = ("--database", source_db, "--files", str(uploads), "--full-server-path", str(server))

    nights = ["2026-09-01T02:30:00+00:00", "2026-09-02T02:30:00+00:00", "2026-09-03T02:30:00+00:00"]
    for n, when in enumerate(nights):
        (uploads / "tenant-42" / f"upload-{n}.pdf").write_bytes(os.urandom(1000))
        first = ("--init", "--full-server") if n == 0 else ()
        done = _night(when, *common, *first, env=env, targets=targets)
        assert done.returncode == 0, done.stderr
        assert ("full server: full-server" in done.stderr) == (n == 0)

    # Six weeks later, the weekly window keeps one snapshot of that week (09-03) and, as restic
    # does while the window reaches back that far, the oldest one (09-01): 09-02 is forgotten.
    done = _night("2026-10-15T02:30:00+00:00", *common, env=env, targets=targets)
    assert done.returncode == 0, done.stderr
    assert "prune db: keep 3, forgot 1" in done.stderr
    assert "prune server-files: keep 3, forgot 1" in done.stderr

    vault = Vault.open([Target.from_url(str(t), name=t.name) for t in targets], key=RawKey(key))
    by_lineage = {
        lineage: [f"{s.created:%m-%d}" for s in vault.snapshots(lineage)]
        for lineage in ("db", "server-files", "full-server")
    }
    assert by_lineage == {
        "db": ["10-15", "09-03", "09-01"],
        "server-files": ["10-15", "09-03", "09-01"],
        "full-server": ["09-01"],
    }
    latest = vault.snapshots("db")[0]
    vault.restore(latest, tmp_path / "restore")
    copy = postgres.createdb("nightly_example")
    postgres.load(copy, tmp_path / "restore" / f"{source_db}.sql")
    assert postgres.contents(copy) == postgres.contents(source_db)
    assert vault.verify(read_data=True).ok

    # A failing pg_dump fails the night (exit 1), commits no truncated dump and skips the prune.
    done = _night("2026-10-16T02:30:00+00:00", "--database", "no_such_db", env=env, targets=targets)
    assert done.returncode == 1, done.stderr
    assert "database no_such_db failed" in done.stderr
    assert "not pruning tonight" in done.stderr
    assert vault.snapshots("db")[0].snapshot_id == latest.snapshot_id

    # No key: a configuration error, exit 2.
    no_key = {k: v for k, v in env.items() if k != "CTFY_VAULT_KEY"}
    assert _night(nights[0], *common, env=no_key, targets=targets).returncode == 2
