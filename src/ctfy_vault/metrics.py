"""Metrics of backup, prune, check and mirror runs, in the Prometheus text format.

A backup that silently stops running is the commonest failure of backups. Every run can leave
its metrics where Prometheus finds them: a file for node exporter's textfile collector
(`RunMetrics.write_textfile`), or a push to a Pushgateway (`RunMetrics.push`). The format is
produced and pushed by the ``prometheus_client`` library. Each run has a registry of its own:

==============================================  ===============================================
``ctfy_vault_run_success``                      1 when the run succeeded, else 0
``ctfy_vault_run_duration_seconds``             how long it took
``ctfy_vault_run_timestamp_seconds``            when it ended (Unix time)
``ctfy_vault_last_success_timestamp_seconds``   when a run of the same job last succeeded
``ctfy_vault_bytes{what, target}``              bytes read, uploaded, deleted, copied
``ctfy_vault_objects{what, target}``            chunks, snapshots, problems, objects copied
``ctfy_vault_target_up{target}``                1 when the target did its part, else 0
``ctfy_vault_snapshot_age_seconds{lineage}``    ``status``: the newest snapshot's age
``ctfy_vault_target_lagging{lineage, target}``  ``status``: 1 when a target lags behind
==============================================  ===============================================

Every series also carries ``operation`` and ``lineage`` (empty for repository-wide runs). Alert
on ``time() - ctfy_vault_last_success_timestamp_seconds > 26 * 3600`` for a nightly job: it
fires when runs fail and when they stop running at all. A failed run keeps the last success's
time: from the file it replaces, or (Pushgateway) by leaving that series out of its push.

No label or value holds a secret; a Pushgateway URL's user and password are sent as HTTP basic
authentication and never appear in a message.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import attrs
from prometheus_client import (
    CollectorRegistry,
    Gauge,
    push_to_gateway,
    pushadd_to_gateway,
    write_to_textfile,
)
from prometheus_client.exposition import basic_auth_handler, default_handler
from prometheus_client.parser import text_string_to_metric_families

from ctfy_vault.exceptions import ConfigurationError, StorageError

__all__ = ["DEFAULT_JOB", "RunMetrics"]

#: The Pushgateway job every run pushes under (its grouping key adds operation and lineage).
DEFAULT_JOB: Final = "ctfy_vault"
_LAST_SUCCESS: Final = "ctfy_vault_last_success_timestamp_seconds"
_PUSH_TIMEOUT: Final = 30.0


@attrs.define
class RunMetrics:
    """The metrics of one run of one operation (``backup``, ``prune``, ``check``, ``mirror``...).

    Fill it as the run goes (`add_bytes`, `add_objects`, `target`), then `finish` it and write
    it out. Nothing is sent anywhere until `write_textfile` or `push`.

    Attributes:
        operation: what ran.
        lineage: the lineage it ran on, or ``""`` for the whole repository.
    """

    operation: str
    lineage: str = ""
    _clock: Callable[[], float] = attrs.field(default=time.time, alias="clock")
    _started: float = attrs.field(init=False)
    _ended: float | None = attrs.field(init=False, default=None)
    _succeeded: bool | None = attrs.field(init=False, default=None)
    _registry: CollectorRegistry = attrs.field(init=False, factory=CollectorRegistry)
    _gauges: dict[str, Gauge] = attrs.field(init=False, factory=dict)
    _down: set[str] = attrs.field(init=False, factory=set)

    def __attrs_post_init__(self) -> None:
        self._started = self._clock()
        for name, doc, labels in (
            ("ctfy_vault_run_success", "1 when the run succeeded, else 0", ()),
            ("ctfy_vault_run_duration_seconds", "How long the run took", ()),
            ("ctfy_vault_run_timestamp_seconds", "When the run ended (Unix time)", ()),
            (_LAST_SUCCESS, "When a run of this job last succeeded (Unix time)", ()),
            (
                "ctfy_vault_bytes",
                "Bytes the run read, uploaded, deleted or copied",
                ("what", "target"),
            ),
            ("ctfy_vault_objects", "Objects the run handled, by kind", ("what", "target")),
            ("ctfy_vault_target_up", "1 when the target did its part of the run", ("target",)),
            ("ctfy_vault_snapshot_age_seconds", "Age of the lineage's newest snapshot", ()),
            ("ctfy_vault_target_lagging", "1 when the target lags behind the lineage", ("target",)),
        ):
            self._gauges[name] = Gauge(
                name, doc, ("operation", "lineage", *labels), registry=self._registry
            )

    @property
    def registry(self) -> CollectorRegistry:
        """The run's own registry (for an application that exposes or pushes it itself)."""
        return self._registry

    def _set(self, name: str, value: float, lineage: str | None = None, **labels: str) -> None:
        self._series(name, lineage, **labels).set(value)

    def _series(self, name: str, lineage: str | None = None, **labels: str) -> Any:
        mine = self.lineage if lineage is None else lineage
        shown = {key: _label(text) for key, text in labels.items()}
        return self._gauges[name].labels(
            operation=_label(self.operation), lineage=_label(mine), **shown
        )

    def add_bytes(self, what: str, value: int, *, target: str = "") -> None:
        """Add bytes (``read``, ``uploaded``, ``deleted``, ``copied``...), per target or not."""
        self._series("ctfy_vault_bytes", what=what, target=target).inc(value)

    def add_objects(
        self, what: str, value: int, *, target: str = "", lineage: str | None = None
    ) -> None:
        """Add to a count of objects (``chunks_uploaded``, ``snapshots``, ``problems``...).

        ``lineage`` labels it with another lineage than the run's (``status`` covers several).
        """
        self._series("ctfy_vault_objects", lineage, what=what, target=target).inc(value)

    def target(self, name: str, *, up: bool) -> None:
        """Record whether a target did its part; once it failed in this run, it stays down."""
        if not up:
            self._down.add(name)
        self._set("ctfy_vault_target_up", 0 if name in self._down else 1, target=name)

    def lineage_age(self, seconds: float, *, lineage: str | None = None) -> None:
        """Record the age of a lineage's newest snapshot (``status``; the run's by default)."""
        self._set("ctfy_vault_snapshot_age_seconds", seconds, lineage)

    def lagging(self, target: str, *, lagging: bool, lineage: str | None = None) -> None:
        """Record whether a target lags behind a lineage's newest snapshot (``status``)."""
        self._set("ctfy_vault_target_lagging", 1 if lagging else 0, lineage, target=target)

    def finish(self, *, succeeded: bool, seconds: float | None = None) -> None:
        """End the run: its duration, end time, success and (if it succeeded) last success.

        ``seconds`` is the run's duration when it is known better than from this object's
        creation (a run reported after the fact).
        """
        self._ended = self._clock()
        self._succeeded = succeeded
        took = self._ended - self._started if seconds is None else seconds
        self._set("ctfy_vault_run_success", 1 if succeeded else 0)
        self._set("ctfy_vault_run_duration_seconds", max(0.0, took))
        self._set("ctfy_vault_run_timestamp_seconds", self._ended)
        if succeeded:
            self._set(_LAST_SUCCESS, self._ended)

    def write_textfile(self, path: str | Path) -> None:
        """Write the metrics for node exporter's textfile collector, replacing the file whole.

        Use one file per job (``ctfy-backup-db.prom``): each run replaces its file. A failed
        run carries the last success's time over from the file it replaces.

        Raises:
            ConfigurationError: the run was not finished.
            OSError: the file could not be written (the old one is left as it was).
        """
        self._check_finished()
        target = Path(path)
        if not self._succeeded:
            earlier = _last_success(target, self.operation, self.lineage)
            if earlier is not None:
                self._set(_LAST_SUCCESS, earlier)
        write_to_textfile(str(target), self._registry)

    def push(self, url: str, *, job: str = DEFAULT_JOB, timeout: float = _PUSH_TIMEOUT) -> None:
        """Push the metrics to a Pushgateway, grouped by job, operation and lineage.

        A successful run replaces its group; a failed one replaces only the series it sends,
        so the last success's time stays. ``https://user:password@host:9091`` sends the user
        and password as basic authentication.

        Raises:
            ConfigurationError: the run was not finished, or the URL is not http(s).
            StorageError: the Pushgateway could not be reached or refused the push (the
                message names its host, never the password).
        """
        self._check_finished()
        gateway, handler, host = _gateway(url)
        grouping = {"operation": self.operation, "lineage": self.lineage or "-"}
        try:
            if self._succeeded:
                push_to_gateway(
                    gateway,
                    job=job,
                    registry=self._registry,
                    grouping_key=grouping,
                    timeout=timeout,
                    handler=handler,
                )
            else:
                pushadd_to_gateway(
                    gateway,
                    job=job,
                    registry=_without_last_success(self._registry),
                    grouping_key=grouping,
                    timeout=timeout,
                    handler=handler,
                )
        except OSError as err:
            reason = getattr(err, "reason", None) or getattr(err, "code", None) or err
            raise StorageError(
                f"the Pushgateway at {host} did not take the metrics: {reason}", target=host
            ) from None

    def _check_finished(self) -> None:
        if self._succeeded is None:
            raise ConfigurationError("finish the run before writing its metrics")


def _label(text: str) -> str:
    r"""Make a label value the text format carries.

    Control characters other than a newline (which the format escapes) become ``\xNN``: a raw
    carriage return would break the line.
    """
    return "".join(
        f"\\x{ord(char):02x}" if (ord(char) < 0x20 and char != "\n") or ord(char) == 0x7F else char
        for char in text
    )


def _gateway(url: str) -> tuple[str, Callable[..., Callable[[], None]], str]:
    """The gateway URL without credentials, the handler sending them, and the host to name."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            "a Pushgateway URL starts with http:// or https:// and names a host"
        )
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    bare = urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))
    if parts.username is None:
        return bare, default_handler, host
    username = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")

    def handler(
        url: str, method: str, timeout: float | None, headers: list[tuple[str, str]], data: bytes
    ) -> Callable[[], None]:
        return basic_auth_handler(url, method, timeout, headers, data, username, password)

    return bare, handler, host


def _without_last_success(registry: CollectorRegistry) -> CollectorRegistry:
    """A registry with every series of ``registry`` except the last success's."""
    kept = CollectorRegistry()

    class _Copy:
        def collect(self) -> Any:
            return [family for family in registry.collect() if family.name != _LAST_SUCCESS]

    kept.register(_Copy())
    return kept


def _last_success(path: Path, operation: str, lineage: str) -> float | None:
    """The last success's time in an earlier textfile of the same job, if it has one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = sample.labels
                if (
                    sample.name == _LAST_SUCCESS
                    and labels.get("operation") == operation
                    and labels.get("lineage") == lineage
                ):
                    return float(sample.value)
    except ValueError:  # not the text format: replaced whole
        return None
    return None
