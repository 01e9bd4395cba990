"""How errors look over HTTP: the status of each domain error, the one error body, and what Powertools'
validation errors become. Free of Powertools, so the local runner builds its own errors here too."""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from messaging.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    MalformedRequest,
    NotFound,
    PayloadTooLarge,
    RecipientOptedOut,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)
from messaging.models import ErrorDetail, ErrorResponse

# The one table from domain errors to statuses. A subclass takes its nearest listed ancestor's status
# (RequestInFlight is a Conflict: 409); tests/unit/test_http_errors.py checks every error class has one.
STATUS_OF_ERROR: dict[type[DomainError], HTTPStatus] = {
    MalformedRequest: HTTPStatus.BAD_REQUEST,
    Unauthorized: HTTPStatus.UNAUTHORIZED,
    NotFound: HTTPStatus.NOT_FOUND,
    Conflict: HTTPStatus.CONFLICT,
    PayloadTooLarge: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    UnsupportedMediaType: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    InvalidInput: HTTPStatus.UNPROCESSABLE_ENTITY,
    RecipientOptedOut: HTTPStatus.UNPROCESSABLE_ENTITY,  # a send to a suppressed recipient
    ServiceUnavailable: HTTPStatus.SERVICE_UNAVAILABLE,
}

# What each error status means on this API (the OpenAPI descriptions of error responses).
ERROR_DESCRIPTIONS = {
    400: "Malformed request: the body is not JSON, or not a JSON object",
    401: "Missing, invalid or expired webhook signature",
    404: "Unknown id",
    409: "In flight: a twin request with the same Idempotency-Key, or an attempt of that webhook delivery (see"
    " Retry-After); or a conflicting state (a delivery of a disabled endpoint, a resend of a message not failed)",
    413: "Request body too large",
    415: "Content-Type is not application/json",
    422: "A field is missing or invalid; `field` names it",
    503: "The database is unavailable (see Retry-After), or a webhook cannot be verified yet (no usable signing"
    " secret configured). Usually nothing was written, but a reply lost after the commit is a 503 too: retry a send"
    " with the same Idempotency-Key, never without",
}


def status_of(error: DomainError) -> HTTPStatus:
    for kind in type(error).__mro__:
        if kind in STATUS_OF_ERROR:
            return STATUS_OF_ERROR[kind]
    raise LookupError(f"{type(error).__name__} has no HTTP status: add it to STATUS_OF_ERROR")


def error_headers(error: DomainError) -> dict[str, str]:
    return {} if error.retry_after_seconds is None else {"Retry-After": str(error.retry_after_seconds)}


def error_body(code: str, message: str, field: str | None = None) -> str:
    """The one error document, {"error": {"code", "message", "field"}}, as JSON."""
    return ErrorResponse(error=ErrorDetail(code=code, message=message, field=field)).model_dump_json()


def canonical_header(name: str) -> str:
    """A header's name as the API documents it (`Idempotency-Key`, `X-Signature`, `Content-Type`): API
    Gateway lower-cases header names, so a handler declares them by their lower-case alias."""
    return "-".join(word[:1].upper() + word[1:].lower() for word in name.split("-"))


def _field_of(location: tuple[Any, ...]) -> str | None:
    if location and location[0] == "header" and len(location) > 1:
        location = (canonical_header(str(location[1])), *location[2:])
    elif location and location[0] in ("body", "query", "path", "header", "cookie"):
        location = location[1:]
    return ".".join(str(part) for part in location) or None


def validation_error(problems: Sequence[Any]) -> tuple[HTTPStatus, str, str, str | None]:
    """Status, code, message and field of a request that failed validation (pydantic's error list): the
    first problem, worded for a client, naming its field."""
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
        return HTTPStatus.BAD_REQUEST, "malformed_request", "request body is not valid JSON", "body"
    if field is None and kind in ("too_short", "too_long"):
        field = "body"  # the size of a whole batch (a JSON array body)
    if kind == "missing":
        message = f"'{field}' is required" if field else "a required field is missing"
    elif kind == "extra_forbidden":
        message = f"unknown field '{field}'"
    elif field and not message.startswith(f"'{field}'"):
        message = f"{field}: {message}"
    return HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_input", message, field
