"""Workspaces, members and roles, API keys, browser sessions."""
