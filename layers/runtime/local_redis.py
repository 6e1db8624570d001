"""The Redis stand-in of `crm local`: fakeredis served over TCP, so the API server and the worker (other
processes) share one in-memory Redis.

fakeredis' TCP server writes each reply of a pipeline with its own send, on sockets with Nagle's
algorithm on: the second reply waited for the client's ACK of the first, which the client delays up to
40 ms. Every authenticated request runs a pipeline (the rate limits), so every one took ~45 ms in
local mode. Accepted connections get TCP_NODELAY here, as real Redis sets on its clients' sockets.
"""
from __future__ import annotations

import socket
import threading
from typing import Any

from fakeredis import TcpFakeServer


class LocalRedisServer(TcpFakeServer):
    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, server_type="redis")
        self.daemon_threads = True  # a connection's thread must not keep the process alive at exit

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"redis://{host!s}:{port}/0"


def start_local_redis(host: str = "127.0.0.1") -> LocalRedisServer:
    """Serve a fresh stand-in on a free port of `host`, in a daemon thread."""
    server = LocalRedisServer((host, 0))
    threading.Thread(target=server.serve_forever, daemon=True, name="local-redis").start()
    return server
