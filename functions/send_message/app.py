"""POST /api/messages/sms, /api/messages/email and /api/messages/{id}/resend: store, attempt once, hand failures
to the retry queue."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from messaging import config
from messaging.http import BODY_ERRORS, MessagingApi, documented, json_response
from messaging.http_errors import ERROR_DESCRIPTIONS
from messaging.models import MessageOut, ResendRequest, SendEmail, SendSms
from messaging.observability import logger, metrics, tracer
from messaging.services import outbound


class SendMessageSettings(
    config.ApiSettings,
    config.RetryPolicySettings,
    config.IdempotencySettings,
    config.RetryQueueSettings,
    config.DeadLetterQueueSettings,
    config.ProviderMockSettings,
    config.SegmentSettings,
    config.ThrottleSettings,
):
    """SendMessageFunction: stores, makes the first attempt, enqueues the first retry or dead-letters."""


settings = config.FunctionSettings(SendMessageSettings)  # cold start: fails naming a missing variable
app = MessagingApi()

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="idempotency-key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Makes the request safe to retry: the same key and body replay the first response.",
    ),
]
# A send's 422s beyond field validation: what a client must handle differently (README "Compliance").
SEND_422 = (
    ERROR_DESCRIPTIONS[422] + ". Also: code `recipient_opted_out`, field `to`: the recipient is suppressed for"
    " this sender (a STOP keyword, a bounce or complaint, or a manual entry; see GET /api/suppressions), and"
    " nothing was written; code `invalid_input`, field `body`: an SMS body needs more than MAX_SMS_SEGMENTS"
    " segments (default 10: 153 GSM-7 septets or 67 UCS-2 units each), the message says how many"
)
RESPONSES = documented(
    202, MessageOut, "Accepted: stored and attempted; see `status`", (*BODY_ERRORS, 409), {422: SEND_422}
)


def _accepted(result: outbound.SendResult):
    headers = {"Location": f"/api/messages/{result.message.id}"}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(result.status_code, result.message, headers)


@app.post("/api/messages/sms", summary="Send an SMS or MMS", responses=RESPONSES)
@tracer.capture_method
def send_sms(payload: Annotated[SendSms, Body()], idempotency_key: IdempotencyKey = None):
    return _accepted(outbound.send_sms(payload, idempotency_key))


@app.post("/api/messages/email", summary="Send an email", responses=RESPONSES)
@tracer.capture_method
def send_email(payload: Annotated[SendEmail, Body()], idempotency_key: IdempotencyKey = None):
    return _accepted(outbound.send_email(payload, idempotency_key))


@app.post(
    "/api/messages/<message_id>/resend",
    summary="Send a failed message's content again, as a new message recording resent_from",
    responses=documented(
        202,
        MessageOut,
        "Accepted: the new message, stored and attempted; see `status`",
        (*BODY_ERRORS, 404, 409),
        {422: SEND_422},
    ),
)
@tracer.capture_method
def resend(
    message_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    payload: Annotated[ResendRequest, Body()],
    idempotency_key: IdempotencyKey = None,
):
    return _accepted(outbound.resend(message_id, idempotency_key))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@settings.bind
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
