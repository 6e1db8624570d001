"""What the WSGI server imports in each worker: Sentry first, then the app (its integration needs that order)."""
from __future__ import annotations

import importlib

from layers.observability.sentry import init_sentry
from shared.settings import get_settings

init_sentry(get_settings())
application = importlib.import_module("app").wsgi
