import os

from sqlalchemy import create_engine, inspect

from infra.local_runner import postgres
from tests.conftest import _server_url, create_test_database, sample_event


def test_migrate_function_upgrades_an_empty_database_to_head(invoke, database_url, monkeypatch):
    from messaging import runtime
    from messaging.db.engine import sqlalchemy_url

    server = _server_url()
    empty = create_test_database(server, f"migrate_test_{id(monkeypatch)}")
    monkeypatch.setenv("DATABASE_URL", empty)
    runtime.reset()
    try:
        first = invoke("MigrateFunction", sample_event("migrate-upgrade"))
        again = invoke("MigrateFunction", sample_event("migrate-upgrade"))
        inspector_engine = create_engine(sqlalchemy_url(empty))
        tables = set(inspect(inspector_engine).get_table_names())
        inspector_engine.dispose()
    finally:
        monkeypatch.undo()
        runtime.reset()
        postgres.drop_database(server, empty.rsplit("/", 1)[-1].split("?")[0])
    assert first["before"] is None
    assert first["after"] == again["before"] == again["after"]
    assert {"conversations", "messages", "idempotency_keys", "mock_provider_deliveries"} <= tables


def test_the_migrations_match_the_schema_the_code_queries(admin_engine):
    """Alembic's autogenerate comparison finds nothing between the migrated database and schema.py."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from messaging.db.schema import metadata

    with admin_engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def test_the_migrated_columns_have_the_collations_of_schema_py(db):
    """Alembic's comparison ignores collations; an order the CHECK and unique key depend on must agree."""
    from messaging.db.schema import metadata

    declared = {
        (table.name, column.name): getattr(column.type, "collation", None)
        for table in metadata.tables.values()
        for column in table.columns
    }
    migrated = {
        (row["table_name"], row["column_name"]): row["collation_name"]
        for row in db.rows(
            "SELECT table_name, column_name, collation_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name <> 'alembic_version'"
        )
    }
    assert migrated == declared


def test_a_database_holding_messages_upgrades_from_every_revision_to_head(database_url):
    """Migrations run on live data, not only on empty databases: a conversation and its message (with the
    deferred foreign key from the conversation's last message) written at each revision survive the upgrade."""
    from sqlalchemy import text

    from messaging.db.engine import sqlalchemy_url
    from messaging.db.migrate import upgrade

    server = _server_url()
    for start in ("0002", "0004", "0005"):  # the revisions before the search columns (0006) became required
        name = f"migrate_live_{start}_{os.getpid()}"
        url = postgres.recreate_database(server, name)
        engine = create_engine(sqlalchemy_url(url))
        try:
            upgrade(engine, start)
            with engine.begin() as connection:
                connection.execute(
                    text(
                        "INSERT INTO conversations (participant_a, participant_b, message_count, last_message_at,"
                        " last_message_id, last_message_preview) VALUES ('+12016661234', '+14155550100', 1, now(), 1,"
                        " 'hello')"
                    )
                )
                connection.execute(
                    text(
                        "INSERT INTO messages (id, conversation_id, direction, type, from_address, to_address, body,"
                        " message_timestamp, status, provider, provider_message_id) VALUES (1, 1, 'inbound', 'sms',"
                        " '+12016661234', '+14155550100', 'hello', now(), 'received', 'mock-sms', 'p1')"
                    )
                )
            upgrade(engine)
            with engine.connect() as connection:
                assert connection.execute(text("SELECT count(*) FROM messages")).scalar() == 1
        finally:
            engine.dispose()
            postgres.drop_database(server, name)
