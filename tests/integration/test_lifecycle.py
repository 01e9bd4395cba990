"""The delivery lifecycle: receipts, held receipts and their race, lookups before failing, reconciliation,
and the history each transition writes."""

import json
import threading
import time
from datetime import UTC, datetime

import pytest

from messaging.signatures import signature_headers
from tests.conftest import response_json, sample_body, sample_event
from tests.integration.conftest import sqs_event


def send(invoke, name="send_message-sms", **changes):
    response = invoke("SendMessageFunction", sample_event(name, payload={**sample_body(name), **changes}))
    assert response["statusCode"] == 202, response["body"]
    return response_json(response)


def now_iso():
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def sms_receipt(invoke, provider_message_id, status="delivered", headers=None, **extra):
    body = {"messaging_provider_id": provider_message_id, "status": status, "timestamp": now_iso(), **extra}
    event = sample_event("inbound_sms-status", payload=body)
    if headers:
        event["headers"] = {**event["headers"], **{key.lower(): value for key, value in headers.items()}}
    return invoke("InboundSmsFunction", event)


def email_events(invoke, events, raw=None):
    event = sample_event("inbound_email-events", payload=events)
    if raw is not None:
        event["body"] = raw
    return invoke("InboundEmailFunction", event)


def history(invoke, message_id, query=""):
    event = sample_event("conversations-message-events")
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/api/messages/{message_id}/events"
    event["pathParameters"] = {"message_id": str(message_id)}
    if query:
        event["rawQueryString"] = query
        event["queryStringParameters"] = dict(pair.split("=", 1) for pair in query.split("&"))
    return invoke("ConversationsFunction", event)


def transitions(invoke, message_id):
    response = history(invoke, message_id, "limit=200")
    assert response["statusCode"] == 200, response["body"]
    return [
        (item["type"], item["previous_status"], item["status"], item["source"])
        for item in response_json(response)["items"]
    ]


def status_of(db, message_id):
    return db.scalar("SELECT status FROM messages WHERE id = :id", id=message_id)


@pytest.fixture
def receipts(queues, configure):
    """ProviderReceiptQueue in moto; `take()` returns the receipts the mocks scheduled (and empties it)."""
    url = queues.client.create_queue(QueueName="ProviderReceiptQueue")["QueueUrl"]
    configure(PROVIDER_RECEIPT_QUEUE_URL=url, MOCK_RECEIPT_DELAY_SECONDS=0)

    class Receipts:
        def take(self):
            messages = queues.receive_all(url)
            for message in messages:
                queues.client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            return [json.loads(message["Body"]) for message in messages]

    return Receipts()


def deliver(invoke, scheduled):
    """What MockReceiptFunction POSTs, handed to the status webhook's handler."""
    if scheduled["provider"] == "mock-email":
        return email_events(invoke, scheduled["receipt"])
    event = sample_event("inbound_sms-status", payload=scheduled["receipt"])
    return invoke("InboundSmsFunction", event)


def test_a_send_goes_queued_sent_delivered_and_its_history_says_so(invoke, db, receipts):
    message = send(invoke)
    assert message["status"] == "sent"
    [scheduled] = receipts.take()
    assert scheduled["receipt"]["messaging_provider_id"] == message["provider_message_id"]
    response = deliver(invoke, scheduled)
    assert response["statusCode"] == 200
    assert response_json(response) == {"outcome": "applied", "message_id": message["id"]}
    shown = response_json(invoke("ConversationsFunction", sample_event("conversations-message")))
    assert shown["status"] == "delivered"
    assert transitions(invoke, message["id"]) == [
        ("message.queued", None, "queued", "api"),
        ("message.sent", "queued", "sent", "api"),
        ("message.delivered", "sent", "delivered", "receipt"),
    ]
    assert db.scalar("SELECT receipt_outcome FROM mock_provider_deliveries") == "delivered"
    # A new pair: the conversation's creation is an event too (not part of the message's own history).
    assert db.scalar("SELECT count(*) FROM message_events WHERE type = 'conversation.created'") == 1


def test_duplicated_and_out_of_order_receipts_change_nothing(invoke, db, receipts):
    message = send(invoke)
    receipts.take()
    pmid = message["provider_message_id"]
    assert response_json(sms_receipt(invoke, pmid, "delivered"))["outcome"] == "applied"
    assert response_json(sms_receipt(invoke, pmid, "delivered"))["outcome"] == "duplicate"
    late = sms_receipt(invoke, pmid, "undelivered", error_code="30003")
    assert response_json(late) == {"outcome": "ignored", "message_id": message["id"]}
    assert status_of(db, message["id"]) == "delivered"
    assert [row[0] for row in transitions(invoke, message["id"])].count("message.delivered") == 1
    assert db.scalar("SELECT count(*) FROM message_events WHERE type = 'message.undelivered'") == 0


def test_an_undelivered_receipt_keeps_the_providers_code(invoke, db, receipts):
    message = send(invoke)
    response = sms_receipt(invoke, message["provider_message_id"], "undelivered", error_code="30006")
    assert response_json(response)["outcome"] == "applied"
    shown = response_json(invoke("ConversationsFunction", sample_event("conversations-message")))
    assert (shown["status"], shown["status_detail"]) == ("undelivered", "30006")
    assert transitions(invoke, message["id"])[-1] == ("message.undelivered", "sent", "undelivered", "receipt")


def test_a_receipt_before_our_sent_update_is_held_then_applied_when_the_id_is_recorded(
    invoke, db, receipts, configure, drain
):
    """The provider accepts, we never hear (timeout), its receipt arrives first without a client reference
    (a provider that does not echo one): held, then the retry's replay records the provider id and applies
    it in the same statement."""
    configure(MOCK_SMS_FAULTS="timeout", RETRY_BASE_SECONDS=0, MOCK_RETRY_AFTER_SECONDS=0)
    message = send(invoke)
    assert message["status"] == "retrying" and message["provider_message_id"] is None
    [scheduled] = receipts.take()
    del scheduled["receipt"]["client_reference"]
    held = deliver(invoke, scheduled)
    assert response_json(held) == {"outcome": "held", "message_id": None}
    assert db.scalar("SELECT count(*) FROM provider_receipts WHERE applied_at IS NULL") == 1
    assert status_of(db, message["id"]) == "retrying"
    drain()
    assert status_of(db, message["id"]) == "delivered"
    assert db.scalar("SELECT count(*) FROM provider_receipts WHERE applied_at IS NULL") == 0
    assert transitions(invoke, message["id"]) == [
        ("message.queued", None, "queued", "api"),
        ("message.retrying", "queued", "retrying", "api"),
        ("message.sent", "retrying", "sent", "retry"),
        ("message.delivered", "sent", "delivered", "receipt"),
    ]
    assert deliver(invoke, scheduled)["statusCode"] == 200  # the provider retrying its receipt: a duplicate
    assert db.scalar("SELECT count(*) FROM message_events WHERE type = 'message.delivered'") == 1


def test_a_receipt_written_while_the_sent_update_is_uncommitted_is_applied_by_the_sweep(invoke, db, receipts):
    """Each statement cannot see the other's uncommitted row: the receipt is held, the message commits as
    `sent`, and the sweep applies the held receipt. Nothing is lost, nothing applied twice."""
    from messaging.db import repository
    from messaging.db.engine import transaction
    from messaging.enums import EventSource

    stored = send(invoke)  # a sent message; rewind it to `retrying` without a provider id, as before its answer
    db.scalar(
        "UPDATE messages SET status = 'retrying', provider_message_id = NULL, attempts = 1 WHERE id = :id RETURNING 1",
        id=stored["id"],
    )
    receipts.take()
    answers = []
    with transaction() as connection:
        assert repository.mark_sent(connection, stored["id"], "mock-sms-racing", EventSource.RETRY) is not None
        # The receipt, written while that update is uncommitted: it cannot see the provider id (no wait).
        worker = threading.Thread(target=lambda: answers.append(sms_receipt(invoke, "mock-sms-racing")))
        worker.start()
        worker.join(timeout=120)
        assert not worker.is_alive(), "the receipt waited for the uncommitted update"
    assert [response["statusCode"] for response in answers] == [200], answers
    outcomes = [response_json(response)["outcome"] for response in answers]
    assert outcomes == ["held"]
    assert status_of(db, stored["id"]) == "sent"
    swept = invoke("RetrySweepFunction", sample_event("retry_sweep-scheduled"))
    assert swept["held_receipts_applied"] == 1
    assert status_of(db, stored["id"]) == "delivered"
    assert transitions(invoke, stored["id"])[-1] == ("message.delivered", "sent", "delivered", "receipt")
    assert invoke("RetrySweepFunction", sample_event("retry_sweep-scheduled"))["held_receipts_applied"] == 0


def test_a_receipt_naming_our_reference_waits_for_the_uncommitted_sent_update_and_applies(invoke, db, receipts):
    """A receipt that echoes our client reference finds the message by its id, whose row the `sent` update
    holds: it waits for that update's commit (it is not held), then applies as the receipt it is."""
    from messaging.db import repository
    from messaging.db.engine import transaction
    from messaging.enums import EventSource

    stored = send(invoke)
    db.scalar(
        "UPDATE messages SET status = 'retrying', provider_message_id = NULL, attempts = 1 WHERE id = :id RETURNING 1",
        id=stored["id"],
    )
    receipts.take()
    answers = []
    waiting_on_a_lock = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with transaction() as connection:
        assert repository.mark_sent(connection, stored["id"], "mock-sms-racing", EventSource.RETRY) is not None
        worker = threading.Thread(
            target=lambda: answers.append(sms_receipt(invoke, "mock-sms-racing", client_reference=str(stored["id"])))
        )
        worker.start()
        deadline = time.monotonic() + 120
        while not db.scalar(waiting_on_a_lock) and worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.is_alive() and answers == [], "the receipt did not wait for the uncommitted update"
        assert db.scalar(waiting_on_a_lock) == 1
    worker.join(timeout=120)
    assert not worker.is_alive()
    assert [response["statusCode"] for response in answers] == [200], answers
    assert response_json(answers[0]) == {"outcome": "applied", "message_id": stored["id"]}
    assert status_of(db, stored["id"]) == "delivered"
    assert transitions(invoke, stored["id"])[-1] == ("message.delivered", "sent", "delivered", "receipt")
    assert db.scalar("SELECT count(*) FROM provider_receipts WHERE applied_at IS NULL") == 0


def test_a_receipt_for_an_id_we_never_sent_is_held_and_forgotten_after_the_retention(invoke, db, configure):
    response = sms_receipt(invoke, "mock-sms-never-ours")
    assert response_json(response) == {"outcome": "held", "message_id": None}
    assert db.scalar("SELECT count(*) FROM messages") == 0
    db.scalar("UPDATE provider_receipts SET received_at = now() - interval '8 days' RETURNING 1")
    swept = invoke("RetrySweepFunction", sample_event("retry_sweep-scheduled"))
    assert swept["stale_held_receipts_purged"] == 1
    assert db.scalar("SELECT count(*) FROM provider_receipts") == 0


def test_a_receipt_never_touches_an_inbound_message(invoke, db):
    assert invoke("InboundSmsFunction", sample_event("inbound_sms-sms"))["statusCode"] == 200
    response = sms_receipt(invoke, sample_body("inbound_sms-sms")["messaging_provider_id"])
    assert response_json(response)["outcome"] == "held"
    assert db.scalar("SELECT status FROM messages") == "received"


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        # The first attempt timed out although the provider took it: it went out before the opt-out.
        ("timeout", ("sent", None, ("message.sent", "retrying", "sent", "reconciliation"))),
        # The first attempt was refused (500): it never went out, and now must not.
        ("500", ("failed", "recipient_opted_out", ("message.failed", "retrying", "failed", "retry"))),
    ],
)
def test_an_opt_out_after_an_unheard_attempt_asks_the_provider_before_failing(
    invoke, db, receipts, configure, drain, fault, outcome
):
    configure(MOCK_SMS_FAULTS=fault, MOCK_SMS_RECEIPTS="off", RETRY_BASE_SECONDS=0, MOCK_RETRY_AFTER_SECONDS=0)
    message = send(invoke)
    assert message["status"] == "retrying"
    accepted = db.scalar("SELECT count(*) FROM mock_provider_deliveries")
    assert accepted == (1 if fault == "timeout" else 0)
    suppressed = invoke("ConversationsFunction", sample_event("conversations-suppress"))  # STOP by phone
    assert suppressed["statusCode"] == 201, suppressed["body"]
    configure(MOCK_SMS_FAULTS=None)
    drain()
    status, detail, last = outcome
    assert (status_of(db, message["id"]), db.scalar("SELECT status_detail FROM messages")) == (status, detail)
    assert transitions(invoke, message["id"])[-1] == last
    assert db.scalar("SELECT count(*) FROM mock_provider_deliveries") == accepted  # nothing sent after the STOP


def test_the_scenario_of_the_issue_ends_sent_not_failed(invoke, db, receipts, configure, drain):
    """Accepted on the first attempt (unheard), then throttled until no attempt is left: the provider is
    asked before `failed` is declared, and says it has the message."""
    configure(MOCK_SMS_FAULTS="timeout,429,429", MAX_SEND_ATTEMPTS=3, RETRY_BASE_SECONDS=0, MOCK_RETRY_AFTER_SECONDS=0)
    message = send(invoke)
    drain()
    ledger = db.rows("SELECT * FROM mock_provider_deliveries")
    assert len(ledger) == 1
    row = db.rows("SELECT * FROM messages")[0]
    assert (row["status"], row["provider_message_id"], row["attempts"]) == ("sent", ledger[0]["provider_message_id"], 3)
    assert [event[0] for event in transitions(invoke, message["id"])] == [
        "message.queued",
        "message.retrying",
        "message.retrying",
        "message.sent",
    ]
    assert transitions(invoke, message["id"])[-1][3] == "reconciliation"


def test_an_attempt_the_sweep_re_enqueued_is_recorded_with_source_sweep(invoke, db, queues, configure, drain):
    """The retry's record was lost (SQS down when it was enqueued): the sweep re-enqueues the send, and the
    history names the sweep as the source of the attempt it brought about."""
    from messaging import queue

    configure(MOCK_SMS_FAULTS="429", MOCK_RETRY_AFTER_SECONDS=0, SEND_RETRY_QUEUE_URL=queues.retry_url + "-gone")
    message = send(invoke)
    assert message["status"] == "retrying"
    configure(SEND_RETRY_QUEUE_URL=queues.retry_url, SWEEP_GRACE_SECONDS=0, MOCK_SMS_FAULTS=None)
    db.scalar("UPDATE messages SET next_attempt_at = now() - interval '1 hour' RETURNING 1")
    assert invoke("RetrySweepFunction", sample_event("retry_sweep-scheduled"))["requeued"] == 1
    assert drain() == 1
    assert transitions(invoke, message["id"]) == [
        ("message.queued", None, "queued", "api"),
        ("message.retrying", "queued", "retrying", "api"),
        ("message.sent", "retrying", "sent", "sweep"),
    ]
    assert queue.parse_retry_body('{"message_id": 7}') == queue.RetryRecord(7)
    with pytest.raises(ValueError, match="not a retry source"):
        queue.parse_retry_body('{"message_id": 7, "source": "api"}')


def test_a_send_the_provider_never_accepted_is_failed_after_asking(invoke, db, receipts, configure):
    configure(MOCK_SMS_FAULTS="400")
    message = send(invoke)
    assert (message["status"], message["status_detail"]) == ("failed", "HTTP 400: injected fault")
    assert receipts.take() == []
    assert transitions(invoke, message["id"])[-1] == ("message.failed", "queued", "failed", "api")


@pytest.mark.parametrize("name", ["send_message-sms", "send_message-email"])
def test_a_delivered_receipt_settles_a_retrying_message_whose_answer_was_lost(
    invoke, db, receipts, configure, drain, name
):
    """The attempt timed out after the provider accepted it: the receipt finds the message by the client
    reference it echoes, records the provider id and moves `retrying` straight to `delivered`."""
    configure(MOCK_SMS_FAULTS="timeout", MOCK_EMAIL_FAULTS="timeout", RETRY_BASE_SECONDS=0, MOCK_RETRY_AFTER_SECONDS=0)
    message = send(invoke, name)
    assert (message["status"], message["provider_message_id"]) == ("retrying", None)
    [scheduled] = receipts.take()
    receipt = scheduled["receipt"][0] if name == "send_message-email" else scheduled["receipt"]
    assert receipt["client_reference"] == str(message["id"])
    answer = response_json(deliver(invoke, scheduled))
    assert answer.get("results", [answer]) == [{"outcome": "applied", "message_id": message["id"]}]
    ledger = db.rows("SELECT provider_message_id FROM mock_provider_deliveries")
    row = db.rows("SELECT status, provider_message_id FROM messages")[0]
    assert (row["status"], row["provider_message_id"]) == ("delivered", ledger[0]["provider_message_id"])
    drain()  # the retry finds the message settled and leaves it alone
    assert status_of(db, message["id"]) == "delivered"
    assert db.scalar("SELECT replay_count FROM mock_provider_deliveries") == 0
    assert transitions(invoke, message["id"]) == [
        ("message.queued", None, "queued", "api"),
        ("message.retrying", "queued", "retrying", "api"),
        ("message.delivered", "retrying", "delivered", "receipt"),
    ]
    assert deliver(invoke, scheduled)["statusCode"] == 200  # the provider retrying its receipt: a duplicate
    assert db.scalar("SELECT count(*) FROM message_events WHERE type = 'message.delivered'") == 1


@pytest.mark.parametrize(("outcome", "status"), [("delivered=1", "delivered"), ("undelivered=1", "undelivered")])
def test_only_a_receipt_corrects_failed_and_the_correction_is_an_event(
    invoke, db, receipts, configure, monkeypatch, outcome, status
):
    """The provider accepted the only attempt but its answer was lost (a timeout), and its lookup lagged
    behind (a status API not yet aware of the send): `failed`, without a provider id. Its receipt, found by
    the client reference, corrects the verdict and records the provider id."""
    from messaging.providers import Lookup
    from messaging.providers.mock import MockProvider

    configure(MOCK_SMS_FAULTS="timeout", MAX_SEND_ATTEMPTS=1, MOCK_SMS_RECEIPTS=outcome)
    monkeypatch.setattr(MockProvider, "lookup", lambda self, token: Lookup(accepted=False))
    message = send(invoke)
    assert (message["status"], message["provider_message_id"]) == ("failed", None)
    [scheduled] = receipts.take()
    assert response_json(deliver(invoke, scheduled)) == {"outcome": "applied", "message_id": message["id"]}
    row = db.rows("SELECT status, provider_message_id FROM messages")[0]
    ledger = db.rows("SELECT provider_message_id FROM mock_provider_deliveries")
    assert (row["status"], row["provider_message_id"]) == (status, ledger[0]["provider_message_id"])
    assert transitions(invoke, message["id"])[-2:] == [
        ("message.failed", "queued", "failed", "api"),
        (f"message.{status}", "failed", status, "receipt"),
    ]


def test_a_client_reference_never_claims_a_message_it_does_not_fit(invoke, db, receipts):
    """Only an outbound message of the receipt's provider without a provider id (or with the same one) is
    found by reference; otherwise the receipt is held as before, and nothing moves."""
    sms = send(invoke)
    email = send(invoke, "send_message-email")
    assert invoke("InboundSmsFunction", sample_event("inbound_sms-sms"))["statusCode"] == 200
    inbound_id = db.scalar("SELECT id FROM messages WHERE direction = 'inbound'")
    receipts.take()
    for reference in (sms["id"], email["id"], inbound_id, 999_999_999_999):  # carries another id; wrong provider
        response = sms_receipt(invoke, f"mock-sms-other-{reference}", client_reference=str(reference))
        assert response_json(response) == {"outcome": "held", "message_id": None}
    assert db.scalar("SELECT count(*) FROM messages WHERE status IN ('delivered', 'undelivered')") == 0
    assert db.scalar("SELECT count(*) FROM provider_receipts WHERE applied_at IS NULL") == 4
    # The provider id first: a receipt naming a known provider id is applied to its message, whatever reference.
    response = sms_receipt(invoke, sms["provider_message_id"], client_reference=str(email["id"]))
    assert response_json(response) == {"outcome": "applied", "message_id": sms["id"]}


@pytest.mark.parametrize("reference", ["0", "12a", "1" * 19, "", " 7"])
def test_a_malformed_client_reference_is_refused(invoke, db, reference):
    response = sms_receipt(invoke, "mock-sms-x", client_reference=reference)
    assert response["statusCode"] == 422, response["body"]
    assert response_json(response)["error"]["field"] == "client_reference"
    assert db.scalar("SELECT count(*) FROM provider_receipts") == 0


def test_a_lookup_verdict_never_moves_a_failed_message(invoke, db, configure):
    """The SQL refuses it: only a provider's receipt may correct `failed`."""
    from messaging.db import repository
    from messaging.db.engine import transaction

    configure(MOCK_SMS_FAULTS="400")
    message = send(invoke)
    with transaction() as connection:
        moved = repository.record_lookup_verdict(connection, message["id"], "delivered", None, "mock-sms-looked-up")
    assert moved is None
    row = db.rows("SELECT status, provider_message_id FROM messages")[0]
    assert (row["status"], row["provider_message_id"]) == ("failed", None)
    assert transitions(invoke, message["id"])[-1] == ("message.failed", "queued", "failed", "api")


def test_reconciliation_settles_a_sent_message_whose_receipt_never_came(invoke, db, receipts, configure):
    configure(MOCK_SMS_RECEIPTS="undelivered=1", RECEIPT_TIMEOUT_SECONDS=60)
    message = send(invoke)
    receipts.take()  # the receipt is lost on its way
    swept = invoke("RetrySweepFunction", sample_event("retry_sweep-scheduled"))
    assert swept["looked_up"] == 0  # not overdue yet
    db.scalar("UPDATE messages SET updated_at = now() - interval '2 minutes' RETURNING 1")
    swept = invoke("RetrySweepFunction", sample_event("retry_sweep-scheduled"))
    assert (swept["looked_up"], swept["settled_by_lookup"]) == (1, 1)
    assert status_of(db, message["id"]) == "undelivered"
    assert transitions(invoke, message["id"])[-1] == ("message.undelivered", "sent", "undelivered", "reconciliation")


def _sweep():
    return sample_event("retry_sweep-scheduled")


def test_reconciliation_asks_again_after_a_lookup_the_provider_could_not_answer(
    invoke, db, receipts, configure, monkeypatch
):
    """A lookup failing as a provider fails (ProviderError) is asked again when due again; a defect in it is
    not mistaken for that, and fails the sweep."""
    from messaging.providers import ProviderError
    from messaging.providers.mock import MockProvider

    configure(MOCK_SMS_RECEIPTS="off", RECEIPT_TIMEOUT_SECONDS=60)
    message = send(invoke)
    _age(db, message["id"], 61)

    def provider_failing(_provider, _token):
        raise ProviderError(503, "service unavailable")

    monkeypatch.setattr(MockProvider, "lookup", provider_failing)
    swept = invoke("RetrySweepFunction", _sweep())
    assert (swept["looked_up"], swept["settled_by_lookup"], swept["unconfirmed_by_lookup"]) == (1, 0, 0)
    assert db.scalar("SELECT receipt_lookups FROM messages") == 0

    def defect(_provider, _token):
        raise KeyError("a bug")

    monkeypatch.setattr(MockProvider, "lookup", defect)
    _age(db, message["id"], 61)
    with pytest.raises(KeyError):
        invoke("RetrySweepFunction", _sweep())


def _age(db, message_id, seconds):
    db.scalar(
        "UPDATE messages SET updated_at = now() - make_interval(secs => :s) WHERE id = :id RETURNING 1",
        s=seconds,
        id=message_id,
    )


def test_reconciliation_without_a_verdict_records_the_finding_and_backs_off(invoke, db, receipts, configure):
    configure(MOCK_SMS_RECEIPTS="off", RECEIPT_TIMEOUT_SECONDS=60)
    message = send(invoke)
    assert receipts.take() == []
    _age(db, message["id"], 61)
    swept = invoke("RetrySweepFunction", _sweep())
    assert (swept["looked_up"], swept["unconfirmed_by_lookup"]) == (1, 1)
    assert invoke("RetrySweepFunction", _sweep())["looked_up"] == 0
    finding = "lookup 1 of 8: the provider accepted the send and has no delivery verdict yet"
    assert transitions(invoke, message["id"])[-1] == ("message.unconfirmed", "sent", "sent", "reconciliation")
    assert response_json(history(invoke, message["id"]))["items"][-1]["detail"] == finding
    row = db.rows("SELECT status, status_detail FROM messages")[0]
    assert (row["status"], row["status_detail"]) == ("sent", finding)
    # The next lookup waits twice as long: not after one timeout, after two.
    _age(db, message["id"], 90)
    assert invoke("RetrySweepFunction", _sweep())["looked_up"] == 0
    _age(db, message["id"], 121)
    assert invoke("RetrySweepFunction", _sweep())["looked_up"] == 1
    assert db.scalar("SELECT receipt_lookups FROM messages") == 2
    # Never relayed to customers: a finding is history only.
    assert db.scalar("SELECT bool_and(relayed_at IS NOT NULL) FROM message_events WHERE type = 'message.unconfirmed'")


def test_reconciliation_stops_after_the_last_lookup_without_a_verdict(invoke, db, receipts, configure, monkeypatch):
    """A `sent` message the provider says it never accepted (its record lost): the finding is recorded each
    time, and after the last lookup the message stays `sent` with the reason, never asked again."""
    from messaging.providers import Lookup
    from messaging.providers.mock import MockProvider

    configure(RECEIPT_TIMEOUT_SECONDS=60)
    message = send(invoke)
    receipts.take()
    asked = []
    real_lookup = MockProvider.lookup

    def forgetful_lookup(self, token):
        asked.append(token)
        real_lookup(self, token)
        return Lookup(accepted=False)

    monkeypatch.setattr(MockProvider, "lookup", forgetful_lookup)
    for lookup in range(1, 9):
        _age(db, message["id"], 60 * 16 + 1)  # due whatever the backoff (at most 16 timeouts)
        assert invoke("RetrySweepFunction", _sweep())["unconfirmed_by_lookup"] == 1
        assert db.scalar("SELECT receipt_lookups FROM messages") == lookup
    _age(db, message["id"], 10 * 24 * 3600)
    assert invoke("RetrySweepFunction", _sweep())["looked_up"] == 0
    assert len(asked) == 8
    final = "lookup 8 of 8: the provider has no record of this send; no longer looked up (no receipt, no verdict)"
    row = db.rows("SELECT status, status_detail FROM messages")[0]
    assert (row["status"], row["status_detail"]) == ("sent", final)
    events = [item for item in transitions(invoke, message["id"]) if item[0] == "message.unconfirmed"]
    assert len(events) == 8
    # A receipt still settles it whenever it comes.
    response = sms_receipt(invoke, message["provider_message_id"], "delivered")
    assert response_json(response)["outcome"] == "applied"
    assert status_of(db, message["id"]) == "delivered"


def test_email_events_are_deduplicated_by_event_id(invoke, db, receipts, configure):
    configure(MOCK_EMAIL_RECEIPTS="bounce=1")
    first = send(invoke, "send_message-email")
    second = send(invoke, "send_message-email", to="other@example.com")
    scheduled = receipts.take()
    assert {item["receipt"][0]["event"] for item in scheduled} == {"bounce"}
    batch = [item["receipt"][0] for item in scheduled]
    batch.append({**batch[0]})  # the same event twice in one batch
    response = email_events(invoke, batch)
    assert response["statusCode"] == 200, response["body"]
    assert [result["outcome"] for result in response_json(response)["results"]] == ["applied", "applied", "duplicate"]
    for message in (first, second):
        assert status_of(db, message["id"]) == "undelivered"
    assert db.scalar("SELECT status_detail FROM messages WHERE id = :id", id=first["id"]).startswith("bounce")
    again = email_events(invoke, batch)
    assert {result["outcome"] for result in response_json(again)["results"]} == {"duplicate"}
    assert db.scalar("SELECT count(*) FROM message_events WHERE type = 'message.undelivered'") == 2


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"messaging_provider_id": "x", "status": "read", "timestamp": "2024-11-01T14:00:00Z"}, 422, "status"),
        ({"messaging_provider_id": "x", "status": "delivered"}, 422, "timestamp"),
        ({"status": "delivered", "timestamp": "2024-11-01T14:00:00Z"}, 422, "messaging_provider_id"),
        (
            {"messaging_provider_id": "x", "status": "delivered", "timestamp": "2024-11-01T14:00:00Z", "x": 1},
            422,
            "x",
        ),
        (
            {"messaging_provider_id": "a b", "status": "delivered", "timestamp": "2024-11-01T14:00:00Z"},
            422,
            "messaging_provider_id",
        ),
        ([{"messaging_provider_id": "x"}], 400, "body"),
    ],
)
def test_malformed_sms_receipts_are_refused_and_write_nothing(invoke, db, body, status, field):
    response = invoke("InboundSmsFunction", sample_event("inbound_sms-status", payload=body))
    assert response["statusCode"] == status, response["body"]
    assert response_json(response)["error"]["field"] == field
    assert db.scalar("SELECT count(*) FROM provider_receipts") == 0


@pytest.mark.parametrize(
    ("raw", "status", "field"),
    [
        ("{}", 400, "body"),
        ("[]", 422, "body"),
        (
            '[{"event_id": "e", "xillio_id": "x", "event": "opened", "timestamp": "2024-11-01T14:00:00Z"}]',
            422,
            "0.event",
        ),
        ('[{"event_id": "e", "xillio_id": "x", "event": "bounce"}]', 422, "0.timestamp"),
        (
            "["
            + ",".join(
                ['{"event_id": "e", "xillio_id": "x", "event": "delivered", "timestamp": "2024-11-01T14:00:00Z"}'] * 101
            )
            + "]",
            422,
            "body",
        ),
        ("[1", 400, "body"),
    ],
)
def test_malformed_email_event_batches_are_refused_and_write_nothing(invoke, db, raw, status, field):
    response = email_events(invoke, None, raw=raw)
    assert response["statusCode"] == status, response["body"]
    assert response_json(response)["error"]["field"] == field
    assert db.scalar("SELECT count(*) FROM provider_receipts") == 0


def test_receipts_are_verified_exactly_like_the_inbound_webhooks(invoke, db, configure):
    configure(SMS_WEBHOOK_SECRETS="receipt-secret", EMAIL_WEBHOOK_SECRETS="email-secret")
    unsigned = sms_receipt(invoke, "mock-sms-1")
    assert unsigned["statusCode"] == 401
    body = json.dumps({"messaging_provider_id": "mock-sms-1", "status": "delivered", "timestamp": now_iso()})
    forged = sample_event("inbound_sms-status", body=body)
    forged["headers"] = {
        **forged["headers"],
        **{k.lower(): v for k, v in signature_headers("wrong", body.encode()).items()},
    }
    assert invoke("InboundSmsFunction", forged)["statusCode"] == 401
    events = json.dumps([{"event_id": "e1", "xillio_id": "x", "event": "delivered", "timestamp": now_iso()}])
    wrong_provider = sample_event("inbound_email-events", body=events)
    signed = signature_headers("receipt-secret", events.encode())  # the SMS provider's secret
    wrong_provider["headers"] = {**wrong_provider["headers"], **{k.lower(): v for k, v in signed.items()}}
    assert invoke("InboundEmailFunction", wrong_provider)["statusCode"] == 401
    assert db.scalar("SELECT count(*) FROM provider_receipts") == 0
    good = sample_event("inbound_sms-status", body=body)
    good["headers"] = {
        **good["headers"],
        **{k.lower(): v for k, v in signature_headers("receipt-secret", body.encode()).items()},
    }
    assert invoke("InboundSmsFunction", good)["statusCode"] == 200
    assert db.scalar("SELECT count(*) FROM provider_receipts") == 1


def test_inbound_messages_write_received_and_a_new_conversation_once(invoke, db):
    first = sample_body("inbound_sms-sms")
    assert invoke("InboundSmsFunction", sample_event("inbound_sms-sms"))["statusCode"] == 200
    assert invoke("InboundSmsFunction", sample_event("inbound_sms-sms"))["statusCode"] == 200  # duplicate
    second = {**first, "messaging_provider_id": "message-2"}
    assert invoke("InboundSmsFunction", sample_event("inbound_sms-sms", payload=second))["statusCode"] == 200
    rows = db.rows("SELECT type, message_id, conversation_id, status, source FROM message_events ORDER BY id")
    assert [(row["type"], row["message_id"], row["status"], row["source"]) for row in rows] == [
        ("conversation.created", None, None, "webhook"),
        ("message.received", 1, "received", "webhook"),
        ("message.received", 3, "received", "webhook"),  # the duplicate used id 2, then rolled back
    ]
    assert {row["conversation_id"] for row in rows} == {1}


def test_the_history_pages_oldest_first_and_404s_for_unknown_messages(invoke, db, receipts):
    message = send(invoke)
    deliver(invoke, receipts.take()[0])
    first = response_json(history(invoke, message["id"], "limit=2"))
    assert [item["type"] for item in first["items"]] == ["message.queued", "message.sent"]
    assert set(first["items"][0]) == {
        "id",
        "type",
        "status",
        "previous_status",
        "attempt",
        "detail",
        "source",
        "occurred_at",
    }
    rest = response_json(history(invoke, message["id"], f"limit=2&cursor={first['next_cursor']}"))
    assert [item["type"] for item in rest["items"]] == ["message.delivered"]
    assert rest["next_cursor"] is None
    missing = history(invoke, 999)
    assert missing["statusCode"] == 404
    assert response_json(missing)["error"]["field"] == "id"


def _history_noted_for_the_relay(invoke, receipts) -> list[int]:
    """Send a message and deliver it; the ids each repository write noted for publishing
    (db/events.remember_written)."""
    from messaging.db import events

    noted: list[int] = []
    original = events.remember_written

    def spy(connection, ids):
        ids = list(ids)
        noted.extend(int(event_id) for event_id in ids if event_id is not None)
        original(connection, ids)

    import messaging.db.receipts as receipts_db
    import messaging.db.repository as repository

    for module in (repository, receipts_db):
        module.remember_written = spy
    try:
        message = send(invoke)
        deliver(invoke, receipts.take()[0])
    finally:
        for module in (repository, receipts_db):
            module.remember_written = original
    assert message["id"] == 1
    return sorted(noted)


def test_every_history_row_a_subscriber_listens_to_is_handed_to_the_relay(invoke, db, receipts):
    db.execute(
        "INSERT INTO webhook_endpoints (url, events, secret) VALUES ('https://example.com/hook', "
        "ARRAY['message.sent', 'message.delivered', 'conversation.created'], 'whsec_test')"
    )
    noted = _history_noted_for_the_relay(invoke, receipts)
    rows = db.rows("SELECT id, type, relayed_at FROM message_events ORDER BY id")
    subscribed = [row["id"] for row in rows if row["type"] != "message.queued"]
    assert len(rows) == 4 and len(subscribed) == 3
    assert noted == subscribed  # published after commit, for the dispatcher to take
    assert all(row["relayed_at"] is None for row in rows if row["id"] in subscribed)
    # The one nobody listens to was recorded relayed as it was written: nothing to publish or sweep.
    assert [row["relayed_at"] is not None for row in rows if row["id"] not in subscribed] == [True]


def test_without_subscribers_history_is_recorded_relayed_and_nothing_is_published(invoke, db, receipts):
    db.execute(
        "INSERT INTO webhook_endpoints (url, events, secret, enabled) "
        "VALUES ('https://example.com/off', ARRAY['message.sent'], 'whsec_test', false)"
    )
    assert _history_noted_for_the_relay(invoke, receipts) == []
    rows = db.rows("SELECT relayed_at FROM message_events")
    assert len(rows) == 4 and all(row["relayed_at"] is not None for row in rows)


def test_mock_receipt_function_posts_signed_receipts_to_the_status_webhook_over_http(
    invoke, db, receipts, configure, application
):
    import http.server

    from infra.local_runner.server import Gateway

    configure(SMS_WEBHOOK_SECRETS="s3cret", EMAIL_WEBHOOK_SECRETS="m4il")  # before the gateway's workers start
    gateway = Gateway(application)

    class Api(http.server.BaseHTTPRequestHandler):
        """The API over HTTP: the local runner's gateway (its own execution environments) behind a socket."""

        def do_POST(self) -> None:  # noqa: N802 - the http.server interface
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, headers, payload = gateway.handle("POST", self.path, dict(self.headers), body, "127.0.0.1")
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    try:
        configure(API_BASE_URL=f"http://127.0.0.1:{server.server_address[1]}")
        sms = send(invoke)
        email = send(invoke, "send_message-email")
        records = [{"body": json.dumps(item)} for item in receipts.take()]
        result = invoke("MockReceiptFunction", sqs_event(records))
        assert result == {"batchItemFailures": []}
        assert status_of(db, sms["id"]) == status_of(db, email["id"]) == "delivered"
        again = invoke("MockReceiptFunction", sqs_event(records))  # SQS delivering the batch twice
        assert again == {"batchItemFailures": []}
        assert db.scalar("SELECT count(*) FROM message_events WHERE type = 'message.delivered'") == 2
        configure(API_BASE_URL="http://127.0.0.1:9")  # the API cannot be reached: SQS keeps the receipt
        unreachable = invoke("MockReceiptFunction", sqs_event(records[:1]))
        assert unreachable == {"batchItemFailures": [{"itemIdentifier": "test-0"}]}
    finally:
        server.shutdown()
        server.server_close()
        gateway.stop()
