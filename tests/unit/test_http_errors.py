"""Every domain error has exactly one HTTP status, from one table; the error body has one builder."""

import json

from messaging import errors
from messaging.http_errors import error_body, error_headers, status_of, validation_error


def _error_classes(base: type = errors.DomainError) -> list[type]:
    found = []
    for subclass in base.__subclasses__():
        found.extend([subclass, *_error_classes(subclass)])
    return found


def test_every_domain_error_maps_to_a_status():
    for kind in _error_classes():
        assert 400 <= status_of(kind("x")) < 600, kind


def test_statuses_and_retry_hints_of_the_errors_clients_see():
    assert status_of(errors.RequestInFlight("x")) == 409
    assert error_headers(errors.RequestInFlight("x")) == {"Retry-After": "1"}
    assert status_of(errors.ServiceUnavailable("x")) == 503
    assert error_headers(errors.ServiceUnavailable("x")) == {"Retry-After": "5"}
    assert error_headers(errors.InvalidInput("x")) == {}
    in_flight = errors.DeliveryInFlight("x", retry_after_seconds=7)
    assert (status_of(in_flight), error_headers(in_flight)) == (409, {"Retry-After": "7"})


def test_error_body_is_the_one_error_shape():
    assert json.loads(error_body("not_found", "no such thing", "id")) == {
        "error": {"code": "not_found", "message": "no such thing", "field": "id"}
    }


def test_a_header_is_named_as_the_api_documents_it_not_by_its_lower_case_alias():
    problem = {"loc": ("header", "idempotency-key"), "msg": "String should have at most 255 characters"}
    status, code, message, field = validation_error([problem])
    assert (status, code, field) == (422, "invalid_input", "Idempotency-Key")
    assert message.startswith("Idempotency-Key: ")
    assert validation_error([{"loc": ("header", "x-signature-timestamp"), "msg": "bad"}])[3] == "X-Signature-Timestamp"
    # Body fields keep their own spelling.
    assert validation_error([{"loc": ("body", "messaging_provider_id"), "msg": "bad"}])[3] == "messaging_provider_id"
