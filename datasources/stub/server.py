"""The stub source server: the synthetic world over HTTP, with the same latency and faults.

Besides the faults of the stub adapters it knows wire-level faults for testing the HTTP
adapters: ``status:NNN`` (answer that status), ``reset`` (drop the connection with a TCP
reset), ``oversize`` (an answer far larger than any client limit, without a length),
``wrong_schema`` (valid JSON that is no record) and ``no_record`` (an explicit 404).
"""

from __future__ import annotations

import contextlib
import logging
import random
import select
import signal
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from datasources import SCOPES
from datasources.http import wire
from datasources.identity import parse_national_id
from datasources.stub.adapters import StubWorld
from datasources.stub.behaviour import FaultSpec, LatencyModel

log = logging.getLogger(__name__)

# A hung request is released when its client leaves, the server stops, or after this long.
HANG_MAX_S = 300.0
OVERSIZE_BYTES = 4 * 1024 * 1024
_ROUTES = {wire.query_path(scope): scope for scope in SCOPES}


class StubSourceServer(ThreadingHTTPServer):
    """A threading HTTP server answering source queries from a stub world."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], world: StubWorld,
                 latency: LatencyModel | None = None, faults: FaultSpec | None = None, *,
                 seed: int | None = 0) -> None:
        self.world = world
        self.latency = latency or LatencyModel()
        self.faults = faults or FaultSpec()
        self.stopping = threading.Event()
        self.request_counts: Counter[str] = Counter()  # queries received, per scope
        self.connections_opened = 0
        self.in_progress = 0  # queries being answered right now (hung ones included)
        self._rngs = {scope: random.Random(None if seed is None else f"{seed}:{scope}")
                      for scope in SCOPES}
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        """Return the base URL clients use."""
        host, port = self.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def draw(self, scope: str) -> tuple[float, float]:
        """Count one query of ``scope`` and draw its delay (s) and fault roll."""
        with self._lock:
            self.request_counts[scope] += 1
            rng = self._rngs[scope]
            return self.latency.for_scope(scope).sample_s(rng), rng.random()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self.connections_opened += 1
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("stub source server: connection error", exc_info=True)

    def stop(self) -> None:
        """Stop serving, release hung requests and drop idle keep-alive connections."""
        self.stopping.set()
        self.shutdown()
        with self._lock:
            still_open = list(self._open)
        for sock in still_open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so clients' pools are exercised
    server_version = "flashloan-stub-sources"
    sys_version = ""
    timeout = 60  # idle keep-alive connections are closed after this long
    # Headers and body go out in separate writes; without this, Nagle's algorithm and the
    # client's delayed ACK add some 40 ms to every answer.
    disable_nagle_algorithm = True
    server: StubSourceServer

    def log_message(self, format: str, *args: Any) -> None:
        # The path never carries an ID; still, request logs go to debug only.
        log.debug("stub source server: " + format, *args)

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._send(200, b'{"ok":true}')
        else:
            self._send(404, wire.encode_error("not_found", "no such resource"))

    def do_POST(self) -> None:
        scope = _ROUTES.get(self.path)
        length = self.headers.get("Content-Length", "")
        if scope is None:
            self._discard_body(length)
            self._send(404, wire.encode_error("not_found", "no such source"))
            return
        if not length.isdigit() or int(length) > wire.MAX_QUERY_BYTES:
            self.close_connection = True
            self._send(413 if length.isdigit() else 411,
                       wire.encode_error("bad_request", "query must have a small body"))
            return
        try:
            nid = parse_national_id(wire.decode_query(self.rfile.read(int(length)))).number
        except ValueError:  # InvalidNationalId too; its message would echo part of the ID
            self._send(422, wire.encode_error("invalid_query",
                                              "query must carry one valid national_id"))
            return
        with self.server._lock:
            self.server.in_progress += 1
        try:
            self._answer(scope, nid)
        finally:
            with self.server._lock:
                self.server.in_progress -= 1

    def _answer(self, scope: str, nid: str) -> None:
        delay, roll = self.server.draw(scope)
        fault = self.server.faults.for_scope(scope)
        kind, arg = (fault.kind, fault.arg) if fault is not None else (None, None)
        if kind == "hang":
            delay = HANG_MAX_S
        elif kind == "slow":
            delay = (arg or 0.0) / 1000
        if (delay > 0 and not self._wait(delay)) or kind == "hang":
            self.close_connection = True  # the client left, the server stops, or it hangs
            return
        if kind == "error" and roll < (1.0 if arg is None else arg):
            self._send(503, wire.encode_error("unavailable", "source temporarily unavailable"))
        elif kind == "status":
            status = int(arg or 500)
            self._send(status, wire.encode_error("injected", f"injected HTTP {status}"))
        elif kind == "reset":
            self._reset()
        elif kind == "malformed":
            self._send(200, b'{"scope": "' + scope.encode() + b'", "record": {"has_')
        elif kind == "wrong_schema":
            self._send(200, b'{"scope": "' + scope.encode() + b'", "record": {"unexpected": 1}}')
        elif kind == "no_record":
            self._send(404, wire.encode_error(wire.NO_RECORD, "the source has nothing on file"))
        elif kind == "oversize":
            self._send_oversize()
        else:
            self._send(200, wire.encode_answer(scope, self.server.world.record(scope, nid)))

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", wire.JSON_TYPE)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _send_oversize(self) -> None:
        # No Content-Length: the client must enforce its limit while streaming.
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", wire.JSON_TYPE)
        self.send_header("Connection", "close")
        self.end_headers()
        chunk = b" " * 65536
        with contextlib.suppress(OSError):
            self.wfile.write(b'{"padding": "')
            for _ in range(OVERSIZE_BYTES // len(chunk)):
                self.wfile.write(chunk)

    def _reset(self) -> None:
        self.close_connection = True
        # Linger 0 makes close() send a TCP RST instead of an orderly FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.wfile.close()
        self.connection.close()

    def _discard_body(self, length: str) -> None:
        if length.isdigit() and int(length) <= wire.MAX_QUERY_BYTES:
            self.rfile.read(int(length))
        else:
            self.close_connection = True

    def _wait(self, seconds: float) -> bool:
        """Wait ``seconds``; return False early if the client hung up or the server stops."""
        remaining = seconds
        step = 0.05
        while remaining > 0:
            if self.server.stopping.is_set():
                return False
            pause = min(step, remaining)
            readable, _, _ = select.select([self.connection], [], [], pause)
            if readable and self._client_gone():
                return False
            remaining -= pause
        return not self.server.stopping.is_set()

    def _client_gone(self) -> bool:
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True


def make_server(host: str, port: int, world: StubWorld, latency: LatencyModel | None = None,
                faults: FaultSpec | None = None, **kwargs: Any) -> StubSourceServer:
    """Bind a stub source server (port 0 picks a free port); call ``serve_forever`` to run."""
    return StubSourceServer((host, port), world, latency, faults, **kwargs)


class _Terminated(Exception):
    """SIGTERM arrived."""


def _terminate(signum: int, frame: Any) -> None:
    raise _Terminated


def serve(host: str, port: int, world: StubWorld, latency: LatencyModel | None = None,
          faults: FaultSpec | None = None, *, ready: Any = None) -> None:
    """Serve until SIGINT or SIGTERM; ``ready`` is called with the server once it listens."""
    server = make_server(host, port, world, latency, faults)
    # Process managers stop with SIGTERM, and a shell's background jobs ignore SIGINT.
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        if ready is not None:
            ready(server)
        server.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, _Terminated):
        pass
    finally:
        server.stopping.set()
        server.server_close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def running_server(world: StubWorld, latency: LatencyModel | None = None,
                   faults: FaultSpec | None = None, *, host: str = "127.0.0.1",
                   port: int = 0, **kwargs: Any) -> Iterator[StubSourceServer]:
    """Run a stub source server on a background thread for the duration of the block."""
    server = make_server(host, port, world, latency, faults, **kwargs)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="stub-source-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join(timeout=5)
