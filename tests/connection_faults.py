"""Real connection failures at COMMIT, for the tests of a commit whose outcome is unknown.

- :class:`CommitDroppingProxy`: a TCP proxy in front of PostgreSQL that, when armed, cuts a
  connection at its ``COMMIT`` — after the server answered it (the transaction is durable but
  the client never hears so) or before the server received it (nothing is committed) — and
  can then refuse every new connection, as an unreachable database would.
- :class:`FailingSqliteCommit`: the SQLite driver's commit, made to fail after committing
  for real (or after rolling back), as a disk error reported by the COMMIT would.

Both aim at the COMMIT of a transaction that inserted into a given table (``applications``:
a decision's), not at whichever transaction happens to commit next.
"""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import struct
import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import event

# Untyped first messages of the PostgreSQL protocol that do not end the start-up phase.
_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_COMMAND_COMPLETE_COMMIT = b"C" + struct.pack("!I", 4 + len(b"COMMIT\0")) + b"COMMIT\0"


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _cstrings(body: bytes, count: int) -> list[bytes]:
    """The first ``count`` NUL-terminated strings of a message body."""
    return body.split(b"\0", count)[:count]


class _Pair:
    """One client connection and its connection to the server."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client = client
        self.server = server
        self.awaiting_commit_reply = False
        self.wrote_target = False  # the open transaction inserted into the target table
        self.statements: dict[bytes, bool] = {}  # prepared statement -> inserts into it
        self.closed = threading.Event()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class CommitDroppingProxy:
    """Forward TCP connections to PostgreSQL; when armed, cut one at its COMMIT.

    ``arm("after")`` forwards the next COMMIT and cuts the connection once the server has
    answered it, withholding the answer; ``arm("before")`` cuts it without forwarding the
    COMMIT. ``refuse_after_drop`` makes the database unreachable from then on (every live
    connection is cut and new ones are closed at once) until :meth:`restore`.
    Plain-text protocol only: the URL it gives asks for ``sslmode=disable``.
    """

    def __init__(self, url: str, *, table: str = "applications") -> None:
        self._insert = f"INSERT INTO {table}".encode()
        parts = urlsplit(url)
        self._url = parts
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._pairs: list[_Pair] = []
        self._mode: str | None = None
        self._times = 0
        self._refuse_after_drop = False
        self.refusing = False
        self.drops = 0
        self._stopped = False
        self._threads: list[threading.Thread] = []
        self._spawn(self._accept_loop)

    @property
    def url(self) -> str:
        """The database URL through the proxy."""
        netloc = self._url.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.port}"
        netloc_text = f"{netloc[0]}@{host}" if len(netloc) == 2 else host
        query = "&".join(q for q in (self._url.query, "sslmode=disable") if q)
        return urlunsplit((self._url.scheme, netloc_text, self._url.path, query, ""))

    def arm(self, mode: str, *, times: int = 1, refuse_after_drop: bool = False) -> None:
        """Cut the next ``times`` COMMITs, ``after`` the server answered them or ``before``."""
        if mode not in ("after", "before"):
            raise ValueError(f"mode must be after or before; got {mode!r}")
        with self._lock:
            self._mode, self._times = mode, times
            self._refuse_after_drop = refuse_after_drop

    def disarm(self) -> None:
        with self._lock:
            self._mode, self._times = None, 0

    def restore(self) -> None:
        """Accept connections again."""
        with self._lock:
            self.refusing = False

    def close(self) -> None:
        self._stopped = True
        # Closing a socket does not wake a thread blocked in its accept(); shutting it does.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            pair.close()
        for thread in self._threads:
            thread.join(timeout=5)

    # -- internals -----------------------------------------------------------------------------

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True,
                                  name="commit-dropping-proxy")
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            try:
                server = socket.create_connection(self._upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            pair = _Pair(client, server)
            with self._lock:
                self._pairs.append(pair)
            self._spawn(self._client_to_server, pair)
            self._spawn(self._server_to_client, pair)

    def _take_commit(self, pair: _Pair) -> str | None:
        """The action for a COMMIT seen now: None to forward it as is."""
        wrote, pair.wrote_target = pair.wrote_target, False
        if not wrote:
            return None
        with self._lock:
            if self._mode is None or self._times <= 0:
                return None
            self._times -= 1
            mode = self._mode
            if self._times == 0:
                self._mode = None
            return mode

    def _drop(self, pair: _Pair) -> None:
        with self._lock:
            self.drops += 1
            refuse = self._refuse_after_drop
            if refuse:
                self.refusing = True
            pairs = list(self._pairs) if refuse else [pair]
        for each in pairs:
            each.close()

    def _client_to_server(self, pair: _Pair) -> None:
        try:
            starting = True
            while not pair.closed.is_set():
                if starting:
                    head = _recv_exactly(pair.client, 4)
                    (length,) = struct.unpack("!I", head)
                    body = _recv_exactly(pair.client, length - 4)
                    code = struct.unpack("!I", body[:4])[0] if len(body) >= 4 else 0
                    starting = code in (_SSL_REQUEST, _GSSENC_REQUEST)
                    pair.server.sendall(head + body)
                    continue
                head = _recv_exactly(pair.client, 5)
                kind, length = head[:1], struct.unpack("!I", head[1:])[0]
                body = _recv_exactly(pair.client, length - 4)
                self._note_statement(pair, kind, body)
                if kind == b"Q" and body.rstrip(b"\0").strip().upper() == b"COMMIT":
                    mode = self._take_commit(pair)
                    if mode == "before":
                        self._drop(pair)
                        return
                    if mode == "after":
                        pair.awaiting_commit_reply = True
                pair.server.sendall(head + body)
        except (OSError, ConnectionError):
            pass
        finally:
            pair.close()

    def _note_statement(self, pair: _Pair, kind: bytes, body: bytes) -> None:
        """Follow whether the open transaction inserted into the table (Query, Parse, Bind)."""
        if kind == b"Q":
            if self._insert in body:
                pair.wrote_target = True
            elif body.rstrip(b"\0").strip().upper() == b"ROLLBACK":
                pair.wrote_target = False
        elif kind == b"P":
            name, query = _cstrings(body, 2)
            pair.statements[name] = self._insert in query
        elif kind == b"B":
            _portal, name = _cstrings(body, 2)
            if pair.statements.get(name):
                pair.wrote_target = True

    def _server_to_client(self, pair: _Pair) -> None:
        try:
            pending = b""
            while not pair.closed.is_set():
                data = pair.server.recv(65536)
                if not data:
                    return
                if pair.awaiting_commit_reply:
                    # The server answered the COMMIT: it is durable. The client never hears.
                    pending += data
                    if _COMMAND_COMPLETE_COMMIT in pending or pending.startswith(b"E"):
                        self._drop(pair)
                        return
                    continue
                pair.client.sendall(data)
        except (OSError, ConnectionError):
            pass
        finally:
            pair.close()


class FailingSqliteCommit:
    """A SQLite engine's driver-level commit that fails, for real, after or instead of committing.

    Installed on one engine's dialect (each engine has its own). ``arm("after")`` commits the
    next transaction that inserted into ``table`` for real and then raises the driver's own
    error, as a COMMIT whose disk write succeeded but was reported as failed;
    ``arm("before")`` rolls it back and raises.
    """

    def __init__(self, engine: Any, *, table: str = "applications") -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self._insert = f"INSERT INTO {table}".lower()
        self._real = self.dialect.do_commit
        self._lock = threading.Lock()
        self._mode: str | None = None
        self._times = 0
        self._wrote: set[int] = set()  # driver connections whose transaction inserted
        self.failures = 0
        event.listen(engine, "before_cursor_execute", self._note_statement)
        event.listen(engine, "rollback", self._forget)
        self.dialect.do_commit = self

    def arm(self, mode: str, *, times: int = 1) -> None:
        if mode not in ("after", "before"):
            raise ValueError(f"mode must be after or before; got {mode!r}")
        with self._lock:
            self._mode, self._times = mode, times

    def remove(self) -> None:
        self.dialect.do_commit = self._real
        event.remove(self.engine, "before_cursor_execute", self._note_statement)
        event.remove(self.engine, "rollback", self._forget)

    def _note_statement(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().lower().startswith(self._insert):
            self._wrote.add(id(conn.connection.dbapi_connection))

    def _forget(self, conn: Any) -> None:
        self._wrote.discard(id(conn.connection.dbapi_connection))

    def __call__(self, connection: Any) -> None:
        wrote = id(connection.dbapi_connection) in self._wrote
        self._wrote.discard(id(connection.dbapi_connection))
        with self._lock:
            mode = self._mode if wrote and self._times > 0 else None
            if mode is not None:
                self._times -= 1
                self.failures += 1
        if mode == "before":
            connection.rollback()
        else:
            self._real(connection)
        if mode is not None:
            raise sqlite3.OperationalError("disk I/O error")
