"""Instants that exist with their offset but not in UTC (year 1 east of Greenwich, year 9999 west of it)
are refused as invalid timestamps on every write route, and nothing is written."""

import pytest

from tests.conftest import response_json, sample_body, sample_event

WRITE_ROUTES = [
    ("SendMessageFunction", "send_message-sms"),
    ("SendMessageFunction", "send_message-email"),
    ("InboundSmsFunction", "inbound_sms-sms"),
    ("InboundEmailFunction", "inbound_email-email"),
]
OVERFLOWING_INSTANTS = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:30:00+00:31"]


@pytest.mark.parametrize("timestamp", OVERFLOWING_INSTANTS)
@pytest.mark.parametrize(("function", "event_name"), WRITE_ROUTES)
def test_an_instant_outside_utc_is_422_naming_timestamp(invoke, db, function, event_name, timestamp):
    payload = {**sample_body(event_name), "timestamp": timestamp}
    response = invoke(function, sample_event(event_name, payload=payload))
    assert response["statusCode"] == 422, response
    error = response_json(response)["error"]
    assert (error["code"], error["field"]) == ("invalid_input", "timestamp")
    assert db.counts() == {"messages": 0, "conversations": 0, "mock_provider_deliveries": 0}
