import time

import pytest

from messaging.errors import Unauthorized
from messaging.signatures import WebhookVerifier, signature, signature_headers

BODY = b'{"from": "+18045551234"}'
NOW = 1_730_469_600


def verifier(*secrets, tolerance=300):
    return WebhookVerifier(tuple(secrets), tolerance)


def test_a_valid_signature_passes():
    verifier("current").verify(signature_headers("current", BODY, NOW), BODY, now=NOW + 10)


def test_header_names_are_case_insensitive():
    headers = {name.lower(): value for name, value in signature_headers("current", BODY, NOW).items()}
    verifier("current").verify(headers, BODY, now=NOW)


def test_the_previous_secret_still_verifies_during_rotation():
    verifier("new", "old").verify(signature_headers("old", BODY, NOW), BODY, now=NOW)


def test_several_offered_signatures_one_matching_passes():
    headers = {"X-Signature-Timestamp": str(NOW), "X-Signature": f"v1={'0' * 64},v1={signature('k', NOW, BODY)}"}
    verifier("k").verify(headers, BODY, now=NOW)


@pytest.mark.parametrize(
    ("headers", "field", "message"),
    [
        ({}, "X-Signature", "not signed"),
        ({"X-Signature-Timestamp": str(NOW)}, "X-Signature", "not signed"),
        ({"X-Signature-Timestamp": "yesterday", "X-Signature": "v1=00"}, "X-Signature-Timestamp", "Unix seconds"),
        ({"X-Signature-Timestamp": str(NOW), "X-Signature": "v1=" + "0" * 64}, "X-Signature", "does not match"),
        ({"X-Signature-Timestamp": str(NOW), "X-Signature": "sha1=abc"}, "X-Signature", "does not match"),
    ],
)
def test_missing_or_malformed_signatures_are_refused(headers, field, message):
    with pytest.raises(Unauthorized, match=message) as refused:
        verifier("k").verify(headers, BODY, now=NOW)
    assert refused.value.field == field
    assert refused.value.status_code == 401


def test_a_wrong_secret_is_refused():
    with pytest.raises(Unauthorized, match="does not match"):
        verifier("k").verify(signature_headers("guess", BODY, NOW), BODY, now=NOW)


def test_a_tampered_body_is_refused():
    with pytest.raises(Unauthorized, match="does not match"):
        verifier("k").verify(signature_headers("k", BODY, NOW), BODY.replace(b"+1804", b"+1999"), now=NOW)


@pytest.mark.parametrize("skew", [-301, 301, -86_400, 10**6])
def test_old_and_future_timestamps_are_refused(skew):
    with pytest.raises(Unauthorized, match="expired"):
        verifier("k").verify(signature_headers("k", BODY, NOW), BODY, now=NOW - skew)


def test_a_signature_cannot_be_moved_to_another_timestamp():
    headers = signature_headers("k", BODY, NOW)
    headers["X-Signature-Timestamp"] = str(NOW + 1)
    with pytest.raises(Unauthorized, match="does not match"):
        verifier("k").verify(headers, BODY, now=NOW)


def test_signature_headers_default_to_now():
    headers = signature_headers("k", BODY)
    assert abs(int(headers["X-Signature-Timestamp"]) - time.time()) < 5
    verifier("k").verify(headers, BODY)
