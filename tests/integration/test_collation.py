"""Participants are ordered by code point everywhere, whatever the database's default collation.

`make test` also runs the suite on databases whose default collation is en-US's (TEST_DATABASE_COLLATION): ICU
en-US on a server with ICU, glibc's en_US.UTF-8 on the embedded one. Each orders some of the pairs below
otherwise than code point does; there, before the columns were COLLATE "C", such an email was a 500 and was
lost (the CHECK participant_a < participant_b sorted by the database)."""

import pytest

from tests.conftest import DATABASE_COLLATION, collations, response_json, sample_event

# Pairs in code-point order. (Case cannot reach a pair: addresses are lower-cased.)
ACCENTED = ("zed@x.com", "ángel@x.com")  # every linguistic collation puts á with a
PAIRS = [
    # ICU orders punctuation and symbols among themselves otherwise, and before digits.
    ("a-b@x.com", "a_b@x.com"),
    ("a.b@x.com", "a_b@x.com"),
    ("a+b@x.com", "a-b@x.com"),
    ("a1@x.com", "a@x.com"),
    # glibc compares letters and digits first, punctuation only to break ties.
    ("a-c@x.com", "ab@x.com"),
    ("a_c@x.com", "ab@x.com"),
    ACCENTED,
]


def test_the_database_has_the_collation_the_run_asked_for(db):
    # datlocale since PostgreSQL 17, daticulocale before.
    database = db.rows(
        "SELECT datlocprovider AS provider, datcollate AS collate, datctype AS ctype, "
        "coalesce(to_jsonb(d) ->> 'datlocale', to_jsonb(d) ->> 'daticulocale') AS locale "
        "FROM pg_database d WHERE datname = current_database()"
    )[0]
    if DATABASE_COLLATION is None:
        assert database["provider"] != "i"
        return
    icu, glibc = collations(DATABASE_COLLATION)
    if database["provider"] == "i":
        assert database["locale"] == icu.locale
    else:
        assert (database["provider"], database["collate"], database["ctype"]) == ("c", glibc.locale, glibc.locale)


@pytest.mark.skipif(DATABASE_COLLATION is None, reason="the database's default collation is the server's")
def test_the_default_collation_orders_some_pairs_otherwise_than_code_point(db):
    """Else the tests below would pass on a database that sorts as "C" does, proving nothing."""
    reversed_pairs = [
        (first, second)
        for first, second in PAIRS
        if db.scalar("SELECT CAST(:second AS text) < CAST(:first AS text)", first=first, second=second)
    ]
    assert ACCENTED in reversed_pairs
    assert len(reversed_pairs) >= 2, reversed_pairs


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
