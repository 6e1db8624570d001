"""Exports capability."""
