"""Scheduled sweep: re-enqueues overdue queued/retrying sends so that no message is ever stranded."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from messaging import config
from messaging.observability import logger, metrics, tracer
from messaging.services import retries


class RetrySweepSettings(config.DatabaseSettings, config.SweepSettings, config.RetryQueueSettings):
    """RetrySweepFunction: re-enqueues overdue sends and purges expired idempotency keys."""


settings = config.FunctionSettings(RetrySweepSettings)  # cold start: fails naming a missing variable


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@settings.bind
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    report = retries.sweep_overdue_sends()
    return {"requeued": len(report.requeued), "purged_idempotency_keys": report.purged_idempotency_keys}
