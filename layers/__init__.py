"""Shared infrastructure layers: one package per concern."""
