"""Customer webhook endpoints: register (the secret is shown once), list, change, delete; their delivery
attempts; and delivering one event again now."""

from __future__ import annotations

import base64
import math
import secrets

from messaging import config, event_queue, queue
from messaging.config import WebhookTargetSettings
from messaging.db import webhooks
from messaging.db.engine import transaction
from messaging.errors import Conflict, DeliveryInFlight, InvalidInput, NotFound
from messaging.models import Page
from messaging.observability import logger
from messaging.pagination import decode_cursor, encode_cursor
from messaging.webhook_documents import (
    webhook_delivery_document,
    webhook_endpoint_created_document,
    webhook_endpoint_document,
)
from messaging.webhook_models import (
    WebhookDeliveryOut,
    WebhookEndpointCreated,
    WebhookEndpointIn,
    WebhookEndpointOut,
    WebhookEndpointPatch,
)
from messaging.webhook_targets import check_url

SECRET_BYTES = 32


def new_secret() -> str:
    """Standard Webhooks' secret format: whsec_ and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _checked_url(url: str) -> str:
    settings = config.current(WebhookTargetSettings)
    return check_url(
        url,
        allow_private=settings.webhook_allow_private_targets,
        resolve_timeout=settings.webhook_connect_timeout_seconds,
    )


def create_endpoint(payload: WebhookEndpointIn) -> WebhookEndpointCreated:
    url = _checked_url(payload.url)
    with transaction() as connection:
        endpoint = webhooks.create_endpoint(connection, url, payload.description, payload.events, new_secret())
    logger.info("webhook endpoint registered", extra={"endpoint_id": endpoint.id, "events": payload.events})
    return webhook_endpoint_created_document(endpoint)


def list_endpoints(limit: int, cursor: str | None) -> Page[WebhookEndpointOut]:
    position = decode_cursor(cursor)
    with transaction() as connection:
        found = webhooks.list_endpoints(connection, limit + 1, position)
    next_cursor = encode_cursor(found[limit - 1].created_at, found[limit - 1].id) if len(found) > limit else None
    return Page[WebhookEndpointOut](
        items=[webhook_endpoint_document(endpoint) for endpoint in found[:limit]], next_cursor=next_cursor
    )


def get_endpoint(endpoint_id: int) -> WebhookEndpointOut:
    with transaction() as connection:
        endpoint = webhooks.get_endpoint(connection, endpoint_id)
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} does not exist", field="id")
    return webhook_endpoint_document(endpoint)


def update_endpoint(endpoint_id: int, payload: WebhookEndpointPatch) -> WebhookEndpointOut:
    changes = payload.model_dump(exclude_unset=True)
    for name in ("url", "events", "enabled"):
        if name in changes and changes[name] is None:
            raise InvalidInput(f"'{name}' cannot be null", field=name)
    if not changes:
        raise InvalidInput("give at least one of url, events, enabled", field="body")
    url = None if payload.url is None else _checked_url(payload.url)
    with transaction() as connection:
        endpoint = webhooks.update_endpoint(
            connection, endpoint_id, url=url, events=payload.events, enabled=payload.enabled
        )
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} does not exist", field="id")
    logger.info("webhook endpoint changed", extra={"endpoint_id": endpoint_id, "fields": sorted(changes)})
    return webhook_endpoint_document(endpoint)


def delete_endpoint(endpoint_id: int) -> None:
    with transaction() as connection:
        deleted = webhooks.delete_endpoint(connection, endpoint_id)
    if not deleted:
        raise NotFound(f"webhook endpoint {endpoint_id} does not exist", field="id")
    logger.info("webhook endpoint deleted", extra={"endpoint_id": endpoint_id})


def list_deliveries(endpoint_id: int, limit: int, cursor: str | None) -> Page[WebhookDeliveryOut]:
    position = decode_cursor(cursor)
    with transaction() as connection:
        found = webhooks.list_deliveries(connection, endpoint_id, limit + 1, position)
        if not found and webhooks.get_endpoint(connection, endpoint_id) is None:
            raise NotFound(f"webhook endpoint {endpoint_id} does not exist", field="id")
    last = found[limit - 1] if len(found) > limit else None
    return Page[WebhookDeliveryOut](
        items=[webhook_delivery_document(delivery) for delivery in found[:limit]],
        next_cursor=None if last is None else encode_cursor(last.created_at, last.id),
    )


def retry_delivery(delivery_id: int) -> WebhookDeliveryOut:
    """Deliver that event to that endpoint again now (one more attempt; a pending delivery keeps its retry
    window). If the enqueue fails the delivery is still due, and the sweep enqueues it. Not while an attempt
    is in flight: making it due would let a second worker attempt it beside the first (DeliveryInFlight,
    retry once the lease has run out)."""
    with transaction() as connection:
        current = webhooks.get_delivery(connection, delivery_id)
        if current is None:
            raise NotFound(f"webhook delivery {delivery_id} does not exist", field="id")
        if not current.endpoint_enabled:
            raise Conflict(f"webhook endpoint {current.endpoint_id} is disabled; enable it first", field="id")
        lease = webhooks.lock_lease_remaining(connection, delivery_id)
        if lease is not None:
            raise DeliveryInFlight(
                f"webhook delivery {delivery_id} is being attempted; retry after its attempt ends",
                field="id",
                retry_after_seconds=max(1, math.ceil(lease)),
            )
        delivery = webhooks.retry_now(connection, delivery_id)
        if delivery is None:  # deleted with its endpoint since it was read
            raise NotFound(f"webhook delivery {delivery_id} does not exist", field="id")
    queue.best_effort(
        lambda: event_queue.enqueue_deliveries([delivery_id]),
        "could not enqueue a manual retry; the sweep will",
        delivery_id=delivery_id,
    )
    return webhook_delivery_document(delivery)
