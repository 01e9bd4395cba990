"""Customer webhooks' data: endpoints, one delivery per (event, endpoint), and the log of every attempt."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, text, update

from messaging.db.schema import webhook_endpoints
from messaging.db.statements import compact
from messaging.domain import WebhookAttempt, WebhookDelivery, WebhookEndpoint


def _endpoint(row: Row[Any]) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row.id,
        url=row.url,
        description=row.description,
        events=tuple(row.events),
        secret=row.secret,
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        consecutive_failures=row.consecutive_failures,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _delivery(row: Row[Any]) -> WebhookDelivery:
    return WebhookDelivery(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        endpoint_id=row.endpoint_id,
        url=row.url,
        secret=row.secret,
        endpoint_enabled=row.endpoint_enabled,
        status=row.status,
        payload=row.payload,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        retry_until=row.retry_until,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        completed_at=row.completed_at,
    )


def _attempt(row: Row[Any]) -> WebhookAttempt:
    return WebhookAttempt(
        id=row.id,
        delivery_id=row.delivery_id,
        attempt=row.attempt,
        outcome=row.outcome,
        status_code=row.status_code,
        error=row.error,
        response_excerpt=row.response_excerpt,
        duration_ms=row.duration_ms,
        next_attempt_at=row.next_attempt_at,
        attempted_at=row.attempted_at,
    )


# ---------------------------------------------------------------- endpoints


def create_endpoint(
    connection: Connection, url: str, description: str | None, events: list[str], secret: str
) -> WebhookEndpoint:
    statement = (
        insert(webhook_endpoints)
        .values(url=url, description=description, events=events, secret=secret)
        .returning(*webhook_endpoints.c)
    )
    return _endpoint(connection.execute(statement).one())


def get_endpoint(connection: Connection, endpoint_id: int) -> WebhookEndpoint | None:
    row = connection.execute(select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)).first()
    return None if row is None else _endpoint(row)


def list_endpoints(connection: Connection, limit: int, after: tuple[datetime, int] | None) -> list[WebhookEndpoint]:
    """Oldest first; keyset on (created_at, id)."""
    query = select(webhook_endpoints).order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id)
    if after is not None:
        query = query.where(
            text("(webhook_endpoints.created_at, webhook_endpoints.id) > (:cursor_at, :cursor_id)").bindparams(
                cursor_at=after[0], cursor_id=after[1]
            )
        )
    return [_endpoint(row) for row in connection.execute(query.limit(limit))]


def update_endpoint(
    connection: Connection,
    endpoint_id: int,
    *,
    url: str | None = None,
    events: list[str] | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint | None:
    """Change what is given of url, events and enabled (None: unchanged). Enabling an endpoint clears why it
    was disabled and its failure count."""
    given = {"url": url, "events": events, "enabled": enabled}
    values: dict[str, Any] = {column: value for column, value in given.items() if value is not None}
    if enabled is True:
        values.update(disabled_reason=None, consecutive_failures=0)
    statement = (
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id)
        .values(updated_at=text("now()"), **values)
        .returning(*webhook_endpoints.c)
    )
    row = connection.execute(statement).first()
    return None if row is None else _endpoint(row)


def delete_endpoint(connection: Connection, endpoint_id: int) -> bool:
    """Deletes the endpoint with its deliveries and their attempts."""
    return connection.execute(delete(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)).rowcount > 0


# ---------------------------------------------------------------- deliveries

_DELIVERY_COLUMNS = (
    "d.id, d.event_id, ev.type AS event_type, d.endpoint_id, e.url, e.secret, e.enabled AS endpoint_enabled, "
    "d.status, d.payload, d.attempts, d.next_attempt_at, d.retry_until, d.last_status_code, d.last_error, "
    "d.created_at, d.completed_at"
)

# One delivery per (event, endpoint) for every enabled endpoint subscribed to the event's type; a repeated
# fan-out (the event was enqueued twice) creates nothing. The new deliveries come back leased to the caller,
# which attempts them at once.
_CREATE_DELIVERIES = text(
    compact(
        f"""
        WITH created AS (
            INSERT INTO webhook_deliveries (event_id, endpoint_id, payload, next_attempt_at, retry_until)
            SELECT CAST(:event_id AS bigint), e.id, CAST(:payload AS text),
                   now() + make_interval(secs => :lease_seconds), now() + make_interval(secs => :window_seconds)
            FROM webhook_endpoints e
            WHERE e.enabled AND CAST(:event_type AS text) = ANY(e.events)
            ORDER BY e.id
            ON CONFLICT (event_id, endpoint_id) DO NOTHING
            RETURNING *
        )
        SELECT {_DELIVERY_COLUMNS}
        FROM created d JOIN webhook_endpoints e ON e.id = d.endpoint_id JOIN message_events ev ON ev.id = d.event_id
        ORDER BY d.id
        """
    )
)

_HAS_SUBSCRIBERS = text(
    "SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled AND CAST(:event_type AS text) = ANY(events))"
)


def has_subscribers(connection: Connection, event_type: str) -> bool:
    return bool(connection.execute(_HAS_SUBSCRIBERS, {"event_type": event_type}).scalar_one())


def create_deliveries(
    connection: Connection, event_id: int, event_type: str, payload: str, lease_seconds: float, window_seconds: float
) -> list[WebhookDelivery]:
    rows = connection.execute(
        _CREATE_DELIVERIES,
        {
            "event_id": event_id,
            "event_type": event_type,
            "payload": payload,
            "lease_seconds": lease_seconds,
            "window_seconds": window_seconds,
        },
    )
    return [_delivery(row) for row in rows]


_GET_DELIVERY = text(
    compact(
        f"""
        SELECT {_DELIVERY_COLUMNS}
        FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
        JOIN message_events ev ON ev.id = d.event_id
        WHERE d.id = :delivery_id
        """
    )
)


def get_delivery(connection: Connection, delivery_id: int) -> WebhookDelivery | None:
    row = connection.execute(_GET_DELIVERY, {"delivery_id": delivery_id}).first()
    return None if row is None else _delivery(row)


# Take a pending delivery whose attempt is due, leasing it so that no other worker attempts it meanwhile.
_CLAIM_DUE_DELIVERY = text(
    compact(
        f"""
        WITH claimed AS (
            UPDATE webhook_deliveries SET next_attempt_at = now() + make_interval(secs => :lease_seconds)
            WHERE id = :delivery_id AND status = 'pending' AND next_attempt_at <= now() + interval '1 second'
            RETURNING *
        )
        SELECT {_DELIVERY_COLUMNS}
        FROM claimed d JOIN webhook_endpoints e ON e.id = d.endpoint_id JOIN message_events ev ON ev.id = d.event_id
        """
    )
)


def claim_due_delivery(connection: Connection, delivery_id: int, lease_seconds: float) -> WebhookDelivery | None:
    row = connection.execute(_CLAIM_DUE_DELIVERY, {"delivery_id": delivery_id, "lease_seconds": lease_seconds}).first()
    return None if row is None else _delivery(row)


# One statement per attempt: the attempt's log row, the delivery's new state and, once the delivery is
# settled, the endpoint's run of consecutive failures (reset by a success; at `disable_after` failed
# deliveries in a row the endpoint is disabled with the reason shown).
_RECORD_ATTEMPT = text(
    compact(
        """
        WITH delivery AS (
            UPDATE webhook_deliveries SET
                status = CAST(:status AS text), attempts = attempts + 1,
                next_attempt_at = CAST(:next_attempt_at AS timestamptz),
                last_status_code = CAST(:status_code AS integer), last_error = CAST(:error AS text),
                completed_at = CASE WHEN CAST(:status AS text) = 'pending' THEN NULL ELSE now() END
            WHERE id = :delivery_id
            RETURNING id, endpoint_id, attempts
        ), attempt AS (
            INSERT INTO webhook_attempts (
                delivery_id, endpoint_id, attempt, status_code, error, response_excerpt, duration_ms, outcome,
                next_attempt_at
            )
            SELECT id, endpoint_id, attempts, CAST(:status_code AS integer), CAST(:error AS text),
                   CAST(:response_excerpt AS text), CAST(:duration_ms AS integer), CAST(:outcome AS text),
                   CAST(:next_attempt_at AS timestamptz)
            FROM delivery
            RETURNING id
        ), endpoint AS (
            UPDATE webhook_endpoints e SET
                consecutive_failures = CASE WHEN CAST(:status AS text) = 'succeeded' THEN 0
                                            ELSE e.consecutive_failures + 1 END,
                enabled = e.enabled AND NOT (CAST(:status AS text) = 'failed'
                                             AND e.consecutive_failures + 1 >= :disable_after),
                disabled_reason = CASE WHEN e.enabled AND CAST(:status AS text) = 'failed'
                                            AND e.consecutive_failures + 1 >= :disable_after
                                       THEN CAST(:disable_reason AS text) ELSE e.disabled_reason END,
                updated_at = now()
            FROM delivery
            WHERE e.id = delivery.endpoint_id AND CAST(:status AS text) <> 'pending'
            RETURNING e.enabled, e.disabled_reason
        )
        SELECT (SELECT id FROM attempt) AS attempt_id,
               (SELECT enabled FROM endpoint) AS endpoint_enabled
        """
    )
)


def record_attempt(
    connection: Connection,
    delivery_id: int,
    *,
    status: str,
    outcome: str,
    status_code: int | None,
    error: str | None,
    response_excerpt: str | None,
    duration_ms: int,
    next_attempt_at: datetime | None,
    disable_after: int,
    disable_reason: str,
) -> bool | None:
    """Log an attempt and move the delivery on. Returns whether the endpoint is still enabled when the
    delivery was settled (False: this failure disabled it), None while the delivery is still pending."""
    row = connection.execute(
        _RECORD_ATTEMPT,
        {
            "delivery_id": delivery_id,
            "status": status,
            "outcome": outcome,
            "status_code": status_code,
            "error": error,
            "response_excerpt": response_excerpt,
            "duration_ms": duration_ms,
            "next_attempt_at": next_attempt_at,
            "disable_after": disable_after,
            "disable_reason": disable_reason,
        },
    ).one()
    return None if row.endpoint_enabled is None else bool(row.endpoint_enabled)


_ABANDON_DELIVERY = text(
    "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, completed_at = now(), "
    "last_error = :reason WHERE id = :delivery_id AND status = 'pending'"
)


def abandon_delivery(connection: Connection, delivery_id: int, reason: str) -> None:
    """Settle a pending delivery without attempting it (its endpoint was disabled meanwhile)."""
    connection.execute(_ABANDON_DELIVERY, {"delivery_id": delivery_id, "reason": reason})


# How long the lease on a delivery still runs (None: no attempt in flight), its row locked until the
# transaction ends so that no worker claims it between this answer and what the caller does next. A pending
# delivery is leased when its next attempt time is in the future and is not the time its last attempt
# scheduled: only a claim (or the fan-out that created it, leased to its caller) moves it there otherwise.
_LEASE_REMAINING = text(
    compact(
        """
        SELECT CASE
            WHEN d.status = 'pending' AND d.next_attempt_at > now()
                 AND d.next_attempt_at IS DISTINCT FROM (
                     SELECT a.next_attempt_at FROM webhook_attempts a WHERE a.delivery_id = d.id
                     ORDER BY a.id DESC LIMIT 1)
            THEN EXTRACT(EPOCH FROM d.next_attempt_at - now())
        END AS remaining
        FROM webhook_deliveries d
        WHERE d.id = :delivery_id
        FOR UPDATE
        """
    )
)


def lock_lease_remaining(connection: Connection, delivery_id: int) -> float | None:
    """Seconds left on the lease of a delivery whose attempt is in flight; None when none is (or no such
    delivery). Locks the delivery's row for the rest of the transaction."""
    remaining = connection.execute(_LEASE_REMAINING, {"delivery_id": delivery_id}).scalar()
    return None if remaining is None else float(remaining)


# Deliver again now: a settled delivery becomes pending for one more attempt; a pending one is due now and
# keeps its retry window.
_RETRY_NOW = text(
    compact(
        f"""
        WITH reset AS (
            UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(),
                retry_until = GREATEST(retry_until, now()), completed_at = NULL
            WHERE id = :delivery_id
            RETURNING *
        )
        SELECT {_DELIVERY_COLUMNS}
        FROM reset d JOIN webhook_endpoints e ON e.id = d.endpoint_id JOIN message_events ev ON ev.id = d.event_id
        """
    )
)


def retry_now(connection: Connection, delivery_id: int) -> WebhookDelivery | None:
    row = connection.execute(_RETRY_NOW, {"delivery_id": delivery_id}).first()
    return None if row is None else _delivery(row)


_CLAIM_OVERDUE_DELIVERIES = text(
    compact(
        """
        UPDATE webhook_deliveries SET next_attempt_at = now()
        WHERE id IN (
            SELECT id FROM webhook_deliveries
            WHERE status = 'pending' AND next_attempt_at < now() - make_interval(secs => :grace_seconds)
            ORDER BY next_attempt_at
            LIMIT :limit
            FOR UPDATE SKIP LOCKED
        )
        RETURNING id
        """
    )
)


def claim_overdue_deliveries(connection: Connection, grace_seconds: float, limit: int) -> list[int]:
    """Pending deliveries whose attempt is overdue (their queue message was lost, or a worker died holding
    the lease), made due now; the caller enqueues them in the same transaction."""
    rows = connection.execute(_CLAIM_OVERDUE_DELIVERIES, {"grace_seconds": grace_seconds, "limit": limit})
    return sorted(row.id for row in rows)


_LIST_DELIVERIES = compact(
    f"""
    SELECT {_DELIVERY_COLUMNS}
    FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
    JOIN message_events ev ON ev.id = d.event_id
    WHERE d.endpoint_id = :endpoint_id {{position}}
    ORDER BY d.created_at DESC, d.id DESC
    LIMIT :limit
    """
)
_LIST_DELIVERIES_FIRST = text(_LIST_DELIVERIES.format(position=""))
_LIST_DELIVERIES_AFTER = text(_LIST_DELIVERIES.format(position="AND (d.created_at, d.id) < (:cursor_at, :cursor_id)"))
_ATTEMPTS_OF = text(
    "SELECT id, delivery_id, attempt, outcome, status_code, error, response_excerpt, duration_ms, next_attempt_at,"
    " attempted_at FROM webhook_attempts WHERE delivery_id = ANY(CAST(:delivery_ids AS bigint[]))"
    " ORDER BY delivery_id, id DESC"
)


def list_deliveries(
    connection: Connection, endpoint_id: int, limit: int, before: tuple[datetime, int] | None
) -> list[WebhookDelivery]:
    """An endpoint's deliveries, newest first, each with its attempts (newest first): two statements.
    Keyset on (created_at, id), served by ix_webhook_deliveries_endpoint."""
    if before is None:
        rows = connection.execute(_LIST_DELIVERIES_FIRST, {"endpoint_id": endpoint_id, "limit": limit})
    else:
        parameters = {"endpoint_id": endpoint_id, "limit": limit, "cursor_at": before[0], "cursor_id": before[1]}
        rows = connection.execute(_LIST_DELIVERIES_AFTER, parameters)
    deliveries = [_delivery(row) for row in rows]
    if not deliveries:
        return deliveries
    attempts: dict[int, list[WebhookAttempt]] = {}
    for row in connection.execute(_ATTEMPTS_OF, {"delivery_ids": [delivery.id for delivery in deliveries]}):
        attempts.setdefault(row.delivery_id, []).append(_attempt(row))
    return [replace(delivery, attempt_log=tuple(attempts.get(delivery.id, ()))) for delivery in deliveries]
