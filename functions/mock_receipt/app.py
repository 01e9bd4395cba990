"""ProviderReceiptQueue consumer: the mock providers' delivery receipts, POSTed to the status webhooks."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from messaging import config
from messaging.observability import logger, metrics, tracer
from messaging.providers import receipt_sender


class MockReceiptSettings(config.StatusWebhookSettings, config.WebhookSignatureSettings):
    """MockReceiptFunction: POSTs the mock providers' receipts to the API, signed like the providers' webhooks."""


settings = config.FunctionSettings(MockReceiptSettings)  # cold start: fails naming a missing variable
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@tracer.capture_method
def post_receipt(record: SQSRecord) -> int:
    receipt = receipt_sender.ScheduledReceipt.parse(record.body)
    logger.append_keys(provider=receipt.provider, sqs_message_id=record.message_id)
    return receipt_sender.post(receipt)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@settings.bind
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=post_receipt, processor=processor, context=context)
