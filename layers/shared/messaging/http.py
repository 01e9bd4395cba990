"""HTTP plumbing shared by every API function: request checks, one error shape, JSON responses."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError

from messaging.config import get_settings
from messaging.errors import (
    DomainError,
    InvalidInput,
    MalformedRequest,
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
)
from messaging.models import ErrorResponse
from messaging.observability import logger
from messaging.signatures import WebhookVerifier

_BODY_METHODS = {"POST", "PUT", "PATCH"}
JSON_MEDIA_TYPE = "application/json"


def error_response(
    status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"error": {"code": code, "message": message, "field": field}}),
        headers=headers,
    )


def json_response(status: int, document: BaseModel | dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    if isinstance(document, BaseModel):
        body = document.model_dump_json(by_alias=True)  # pydantic-core's serializer: no dict in between
    else:
        body = json.dumps(document, separators=(",", ":"))
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


_ERROR_DESCRIPTIONS = {
    400: "Malformed request: the body is not JSON, or not a JSON object",
    401: "Missing, invalid or expired webhook signature",
    404: "Unknown id",
    409: "A twin request with the same Idempotency-Key is still in flight (see Retry-After)",
    413: "Request body too large",
    415: "Content-Type is not application/json",
    422: "A field is missing or invalid; `field` names it",
    503: "The database is unavailable (see Retry-After). Usually nothing was written, but a reply lost after the"
    " commit is a 503 too: retry a send with the same Idempotency-Key, never without",
}
BODY_ERRORS = (400, 413, 415, 422, 503)
READ_ERRORS = (404, 422, 503)


def documented(status: int, model: Any, description: str, errors: tuple[int, ...]) -> dict[int, Any]:
    """OpenAPI `responses` of a route: its success document and the error documents it can answer with."""
    responses: dict[int, Any] = {
        status: {"description": description, "content": {"application/json": {"model": model}}}
    }
    for code in sorted(errors):
        responses[code] = {
            "description": _ERROR_DESCRIPTIONS[code],
            "content": {"application/json": {"model": ErrorResponse}},
        }
    return responses


def _raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body)
        except ValueError:
            raise MalformedRequest("request body is not valid base64", field="body") from None
    return body.encode()


def request_headers(event: Mapping[str, Any]) -> dict[str, str]:
    """The event's headers by lower-cased name. A name given twice in different cases (a direct invoke;
    API Gateway lower-cases names) is joined with a comma, as API Gateway joins a repeated header: no
    check ever decides by whichever copy happens to come last."""
    joined: dict[str, str] = {}
    for name, value in (event.get("headers") or {}).items():
        key = name.lower()
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


def _check_json_media_type(content_type: str) -> None:
    """One rule for every route: `application/json` in any case, with parameters (charset UTF-8 only)."""
    media_type, *parameters = content_type.split(";")
    if media_type.strip().lower() != JSON_MEDIA_TYPE:
        raise UnsupportedMediaType(
            f"Content-Type must be {JSON_MEDIA_TYPE} (got {media_type.strip()[:100] or 'none'})", field="Content-Type"
        )
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType("a JSON body must be UTF-8 (charset=utf-8)", field="Content-Type")


def _check_envelope(event: dict[str, Any], verifier: WebhookVerifier | None) -> None:
    """Checks that come before validation: size, signature, media type and JSON syntax of a request body."""
    method = event.get("requestContext", {}).get("http", {}).get("method", "GET").upper()
    if method not in _BODY_METHODS:
        return
    raw = _raw_body(event)
    limit = get_settings().max_request_bytes
    if len(raw) > limit:
        raise PayloadTooLarge(f"request body is {len(raw)} bytes; the limit is {limit}")
    headers = request_headers(event)
    if verifier is not None:
        verifier.verify(headers, raw)
    _check_json_media_type(headers.get("content-type", ""))
    # Powertools parses the body only when the header starts with a lower-case "application/json": hand it
    # the canonical form of what was accepted here, so the two never disagree.
    headers["content-type"] = JSON_MEDIA_TYPE
    event["headers"] = headers
    if not raw.strip():
        raise MalformedRequest("request body is empty; a JSON object is required", field="body")
    try:
        text = raw.decode("utf-8")  # JSON between systems is UTF-8 (RFC 8259); refuse UTF-16/32 and stray bytes
    except UnicodeDecodeError:
        raise MalformedRequest("request body is not valid UTF-8", field="body") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise MalformedRequest(f"request body is not valid JSON: {exc}", field="body") from None
    except RecursionError:
        raise MalformedRequest("request body is nested too deeply", field="body") from None
    if not isinstance(document, dict):
        raise MalformedRequest("request body must be a JSON object", field="body")
    if event.get("isBase64Encoded"):
        event["body"] = text
        event["isBase64Encoded"] = False


def _check_query(event: Any, route: Any) -> None:
    """A query parameter the route's handler does not declare is a 422 naming it: a client whose filter
    is ignored would silently get everything."""
    declared = {parameter.alias for parameter in route.dependant.query_params}
    for name in event.query_string_parameters or {}:
        if name not in declared:
            accepted = ", ".join(sorted(declared)) or "none"
            raise InvalidInput(f"unknown query parameter '{name}' (this route accepts: {accepted})", field=name)


# SQLSTATE classes and codes that say "the database cannot serve us right now", not "this request is wrong":
# connection exception, insufficient resources (too many connections), operator intervention (shutdown,
# starting up, statement timeout), transaction rollback (serialization failure, deadlock), invalid
# authorization (credentials being rotated), unknown database, lock not available, read-only transaction
# (connected to a reader after a failover).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57", "40", "28")
_UNAVAILABLE_SQLSTATES = {"3D000", "55P03", "25006"}


def _sqlstate(error: DBAPIError) -> str:
    arguments = getattr(error.orig, "args", ())
    details = arguments[0] if arguments else None
    return str(details.get("C", "")) if isinstance(details, dict) else ""


def database_unavailable(error: DBAPIError) -> bool:
    """True when a driver error means the database is unavailable (answer 503), not a defect (a 500)."""
    if error.connection_invalidated or isinstance(error.orig, OSError):
        return True
    state = _sqlstate(error)
    return state[:2] in _UNAVAILABLE_SQLSTATE_CLASSES or state in _UNAVAILABLE_SQLSTATES


def _field_of(location: tuple[Any, ...]) -> str | None:
    if location and location[0] in ("body", "query", "path", "header", "cookie"):
        location = location[1:]
    return ".".join(str(part) for part in location) or None


class MessagingApi(APIGatewayHttpResolver):
    """The HTTP API resolver every function uses: validation on, one JSON error shape everywhere."""

    def __init__(self, webhook_verifier: Callable[[], WebhookVerifier | None] | None = None) -> None:
        """`webhook_verifier` gives the signature verifier of a webhook function (None: unsigned)."""
        super().__init__(enable_validation=True)
        self._webhook_verifier = webhook_verifier
        self.exception_handler(DomainError)(self._domain_error)
        self.exception_handler(RequestValidationError)(self._validation_error)
        self.exception_handler(RequestUnsupportedContentType)(self._unsupported_media_type)
        self.exception_handler(DBAPIError)(self._database_error)
        self.exception_handler([TimeoutError, ConnectionError])(self._network_error)
        self.not_found(self._no_route)

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        request = dict(event)
        proxy_event: Any = self._to_proxy_event(request)
        try:
            route = self._route_for(proxy_event)
            if route is not None:  # otherwise the resolver answers 404 or 405, before any body check
                verifier = self._webhook_verifier() if self._webhook_verifier is not None else None
                _check_envelope(request, verifier)
                _check_query(proxy_event, route)
        except DomainError as error:
            return ResponseBuilder(self._domain_error(error)).build(proxy_event)
        return super().resolve(request, context)

    def _route_for(self, event: Any) -> Any:
        """The route of this function that matches the request's method and path, exactly as the resolver
        will route it (its path has a non-default stage stripped); None when there is none."""
        method, path = event.http_method.upper(), event.path
        return next((route for route in self._routes() if route.method == method and route.rule.match(path)), None)

    def _routes(self) -> tuple[Any, ...]:
        return (*self._static_routes, *self._dynamic_routes)

    @staticmethod
    def _domain_error(error: DomainError) -> Response:
        headers = error.headers() or None
        if error.status_code >= 500:
            logger.warning("dependency unavailable", extra={"error": error.message})
        return error_response(error.status_code, error.code, error.message, error.field, headers)

    def _no_route(self, _error: NotFoundError) -> Response:
        """No route for this method and path in this function: 405 with Allow when the path has other methods."""
        method = self.current_event.http_method.upper()
        path = self.current_event.path
        allowed = sorted({route.method for route in self._routes() if route.rule.match(path)})
        if allowed:
            return error_response(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "method_not_allowed",
                f"{method} is not allowed on {path}; use {', '.join(allowed)}",
                headers={"Allow": ", ".join(allowed)},
            )
        return error_response(HTTPStatus.NOT_FOUND, "not_found", f"no route for {method} {path}")

    @classmethod
    def _database_error(cls, error: DBAPIError) -> Response:
        """The database refused or dropped us (the transaction was rolled back): 503. Anything else is a
        defect and propagates, so Lambda counts it as an error."""
        if not database_unavailable(error):
            raise error
        return cls._domain_error(ServiceUnavailable("the database is unavailable; retry later"))

    @classmethod
    def _network_error(cls, error: TimeoutError | ConnectionError) -> Response:
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
        problems = error.errors()
        first = problems[0] if problems else {"loc": (), "msg": "invalid request", "type": "value_error"}
        location = tuple(first.get("loc", ()))
        context = first.get("ctx")
        named = context.get("field") if isinstance(context, dict) else None  # a rule over fields names one
        if named:
            location = (*location, named)
        field = _field_of(location)
        message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
        kind = first.get("type", "")
        if kind == "json_invalid":
            return error_response(HTTPStatus.BAD_REQUEST, "malformed_request", "request body is not valid JSON", "body")
        if kind == "missing":
            message = f"'{field}' is required" if field else "a required field is missing"
        elif kind == "extra_forbidden":
            message = f"unknown field '{field}'"
        elif field and not message.startswith(f"'{field}'"):
            message = f"{field}: {message}"
        return error_response(HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_input", message, field)
