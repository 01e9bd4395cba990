"""SQS not taking a record is one error, QueueUnavailable, and `best_effort` survives that and nothing else:
a defect or a configuration error on the enqueue path propagates. (tests/conftest.py points SQS at a
closed port.)"""

import pytest
from botocore.exceptions import ClientError

from messaging import event_queue, queue, runtime
from messaging.config import ConfigurationError
from messaging.queue import QueueUnavailable, best_effort


@pytest.fixture(autouse=True)
def _fresh_runtime():
    runtime.reset()  # settings and the SQS client, read again from this test's environment
    yield
    runtime.reset()


class _Sqs:
    def __init__(self, error: Exception | None = None, failed: list[dict] | None = None) -> None:
        self.error, self.failed = error, failed or []

    def send_message_batch(self, **_request):
        if self.error is not None:
            raise self.error
        return {"Failed": self.failed}


def test_an_unreachable_sqs_is_queue_unavailable():
    with pytest.raises(QueueUnavailable, match="could not enqueue a retry"):
        queue.schedule_retry(1, 0)


def test_sqs_refusing_a_request_is_queue_unavailable(monkeypatch):
    refused = ClientError({"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue", "Message": "gone"}}, "Send")
    monkeypatch.setattr(queue, "sqs_client", lambda: _Sqs(error=refused))
    with pytest.raises(QueueUnavailable, match="NonExistentQueue") as raised:
        queue.schedule_retries_now([1, 2])
    assert raised.value.__cause__ is refused


def test_sqs_refusing_part_of_a_batch_is_queue_unavailable(monkeypatch):
    monkeypatch.setattr(queue, "sqs_client", lambda: _Sqs(failed=[{"Id": "0", "Code": "InternalError"}]))
    with pytest.raises(QueueUnavailable, match="refused 1 records"):
        queue.schedule_retries_now([1, 2])


def test_no_event_queue_here_is_queue_unavailable(monkeypatch):
    monkeypatch.delenv("EVENT_QUEUE_URL", raising=False)
    with pytest.raises(QueueUnavailable, match="EVENT_QUEUE_URL is not configured"):
        event_queue.enqueue_deliveries([1])
    event_queue.publish_events([1])  # publishing is optional: nothing to publish to, nothing said


def test_best_effort_survives_only_the_queue_being_unavailable():
    def unavailable():
        raise QueueUnavailable("SQS is down")

    assert best_effort(lambda: None, "could not enqueue") is True
    assert best_effort(unavailable, "could not enqueue; the sweep will") is False
    for defect in (ConfigurationError("SendMessageSettings does not include RetryQueueSettings"), KeyError("a bug")):

        def fail(error: Exception = defect):
            raise error

        with pytest.raises(type(defect)):
            best_effort(fail, "could not enqueue; the sweep will")
