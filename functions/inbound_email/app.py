"""POST /api/webhooks/email: inbound email; POST /api/webhooks/email/events: delivery event batches. Both signed."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from messaging import config, signatures
from messaging.http import BODY_ERRORS, MessagingApi, documented, json_response
from messaging.models import MAX_EMAIL_EVENTS, EmailEvent, InboundAccepted, InboundEmail, ReceiptResults
from messaging.observability import logger, metrics, tracer
from messaging.services import inbound, receipts


class InboundEmailSettings(config.ApiSettings, config.WebhookSignatureSettings, config.WebhookPolicySettings):
    """InboundEmailFunction: verifies the webhook's signature, stores inbound email and applies delivery events."""


settings = config.FunctionSettings(InboundEmailSettings)  # cold start: fails naming a missing variable
EVENTS_PATH = "/api/webhooks/email/events"
app = MessagingApi(
    webhook_verifier=lambda: signatures.endpoint_verifier("email"), array_body_paths=frozenset({EVENTS_PATH})
)
signatures.announce("email")  # at cold start: say once when webhooks go unverified or are all refused


@app.post(
    "/api/webhooks/email",
    summary="Receive an inbound email",
    responses=documented(200, InboundAccepted, "Stored, or already stored (duplicate)", (*BODY_ERRORS, 401)),
)
@tracer.capture_method
def receive_email(payload: Annotated[InboundEmail, Body()]):
    return json_response(200, inbound.receive_email(payload))


@app.post(
    EVENTS_PATH,
    summary="Receive a batch of email delivery events (a JSON array)",
    responses=documented(200, ReceiptResults, "One result per event", (*BODY_ERRORS, 401)),
)
@tracer.capture_method
def receive_events(payload: Annotated[list[EmailEvent], Body(min_length=1, max_length=MAX_EMAIL_EVENTS)]):
    return json_response(200, receipts.receive_email_events(payload))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@settings.bind
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
