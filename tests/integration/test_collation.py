"""Participants are ordered by code point everywhere, whatever the database's default collation.

`make test` also runs the suite on a database whose default collation is ICU en-US (TEST_DATABASE_COLLATION),
where en-US and code-point order disagree for the pairs below; there, before the columns were COLLATE "C",
such an email was a 500 and was lost (the CHECK participant_a < participant_b sorted by the database)."""

import pytest

from tests.conftest import DATABASE_COLLATION, response_json, sample_event

# Pairs in code-point order whose en-US order is the reverse: punctuation against punctuation, digits against
# punctuation, accented letters against plain ones. (Case cannot reach a pair: addresses are lower-cased.)
PAIRS = [
    ("a-b@x.com", "a_b@x.com"),
    ("a.b@x.com", "a_b@x.com"),
    ("a+b@x.com", "a-b@x.com"),
    ("a1@x.com", "a@x.com"),
    ("zed@x.com", "ángel@x.com"),
]


def test_the_database_has_the_collation_the_run_asked_for(db):
    provider, locale = db.rows(
        "SELECT datlocprovider AS provider, daticulocale AS locale FROM pg_database WHERE datname = current_database()"
    )[0].values()
    if DATABASE_COLLATION is None:
        assert provider != "i"
    else:
        assert (provider, locale) == ("i", DATABASE_COLLATION)


def test_the_participant_columns_and_their_unique_key_sort_by_code_point(db):
    columns = db.rows(
        "SELECT column_name, collation_name FROM information_schema.columns "
        "WHERE table_name = 'conversations' AND column_name IN ('participant_a', 'participant_b') ORDER BY 1"
    )
    assert [(c["column_name"], c["collation_name"]) for c in columns] == [
        ("participant_a", "C"),
        ("participant_b", "C"),
    ]
    index_collations = db.scalar(
        "SELECT array_agg(c.collname ORDER BY o.n) FROM pg_index i "
        "CROSS JOIN LATERAL unnest(i.indcollation) WITH ORDINALITY AS o(collation_oid, n) "
        "JOIN pg_collation c ON c.oid = o.collation_oid "
        "WHERE i.indexrelid = 'uq_conversations_participants'::regclass"
    )
    assert index_collations == ["C", "C"]


@pytest.mark.parametrize(("first", "second"), PAIRS)
def test_an_email_between_addresses_the_locale_orders_otherwise_is_stored_in_one_conversation(
    invoke, db, first, second
):
    for index, (sender, recipient) in enumerate([(second, first), (first, second)]):
        event = sample_event(
            "inbound_email-email",
            {
                "from": sender,
                "to": recipient,
                "xillio_id": f"collation-{index}",
                "body": f"message {index}",
                "attachments": [],
                "timestamp": f"2024-11-01T14:0{index}:00Z",
            },
        )
        response = invoke("InboundEmailFunction", event)
        assert response["statusCode"] == 200, response
    rows = db.rows("SELECT participant_a, participant_b, message_count FROM conversations")
    assert rows == [{"participant_a": first, "participant_b": second, "message_count": 2}]
    conversation = response_json(invoke("ConversationsFunction", sample_event("conversations-list")))["items"][0]
    assert conversation["participants"] == [first, second]
