"""A conversation's summary names the last message of its own list: with equal timestamps, the last in
(timestamp, id) order, however concurrent webhooks interleave."""

from concurrent.futures import ThreadPoolExecutor

from infra.local_runner.apigw import LambdaContext
from infra.local_runner.sandbox import ExecutionEnvironments
from tests.conftest import response_json, sample_event
from tests.integration.test_cursor_safety import read

ROUNDS = 6
BURST = 64
ENVIRONMENTS = 8  # concurrent writers: execution environments (worker processes) serving the burst


def test_concurrent_messages_with_one_timestamp_keep_the_summary_on_the_lists_last_message(
    invoke, db, configure, application
):
    configure(DATABASE_TIMEOUT_SECONDS=60)  # the writers queue on one row lock on a busy test machine
    environments = ExecutionEnvironments(application.functions["InboundSmsFunction"], limit=ENVIRONMENTS)

    def webhook(round_number: int, index: int):
        body = {
            "from": f"+1415555{round_number:04d}",
            "to": "+12016661234",
            "type": "sms",
            "messaging_provider_id": f"tie-{round_number}-{index}",
            "body": f"round {round_number} message {index}",
            "attachments": None,
            "timestamp": "2024-11-01T14:00:00Z",
        }
        context = LambdaContext(function_name="InboundSmsFunction", timeout_seconds=120)
        return environments.invoke(sample_event("inbound_sms-sms", payload=body), context)

    disagreements = []
    with ThreadPoolExecutor(max_workers=BURST) as pool:
        for round_number in range(ROUNDS):
            responses = list(pool.map(lambda index, r=round_number: webhook(r, index), range(BURST)))
            assert {response["statusCode"] for response in responses} == {200}
            conversation_id = response_json(responses[0])["conversation_id"]
            ids = {"conversation_id": conversation_id}
            messages = "/api/conversations/{conversation_id}/messages"
            listed = read(invoke, "ConversationsFunction", messages, ids, "limit=200")["items"]
            summary = read(invoke, "ConversationsFunction", "/api/conversations/{conversation_id}", ids)
            assert len(listed) == BURST and summary["message_count"] == BURST
            stored = db.rows("SELECT last_message_id FROM conversations WHERE id = :id", id=conversation_id)[0]
            if (stored["last_message_id"], summary["last_message_preview"]) != (listed[-1]["id"], listed[-1]["body"]):
                disagreements.append((round_number, stored["last_message_id"], listed[-1]["id"]))
    environments.stop()
    assert disagreements == []
