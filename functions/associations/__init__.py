"""Labelled many-to-many links between contacts, companies, deals (and activities)."""
