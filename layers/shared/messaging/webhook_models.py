"""Pydantic models of the customer-webhook API: endpoints, their delivery attempts, the events' wire body."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from messaging.enums import SUBSCRIBABLE_EVENTS

MAX_DESCRIPTION_LENGTH = 500
SUBSCRIBABLE = frozenset(event.value for event in SUBSCRIBABLE_EVENTS)


def _event_types(values: list[str]) -> list[str]:
    for index, value in enumerate(values):
        if value not in SUBSCRIBABLE:
            raise ValueError(
                f"events[{index}]: {value!r} is not an event type; use one of {', '.join(sorted(SUBSCRIBABLE))}"
            )
    return sorted(set(values))


def _plain_text(value: str) -> str:
    if any(ord(character) < 0x20 and character not in "\t\n" for character in value):
        raise ValueError("must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


EventTypes = Annotated[list[str], Field(min_length=1, max_length=len(SUBSCRIBABLE) * 4), AfterValidator(_event_types)]
Url = Annotated[str, Field(min_length=1, max_length=2048)]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION_LENGTH), AfterValidator(_plain_text)]


class WebhookEndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url
    events: EventTypes
    description: Description | None = None


class WebhookEndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    events: EventTypes | None = None
    enabled: bool | None = None


class WebhookEndpointOut(BaseModel):
    id: int
    url: str
    description: str | None
    events: list[str]
    enabled: bool
    disabled_reason: str | None = Field(description="Why the endpoint was disabled automatically, if it was")
    created_at: datetime
    updated_at: datetime


class WebhookEndpointCreated(WebhookEndpointOut):
    secret: str = Field(description="The signing secret (whsec_...): shown only in this answer")


class WebhookAttemptOut(BaseModel):
    attempt: int
    outcome: str = Field(description="succeeded, retrying (another attempt follows) or failed (the last one)")
    status_code: int | None
    error: str | None
    response_excerpt: str | None = Field(description="The start of the endpoint's answer (at most 1 KiB)")
    duration_ms: int
    next_attempt_at: datetime | None
    attempted_at: datetime


class WebhookDeliveryOut(BaseModel):
    """One event to one endpoint: its state and every attempt (newest first)."""

    id: int
    event_id: int
    event_type: str
    endpoint_id: int
    status: str = Field(description="pending (attempts continue), succeeded, or failed (retries exhausted)")
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    completed_at: datetime | None
    attempt_log: list[WebhookAttemptOut]


class EventBody(BaseModel):
    """What an endpoint receives: Standard Webhooks' {type, timestamp, data}."""

    type: str
    timestamp: datetime
    data: dict[str, Any]
