"""Unit tests of the deals rules and currency table."""
