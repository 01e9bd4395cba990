"""Typed configuration: one settings piece per concern, composed per function and validated at cold start.

Each function declares what it reads (functions/<name>/app.py, as the aws-lambda-handler-cookbook
composes its handlers' environment models) by combining the pieces below, and builds
`FunctionSettings(ItsModel)` at import time: a variable its template environment lacks fails the cold start
with an error naming it, not the first request that happens to need it. Services ask for the piece they
use (`config.current(RetryQueueSettings)`) and get the invoking function's settings; a function whose
model lacks that piece is a defect reported as such.

To add a setting, add a field to the piece it belongs to (or a new piece, and add it to the functions that
need it), document it in README's configuration table, and give it to those functions in template.yaml.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from messaging import runtime


class SettingsPiece(BaseModel):
    """Base of every piece: immutable, read from environment variables by their names.

    Validators are built on a piece's first use (`defer_build`): a function reads a few of the twenty pieces,
    and building the others' at import was a measurable part of every cold start."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", defer_build=True)


class DatabaseSettings(SettingsPiece):
    # A URL locally, a Secrets Manager secret (RDS format) in AWS: one of the two is required.
    database_url: str | None = Field(None, alias="DATABASE_URL")
    database_secret_arn: str | None = Field(None, alias="DATABASE_SECRET_ARN")
    database_pool_size: int = Field(2, alias="DATABASE_POOL_SIZE", ge=1, le=50)
    # Socket timeout of connecting and of every round trip (pg8000 applies one timeout to both).
    database_timeout_seconds: float = Field(5.0, alias="DATABASE_TIMEOUT_SECONDS", gt=0)
    # Statements prepared once per connection (PostgreSQL then skips parsing and planning them). Session
    # state: off behind RDS Proxy, which would pin every connection (see messaging.db.wire).
    database_prepared_statements: bool = Field(True, alias="DATABASE_PREPARED_STATEMENTS")

    @model_validator(mode="after")
    def _one_database(self) -> DatabaseSettings:
        if not self.database_url and not self.database_secret_arn:
            raise ValueError("DATABASE_URL or DATABASE_SECRET_ARN is required")
        return self


class SqsSettings(SettingsPiece):
    sqs_endpoint_url: str | None = Field(None, alias="SQS_ENDPOINT_URL")  # local SQS; AWS's own when unset


class RetryQueueSettings(SqsSettings):
    send_retry_queue_url: str = Field(alias="SEND_RETRY_QUEUE_URL")


class DeadLetterQueueSettings(SqsSettings):
    send_retry_dlq_url: str = Field(alias="SEND_RETRY_DLQ_URL")


class RetryPolicySettings(SettingsPiece):
    max_send_attempts: int = Field(6, alias="MAX_SEND_ATTEMPTS", ge=1, le=50)
    retry_base_seconds: float = Field(2.0, alias="RETRY_BASE_SECONDS", ge=0)
    retry_max_seconds: float = Field(300.0, alias="RETRY_MAX_SECONDS", ge=0)
    send_lease_seconds: float = Field(60.0, alias="SEND_LEASE_SECONDS", ge=0)


class SweepSettings(SettingsPiece):
    sweep_batch_size: int = Field(100, alias="SWEEP_BATCH_SIZE", ge=1, le=1000)
    sweep_grace_seconds: float = Field(60.0, alias="SWEEP_GRACE_SECONDS", ge=0)


class IdempotencySettings(SettingsPiece):
    idempotency_key_ttl_seconds: int = Field(24 * 3600, alias="IDEMPOTENCY_KEY_TTL_SECONDS", ge=60)


class ProviderReceiptSettings(SettingsPiece):
    """The mock providers' delivery receipts: outcomes per accepted send ("delivered=0.9,undelivered=0.1", or
    "off") and their delay. Without a ProviderReceiptQueue no receipt is emitted (reconciliation still
    settles each send by lookup)."""

    mock_sms_receipts: str = Field("delivered=1", alias="MOCK_SMS_RECEIPTS")
    mock_email_receipts: str = Field("delivered=1", alias="MOCK_EMAIL_RECEIPTS")
    mock_receipt_delay_seconds: float = Field(1.0, alias="MOCK_RECEIPT_DELAY_SECONDS", ge=0, le=900)
    provider_receipt_queue_url: str | None = Field(None, alias="PROVIDER_RECEIPT_QUEUE_URL")


class ProviderMockSettings(ProviderReceiptSettings):
    """The mock providers: injected faults and the receipts they emit."""

    mock_sms_faults: str = Field("", alias="MOCK_SMS_FAULTS")
    mock_email_faults: str = Field("", alias="MOCK_EMAIL_FAULTS")
    mock_provider_seed: int | None = Field(None, alias="MOCK_PROVIDER_SEED")
    mock_retry_after_seconds: float = Field(2.0, alias="MOCK_RETRY_AFTER_SECONDS", ge=0)


class StatusWebhookSettings(SettingsPiece):
    """MockReceiptFunction: the API whose status webhooks the mock providers' receipts are POSTed to."""

    api_base_url: str = Field(alias="API_BASE_URL")


class ReconciliationSettings(SettingsPiece):
    # A `sent` message without a receipt for this long is settled by asking the provider.
    receipt_timeout_seconds: float = Field(3600.0, alias="RECEIPT_TIMEOUT_SECONDS", ge=1)
    # A held receipt no message claimed for this long names a message we never sent: forgotten.
    held_receipt_retention_seconds: float = Field(7 * 24 * 3600.0, alias="HELD_RECEIPT_RETENTION_SECONDS", ge=60)


class WebhookSignatureSettings(SettingsPiece):
    # Comma-separated secrets locally, a Secrets Manager secret in AWS; neither: verification off (warned).
    sms_webhook_secrets: str = Field("", alias="SMS_WEBHOOK_SECRETS")
    email_webhook_secrets: str = Field("", alias="EMAIL_WEBHOOK_SECRETS")
    sms_webhook_secret_arn: str | None = Field(None, alias="SMS_WEBHOOK_SECRET_ARN")
    email_webhook_secret_arn: str | None = Field(None, alias="EMAIL_WEBHOOK_SECRET_ARN")
    webhook_tolerance_seconds: int = Field(300, alias="WEBHOOK_TOLERANCE_SECONDS", ge=1, le=3600)


class WebhookPolicySettings(SettingsPiece):
    """The inbound functions: whether their webhooks must be signed. `required` (the default, and the
    template's): a provider with no signing secret configured has every webhook refused (503, so the
    provider retries), so a deploy that forgot its secrets fails closed. `optional`: such a provider's
    webhooks are accepted unverified (local development; the local runner sets it and says so). A configured
    secret is checked either way."""

    webhook_signatures: Literal["required", "optional"] = Field("required", alias="WEBHOOK_SIGNATURES")


class EventQueueSettings(SqsSettings):
    """Where a transaction's new message_events are published after its commit (the outbox, DESIGN.md §4).
    Optional on purpose: publishing is a best-effort shortcut, and the sweep relays every event the
    dispatcher has not taken, so a writer without the queue (a test, a bench) delays events, never loses one."""

    event_queue_url: str | None = Field(None, alias="EVENT_QUEUE_URL")


class WebhookTargetSettings(SettingsPiece):
    """Which addresses a customer webhook endpoint may point at (checked at registration and delivery)."""

    webhook_allow_private_targets: bool = Field(False, alias="WEBHOOK_ALLOW_PRIVATE_TARGETS")
    # Also how long the target's name may take to resolve, at registration as at every delivery.
    webhook_connect_timeout_seconds: float = Field(3.0, alias="WEBHOOK_CONNECT_TIMEOUT_SECONDS", gt=0, le=30)


class WebhookDeliverySettings(EventQueueSettings, WebhookTargetSettings):
    """EventDispatchFunction: retries of failed deliveries, their dead-letter queue, outbound HTTP."""

    event_dlq_url: str | None = Field(None, alias="EVENT_DLQ_URL")
    event_retry_base_seconds: float = Field(5.0, alias="EVENT_RETRY_BASE_SECONDS", ge=0)
    event_retry_max_seconds: float = Field(3600.0, alias="EVENT_RETRY_MAX_SECONDS", ge=0)
    # How long a failing delivery keeps being retried before it is `failed` (at least a day in production).
    event_retry_window_seconds: float = Field(24 * 3600, alias="EVENT_RETRY_WINDOW_SECONDS", ge=0)
    event_endpoint_disable_after: int = Field(10, alias="EVENT_ENDPOINT_DISABLE_AFTER", ge=1)
    webhook_timeout_seconds: float = Field(10.0, alias="WEBHOOK_TIMEOUT_SECONDS", gt=0, le=60)
    # Records of one EventQueue batch in flight at once in an execution environment (the batch is 10).
    event_dispatch_concurrency: int = Field(10, alias="EVENT_DISPATCH_CONCURRENCY", ge=1, le=100)


class SegmentSettings(SettingsPiece):
    """The longest SMS a send accepts (README "Encoding and segments")."""

    max_sms_segments: int = Field(10, alias="MAX_SMS_SEGMENTS", ge=1, le=100)


class KeywordReplySettings(SegmentSettings):
    """The confirmations sent for inbound STOP/START/HELP keywords (README "Compliance"). They are SMS held to
    MAX_SMS_SEGMENTS like any other, checked here at cold start: a reply text the send path would refuse
    is a configuration error, never a STOP that cannot be confirmed."""

    stop_reply_text: str = Field(
        "You have been unsubscribed and will receive no further messages from this number. Reply START to resubscribe.",
        alias="STOP_REPLY_TEXT",
        min_length=1,
    )
    start_reply_text: str = Field(
        "You have been resubscribed to messages from this number. Reply STOP to unsubscribe, HELP for help.",
        alias="START_REPLY_TEXT",
        min_length=1,
    )
    help_reply_text: str = Field(
        "Reply STOP to unsubscribe, START to resubscribe. Msg&data rates may apply.",
        alias="HELP_REPLY_TEXT",
        min_length=1,
    )

    @model_validator(mode="after")
    def _replies_fit_in_max_sms_segments(self) -> KeywordReplySettings:
        from messaging.segments import count_segments  # the codec, only where keyword replies are configured

        for name, reply in (
            ("STOP_REPLY_TEXT", self.stop_reply_text),
            ("START_REPLY_TEXT", self.start_reply_text),
            ("HELP_REPLY_TEXT", self.help_reply_text),
        ):
            counted = count_segments(reply)
            if counted.segments > self.max_sms_segments:
                raise ValueError(
                    f"{name} needs {counted.segments} {counted.encoding} segments; "
                    f"MAX_SMS_SEGMENTS allows {self.max_sms_segments}"
                )
        return self


class ThrottleSettings(SettingsPiece):
    """Per-sender throttling (README "Throttling")."""

    # Messages per second each sender may hand to the provider; 0 means no limit.
    sender_rate_per_second: float = Field(0.0, alias="SENDER_RATE_PER_SECOND", ge=0, le=10_000)


class RequestLimitSettings(SettingsPiece):
    max_request_bytes: int = Field(256 * 1024, alias="MAX_REQUEST_BYTES", ge=1024)


class ApiSettings(DatabaseSettings, RequestLimitSettings, EventQueueSettings):
    """What every HTTP API function reads: the database, the request limits, and the EventQueue its
    transactions publish their new events to."""


class ConfigurationError(RuntimeError):
    """The environment does not configure what a function needs (raised at cold start)."""


def settings_from[Piece: SettingsPiece](model: type[Piece], environ: Mapping[str, str]) -> Piece:
    """`model` read from `environ`; an empty variable counts as unset. Errors name the variables."""
    try:
        return model.model_validate({name: value for name, value in environ.items() if value != ""})
    except ValidationError as error:
        problems = []
        for problem in error.errors():
            variable = ".".join(str(part) for part in problem["loc"])
            message = str(problem["msg"]).removeprefix("Value error, ")
            if problem["type"] == "missing":
                problems.append(f"{variable} is required")
            else:
                problems.append(f"{variable}: {message}" if variable else message)
        raise ConfigurationError(f"{model.__name__}: {'; '.join(problems)}") from None


# The environment the settings are read from. Lambda gives each function its own process and environment;
# the local runner hosts every function in one process, so it sets this to the function's own view.
_environment: ContextVar[Mapping[str, str] | None] = ContextVar("messaging_environment", default=None)
_bound: ContextVar[SettingsPiece | None] = ContextVar("messaging_settings", default=None)


def environment() -> Mapping[str, str]:
    return _environment.get() or os.environ


@contextmanager
def environment_of_function(environ: Mapping[str, str]) -> Iterator[None]:
    """Read settings from `environ` (the local runner: one function's environment) within the block."""
    token = _environment.set(environ)
    try:
        yield
    finally:
        _environment.reset(token)


class FunctionSettings[Model: SettingsPiece]:
    """A function's settings: validated when built (at cold start), re-read after `runtime.reset()`, and
    bound to each invocation by `bind`, so the services it calls read this function's settings."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        self._environ = environment()  # the function's environment (a live mapping, as os.environ is)
        self.get()

    def get(self) -> Model:
        return runtime.once(self, lambda: settings_from(self.model, self._environ))

    def bind(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """Decorate the Lambda handler: the invocation runs with these settings."""

        @wraps(handler)
        def invoke(event: Any, context: Any) -> Any:
            token = _bound.set(self.get())
            try:
                return handler(event, context)
            finally:
                _bound.reset(token)

        return invoke


def current[Piece: SettingsPiece](piece: type[Piece]) -> Piece:
    """The `piece` of the settings of the function being invoked. Outside a function (tests calling a
    service directly, tools), the piece alone, read from the environment."""
    bound = _bound.get()
    if bound is None:
        return runtime.once(("settings", piece), lambda: settings_from(piece, environment()))
    if not isinstance(bound, piece):
        raise ConfigurationError(f"{type(bound).__name__} does not include {piece.__name__}: add it to the model")
    return bound
