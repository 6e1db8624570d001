"""Automations capability."""
