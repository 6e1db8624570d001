"""A TCP proxy that can freeze or cut a real server's connections, for fault tests.

Tests must not SIGSTOP or kill the shared MariaDB and Redis (other runs use them), so a fault test
points the app at this proxy instead and breaks the link:

- `freeze()`: bytes stop flowing both ways; connections stay open and new ones are accepted but not
  served, as with a paused (SIGSTOP) or wedged server. `resume()` lets everything flow again, in order,
  exactly as a server that resumes answers what it had been sent.
- `cut()`: every connection is closed and new ones are refused (closed at once), as with a killed
  server; `resume()` accepts again.
- `freeze_before(pattern)`: freeze at the moment a client sends `pattern` (e.g. a COMMIT after some
  statement), holding those bytes back: the server has not seen them. `resume()` delivers them first,
  as a slow network would; `cut()` drops them, as a broken one would.
"""
from __future__ import annotations

import selectors
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._frozen = threading.Event()
        self._cut = False
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._pending: list[socket.socket] = []  # accepted while frozen: connected on resume
        self._trigger: tuple[bytes, bytes] | None = None  # (pattern, after): see freeze_before
        self._armed: set[socket.socket] = set()  # clients that sent `after`
        self._held: tuple[socket.socket, bytes] | None = None  # what the trigger kept from its server
        self.triggered = threading.Event()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()

    # ---- control -----------------------------------------------------------------------------------
    def freeze(self) -> None:
        self._frozen.set()
        self._wake()

    def freeze_before(self, pattern: bytes, *, after: bytes = b"") -> None:
        """Freeze when a client sends bytes containing `pattern` (only on a connection that sent `after` before,
        if given); those bytes are held back. `triggered` is set when it happens."""
        with self._lock:
            self._trigger = (pattern, after)
            self._armed = set()
        self.triggered.clear()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            self._held = None
            pairs, self._pairs = self._pairs, []
            pending, self._pending = self._pending, []
        for a, b in pairs:
            _close(a)
            _close(b)
        for s in pending:
            _close(s)
        self._wake()

    def resume(self) -> None:
        with self._lock:
            self._cut = False
            held, self._held = self._held, None
        if held is not None:  # the loop relays nothing while frozen: the held bytes go first
            sink, data = held
            try:
                sink.setblocking(True)
                sink.sendall(data)
                sink.setblocking(False)
            except OSError:
                pass
        self._frozen.clear()
        self._wake()

    def close(self) -> None:
        self._stop.set()
        self._wake()
        self._thread.join(timeout=5)
        self.cut()
        _close(self._listener)
        _close(self._wake_r)
        _close(self._wake_w)

    @contextmanager
    def frozen(self) -> Iterator[None]:
        self.freeze()
        try:
            yield
        finally:
            self.resume()

    # ---- the loop ----------------------------------------------------------------------------------
    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            _close(client)
            return
        upstream.setblocking(False)
        client.setblocking(False)
        with self._lock:
            self._pairs.append((client, upstream))

    def _run(self) -> None:
        while not self._stop.is_set():
            selector = selectors.DefaultSelector()
            selector.register(self._wake_r, selectors.EVENT_READ, None)
            selector.register(self._listener, selectors.EVENT_READ, None)
            frozen = self._frozen.is_set()
            with self._lock:
                pairs = list(self._pairs)
                pending = list(self._pending) if not frozen and not self._cut else []
                if pending:
                    self._pending = []
            for client in pending:
                self._connect(client)
            if pending:
                with self._lock:
                    pairs = list(self._pairs)
            if not frozen:
                for a, b in pairs:
                    for source, sink, from_client in ((a, b, True), (b, a, False)):
                        try:
                            selector.register(source, selectors.EVENT_READ, (source, sink, from_client))
                        except (ValueError, KeyError, OSError):
                            pass
            for key, _ in selector.select(timeout=0.2):
                if key.fileobj is self._wake_r:
                    try:
                        self._wake_r.recv(4096)
                    except OSError:
                        pass
                elif key.fileobj is self._listener:
                    self._accept()
                elif not self._frozen.is_set():
                    source, sink, from_client = key.data
                    self._relay(source, sink, from_client)
            selector.close()

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        with self._lock:
            if self._cut:
                _close(client)
                return
            if self._frozen.is_set():
                self._pending.append(client)
                return
        self._connect(client)

    def _relay(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            data = source.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data and from_client and self._triggers(source, data):
            with self._lock:
                self._held = (sink, data)
            self._frozen.set()
            self.triggered.set()
            return
        if data:
            try:
                sink.setblocking(True)
                sink.sendall(data)
                sink.setblocking(False)
                return
            except OSError:
                pass
        with self._lock:
            self._pairs = [p for p in self._pairs if source not in p and sink not in p]
        _close(source)
        _close(sink)


    def _triggers(self, source: socket.socket, data: bytes) -> bool:
        with self._lock:
            if self._trigger is None:
                return False
            pattern, after = self._trigger
            if after and after in data:
                self._armed.add(source)
                return False
            if pattern in data and (not after or source in self._armed):
                self._trigger = None
                return True
            return False


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
