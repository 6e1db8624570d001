"""Liveness, readiness, Prometheus metrics, the OpenAPI document and its docs page."""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from chalice import Blueprint
from chalice.app import Response

from functions.system.schemas import Health, OpenApiDocument, Readiness
from functions.system.service import readiness
from layers.http.endpoint import endpoint
from layers.http.openapi import build_openapi
from layers.http.requests import json_response
from layers.observability.metrics import render
from shared.errors import ServiceUnavailable

bp = Blueprint(__name__)
TAG = "System"
_DOCS_PAGE = (Path(__file__).parent / "docs.html").read_text()


@bp.route("/health", methods=["GET"], name="system_health")
@endpoint(summary="Liveness: the process answers (touches nothing)", permission="public", tag=TAG, response=Health,
          touches_database=False)
def health() -> Response:
    return json_response('{"status":"ok"}')


@bp.route("/ready", methods=["GET"], name="system_ready")
@endpoint(summary="Readiness: the database and Redis answer within 1.5 s (503 names the one that does not)",
          permission="public", tag=TAG, response=Readiness)
def ready() -> Response:
    checks = readiness()
    if not all(checks.values()):
        # An error like any other (problem+json), with the checks beside it for whoever looks.
        raise ServiceUnavailable("not ready: " + ", ".join(name for name, ok in checks.items() if not ok),
                                 headers={"Retry-After": "5"}, extra={"checks": checks})
    return json_response({"status": "ready", "checks": checks})


@bp.route("/metrics", methods=["GET"], name="system_metrics")
@endpoint(summary="Prometheus metrics (all worker processes)", permission="public", tag=TAG,
          content_type="text/plain", touches_database=False)
def metrics() -> Response:
    body, content_type = render()
    return Response(body=body.decode(), status_code=200, headers={"Content-Type": content_type})


@cache
def _openapi_document(app_id: int) -> str:
    return json.dumps(build_openapi(bp.current_app), separators=(",", ":"))


@bp.route("/v1/openapi.json", methods=["GET"], name="system_openapi")
@endpoint(summary="This API's OpenAPI 3.1 document", permission="public", tag=TAG, response=OpenApiDocument,
          touches_database=False)
def openapi() -> Response:
    return json_response(_openapi_document(id(bp.current_app)))


@bp.route("/docs", methods=["GET"], name="system_docs")
@endpoint(summary="API reference page (renders the OpenAPI document)", permission="public", tag=TAG,
          content_type="text/html", touches_database=False)
def docs() -> Response:
    return Response(body=_DOCS_PAGE, status_code=200, headers={"Content-Type": "text/html; charset=utf-8"})
