"""Composition root: build the Chalice app, register middleware and every capability's Blueprint.

Entry points (`crm serve|local|migrate|invoke|...`) live in tiers/ (the `crm` command: tiers/cli.py) and import this
module by name, after Sentry is initialised.
"""
from __future__ import annotations

import importlib
import importlib.util

import sentry_sdk

from functions.activities.routes import bp as activities
from functions.ai.local_rules import RULES as AI_LOCAL_RULES
from functions.ai.routes import bp as ai
from functions.associations.routes import bp as associations
from functions.automations.routes import bp as automations
from functions.automations.service import event_types_with_rules
from functions.companies.routes import bp as companies
from functions.contacts.routes import bp as contacts
from functions.deals.routes import bp as deals
from functions.events.routes import bp as events
from functions.exports.routes import bp as exports
from functions.fields.routes import bp as fields
from functions.fields.service import definitions_for
from functions.imports.routes import bp as imports
from functions.maintenance.routes import bp as maintenance
from functions.merges.routes import bp as merges
from functions.pipelines.routes import bp as pipelines
from functions.realtime.routes import bp as realtime
from functions.reports.routes import bp as reports
from functions.system.routes import bp as system
from functions.webhooks.routes import bp as webhooks
from functions.webhooks.service import event_types_with_webhooks
from functions.workspaces.routes import bp as workspaces
from functions.workspaces.service import Resolver
from functions.workspaces.teams import teammates
from layers.ai.providers.local import use_local_rules
from layers.auth.verifier import get_verifier
from layers.cache.ratelimit import FailureBudget
from layers.http.adapter import ChaliceWSGIAdapter
from layers.http.chalice_app import CrmChalice
from layers.http.middleware import (
    AuthMiddleware,
    ConditionalGetMiddleware,
    ErrorMiddleware,
    IdempotencyMiddleware,
    RateLimitMiddleware,
)
from layers.queue.outbox import use_event_consumers
from layers.records.custom import use_definitions_provider
from layers.records.owners import use_teammates_provider
from shared.settings import get_settings

settings = get_settings()
app = CrmChalice(app_name="crm", configure_logs=False)  # logs are ours: one JSON line each

# Outermost first: errors wrap everything; auth before limits (limits are per credential).
app.register_middleware(ErrorMiddleware(capture=sentry_sdk.capture_exception), "http")
app.register_middleware(AuthMiddleware(app, Resolver(), get_verifier, FailureBudget(
    budget=settings.auth_failure_limit, window_seconds=settings.auth_failure_window_seconds,
    fallback_keys=settings.rate_limit_fallback_keys)), "http")
app.register_middleware(RateLimitMiddleware(app, settings), "http")
app.register_middleware(IdempotencyMiddleware(app), "http")
app.register_middleware(ConditionalGetMiddleware(), "http")

# Ports the records layer asks (it may not import capabilities): custom field definitions, teammates.
use_definitions_provider(definitions_for)
use_teammates_provider(teammates)
# The local AI provider (the default with no key) answers with the AI capability's deterministic rules.
use_local_rules(AI_LOCAL_RULES)

# Committed events go to these job handlers, each only the (workspace, event type) pairs it has work for:
# to the fan-out, the types an active webhook subscribes to; to automations, those an active rule's trigger
# listens to.
use_event_consumers({"webhooks_fanout": event_types_with_webhooks,
                     "automations_evaluate": event_types_with_rules})


def _with_jobs_and_schedules(capability: str, blueprint: object) -> object:
    """A capability's jobs.py and schedules.py add handlers to its Blueprint when imported."""
    for module in ("jobs", "schedules"):
        name = f"functions.{capability}.{module}"
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
    return blueprint


for capability, blueprint in (
    ("system", system), ("workspaces", workspaces), ("companies", companies), ("contacts", contacts),
    ("pipelines", pipelines), ("deals", deals), ("activities", activities), ("associations", associations),
    ("fields", fields), ("merges", merges), ("reports", reports), ("events", events), ("webhooks", webhooks),
    ("imports", imports), ("exports", exports), ("automations", automations), ("maintenance", maintenance),
    ("realtime", realtime), ("ai", ai),
):
    app.register_blueprint(_with_jobs_and_schedules(capability, blueprint))  # type: ignore[arg-type]

wsgi = ChaliceWSGIAdapter(
    app,
    max_body_bytes=settings.max_body_bytes,
    max_header_bytes=settings.max_header_bytes,
    trusted_proxy_hops=settings.trusted_proxy_hops,
    access_log=settings.access_log,
)
