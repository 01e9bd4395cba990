"""Domain errors. Each carries the HTTP status, a stable code and, when it applies, the offending field."""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def headers(self) -> dict[str, str]:
        return {}


class InvalidInput(DomainError):
    status_code = 422
    code = "invalid_input"


class MalformedRequest(DomainError):
    status_code = 400
    code = "malformed_request"


class Unauthorized(DomainError):
    status_code = 401
    code = "invalid_signature"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(DomainError):
    status_code = 415
    code = "unsupported_media_type"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class ServiceUnavailable(DomainError):
    status_code = 503
    code = "service_unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


class RequestInFlight(Conflict):
    """A twin request with the same Idempotency-Key has not finished yet."""

    code = "request_in_flight"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class RecipientOptedOut(InvalidInput):
    """The recipient is suppressed for this sender (opted out, bounced, complained, or blocked)."""

    code = "recipient_opted_out"
