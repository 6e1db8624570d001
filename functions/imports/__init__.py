"""Imports capability."""
