"""Helpers shared by tests (no fixtures here; conftest wires them)."""
