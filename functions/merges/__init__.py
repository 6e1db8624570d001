"""Duplicate detection and merging of contacts and companies (undoable for 30 days)."""
