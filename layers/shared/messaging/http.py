"""The HTTP API resolver every API function uses, and its responses: JSON documents and the one error shape.

The rules it applies live in their own modules: request checks in messaging.http_requests, error statuses
and bodies in messaging.http_errors, Powertools workarounds in messaging.powertools_adapter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel

from messaging import config
from messaging.config import RequestLimitSettings
from messaging.db.engine import UNWRAPPED_NETWORK_ERRORS
from messaging.errors import DomainError, ServiceUnavailable, UnsupportedMediaType
from messaging.http_errors import ERROR_DESCRIPTIONS, error_body, error_headers, status_of, validation_error
from messaging.http_requests import JSON_MEDIA_TYPE, check_envelope, check_query, raw_body, request_headers
from messaging.models import ErrorResponse
from messaging.observability import logger
from messaging.pagination import MAX_LIMIT, MAX_ROW_ID
from messaging.powertools_adapter.resolver import PowertoolsHttpResolver
from messaging.signatures import WebhookVerifier

__all__ = [
    "BODY_ERRORS",
    "JSON_MEDIA_TYPE",
    "READ_ERRORS",
    "MessagingApi",
    "documented",
    "error_response",
    "json_response",
    "request_headers",
]


def error_response(
    status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=error_body(code, message, field),
        headers=headers,
    )


def json_response(status: int, document: BaseModel | dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    if isinstance(document, BaseModel):
        body = document.model_dump_json(by_alias=True)  # pydantic-core's serializer: no dict in between
    else:
        body = json.dumps(document, separators=(",", ":"))
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


BODY_ERRORS = (400, 413, 415, 422, 503)
READ_ERRORS = (404, 422, 503)


def documented(
    status: int, model: Any, description: str, errors: tuple[int, ...], error_descriptions: dict[int, str] | None = None
) -> dict[int, Any]:
    """OpenAPI `responses` of a route: its success document and the error documents it can answer with
    (`error_descriptions`: the route's own wording of a status, where it says more than the generic one)."""
    responses: dict[int, Any] = {
        status: {"description": description, "content": {"application/json": {"model": model}}}
    }
    for code in sorted(errors):
        responses[code] = {
            "description": (error_descriptions or {}).get(code, ERROR_DESCRIPTIONS[code]),
            "content": {"application/json": {"model": ErrorResponse}},
        }
    return responses


class MessagingApi(PowertoolsHttpResolver):
    """The HTTP API resolver every function uses: validation on, one JSON error shape everywhere."""

    def __init__(
        self,
        webhook_verifier: Callable[[], WebhookVerifier | None] | None = None,
        array_body_paths: frozenset[str] = frozenset(),
    ) -> None:
        """`webhook_verifier` gives the signature verifier of a webhook function (None: unsigned);
        `array_body_paths` are the paths whose body is a JSON array (a provider's event batch)."""
        super().__init__(enable_validation=True)
        self._webhook_verifier = webhook_verifier
        self._array_body_paths = array_body_paths
        self.exception_handler(DomainError)(self._domain_error)
        self.exception_handler(RequestValidationError)(self._validation_error)
        self.exception_handler(RequestUnsupportedContentType)(self._unsupported_media_type)
        self.exception_handler(list(UNWRAPPED_NETWORK_ERRORS))(self._network_error)
        self.not_found(self._no_route)

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        request = dict(event)
        proxy = self.proxy_event(request)
        try:
            route = self.route_for(proxy)
            if route is not None:  # otherwise the resolver answers 404 or 405, before any body check
                # An action without a body (POST /api/webhook-deliveries/{id}/retry) may come with none at all.
                if self.declares_body(route) or raw_body(request).strip():
                    verifier = self._webhook_verifier() if self._webhook_verifier is not None else None
                    check_envelope(
                        request,
                        verifier,
                        config.current(RequestLimitSettings).max_request_bytes,
                        array_body=proxy.path in self._array_body_paths,
                    )
                check_query(proxy.query_string_parameters or {}, self.declared_query_parameters(route))
        except DomainError as error:
            return self.answer(self._domain_error(error), proxy)
        return super().resolve(request, context)

    @staticmethod
    def _domain_error(error: DomainError) -> Response:
        status = status_of(error)
        if status >= 500:
            logger.warning("dependency unavailable", extra={"error": error.message})
        return error_response(status, error.code, error.message, error.field, error_headers(error) or None)

    def _no_route(self, _error: NotFoundError) -> Response:
        """No route for this method and path in this function: 405 with Allow when the path has other methods."""
        method = self.current_event.http_method.upper()
        path = self.current_event.path
        allowed = self.allowed_methods(path)
        if allowed:
            return error_response(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "method_not_allowed",
                f"{method} is not allowed on {path}; use {', '.join(allowed)}",
                headers={"Allow": ", ".join(allowed)},
            )
        return error_response(HTTPStatus.NOT_FOUND, "not_found", f"no route for {method} {path}")

    @classmethod
    def _network_error(cls, error: Exception) -> Response:
        """A socket timeout or reset the driver did not wrap (a database that accepts but never answers)."""
        logger.warning("network error reaching a dependency", extra={"error": type(error).__name__})
        return cls._domain_error(ServiceUnavailable("a dependency is unavailable; retry later"))

    @classmethod
    def _unsupported_media_type(cls, _error: RequestUnsupportedContentType) -> Response:
        """Powertools' own media-type refusal, in the one error shape (the envelope check runs first, so
        this is a backstop)."""
        return cls._domain_error(UnsupportedMediaType(f"Content-Type must be {JSON_MEDIA_TYPE}", field="Content-Type"))

    @staticmethod
    def _validation_error(error: RequestValidationError) -> Response:
        return error_response(*validation_error(error.errors()))


# The parameters every list and every path id share, declared once (limits and id range are one rule each).
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
Cursor = Annotated[str | None, Query(max_length=200, description="Opaque cursor from a page's next_cursor")]
Id = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
