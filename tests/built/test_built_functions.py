"""The packaged artifacts work: every function built by `sam build` is imported from .aws-sam/build alone
(its folder, the built layer, the standard library: nothing from the source tree or the dev virtualenv)
and invoked with its sample events against PostgreSQL and an SQS endpoint (moto's server).

Run with `make build test-build` (CI does); skipped when there is no build output.
"""

import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import boto3
import pytest

from infra.local_runner import postgres, template
from infra.local_runner.sqs import create_queues, start_embedded_sqs
from tests.conftest import _server_url, create_test_database

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / ".aws-sam" / "build"
DRIVER = Path(__file__).with_name("invoke_built.py")

pytestmark = pytest.mark.skipif(not (BUILD / "template.yaml").exists(), reason="run `make build` first")

# Order matters: the database is migrated by the built MigrateFunction, then filled by the webhooks.
FUNCTIONS = [
    "MigrateFunction",
    "InboundSmsFunction",
    "InboundEmailFunction",
    "SendMessageFunction",
    "ConversationsFunction",
    "SendRetryFunction",
    "RetrySweepFunction",
    "WebhookEndpointsFunction",
    "EventDispatchFunction",
    "MockReceiptFunction",
]


# Samples naming a row only a running system has (a webhook delivery): the built function answers 404.
ABSENT_IN_A_FRESH_DATABASE = {"webhook_endpoints-retry.json"}

# Stand-ins for one function only. SendMessageFunction's SMS provider refuses its first send
# (send_message-mms.json: message 7, failed at once; 1-5 are the inbound samples with the STOP confirmation,
# 6 the email send), so send_message-resend.json has a failed message to resend; InboundSmsFunction's
# provider accepts the STOP confirmation.
FUNCTION_STAND_INS = {"SendMessageFunction": {"MOCK_SMS_FAULTS": "400"}}


def test_every_function_of_the_template_is_covered():
    assert set(FUNCTIONS) == set(template.load().functions)


@pytest.fixture(scope="module")
def environment():
    server_url = _server_url()
    database = f"build_test_{os.getpid()}"
    database_url = create_test_database(server_url, database)
    sqs_server, endpoint = start_embedded_sqs()
    client = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    queues = create_queues(client, template.load())
    status_webhook = _AcceptEverything(("127.0.0.1", 0), _Ok)  # where MockReceiptFunction posts its receipt
    threading.Thread(target=status_webhook.serve_forever, daemon=True).start()
    # Variables no function of the template names: the local stand-ins for AWS and for test settings. Every
    # built function gets them.
    stand_ins = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": database_url,
        "SQS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "build-test",
        "AWS_SECRET_ACCESS_KEY": "build-test",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "RETRY_BASE_SECONDS": "0",
        "RETRY_MAX_SECONDS": "0",
    }
    # Local values of variables the template names: a function gets one only if the template gives it that
    # variable, so a variable missing from one function in the template fails here as it would in AWS.
    local_values = {
        # The template gives MockReceiptFunction the deployed API's URL (a !Sub); here, a local receiver.
        "API_BASE_URL": f"http://127.0.0.1:{status_webhook.server_address[1]}",
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",  # the sample endpoint's name need not resolve here
        "WEBHOOK_SIGNATURES": "optional",  # the sample webhooks are unsigned (the template requires signatures)
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    yield queues, stand_ins, local_values
    status_webhook.shutdown()
    sqs_server.stop()
    postgres.drop_database(server_url, database)


class _AcceptEverything(http.server.ThreadingHTTPServer):
    daemon_threads = True


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server interface
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def _events_of(function: str) -> list[Path]:
    folder = template.load().functions[function].code_uri.name
    events = sorted((ROOT / "events").glob(f"{folder}-*.json"))
    assert events, f"no sample event for {function}"
    return events


def _succeeded(result):
    if "statusCode" in result:
        return 200 <= result["statusCode"] < 300
    if "batchItemFailures" in result:
        return result["batchItemFailures"] == []
    return True


@pytest.mark.parametrize("function", FUNCTIONS)
def test_built_function_imports_from_the_build_and_handles_its_sample_events(environment, function):
    # Each function gets only what template.yaml gives it (queue references resolved to the test's queues,
    # local values for what cannot be resolved here), plus the stand-ins no function of the template names.
    queues, stand_ins, local_values = environment
    application = template.load()
    named_anywhere = {name for each in application.functions.values() for name in each.environment}
    assert not stand_ins.keys() & named_anywhere, "a stand-in would hide a variable missing from the template"
    declared = application.functions[function]
    given = declared.resolved_environment({**application.parameter_defaults, **queues})
    given.update((name, value) for name, value in local_values.items() if name in declared.environment)
    completed = subprocess.run(  # noqa: S603 - our own driver
        [sys.executable, "-I", "-S", str(DRIVER), str(BUILD), function, *map(str, _events_of(function))],
        env={**given, **stand_ins, **FUNCTION_STAND_INS.get(function, {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["app"].startswith(str(BUILD / function))
    for package, origin in report["origins"].items():
        if origin is not None:
            assert origin.startswith(str(BUILD / "SharedLayer" / "python")), f"{package} came from {origin}"
    assert report["origins"]["messaging"] is not None
    for event, result in zip(_events_of(function), report["results"], strict=True):
        if event.name in ABSENT_IN_A_FRESH_DATABASE:
            assert result["statusCode"] == 404, result
        else:
            assert _succeeded(result), result
    if function == "InboundSmsFunction":
        _assert_the_stop_sample_was_applied(stand_ins["DATABASE_URL"])


def _assert_the_stop_sample_was_applied(database_url: str) -> None:
    """events/inbound_sms-stop.json: its sender is opted out of the number it wrote to, and the built
    function sent the confirmation through the provider."""
    from sqlalchemy import create_engine, text

    from messaging.db.engine import sqlalchemy_url

    stop = json.loads(json.loads((ROOT / "events" / "inbound_sms-stop.json").read_text())["body"])
    engine = create_engine(sqlalchemy_url(database_url))
    try:
        with engine.connect() as connection:
            suppressed = connection.execute(text("SELECT address, sender, source FROM suppressions")).all()
            replies = connection.execute(
                text("SELECT status FROM messages WHERE direction = 'outbound' AND to_address = :to"),
                {"to": stop["from"]},
            ).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in suppressed] == [(stop["from"], stop["to"], "keyword")]
    assert [row.status for row in replies] == ["sent"]
