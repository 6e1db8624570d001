"""Webhook routes: subscriptions (admin), secret rotation, the delivery log, redelivery and test pings."""
from __future__ import annotations

from chalice import Blueprint
from chalice.app import Response

from functions.webhooks import service
from functions.webhooks.schemas import (
    DeliveriesQuery,
    DeliveryDetail,
    DeliveryPage,
    DeliveryRead,
    ListQuery,
    RedeliverRequest,
    WebhookCreate,
    WebhookPage,
    WebhookRead,
    WebhookUpdate,
    WebhookWithSecret,
)
from layers.http.endpoint import CURSOR_PARAM, LIMIT_PARAM, QueryParam, endpoint
from layers.http.requests import json_response, no_content, parse_body, parse_query, scope_of

bp = Blueprint(__name__)
TAG = "Webhooks"
BASE = "/v1/webhooks"
STATUS_PARAM = QueryParam("status", {"type": "string", "enum": ["pending", "succeeded", "failed"]},
                          "Only deliveries in this status")


@bp.route(BASE, methods=["POST"], name="webhooks_create")
@endpoint(summary="Subscribe a URL to events; the signing secret is in this answer only", permission="admin",
          tag=TAG, request=WebhookCreate, response=WebhookWithSecret, status=201, errors=(400, 409, 422))
def create_webhook() -> Response:
    request = bp.current_request
    created = service.create_webhook(scope_of(request), parse_body(request, WebhookCreate))
    return json_response(created, 201, {"Location": f"{BASE}/{created.id}"})


@bp.route(BASE, methods=["GET"], name="webhooks_list")
@endpoint(summary="List webhooks (oldest first)", permission="admin", tag=TAG, response=WebhookPage,
          errors=(422,), query=(LIMIT_PARAM, CURSOR_PARAM))
def list_webhooks() -> Response:
    request = bp.current_request
    query = parse_query(request, ListQuery)
    return json_response(service.list_webhooks(scope_of(request), limit=query.limit, cursor=query.cursor))


@bp.route(f"{BASE}/{{webhook_id}}", methods=["GET"], name="webhooks_get")
@endpoint(summary="Get a webhook (with its health: `failing` after a delivery gave up)", permission="admin",
          tag=TAG, response=WebhookRead, errors=(404,))
def get_webhook(webhook_id: str) -> Response:
    return json_response(service.get_webhook(scope_of(bp.current_request), webhook_id))


@bp.route(f"{BASE}/{{webhook_id}}", methods=["PATCH"], name="webhooks_update")
@endpoint(summary="Change a webhook's URL, event types, filter, description or active flag", permission="admin",
          tag=TAG, request=WebhookUpdate, response=WebhookRead, errors=(400, 404, 422))
def update_webhook(webhook_id: str) -> Response:
    request = bp.current_request
    data = parse_body(request, WebhookUpdate)
    return json_response(service.update_webhook(scope_of(request), webhook_id, data))


@bp.route(f"{BASE}/{{webhook_id}}", methods=["DELETE"], name="webhooks_delete")
@endpoint(summary="Delete a webhook and its delivery log", permission="admin", tag=TAG, status=204, errors=(404,))
def delete_webhook(webhook_id: str) -> Response:
    service.delete_webhook(scope_of(bp.current_request), webhook_id)
    return no_content()


@bp.route(f"{BASE}/{{webhook_id}}/rotate-secret", methods=["POST"], name="webhooks_rotate_secret")
@endpoint(summary="New signing secret (shown once); the previous one also signs for 24 hours",
          permission="admin", tag=TAG, response=WebhookWithSecret, errors=(404,))
def rotate_secret(webhook_id: str) -> Response:
    return json_response(service.rotate_secret(scope_of(bp.current_request), webhook_id))


@bp.route(f"{BASE}/{{webhook_id}}/deliveries", methods=["GET"], name="webhooks_deliveries_list")
@endpoint(summary="A webhook's deliveries, newest first", permission="admin", tag=TAG, response=DeliveryPage,
          errors=(404, 422), query=(LIMIT_PARAM, CURSOR_PARAM, STATUS_PARAM))
def list_deliveries(webhook_id: str) -> Response:
    request = bp.current_request
    query = parse_query(request, DeliveriesQuery)
    return json_response(service.list_deliveries(scope_of(request), webhook_id, limit=query.limit,
                                                 cursor=query.cursor, status=query.status))


@bp.route(f"{BASE}/{{webhook_id}}/deliveries/{{delivery_id}}", methods=["GET"], name="webhooks_deliveries_get")
@endpoint(summary="One delivery with its event and every attempt", permission="admin", tag=TAG,
          response=DeliveryDetail, errors=(404,))
def get_delivery(webhook_id: str, delivery_id: str) -> Response:
    return json_response(service.get_delivery(scope_of(bp.current_request), webhook_id, delivery_id))


@bp.route(f"{BASE}/{{webhook_id}}/redeliver", methods=["POST"], name="webhooks_redeliver")
@endpoint(summary="Send an event of the event log again, as a new delivery", permission="admin", tag=TAG,
          request=RedeliverRequest, response=DeliveryRead, status=202, errors=(400, 404, 422))
def redeliver(webhook_id: str) -> Response:
    request = bp.current_request
    data = parse_body(request, RedeliverRequest)
    return json_response(service.redeliver(scope_of(request), webhook_id, data.event_id), 202)


@bp.route(f"{BASE}/{{webhook_id}}/test", methods=["POST"], name="webhooks_test")
@endpoint(summary="Send a signed `webhook.test` ping", permission="admin", tag=TAG, response=DeliveryRead,
          status=202, errors=(404,))
def send_test(webhook_id: str) -> Response:
    return json_response(service.send_test(scope_of(bp.current_request), webhook_id), 202)
