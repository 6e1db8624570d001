"""Maintenance capability."""
