"""One SQLAlchemy engine per execution environment (kept by messaging.runtime), and the one rule of what
means "the database is unavailable"."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from messaging import config, runtime
from messaging.config import DatabaseSettings
from messaging.db import events
from messaging.errors import ServiceUnavailable

PING_AFTER_IDLE_SECONDS = 10.0


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


def _cache_paramstyle_conversion() -> None:
    """pg8000 rewrites each statement's %s placeholders to $n by scanning it character by character on
    every execution (about half a millisecond for our longest statement). For the "format" style the
    result depends on the statement text alone, so it is computed once per statement text."""
    import pg8000.legacy

    original = pg8000.legacy.convert_paramstyle
    if getattr(original, "cached", False):
        return

    @functools.lru_cache(maxsize=512)
    def converted(query: str) -> str:
        statement, _ = original("format", query, ())
        return str(statement)

    def convert_paramstyle(style: str, query: str, args: Any) -> Any:
        if style == "format":
            return converted(query), args
        return original(style, query, args)

    convert_paramstyle.cached = True  # type: ignore[attr-defined]
    pg8000.legacy.convert_paramstyle = convert_paramstyle


def build_engine(settings: DatabaseSettings) -> Engine:
    connect_args: dict[str, object] = {"timeout": settings.database_timeout_seconds}
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
    _cache_paramstyle_conversion()
    engine = create_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        # Waiting for a free pooled connection is bounded like any round trip: a pool exhausted by a
        # stalled database answers 503 as soon as one stalled statement would have (SQLAlchemy waits 30 s).
        pool_timeout=settings.database_timeout_seconds,
        pool_recycle=300,
        connect_args=connect_args,
        hide_parameters=True,  # errors (and so logs) never carry message bodies or addresses
    )
    _use_pipelined_connections(engine, prepared=settings.database_prepared_statements)
    _discard_connections_left_in_doubt(engine)
    _ping_connections_that_sat_idle(engine)
    _parse_timestamps_fast(engine)
    event.listen(engine, "rollback", events.forget_written)
    return engine


def _use_pipelined_connections(engine: Engine, prepared: bool) -> None:
    """Connections are messaging.db.wire's (pg8000's own, pipelined; statements prepared per connection
    when `prepared`): see that module for why."""

    @event.listens_for(engine, "do_connect")
    def connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        from messaging.db import wire

        return wire.connect(*cargs, prepared=prepared, **cparams)

    @event.listens_for(engine, "before_cursor_execute")
    def own_transaction(
        connection: Any, _cursor: Any, _statement: Any, _parameters: Any, context: Any, _many: Any
    ) -> None:
        # A statement executed with own_transaction=True as the first of its transaction is that whole
        # transaction: committed by PostgreSQL as it completes (see wire.PipelinedConnection).
        if context is not None and context.execution_options.get("own_transaction"):
            connection.connection.driver_connection.statement_is_transaction = True


def _discard_connections_left_in_doubt(engine: Engine) -> None:
    """Close (never pool again) a connection on which a statement failed other than by the database's own
    clean answer.

    The wire protocol is a conversation: pg8000 sends a statement in several messages and reads the replies
    in order. A clean database error (an ErrorResponse) is read through to ReadyForQuery, so the connection
    is in step and may serve the next transaction. Anything else raised while a statement is in flight
    (a parameter the driver cannot convert after it has already sent Parse and Describe, a reply it cannot
    parse, an error in a listener, a network fault) can leave replies unread on the socket. SQLAlchemy only
    invalidates a connection for errors its dialect recognises as disconnects, so such a connection would
    go back to the pool and the next request, whoever sends it, would read the stranded replies as its own
    answer: another conversation's rows. Marking every such error a "disconnect" makes SQLAlchemy close
    this one connection (not the whole pool) and give the next checkout a fresh one. The error still
    propagates: unchanged, or as a driver error marked connection_invalidated (so a 503, like any lost
    connection). `handle_error` runs for every exception raised while executing, committing or
    rolling back, whatever its type, so no future defect of this kind can leak data."""

    @event.listens_for(engine, "handle_error")
    def discard(context: ExceptionContext) -> None:
        if context.is_disconnect or server_sqlstate(context.original_exception) is not None:
            return
        context.is_disconnect = True
        context.invalidate_pool_on_disconnect = False  # the other pooled connections are in step


def server_sqlstate(error: BaseException | None) -> str | None:
    """The SQLSTATE of an error the server reported, None for any other error. pg8000 raises the server's
    error with the ErrorResponse's fields (SQLSTATE under "C"), only after reading every reply up to
    ReadyForQuery."""
    from pg8000.exceptions import Error

    details = error.args[0] if isinstance(error, Error) and error.args else None
    return str(details["C"]) if isinstance(details, dict) and "C" in details else None


_TIMESTAMP_OID, _TIMESTAMPTZ_OID = 1114, 1184


def _iso_first(fallback: Callable[[str], Any]) -> Callable[[str], Any]:
    """A timestamp reader: PostgreSQL's ISO output ("2026-11-24 09:18:52.438531+00") by datetime.fromisoformat,
    about 50 times faster than the driver's strptime; anything else (infinity, BC dates, years Python cannot
    hold) by the driver's own reader."""

    def read(data: str) -> Any:
        try:
            return datetime.fromisoformat(data)
        except ValueError:
            return fallback(data)

    return read


def _parse_timestamps_fast(engine: Engine) -> None:
    """Three timestamps a message row: parsing them was most of a page read's time."""

    @event.listens_for(engine, "connect")
    def register(dbapi_connection: Any, _record: Any) -> None:
        from pg8000 import converters

        dbapi_connection.register_in_adapter(_TIMESTAMP_OID, _iso_first(converters.timestamp_in))
        dbapi_connection.register_in_adapter(_TIMESTAMPTZ_OID, _iso_first(converters.timestamptz_in))


def _ping_connections_that_sat_idle(engine: Engine) -> None:
    """Pre-ping, but only connections idle for a while (a frozen Lambda, a proxy's idle timeout): a warm
    invocation does not pay a round trip. A dead connection is replaced before the transaction starts."""

    @event.listens_for(engine, "checkin")
    def remember_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("stale connection") from exc


# An open transaction, as `transaction()` yields it: what a service that works inside its caller's
# transaction takes and hands on to db/ (services never name SQLAlchemy themselves).
type Transaction = Connection


def get_engine() -> Engine:
    return runtime.once("engine", lambda: build_engine(config.current(DatabaseSettings)), Engine.dispose)


@contextmanager
def transaction() -> Iterator[Transaction]:
    """One transaction: committed on success, rolled back on error. A database that cannot serve us right
    now (unreachable, shutting down, out of connections, a serialization failure...) or no free connection
    in the pool before the timeout (the database stalls and every connection waits on it) raises
    ServiceUnavailable; any other database error is a defect and propagates unchanged.

    The one unit of work of the service, so it is also where the outbox is published: the message_events
    rows the transaction wrote (see messaging.db.events) are handed to EventQueue once it has committed,
    best effort (the sweep relays whatever this misses). Feature code never publishes events itself."""
    try:
        with get_engine().begin() as connection:
            written = events.start_unit_of_work(connection)
            yield connection
    except DBAPIError as exc:
        if database_unavailable(exc):
            raise ServiceUnavailable("the database is unavailable; retry later") from exc
        raise
    except PoolTimeoutError as exc:
        raise ServiceUnavailable("the database is busy; no connection came free in time; retry later") from exc
    if written:
        from messaging.event_queue import publish_events  # SQS is loaded only by units of work that need it

        publish_events(list(written))


@contextmanager
def reading() -> Iterator[Transaction]:
    """A unit of work that only reads: each statement is a transaction of its own (its own consistent
    snapshot), sent without "begin" and committed by PostgreSQL as it completes, so a read of one statement
    is one round trip. The same errors as transaction(). Nothing written here would be undone as a whole."""
    with transaction() as connection:
        connection.execution_options(own_transaction=True)
        yield connection


# SQLSTATE classes and codes that say "the database cannot serve us right now", not "this request is wrong":
# connection exception, insufficient resources (too many connections), operator intervention (shutdown,
# starting up, statement timeout), transaction rollback (serialization failure, deadlock), invalid
# authorization (credentials being rotated), unknown database, lock not available, read-only transaction
# (connected to a reader after a failover).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57", "40", "28")
_UNAVAILABLE_SQLSTATES = {"3D000", "55P03", "25006"}


# A socket that timed out or was reset mid-conversation is not always wrapped in a driver error: raised as
# it is, it means the same as a lost connection (the database, or the network to it, is unavailable).
UNWRAPPED_NETWORK_ERRORS: tuple[type[Exception], ...] = (TimeoutError, ConnectionError)
# What work done outside a transaction() sees when the database cannot serve it right now: the caller may
# retry later, or leave the rest to the retry consumer and the sweep.
DATABASE_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (ServiceUnavailable, *UNWRAPPED_NETWORK_ERRORS)


def database_unavailable(error: DBAPIError) -> bool:
    """True when a driver error means the database is unavailable (retry later), not a defect."""
    if error.connection_invalidated:
        return True
    original = error.orig
    if isinstance(original, (OSError, *UNWRAPPED_NETWORK_ERRORS)):
        return True
    if type(original).__name__ in ("InterfaceError", "OperationalError"):
        return True
    state = server_sqlstate(original) or ""
    return state[:2] in _UNAVAILABLE_SQLSTATE_CLASSES or state in _UNAVAILABLE_SQLSTATES
