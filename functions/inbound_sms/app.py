"""POST /api/webhooks/sms: inbound SMS and MMS; POST /api/webhooks/sms/status: delivery receipts. Both signed."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from messaging import config, signatures
from messaging.http import BODY_ERRORS, MessagingApi, documented, json_response
from messaging.models import InboundAccepted, InboundSms, ReceiptResult, SmsReceipt
from messaging.observability import logger, metrics, tracer
from messaging.services import inbound, receipts


class InboundSmsSettings(
    config.ApiSettings,
    config.WebhookSignatureSettings,
    config.WebhookPolicySettings,
    config.KeywordReplySettings,
    config.ThrottleSettings,
    config.RetryPolicySettings,
    config.RetryQueueSettings,
    config.DeadLetterQueueSettings,
    config.ProviderMockSettings,
):
    """InboundSmsFunction: verifies the webhook's signature and stores the message; answers STOP/START/HELP
    keywords through the send path (its first attempt, retry queue and dead-letter queue)."""


settings = config.FunctionSettings(InboundSmsSettings)  # cold start: fails naming a missing variable
app = MessagingApi(webhook_verifier=lambda: signatures.endpoint_verifier("sms"))
signatures.announce("sms")  # at cold start: say once when webhooks go unverified or are all refused


@app.post(
    "/api/webhooks/sms",
    summary="Receive an inbound SMS or MMS",
    responses=documented(200, InboundAccepted, "Stored, or already stored (duplicate)", (*BODY_ERRORS, 401)),
)
@tracer.capture_method
def receive_sms(payload: Annotated[InboundSms, Body()]):
    return json_response(200, inbound.receive_sms(payload))


@app.post(
    "/api/webhooks/sms/status",
    summary="Receive a delivery receipt of an SMS or MMS",
    responses=documented(
        200, ReceiptResult, "Applied, held until the message is known, or a duplicate", (*BODY_ERRORS, 401)
    ),
)
@tracer.capture_method
def receive_status(payload: Annotated[SmsReceipt, Body()]):
    return json_response(200, receipts.receive_sms_receipt(payload))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@settings.bind
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
