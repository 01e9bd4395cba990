"""Scheduled sweep: re-enqueues overdue sends, relays events the event queue never got and re-enqueues
overdue webhook deliveries, so that no message and no event is ever stranded."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from messaging.observability import logger, metrics, tracer
from messaging.services import retries, webhook_dispatch


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    report = retries.sweep_overdue_sends()
    relayed = webhook_dispatch.sweep_outbox()
    return {
        "requeued": len(report.requeued),
        "purged_idempotency_keys": report.purged_idempotency_keys,
        "relayed_events": len(relayed.events),
        "requeued_deliveries": len(relayed.deliveries),
    }
