"""Pipelines and their ordered stages (probability, open/won/lost)."""
