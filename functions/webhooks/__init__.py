"""Webhooks capability."""
