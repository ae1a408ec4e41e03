"""A small HTTP-aware TCP proxy on loopback that breaks S3 traffic on purpose.

`FaultyProxy` listens on ``127.0.0.1`` and forwards each HTTP/1.1 request to an upstream endpoint
(the Ceph RGW of the test suite), one request at a time per connection. Per request, a seeded draw
decides whether it goes wrong, and how:

* ``latency``: wait a little before forwarding;
* ``drop_request``: read the request, forward nothing, close the connection;
* ``slowdown`` / ``server_error``: answer ``503 SlowDown`` / ``500 InternalError`` with S3's XML
  error body, without forwarding;
* ``drop_response``: forward the request (it takes effect upstream), then close the connection
  halfway through the answer;
* ``truncate``: forward, then answer a GET with a shorter body and a matching ``Content-Length``
  (a lying server: nothing at the HTTP level shows the loss);
* ``flip``: forward, then answer a GET with one byte of the body flipped.

Every fault injected is counted by kind in `ProxyPlan.injected`. Bodies are read by
``Content-Length`` or relayed chunk by chunk (chunked bodies are never damaged).
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import BinaryIO, Final

import attrs

#: Faults answered by the proxy itself, without forwarding the request.
LOCAL: Final = ("drop_request", "slowdown", "server_error")
#: Faults applied to the upstream's answer to a forwarded request.
RESPONSE: Final = ("drop_response", "truncate", "flip")
#: Every kind, latency included.
KINDS: Final = ("latency", *LOCAL, *RESPONSE)

_ERRORS: Final = {
    "slowdown": (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    "server_error": (500, "Internal Server Error", "InternalError", "We encountered an error."),
}
_MAX_HEAD: Final = 64 * 1024


@attrs.define
class ProxyPlan:
    """Which faults the proxy injects, at what rates (per request), and how many it injected.

    Attributes:
        seed: seeds the draws.
        latency: chance of a delay before forwarding; ``max_latency`` bounds it (seconds).
        drop_request, slowdown, server_error, drop_response, truncate, flip: chances per request
            (exclusive; body damage applies to successful GETs with a body only).
        enabled: ``False`` makes the proxy transparent.
        injected: faults injected so far, by kind.
    """

    seed: int = 0
    latency: float = 0.0
    max_latency: float = 0.005
    drop_request: float = 0.0
    slowdown: float = 0.0
    server_error: float = 0.0
    drop_response: float = 0.0
    truncate: float = 0.0
    flip: float = 0.0
    enabled: bool = True
    injected: Counter[str] = attrs.field(factory=Counter)
    _rng: random.Random = attrs.field(init=False, repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def __attrs_post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - not for secrets

    def reseed(self, seed: int) -> None:
        """Start a new reproducible sequence of draws."""
        with self._lock:
            self.seed = seed
            self._rng = random.Random(seed)  # noqa: S311 - not for secrets

    @property
    def total(self) -> int:
        """Faults injected so far."""
        return sum(self.injected.values())

    def count(self, kind: str) -> None:
        """Record one fault of ``kind``."""
        with self._lock:
            self.injected[kind] += 1

    def decide(self) -> tuple[float, str | None, random.Random]:
        """Draw a delay, a fault kind (or ``None``) and a generator for the fault's details."""
        with self._lock:
            if not self.enabled:
                return 0.0, None, random.Random(0)  # noqa: S311
            rng = random.Random(self._rng.getrandbits(64))  # noqa: S311
        delay = rng.uniform(0, self.max_latency) if rng.random() < self.latency else 0.0
        if delay:
            self.count("latency")
        draw = rng.random()
        for kind in (*LOCAL, *RESPONSE):
            rate = float(getattr(self, kind))
            if draw < rate:
                return delay, kind, rng
            draw -= rate
        return delay, None, rng


@attrs.define
class _Message:
    """One HTTP message: its start line and header lines as received, and its body parts."""

    start: bytes
    headers: list[tuple[str, str]]
    body: bytes = b""
    chunked_raw: bytes | None = None

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    def head_bytes(self, *, drop: frozenset[str] = frozenset()) -> bytes:
        lines = [self.start]
        lines += [f"{k}: {v}".encode("latin-1") for k, v in self.headers if k.lower() not in drop]
        return b"\r\n".join(lines) + b"\r\n\r\n"


def _read_head(stream: BinaryIO) -> tuple[bytes, list[tuple[str, str]]] | None:
    start = stream.readline(_MAX_HEAD)
    while start in (b"\r\n", b"\n"):  # tolerate stray blank lines between messages
        start = stream.readline(_MAX_HEAD)
    if not start:
        return None
    headers: list[tuple[str, str]] = []
    while True:
        line = stream.readline(_MAX_HEAD)
        if not line:
            raise ConnectionError("connection closed inside a message head")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    return start.rstrip(b"\r\n"), headers


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise ConnectionError("connection closed inside a message body")
    return data


def _read_chunked(stream: BinaryIO) -> bytes:
    raw = bytearray()
    while True:
        line = stream.readline(_MAX_HEAD)
        if not line:
            raise ConnectionError("connection closed inside a chunked body")
        raw += line
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while True:  # trailers, then the blank line
                trailer = stream.readline(_MAX_HEAD)
                raw += trailer
                if trailer in (b"\r\n", b"\n", b""):
                    return bytes(raw)
        raw += _read_exact(stream, size + 2)


def _read_body(stream: BinaryIO, message: _Message, *, has_body: bool) -> None:
    if not has_body:
        return
    if (message.header("Transfer-Encoding") or "").lower() == "chunked":
        message.chunked_raw = _read_chunked(stream)
        return
    length = message.header("Content-Length")
    if length is not None:
        message.body = _read_exact(stream, int(length))


def _canned(kind: str, method: str) -> bytes:
    status, reason, code, text = _ERRORS[kind]
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>{text}</Message>"
        "<RequestId>ctfy-fault-proxy</RequestId></Error>"
    ).encode()
    payload = b"" if method == "HEAD" else body
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(payload)}\r\nx-amz-request-id: ctfy-fault-proxy\r\n\r\n"
    ).encode()
    return head + payload


class FaultyProxy:
    """A threaded loopback proxy to ``upstream`` (``host``, ``port``), injecting ``plan``'s faults."""

    def __init__(self, upstream: tuple[str, int], plan: ProxyPlan) -> None:
        """Bind a free loopback port (nothing is served until `start`)."""
        self.upstream = upstream
        self.plan = plan
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The proxy's base URL, to use as an S3 ``endpoint_url``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start accepting connections in a background thread."""
        thread = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stop accepting, close every connection and wait for the threads."""
        self._stop.set()
        with self._lock:
            for sock in list(self._sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._server.close()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _close(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _address = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._track(client)
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            thread.start()
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        up_stream: BinaryIO | None = None
        stream = client.makefile("rb")
        try:
            while not self._stop.is_set():
                head = _read_head(stream)
                if head is None:
                    return
                request = _Message(*head)
                method = request.start.split(b" ", 1)[0].decode("latin-1")
                if (request.header("Expect") or "").lower() == "100-continue":
                    client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                _read_body(stream, request, has_body=True)
                delay, kind, rng = self.plan.decide()
                if delay:
                    time.sleep(delay)
                if kind == "drop_request":
                    self.plan.count(kind)
                    return
                if kind in _ERRORS:
                    self.plan.count(kind)
                    client.sendall(_canned(kind, method))
                    continue
                if upstream is None:
                    upstream = socket.create_connection(self.upstream, timeout=30)
                    self._track(upstream)
                    up_stream = upstream.makefile("rb")
                assert up_stream is not None
                upstream.sendall(request.head_bytes(drop=frozenset({"expect"})))
                upstream.sendall(request.chunked_raw or request.body)
                response = self._response(up_stream, method)
                if not self._answer(client, response, method, kind, rng):
                    return
                if (response.header("Connection") or "").lower() == "close":
                    self._close(upstream)
                    upstream, up_stream = None, None
        except (OSError, ValueError):
            return  # a peer went away (or the proxy is stopping): end this connection
        finally:
            stream.close()
            if up_stream is not None:
                up_stream.close()
            self._close(upstream)
            self._close(client)

    @staticmethod
    def _response(up_stream: BinaryIO, method: str) -> _Message:
        while True:
            head = _read_head(up_stream)
            if head is None:
                raise ConnectionError("upstream closed the connection")
            response = _Message(*head)
            status = int(response.start.split(b" ", 2)[1])
            if status >= 200:
                break  # an interim 1xx answer has no body; the real one follows
        has_body = method != "HEAD" and status not in (204, 304)
        _read_body(up_stream, response, has_body=has_body)
        return response

    def _answer(
        self,
        client: socket.socket,
        response: _Message,
        method: str,
        kind: str | None,
        rng: random.Random,
    ) -> bool:
        """Send the upstream's answer, damaged as ``kind`` says; ``False`` ends the connection."""
        status = int(response.start.split(b" ", 2)[1])
        body = response.body
        damageable = method == "GET" and status in (200, 206) and response.chunked_raw is None
        if kind == "drop_response":
            self.plan.count(kind)
            whole = response.head_bytes() + (response.chunked_raw or body)
            client.sendall(whole[: rng.randrange(max(1, len(whole) - 1))])
            return False
        if kind == "truncate" and damageable and body:
            self.plan.count(kind)
            body = body[: rng.randrange(len(body))]
            response.headers = [
                (k, str(len(body)) if k.lower() == "content-length" else v)
                for k, v in response.headers
            ]
        elif kind == "flip" and damageable and body:
            self.plan.count(kind)
            damaged = bytearray(body)
            damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
            body = bytes(damaged)
        client.sendall(response.head_bytes() + (response.chunked_raw or body))
        return True


@contextlib.contextmanager
def faulty_proxy(endpoint_url: str, plan: ProxyPlan) -> Iterator[FaultyProxy]:
    """Run a `FaultyProxy` in front of ``endpoint_url`` (``http://host:port``) while in the block."""
    address = endpoint_url.split("://", 1)[-1].rstrip("/")
    host, _, port = address.rpartition(":")
    proxy = FaultyProxy((host, int(port)), plan)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
