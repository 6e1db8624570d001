"""`crm local`'s Redis stand-in: one in-memory Redis shared over TCP, whose connections send each reply
at once (TCP_NODELAY), so a pipeline's replies never wait for the client's delayed ACK."""
from __future__ import annotations

import socket

import redis

from layers.runtime.local_redis import LocalRedisServer, start_local_redis


def test_accepted_connections_have_nagle_off() -> None:
    # GIVEN the stand-in's listening socket, and a client connecting to it
    server = LocalRedisServer(("127.0.0.1", 0))
    try:
        with socket.create_connection(server.server_address[:2]):
            # WHEN the server accepts the connection
            accepted, _ = server.get_request()
            with accepted:
                # THEN its replies go out without waiting for the previous one's ACK
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        server.server_close()


def test_clients_share_one_redis_and_pipelines_answer_in_order() -> None:
    # GIVEN the stand-in served on a free port, and two clients (as the server and worker processes are)
    server = start_local_redis()
    try:
        first = redis.Redis.from_url(server.url, decode_responses=True)
        second = redis.Redis.from_url(server.url, decode_responses=True)

        # WHEN one runs a pipeline like the rate limiter's, and the other reads
        pipe = first.pipeline(transaction=False)
        pipe.incr("limit:w")
        pipe.expire("limit:w", 60)
        pipe.incr("limit:w")
        replies = pipe.execute()

        # THEN each reply answers its own command, and the other client sees the same data
        assert replies == [1, True, 2]
        assert second.get("limit:w") == "2" and 0 < second.ttl("limit:w") <= 60
        first.close()
        second.close()
    finally:
        server.shutdown()
        server.server_close()
