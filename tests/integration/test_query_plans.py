"""The hot queries use their indexes (no sort, no sequential scan) and each request stays within its
statement budget. Plan shapes are checked on a small table with enable_seqscan off, where the planner
shows which index it would use; speed itself is measured in bench/, never here."""

import json
from urllib.parse import unquote

import pytest

from bench.plans import explain, uses_indexes_only
from bench.statements import count
from tests.conftest import response_json, sample_body, sample_event


@pytest.fixture
def some_messages(invoke, db):
    for index in range(30):
        body = {
            "from": "+18045551234",
            "to": f"+1415555{index % 3:04d}",
            "type": "mms" if index % 5 == 0 else "sms",
            "messaging_provider_id": f"plan-{index}",
            "body": "hello invoice" if index % 7 == 0 else "hello",
            "attachments": ["https://example.com/a.jpg"] if index % 5 == 0 else None,
            "timestamp": f"2024-11-01T14:{index:02d}:00Z",
        }
        assert invoke("InboundSmsFunction", sample_event("inbound_sms-sms", payload=body))["statusCode"] == 200
    for index in range(6):
        body = {
            "from": f"contact{index % 2}@gmail.com",
            "to": "user@usehatchapp.com",
            "xillio_id": f"plan-email-{index}",
            "body": "<p>your <b>invoice</b></p>" if index % 2 else "<p>hello</p>",
            "attachments": [],
            "timestamp": f"2024-11-01T15:{index:02d}:00Z",
        }
        assert invoke("InboundEmailFunction", sample_event("inbound_email-email", payload=body))["statusCode"] == 200
    # Statistics of exactly these rows: without them the planner's choice between two ordered indexes
    # depends on whatever autovacuum last sampled from earlier tests' rows.
    db.execute("ANALYZE messages, conversations")


def _with_query(name, query):
    event = sample_event(name)
    event["rawQueryString"] = query
    pairs = (pair.split("=", 1) for pair in query.split("&"))
    event["queryStringParameters"] = {key: unquote(value) for key, value in pairs}
    return event


@pytest.mark.parametrize(
    ("event", "query", "index"),
    [
        ("conversations-messages", "limit=5", "ix_messages_conversation_timeline"),
        ("conversations-list", "limit=2", "ix_conversations_last_activity"),
        ("conversations-list", "limit=1&participant=%2B18045551234", "ix_conversations_participant_a_activity"),
        (
            "conversations-list",
            "limit=1&participant=user@usehatchapp.com&archived=false",
            "ix_conversations_participant_b_activity",
        ),
        (
            "conversations-list",
            "limit=1&archived=false",
            # Here no conversation is archived: walking the activity order and filtering is as cheap.
            "ix_conversations_archived_activity|ix_conversations_last_activity",
        ),
        ("conversations-list", "limit=1&channel=sms", "ix_conversations_sms_activity"),
        ("conversations-list", "limit=1&channel=mms&archived=false", "ix_conversations_mms_activity"),
        ("conversations-list", "limit=1&channel=email", "ix_conversations_email_activity"),
        ("conversations-find-messages", "limit=5", "ix_messages_timeline"),
        (
            "conversations-find-messages",
            "limit=5&since=2024-11-01T14:05:00Z&until=2024-11-01T15:00:00Z",
            "ix_messages_timeline",
        ),
        ("conversations-find-messages", "limit=5&status=received", "ix_messages_status_timeline"),
        ("conversations-find-messages", "limit=5&direction=inbound", "ix_messages_channel_timeline"),
        ("conversations-find-messages", "limit=5&type=sms", "ix_messages_channel_timeline"),
        ("conversations-find-messages", "limit=5&direction=inbound&type=mms", "ix_messages_channel_timeline"),
        (
            "conversations-find-messages",
            "limit=5&conversation_id=1&direction=inbound",
            # On this small table the planner may walk either timeline; both are ordered: no Sort.
            "ix_messages_conversation_timeline|ix_messages_timeline",
        ),
    ],
)
def test_page_reads_are_index_scans_without_sorting(invoke, some_messages, event, query, index):
    first = invoke("ConversationsFunction", _with_query(event, query))
    cursor = json.loads(first["body"])["next_cursor"]
    assert cursor
    for page_query in (query, f"{query}&cursor={cursor}"):
        summaries = explain(lambda q=page_query: invoke("ConversationsFunction", _with_query(event, q)), seqscan=False)
        assert summaries, "no SELECT was captured"
        page = summaries[0]
        assert uses_indexes_only(page), page
        assert set(index.split("|")) & set(page["indexes"]), page


def test_full_text_search_never_scans_the_table(invoke, some_messages):
    """Search reads an index, never the whole table: the GIN index for a rare word (its matches carry no
    order, so the page is a bounded top-N sort of the matches only), or a timeline walked in order, filtering,
    for a word in many messages; which one is the planner's call by the word's frequency (bench/scale.py
    reports both at 1M messages)."""
    for query in ("limit=2&q=invoice", "limit=2&q=invoice&type=email&direction=inbound"):
        summaries = explain(
            lambda q=query: invoke("ConversationsFunction", _with_query("conversations-find-messages", q)),
            seqscan=False,
        )
        assert summaries, "no SELECT was captured"
        assert "Seq Scan" not in summaries[0]["node_types"], summaries[0]
        assert summaries[0]["indexes"], summaries[0]
    alone = explain(
        lambda: invoke("ConversationsFunction", _with_query("conversations-find-messages", "limit=2&q=invoice")),
        seqscan=False,
    )
    assert {"ix_messages_search", "ix_messages_timeline"} & set(alone[0]["indexes"]), alone[0]


def test_the_sweep_finds_overdue_sends_through_its_partial_index(invoke, db):
    from messaging.db import repository
    from messaging.db.engine import transaction

    def sweep_query():
        with transaction() as connection:
            repository.claim_overdue_sends(connection, grace_seconds=60, lease_seconds=0, limit=10)
            connection.rollback()

    summaries = explain(sweep_query, seqscan=False)
    assert len(summaries) == 1
    # The partial index of pending sends, or the status timeline (status first): never the whole table.
    assert {"ix_messages_pending_sends", "ix_messages_status_timeline"} & set(summaries[0]["indexes"]), summaries
    assert "Seq Scan" not in summaries[0]["node_types"]


@pytest.mark.parametrize(
    ("function", "event_name", "budget"),
    [
        ("ConversationsFunction", "conversations-messages", 2),
        ("ConversationsFunction", "conversations-list", 2),
        ("ConversationsFunction", "conversations-message", 1),
        ("ConversationsFunction", "conversations-message-events", 2),
        ("InboundSmsFunction", "inbound_sms-status", 1),
        ("InboundEmailFunction", "inbound_email-events", 2),  # a batch: one statement per event
        # store, the provider's ledger, the outcome; and the suppression protocol twice (README "Suppressions"):
        # the recipient's lock then its check, when storing and around the provider attempt
        ("SendMessageFunction", "send_message-sms", 7),
        ("ConversationsFunction", "conversations-list-filtered", 1),
        ("ConversationsFunction", "conversations-find-messages", 1),
        ("ConversationsFunction", "conversations-archive", 1),
        ("ConversationsFunction", "conversations-read", 1),
    ],
)
def test_statement_budget_per_request(invoke, some_messages, function, event_name, budget):
    statements = count(lambda: invoke(function, sample_event(event_name)))
    queries = [statement for statement in statements if statement != "COMMIT"]
    assert 1 <= len(queries) <= budget, statements


@pytest.mark.parametrize("event_name", ["inbound_sms-sms", "inbound_sms-mms", "inbound_email-email"])
def test_an_inbound_message_is_one_statement_with_its_history_rows(invoke, some_messages, event_name):
    """The message, its conversation and their history rows (the outbox) are written by one statement."""
    function = "InboundEmailFunction" if event_name.startswith("inbound_email") else "InboundSmsFunction"
    statements = count(lambda: invoke(function, sample_event(event_name)))
    assert statements == ["WITH", "COMMIT"], statements


def test_a_receipt_applied_to_its_message_is_one_statement_with_its_history_row(invoke, db):
    sent = response_json(invoke("SendMessageFunction", sample_event("send_message-sms")))
    receipt = sample_event(
        "inbound_sms-status",
        payload={**sample_body("inbound_sms-status"), "messaging_provider_id": sent["provider_message_id"]},
    )
    statements = count(lambda: invoke("InboundSmsFunction", receipt))
    assert statements == ["WITH", "COMMIT"], statements
    assert db.scalar("SELECT status FROM messages WHERE id = :id", id=sent["id"]) == "delivered"
    assert db.scalar("SELECT count(*) FROM message_events WHERE type = 'message.delivered'") == 1


@pytest.mark.parametrize("event", ["bounce", "spamreport"])
def test_a_bounce_or_spam_report_suppresses_its_recipient_in_four_statements(invoke, db, event):
    """The receipt's statement (which also returns the recipient), the address's exclusive lock (a statement
    of its own: README "Suppressions"), the suppression and its recipient.opted_out event."""
    sent = response_json(invoke("SendMessageFunction", sample_event("send_message-email")))
    item = {**sample_body("inbound_email-events")[1], "xillio_id": sent["provider_message_id"]}
    item["event"] = event
    statements = count(lambda: invoke("InboundEmailFunction", sample_event("inbound_email-events", payload=[item])))
    assert statements == ["WITH", "SELECT", "INSERT", "INSERT", "COMMIT"], statements
    assert db.scalar("SELECT address FROM suppressions") == sent["to"]
    assert db.scalar("SELECT count(*) FROM message_events WHERE type = 'recipient.opted_out'") == 1


def test_the_sweep_finds_sends_awaiting_a_receipt_through_its_partial_index(invoke, db):
    from messaging.db import repository
    from messaging.db.engine import transaction

    def reconciliation_query():
        with transaction() as connection:
            repository.claim_awaiting_receipt(connection, timeout_seconds=60, limit=10)
            connection.rollback()

    summaries = explain(reconciliation_query, seqscan=False)
    assert "ix_messages_awaiting_receipt" in summaries[0]["indexes"]
    assert "Seq Scan" not in summaries[0]["node_types"]
