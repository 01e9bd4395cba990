"""Typed configuration, read from the environment once per execution environment."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    # Database: a URL locally, a Secrets Manager secret (RDS format) in AWS.
    database_url: str | None = Field(None, alias="DATABASE_URL")
    database_secret_arn: str | None = Field(None, alias="DATABASE_SECRET_ARN")
    database_pool_size: int = Field(2, alias="DATABASE_POOL_SIZE", ge=1, le=50)
    # Socket timeout of connecting and of every round trip (pg8000 applies one timeout to both).
    database_timeout_seconds: float = Field(5.0, alias="DATABASE_TIMEOUT_SECONDS", gt=0)

    # Retry queue.
    send_retry_queue_url: str | None = Field(None, alias="SEND_RETRY_QUEUE_URL")
    send_retry_dlq_url: str | None = Field(None, alias="SEND_RETRY_DLQ_URL")
    sqs_endpoint_url: str | None = Field(None, alias="SQS_ENDPOINT_URL")

    # Retry policy.
    max_send_attempts: int = Field(6, alias="MAX_SEND_ATTEMPTS", ge=1, le=50)
    retry_base_seconds: float = Field(2.0, alias="RETRY_BASE_SECONDS", ge=0)
    retry_max_seconds: float = Field(300.0, alias="RETRY_MAX_SECONDS", ge=0)
    send_lease_seconds: float = Field(60.0, alias="SEND_LEASE_SECONDS", ge=0)
    sweep_batch_size: int = Field(100, alias="SWEEP_BATCH_SIZE", ge=1, le=1000)
    sweep_grace_seconds: float = Field(60.0, alias="SWEEP_GRACE_SECONDS", ge=0)
    idempotency_key_ttl_seconds: int = Field(24 * 3600, alias="IDEMPOTENCY_KEY_TTL_SECONDS", ge=60)

    # Provider mocks.
    mock_sms_faults: str = Field("", alias="MOCK_SMS_FAULTS")
    mock_email_faults: str = Field("", alias="MOCK_EMAIL_FAULTS")
    mock_provider_seed: int | None = Field(None, alias="MOCK_PROVIDER_SEED")
    mock_retry_after_seconds: float = Field(2.0, alias="MOCK_RETRY_AFTER_SECONDS", ge=0)

    # Webhook signatures: comma-separated secrets locally, a Secrets Manager secret in AWS.
    sms_webhook_secrets: str = Field("", alias="SMS_WEBHOOK_SECRETS")
    email_webhook_secrets: str = Field("", alias="EMAIL_WEBHOOK_SECRETS")
    sms_webhook_secret_arn: str | None = Field(None, alias="SMS_WEBHOOK_SECRET_ARN")
    email_webhook_secret_arn: str | None = Field(None, alias="EMAIL_WEBHOOK_SECRET_ARN")
    webhook_tolerance_seconds: int = Field(300, alias="WEBHOOK_TOLERANCE_SECONDS", ge=1, le=3600)

    # Compliance (README "Keywords and suppressions", "Segments", "Throttling").
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
    max_sms_segments: int = Field(10, alias="MAX_SMS_SEGMENTS", ge=1, le=100)
    # Messages per second each sender may hand to the provider; 0 means no limit.
    sender_rate_per_second: float = Field(0.0, alias="SENDER_RATE_PER_SECOND", ge=0, le=10_000)

    # Request limits.
    max_request_bytes: int = Field(256 * 1024, alias="MAX_REQUEST_BYTES", ge=1024)


def settings_from(environ: dict[str, str]) -> Settings:
    return Settings.model_validate({key: value for key, value in environ.items() if value != ""})


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return settings_from(dict(os.environ))
