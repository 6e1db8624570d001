"""Contacts: the people you sell to, unique by normalised email."""
