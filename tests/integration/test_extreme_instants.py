"""Instants that exist with their offset but not in UTC (year 1 east of Greenwich, year 9999 west of it)
are refused as invalid timestamps on every route that takes an instant, and nothing is written: message
writes, delivery receipts and email events, and the bounds of a message search."""

from urllib.parse import quote

import pytest

from tests.conftest import response_json, sample_body, sample_event

WRITE_ROUTES = [
    ("SendMessageFunction", "send_message-sms"),
    ("SendMessageFunction", "send_message-email"),
    ("InboundSmsFunction", "inbound_sms-sms"),
    ("InboundEmailFunction", "inbound_email-email"),
]
OVERFLOWING_INSTANTS = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:30:00+00:31"]


def refused_naming(response, field: str) -> None:
    assert response["statusCode"] == 422, response
    error = response_json(response)["error"]
    assert (error["code"], error["field"]) == ("invalid_input", field), error


def written(db) -> dict[str, int]:
    tables = ("messages", "conversations", "mock_provider_deliveries", "provider_receipts", "message_events")
    return {table: db.scalar(f"SELECT count(*) FROM {table}") for table in tables}


@pytest.mark.parametrize("timestamp", OVERFLOWING_INSTANTS)
@pytest.mark.parametrize(("function", "event_name"), WRITE_ROUTES)
def test_an_instant_outside_utc_is_422_naming_timestamp(invoke, db, function, event_name, timestamp):
    payload = {**sample_body(event_name), "timestamp": timestamp}
    response = invoke(function, sample_event(event_name, payload=payload))
    refused_naming(response, "timestamp")
    assert db.counts() == {"messages": 0, "conversations": 0, "mock_provider_deliveries": 0}


@pytest.mark.parametrize("timestamp", OVERFLOWING_INSTANTS)
def test_a_receipt_or_email_event_instant_outside_utc_is_422_naming_timestamp(invoke, db, timestamp):
    before = written(db)
    receipt = {**sample_body("inbound_sms-status"), "timestamp": timestamp}
    refused_naming(invoke("InboundSmsFunction", sample_event("inbound_sms-status", payload=receipt)), "timestamp")
    batch = sample_body("inbound_email-events")
    batch[1] = {**batch[1], "timestamp": timestamp}  # one bad event refuses the batch: none of it is applied
    response = invoke("InboundEmailFunction", sample_event("inbound_email-events", payload=batch))
    refused_naming(response, "1.timestamp")  # the event's position in the batch, then the field
    assert written(db) == before
    # The same receipt with a real instant is stored (held for its message): the check above can see a write.
    receipt["timestamp"] = "2024-11-01T14:00:05Z"
    assert invoke("InboundSmsFunction", sample_event("inbound_sms-status", payload=receipt))["statusCode"] == 200
    assert written(db) != before


@pytest.mark.parametrize("instant", OVERFLOWING_INSTANTS)
@pytest.mark.parametrize("bound", ["since", "until"])
def test_a_search_bound_outside_utc_is_422_naming_it(invoke, db, bound, instant):
    event = sample_event("conversations-find-messages")
    event["rawQueryString"] = f"{bound}={quote(instant, safe='')}"
    event["queryStringParameters"] = {bound: instant}
    refused_naming(invoke("ConversationsFunction", event), bound)
