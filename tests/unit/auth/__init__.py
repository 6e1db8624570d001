"""Unit tests of the auth layer."""
