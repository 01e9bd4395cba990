"""One SQLAlchemy engine per execution environment, created lazily on first use and then reused."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.exc import DBAPIError, OperationalError

from messaging.config import Settings, get_settings
from messaging.errors import ServiceUnavailable

_engine: Engine | None = None
_engine_lock = threading.Lock()


def sqlalchemy_url(url: str) -> str:
    """Turn any PostgreSQL URL (libpq style, or a socket directory in ?host=) into a pg8000 URL."""
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme in ("postgres", "postgresql", "postgresql+pg8000"):
        scheme = "postgresql+pg8000"
    else:
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got scheme {scheme!r}")
    query = dict(parse_qsl(parts.query))
    host_dir = query.pop("host", None)
    if host_dir and host_dir.startswith("/"):
        port = parts.port or 5432
        query["unix_sock"] = f"{host_dir.rstrip('/')}/.s.PGSQL.{port}"
    query.pop("sslmode", None)
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), ""))


def url_from_secret(secret: str) -> str:
    """Build a URL from an RDS-format Secrets Manager secret (username, password, host, port, dbname)."""
    values = json.loads(secret)
    user = quote(values["username"], safe="")
    password = quote(values["password"], safe="")
    host = values["host"]
    port = values.get("port", 5432)
    dbname = values.get("dbname", "postgres")
    return f"postgresql+pg8000://{user}:{password}@{host}:{port}/{dbname}"


def build_engine(settings: Settings) -> Engine:
    connect_args: dict[str, object] = {"timeout": settings.database_connect_timeout_seconds}
    if settings.database_url:
        url = sqlalchemy_url(settings.database_url)
    elif settings.database_secret_arn:
        # Read once per execution environment; RDS Proxy and Aurora are reached over TLS.
        from aws_lambda_powertools.utilities.parameters import get_secret

        secret = get_secret(settings.database_secret_arn, max_age=3600)
        url = url_from_secret(secret if isinstance(secret, str) else secret.decode())
        connect_args["ssl_context"] = True
    else:
        raise RuntimeError("configure DATABASE_URL or DATABASE_SECRET_ARN")
    return create_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_pre_ping=True,
        pool_recycle=300,
        connect_args=connect_args,
    )


def get_engine() -> Engine:
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = build_engine(get_settings())
    return _engine


def reset_engine() -> None:
    """Dispose of the engine (tests and the local runner use this when the configuration changes)."""
    global _engine
    with _engine_lock:
        if _engine is not None:
            _engine.dispose()
        _engine = None


@contextmanager
def transaction() -> Iterator[Connection]:
    """One transaction: committed on success, rolled back on error; an unreachable database is a 503."""
    try:
        with get_engine().begin() as connection:
            yield connection
    except (OperationalError, DBAPIError) as exc:
        if _is_connectivity_error(exc):
            raise ServiceUnavailable("the database is unavailable; retry later") from exc
        raise


def _is_connectivity_error(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    original = exc.orig
    if isinstance(original, OSError | ConnectionError | TimeoutError):
        return True
    name = type(original).__name__ if original is not None else ""
    return name in ("InterfaceError", "OperationalError")
