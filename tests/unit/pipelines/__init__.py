"""Unit tests of the pipeline rules."""
