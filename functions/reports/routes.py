"""Report routes: aggregates computed by the database, limited to what the caller may see."""
from __future__ import annotations

from chalice import Blueprint
from chalice.app import Response

from functions.reports import service
from functions.reports.schemas import (
    ActivityReport,
    ActivityReportQuery,
    Forecast,
    ForecastQuery,
    PipelineSummary,
    PipelineSummaryQuery,
    WinRate,
    WinRateQuery,
)
from layers.http.endpoint import QueryParam, endpoint
from layers.http.requests import json_response, parse_query, scope_of

bp = Blueprint(__name__)
TAG = "Reports"

PIPELINE = QueryParam("pipeline_id", {"type": "string", "maxLength": 26}, "A pipeline (default: {default})")
FROM = QueryParam("from", {"type": "string", "format": "date"}, "First day included (UTC), YYYY-MM-DD")
TO = QueryParam("to", {"type": "string", "format": "date"}, "Last day included (UTC), YYYY-MM-DD")


def _pipeline(default: str) -> QueryParam:
    return QueryParam(PIPELINE.name, PIPELINE.schema, PIPELINE.description.format(default=default))


@bp.route("/v1/reports/pipeline-summary", methods=["GET"], name="reports_pipeline_summary")
@endpoint(summary="Deals per stage of a pipeline: count and amount per currency", permission="read", tag=TAG,
          response=PipelineSummary, errors=(404, 422), query=(_pipeline("the default pipeline"),))
def pipeline_summary() -> Response:
    request = bp.current_request
    return json_response(service.pipeline_summary(scope_of(request), parse_query(request, PipelineSummaryQuery)))


@bp.route("/v1/reports/forecast", methods=["GET"], name="reports_forecast")
@endpoint(summary="Weighted forecast by expected close month (amount × stage probability, open stages)",
          permission="read", tag=TAG, response=Forecast, errors=(404, 422),
          query=(_pipeline("every pipeline"), FROM, TO))
def forecast() -> Response:
    request = bp.current_request
    return json_response(service.forecast(scope_of(request), parse_query(request, ForecastQuery)))


@bp.route("/v1/reports/win-rate", methods=["GET"], name="reports_win_rate")
@endpoint(summary="Win rate and average sales cycle of deals closed in a date range (default: the last 90 days)",
          permission="read", tag=TAG, response=WinRate, errors=(404, 422),
          query=(_pipeline("every pipeline"), FROM, TO))
def win_rate() -> Response:
    request = bp.current_request
    return json_response(service.win_rate(scope_of(request), parse_query(request, WinRateQuery)))


@bp.route("/v1/reports/activities", methods=["GET"], name="reports_activities")
@endpoint(summary="Activity counts per owner and kind in a date range (default: the last 90 days)",
          permission="read", tag=TAG, response=ActivityReport, errors=(422,), query=(FROM, TO))
def activities() -> Response:
    request = bp.current_request
    return json_response(service.activity_counts(scope_of(request), parse_query(request, ActivityReportQuery)))
