"""Domain errors: a stable code, a message and, when it applies, the offending field. They know nothing of
HTTP: the HTTP layer (messaging.http_errors) maps each class to a status."""

from __future__ import annotations


class DomainError(Exception):
    code = "bad_request"
    # When a retry may succeed, in seconds (None: retrying the same request will not help).
    retry_after_seconds: int | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    code = "invalid_input"


class MalformedRequest(DomainError):
    code = "malformed_request"


class Unauthorized(DomainError):
    code = "invalid_signature"


class NotFound(DomainError):
    code = "not_found"


class PayloadTooLarge(DomainError):
    code = "payload_too_large"


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"


class Conflict(DomainError):
    code = "conflict"


class ServiceUnavailable(DomainError):
    """A dependency (the database, a secret store) cannot serve us right now."""

    code = "service_unavailable"
    retry_after_seconds = 5


class RequestInFlight(Conflict):
    """A twin request with the same Idempotency-Key has not finished yet."""

    code = "request_in_flight"
    retry_after_seconds = 1


class DeliveryInFlight(Conflict):
    """A webhook delivery's attempt is in flight (a worker holds its lease): it cannot be retried now."""

    code = "delivery_in_flight"
    retry_after_seconds = 1

    def __init__(self, message: str, *, field: str | None = None, retry_after_seconds: int | None = None) -> None:
        super().__init__(message, field=field)
        if retry_after_seconds is not None:  # when the lease runs out
            self.retry_after_seconds = retry_after_seconds


class RecipientOptedOut(InvalidInput):
    """The recipient is suppressed for this sender (opted out, bounced, complained, or blocked)."""

    code = "recipient_opted_out"
