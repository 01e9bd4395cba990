"""Pydantic models of every payload the service accepts and every document it returns."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Generic, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)
from pydantic_core import PydanticCustomError

from messaging.enums import Direction, EventSource, EventType, MessageStatus, MessageType, Provider
from messaging.limits import MAX_PHONE_LENGTH

MAX_ATTACHMENTS = 10
MAX_ATTACHMENT_URL_LENGTH = 2048
MAX_SMS_BODY_CHARS = 1600
MAX_EMAIL_BODY_CHARS = 200_000
MAX_PROVIDER_ID_LENGTH = 255
FUTURE_TOLERANCE = timedelta(days=1)
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)


def _phone(value: str, *, assigned: bool = True) -> str:
    # Imported on first use: functions that only read (ConversationsFunction) never load phonenumbers.
    from messaging.addresses import InvalidAddress, normalize_phone

    try:
        return normalize_phone(value, assigned=assigned)
    except InvalidAddress as exc:
        raise ValueError(str(exc)) from None


def _delivered_phone(value: str) -> str:
    """A webhook's number: the carrier already delivered the message, so any possible number is accepted."""
    return _phone(value, assigned=False)


def _email(value: str) -> str:
    from messaging.addresses import InvalidAddress, normalize_email

    try:
        return normalize_email(value)
    except InvalidAddress as exc:
        raise ValueError(str(exc)) from None


def _attachment_url(value: str) -> str:
    if len(value) > MAX_ATTACHMENT_URL_LENGTH:
        raise ValueError(f"attachment URL is longer than {MAX_ATTACHMENT_URL_LENGTH} characters")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise ValueError("attachment is not a URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("attachment must be an absolute http(s) URL")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in value):
        raise ValueError("attachment URL contains whitespace or control characters")
    return value


def _storable_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL, and UTF-8 cannot hold lone surrogates: refuse both up front."""
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    return value


_ISO_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)"
)
_INSTANT_EXPECTED = "timestamp must be ISO-8601 with a time and 'Z' or an offset, e.g. 2024-11-01T14:00:00Z"


def _iso_instant_text(value: Any) -> Any:
    """Only an ISO-8601 date and time with a zone: pydantic would also read epoch numbers and naive or
    date-only strings, and guessing their zone could misplace a message by hours."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    if not isinstance(value, str) or not _ISO_INSTANT.fullmatch(value):
        raise PydanticCustomError("timestamp_format", _INSTANT_EXPECTED)
    return value


def _instant(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # year 1 east of Greenwich, year 9999 west of it: no such instant in UTC
        raise ValueError("timestamp is out of range once converted to UTC") from None
    if value < EARLIEST_TIMESTAMP:
        raise ValueError("timestamp is before 2000-01-01")
    if value > datetime.now(UTC) + FUTURE_TOLERANCE:
        raise ValueError("timestamp is more than one day in the future")
    return value


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp is out of range once converted to UTC") from None


# The length limit the address rules apply (messaging.limits), stated here for the OpenAPI document too, so a
# client reads the limit the service applies.
PhoneNumber = Annotated[str, Field(min_length=1, max_length=MAX_PHONE_LENGTH), AfterValidator(_phone)]
DeliveredPhoneNumber = Annotated[
    str, Field(min_length=1, max_length=MAX_PHONE_LENGTH), AfterValidator(_delivered_phone)
]
EmailAddress = Annotated[str, Field(min_length=1, max_length=700), AfterValidator(_email)]
AttachmentUrl = Annotated[str, Field(min_length=1), AfterValidator(_attachment_url)]
Attachments = Annotated[list[AttachmentUrl] | None, Field(max_length=MAX_ATTACHMENTS)]
Instant = Annotated[datetime, BeforeValidator(_iso_instant_text), AfterValidator(_instant)]
# A bound of a query (since/until): any instant, written as unambiguously as a message's timestamp.
QueryInstant = Annotated[datetime, BeforeValidator(_iso_instant_text), AfterValidator(_utc)]
SearchText = Annotated[str, AfterValidator(_storable_text)]
ProviderMessageId = Annotated[
    str, Field(min_length=1, max_length=MAX_PROVIDER_ID_LENGTH, pattern=r"^\S+$"), AfterValidator(_storable_text)
]
SmsBody = Annotated[str, Field(max_length=MAX_SMS_BODY_CHARS), AfterValidator(_storable_text)]
EmailBody = Annotated[
    str,
    Field(max_length=MAX_EMAIL_BODY_CHARS, description="HTML allowed; stored as received."),
    AfterValidator(_storable_text),
]


def rule_error(field: str, message: str) -> PydanticCustomError:
    """An error of a rule over several fields, naming the field at fault: a model validator's error has
    no location of its own, so the field travels in the context (the HTTP layer reads `ctx.field`)."""
    return PydanticCustomError("invalid_field", message, {"field": field})


class _Payload(BaseModel):
    model_config = ConfigDict(populate_by_name=True, str_strip_whitespace=False)

    @model_validator(mode="after")
    def _distinct_participants(self) -> Any:
        if self.from_ == self.to:  # type: ignore[attr-defined]
            raise rule_error("to", "'from' and 'to' must be different addresses")
        return self

    @property
    def attachment_list(self) -> list[str]:
        return list(self.attachments or [])  # type: ignore[attr-defined]


class _PhonePayload(_Payload):
    from_: PhoneNumber = Field(alias="from", description="Sender phone number (E.164).")
    to: PhoneNumber = Field(description="Recipient phone number (E.164).")
    type: Literal["sms", "mms"]
    body: SmsBody = ""
    attachments: Attachments = Field(default=None, description="http(s) URLs of media; only for mms.")

    @model_validator(mode="after")
    def _channel_rules(self) -> Any:
        if self.type == "sms" and self.attachments:
            raise rule_error("attachments", "attachments are only allowed on 'mms' messages")
        if self.type == "sms" and not self.body.strip():
            raise rule_error("body", "an 'sms' message needs a non-empty body")
        if self.type == "mms" and not self.body.strip() and not self.attachments:
            raise rule_error("body", "an 'mms' message needs a body or at least one attachment")
        return self


class _EmailPayload(_Payload):
    from_: EmailAddress = Field(alias="from", description="Sender address; markdown mailto form accepted.")
    to: EmailAddress = Field(description="Recipient address; markdown mailto form accepted.")
    body: EmailBody = ""
    attachments: Attachments = None

    @model_validator(mode="after")
    def _not_empty(self) -> Any:
        if not self.body.strip() and not self.attachments:
            raise rule_error("body", "an email needs a body or at least one attachment")
        return self


class InboundSms(_PhonePayload):
    """SMS/MMS webhook from the SMS provider. Unknown provider fields are ignored."""

    model_config = ConfigDict(extra="ignore")
    from_: DeliveredPhoneNumber = Field(alias="from", description="Sender phone number (E.164, possible).")
    to: DeliveredPhoneNumber = Field(description="Recipient phone number (E.164, possible).")
    messaging_provider_id: ProviderMessageId
    timestamp: Instant


class InboundEmail(_EmailPayload):
    """Email webhook from the email provider. Unknown provider fields are ignored."""

    model_config = ConfigDict(extra="ignore")
    xillio_id: ProviderMessageId
    timestamp: Instant


class SendSms(_PhonePayload):
    """A client's request to send an SMS or MMS. Unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid")
    timestamp: Instant | None = None


class SendEmail(_EmailPayload):
    """A client's request to send an email. Unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid")
    # Clients of the shared payload format send "type": "email"; any other value is a mistake. Left out of
    # dumps, so a send with and without it is the same request (idempotency fingerprints agree).
    type: Literal["email"] = Field(default="email", exclude=True, description="Optional; only 'email'.")
    timestamp: Instant | None = None


class MessageOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: int
    conversation_id: int
    direction: Direction
    type: MessageType
    from_: str = Field(alias="from")
    to: str
    body: str
    attachments: list[str]
    timestamp: datetime
    status: MessageStatus
    provider: Provider
    provider_message_id: str | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    status_detail: str | None = Field(None, description="The provider's reason or code for the status.")
    created_at: datetime
    updated_at: datetime
    encoding: Literal["GSM-7", "UCS-2"] | None = Field(description="SMS/MMS: how the body travels; null for email.")
    segments: int | None = Field(description="SMS/MMS: segments the body costs (an MMS is one); null for email.")
    resent_from: int | None = Field(default=None, description="The failed message this one resends.")


MAX_EMAIL_EVENTS = 100


def _receipt_code(value: str) -> str:
    if not value.strip() or not value.isprintable():
        raise ValueError("error_code must be printable, non-empty text")
    return value


ReceiptCode = Annotated[str, Field(max_length=64), AfterValidator(_receipt_code)]
ReceiptDetail = Annotated[
    str, Field(min_length=1, max_length=1000, pattern=r"^[^\x00-\x1f\x7f]+$"), AfterValidator(_storable_text)
]

# The reference our send gave the provider (our message id), echoed in its receipts: it finds the message
# when the provider id is not recorded yet (a send whose answer was lost). At most 18 digits: always a bigint.
ClientReference = Annotated[
    str,
    Field(
        pattern=r"^[1-9][0-9]{0,17}$",
        description="The reference the send gave the provider (our message id), echoed back: it finds the "
        "message when its provider id is not recorded yet (the send never heard the provider's answer).",
    ),
]


class SmsReceipt(BaseModel):
    """A delivery receipt from the SMS provider (POST /api/webhooks/sms/status). Unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid")
    messaging_provider_id: ProviderMessageId
    status: Literal["delivered", "undelivered"]
    error_code: ReceiptCode | None = None
    timestamp: Instant
    client_reference: ClientReference | None = None


class EmailEvent(BaseModel):
    """One event of the email provider's batch (POST /api/webhooks/email/events). Unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid")
    event_id: ProviderMessageId
    xillio_id: ProviderMessageId
    event: Literal["delivered", "bounce", "dropped", "spamreport"]
    reason: ReceiptDetail | None = None
    timestamp: Instant
    client_reference: ClientReference | None = Field(
        None, description="A custom argument of the send, echoed in each of its events (as SendGrid's custom_args)."
    )


class ReceiptResult(BaseModel):
    outcome: Literal["applied", "held", "duplicate", "ignored"] = Field(
        description="applied: the message moved; held: no message carries this provider id yet (applied when one "
        "does); duplicate: already received; ignored: the message's status was already final."
    )
    message_id: int | None


class ReceiptResults(BaseModel):
    results: list[ReceiptResult] = Field(description="One per event, in the order received.")


class MessageEventOut(BaseModel):
    """One row of a message's history."""

    id: int
    type: EventType
    status: str | None
    previous_status: str | None
    attempt: int | None
    detail: str | None
    source: EventSource
    occurred_at: datetime


class ConversationOut(BaseModel):
    id: int
    participants: list[str]
    message_count: int
    last_message_at: datetime | None
    last_message_preview: str | None
    created_at: datetime
    archived: bool = Field(description="Hidden from the inbox until a new inbound message arrives.")
    unread_count: int = Field(description="Inbound messages after the read horizon (POST .../read).")


class ConversationChange(BaseModel):
    """PATCH /api/conversations/{id}. Unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid")
    archived: StrictBool = Field(
        description="True hides the conversation from the inbox; a new inbound message un-archives it."
    )


class ReadHorizon(BaseModel):
    """POST /api/conversations/{id}/read. Unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid")
    through_message_id: StrictInt | None = Field(
        default=None,
        ge=1,
        le=2**63 - 1,
        description="Mark read up to this message of the conversation (in list order); omitted: everything so far.",
    )


class ResendRequest(BaseModel):
    """POST /api/messages/{id}/resend: the body is an empty object (the content is the failed message's)."""

    model_config = ConfigDict(extra="forbid")


class InboundAccepted(BaseModel):
    id: int
    conversation_id: int
    duplicate: bool = Field(description="True when this provider message id was already stored.")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


class ErrorDetail(BaseModel):
    code: str = Field(
        description="Machine-readable, e.g. `invalid_input`, `not_found`, `request_in_flight`. A send's 422 is"
        " `recipient_opted_out` (field `to`) when the recipient is suppressed for the sender, and `invalid_input`"
        " with field `body` when an SMS needs more than MAX_SMS_SEGMENTS segments"
    )
    message: str
    field: str | None = Field(description="The offending field (a dotted path into the body, or a parameter)")


class ErrorResponse(BaseModel):
    error: ErrorDetail


# Suppressions (README "Keywords and suppressions").


def _any_address(value: str) -> str:
    """A phone number (any possible one: opt-outs come from numbers that wrote in) or an email address."""
    return _email(value) if "@" in value else _delivered_phone(value)


SuppressedAddress = Annotated[str, Field(min_length=1, max_length=700), AfterValidator(_any_address)]


class SuppressionIn(BaseModel):
    """Suppress `address`: for `sender` only, or for every sender when `sender` is left out."""

    model_config = ConfigDict(extra="forbid")
    address: SuppressedAddress = Field(description="A phone number (E.164) or an email address.")
    sender: SuppressedAddress | None = Field(None, description="Only this sender is blocked; omit for every one.")
    reason: Annotated[str, Field(max_length=500), AfterValidator(_storable_text)] | None = None

    @model_validator(mode="after")
    def _same_channel(self) -> Any:
        if self.sender is not None:
            if ("@" in self.sender) != ("@" in self.address):
                raise rule_error("sender", "sender and address must both be phone numbers or both email addresses")
            if self.sender == self.address:
                raise rule_error("sender", "sender and address must be different")
        return self


class SuppressionOut(BaseModel):
    id: int
    address: str
    sender: str | None = Field(description="null: suppressed for every sender.")
    source: Literal["keyword", "bounce", "complaint", "manual"]
    reason: str | None
    created_at: datetime
