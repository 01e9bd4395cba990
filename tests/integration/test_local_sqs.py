"""The local runner's SQS event source mapping behaves as Lambda's does."""

import json

from infra.local_runner import template
from infra.local_runner.sqs import EventSourceMapping, create_queues, start_embedded_sqs


class Recorder:
    def __init__(self, fail_bodies=(), raise_error=False):
        self.fail_bodies = set(fail_bodies)
        self.raise_error = raise_error
        self.batches = []

    def __call__(self, event, context):
        self.batches.append(event)
        if self.raise_error:
            raise RuntimeError("handler crashed")
        return {
            "batchItemFailures": [
                {"itemIdentifier": record["messageId"]}
                for record in event["Records"]
                if record["body"] in self.fail_bodies
            ]
        }


def mapping(queues, handler, application, visibility_timeout=0):
    function = application.functions["SendRetryFunction"]
    source = next(source for source in application.sqs_sources if source.function == function.name)
    return EventSourceMapping(queues.client, queues.retry_url, handler, source, function, visibility_timeout)


def send(queues, *bodies):
    for body in bodies:
        queues.client.send_message(QueueUrl=queues.retry_url, MessageBody=body)


def test_records_are_delivered_as_a_lambda_sqs_event(queues, application):
    handler = Recorder()
    send(queues, "a")
    assert mapping(queues, handler, application).poll_once() == 1
    record = handler.batches[0]["Records"][0]
    assert record["body"] == "a"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(":SendRetryQueue")
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"messageId", "receiptHandle", "md5OfBody", "messageAttributes", "awsRegion"} <= set(record)
    assert queues.depth(queues.retry_url) == 0


def test_batches_respect_the_batch_size(queues, application):
    handler = Recorder()
    send(queues, *[str(index) for index in range(25)])
    esm = mapping(queues, handler, application)
    while esm.poll_once():
        pass
    assert max(len(batch["Records"]) for batch in handler.batches) <= 10
    assert sorted(record["body"] for batch in handler.batches for record in batch["Records"]) == sorted(
        str(index) for index in range(25)
    )


def test_partial_batch_failure_keeps_only_the_failed_records(queues, application):
    send(queues, "ok-1", "bad", "ok-2")
    esm = mapping(queues, Recorder(fail_bodies={"bad"}), application)
    esm.poll_once()
    remaining = queues.receive_all(queues.retry_url)
    assert [message["Body"] for message in remaining] == ["bad"]


def test_a_crashing_handler_keeps_the_whole_batch(queues, application):
    send(queues, "one", "two")
    mapping(queues, Recorder(raise_error=True), application).poll_once()
    assert sorted(message["Body"] for message in queues.receive_all(queues.retry_url)) == ["one", "two"]


def test_a_record_failing_max_receive_count_times_moves_to_the_dlq(queues, application):
    send(queues, "poison")
    esm = mapping(queues, Recorder(fail_bodies={"poison"}), application, visibility_timeout=0)
    receives = application.queues["SendRetryQueue"].max_receive_count
    for _ in range(receives + 1):
        esm.poll_once()
    assert queues.depth(queues.retry_url) == 0
    assert [message["Body"] for message in queues.receive_all(queues.dlq_url)] == ["poison"]


def test_embedded_sqs_serves_the_template_queues(application):
    import boto3

    server, endpoint = start_embedded_sqs()
    try:
        client = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
        urls = create_queues(client, application, prefix="t-")
        assert set(urls) == set(application.queues)
        retry = client.get_queue_attributes(QueueUrl=urls["SendRetryQueue"], AttributeNames=["All"])["Attributes"]
        redrive = json.loads(retry["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"].endswith(":t-SendRetryDLQ")
        assert redrive["maxReceiveCount"] == application.queues["SendRetryQueue"].max_receive_count
        assert retry["VisibilityTimeout"] == str(application.queues["SendRetryQueue"].visibility_timeout)
        assert create_queues(client, application, prefix="t-") == urls
    finally:
        server.stop()


def test_the_template_describes_the_retry_consumer(application: template.Application):
    source = next(source for source in application.sqs_sources if source.function == "SendRetryFunction")
    assert source.queue == "SendRetryQueue"
    assert source.report_batch_item_failures
    assert application.queues["SendRetryQueue"].dead_letter_queue == "SendRetryDLQ"
