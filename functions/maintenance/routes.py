"""Maintenance: no HTTP handlers; the Blueprint carries its scheduled handlers (schedules.py)."""
from __future__ import annotations

from chalice import Blueprint

bp = Blueprint(__name__)
