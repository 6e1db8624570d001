"""Entry points of the tiers: the HTTP server, the CLI, local all-in-one mode, handler invocation."""
