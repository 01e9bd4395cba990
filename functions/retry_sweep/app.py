"""Scheduled sweep: re-enqueues overdue sends (no message is ever stranded) and reconciles deliveries."""

from dataclasses import asdict

from aws_lambda_powertools.utilities.typing import LambdaContext

from messaging import config
from messaging.observability import logger, metrics, tracer
from messaging.services import reconciliation, retries


class RetrySweepSettings(
    config.DatabaseSettings,
    config.SweepSettings,
    config.RetryQueueSettings,
    config.ReconciliationSettings,
    config.ProviderMockSettings,
):
    """RetrySweepFunction: re-enqueues overdue sends, settles unconfirmed sends by asking the provider,
    applies held receipts, and purges expired idempotency keys."""


settings = config.FunctionSettings(RetrySweepSettings)  # cold start: fails naming a missing variable


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@settings.bind
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    try:
        report = retries.sweep_overdue_sends()
    finally:
        # Reconciliation needs only the database and the providers: an SQS outage that fails the re-enqueue
        # (the invocation still fails, and alarms) must not also stop receipts and lookups from settling.
        reconciled = reconciliation.reconcile()
    return {
        "requeued": len(report.requeued),
        "purged_idempotency_keys": report.purged_idempotency_keys,
        **asdict(reconciled),
    }
