"""Redis: the client and its local stand-in, cache-aside, rate limits, sessions, idempotency."""
