"""Our Chalice subclass: thread-safe, and lets view errors reach our middleware.

Chalice keeps `current_request` on the app object and turns every view exception into its own
500 body before middleware sees it. Under a threaded server both are wrong, so the request is
kept per thread (as `chalice local` does) and view exceptions propagate to the error middleware,
which renders problem+json and reports to Sentry.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from chalice import Chalice
from chalice.app import Request, Response, RestAPIEventHandler


class _PropagatingHandler(RestAPIEventHandler):
    def _get_view_function_response(self, view_function: Callable[..., Any], function_args: dict[str, Any]) -> Response:
        response = view_function(**function_args)
        if not isinstance(response, Response):
            response = Response(body=response)
        self._validate_response(response)
        return response


class CrmChalice(Chalice):
    _local = threading.local()

    @property  # type: ignore[override]
    def current_request(self) -> Request | None:
        return getattr(self._local, "request", None)

    @current_request.setter
    def current_request(self, value: Request | None) -> None:
        self._local.request = value

    @property  # type: ignore[override]
    def lambda_context(self) -> Any:
        return getattr(self._local, "context", None)

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        self._local.context = value

    def __call__(self, event: Any, context: Any) -> dict[str, Any]:
        self.lambda_context = context
        handler = _PropagatingHandler(
            self.routes, self.api, self.log, self.debug, middleware_handlers=self._get_middleware_handlers("http")
        )
        self.current_request = handler.create_request_object(event, context)
        try:
            return handler(event, context)  # type: ignore[no-any-return]
        finally:
            self.current_request = None
