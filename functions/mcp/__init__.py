"""Agent access over MCP: the REST use cases as MCP tools (tools.py), run with the REST rules (server.py),
served over streamable HTTP at /mcp on the api tier (http.py) and over stdio by `crm mcp` (stdio.py).
No routes, models or repository of its own: every tool calls another capability's service."""
