"""SendRetryQueue consumer: retries provider sends, reporting partial batch failures."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from messaging import config, queue
from messaging.observability import logger, metrics, tracer
from messaging.services import retries


class SendRetrySettings(
    config.DatabaseSettings,
    config.RetryPolicySettings,
    config.RetryQueueSettings,
    config.DeadLetterQueueSettings,
    config.ProviderMockSettings,
    config.EventQueueSettings,
):
    """SendRetryFunction: retries sends, postpones early records, dead-letters sends that fail for good."""


settings = config.FunctionSettings(SendRetrySettings)  # cold start: fails naming a missing variable
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@tracer.capture_method
def retry_record(record: SQSRecord) -> str:
    retry = queue.parse_retry_body(record.body)
    logger.append_keys(message_id=retry.message_id, sqs_message_id=record.message_id)
    return retries.retry_send(retry.message_id, receipt_handle=record.receipt_handle, source=retry.source)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@settings.bind
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=retry_record, processor=processor, context=context)
