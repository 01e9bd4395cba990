"""Configuration is validated per function at cold start, from the environment template.yaml gives it."""

import pytest

from infra.local_runner import template
from infra.local_runner.apigw import LambdaContext
from infra.local_runner.sandbox import ExecutionEnvironments, FunctionError
from messaging.config import ConfigurationError, RetryQueueSettings, settings_from
from tests.integration.conftest import sqs_event

ROOT_TEMPLATE = template.TEMPLATE


def test_a_missing_required_variable_is_named():
    with pytest.raises(ConfigurationError, match="SEND_RETRY_QUEUE_URL is required"):
        settings_from(RetryQueueSettings, {"SQS_ENDPOINT_URL": "http://127.0.0.1:9"})


def test_an_invalid_value_is_named():
    from messaging.config import DatabaseSettings

    with pytest.raises(ConfigurationError, match="DATABASE_POOL_SIZE"):
        settings_from(DatabaseSettings, {"DATABASE_URL": "postgresql://x@h/db", "DATABASE_POOL_SIZE": "many"})


@pytest.mark.parametrize(
    ("variable", "text", "problem"),
    [
        ("STOP_REPLY_TEXT", "a" * 161, "STOP_REPLY_TEXT needs 2 GSM-7 segments; MAX_SMS_SEGMENTS allows 1"),
        ("HELP_REPLY_TEXT", "\U0001f600" * 36, "HELP_REPLY_TEXT needs 2 UCS-2 segments; MAX_SMS_SEGMENTS allows 1"),
    ],
)
def test_a_keyword_reply_beyond_max_sms_segments_is_a_configuration_error(variable, text, problem):
    from messaging.config import KeywordReplySettings

    with pytest.raises(ConfigurationError, match=problem):
        settings_from(KeywordReplySettings, {"MAX_SMS_SEGMENTS": "1", variable: text})
    # At the limit, and the defaults under the smallest limit, are fine.
    fits = settings_from(KeywordReplySettings, {"MAX_SMS_SEGMENTS": "1", variable: text[:-1]})
    assert (fits.stop_reply_text if variable == "STOP_REPLY_TEXT" else fits.help_reply_text) == text[:-1]
    settings_from(KeywordReplySettings, {"MAX_SMS_SEGMENTS": "1"})


def test_inbound_sms_reads_the_reply_texts_and_max_sms_segments_from_its_template_environment(application):
    """So its cold start (which validates KeywordReplySettings) holds the texts to the deployed limit."""
    function = application.functions["InboundSmsFunction"]
    assert {"STOP_REPLY_TEXT", "MAX_SMS_SEGMENTS"} <= set(function.environment)


def test_a_function_whose_template_environment_lacks_a_required_variable_fails_at_cold_start(tmp_path, database_url):
    """SEND_RETRY_QUEUE_URL stays in the runner's environment (other functions get it from the template),
    but SendRetryFunction's own template environment no longer names it: its execution environment (a
    worker process, as the runner starts it) fails its cold start, naming the variable."""
    text = ROOT_TEMPLATE.read_text()
    block_start = text.index("  SendRetryFunction:")
    block_end = text.index("\n  RetrySweepFunction:", block_start)
    block = text[block_start:block_end]
    line = "          SEND_RETRY_QUEUE_URL: !Ref SendRetryQueue\n"
    assert line in block
    changed = tmp_path / "template.yaml"
    changed.write_text(text[:block_start] + block.replace(line, "") + text[block_end:])
    function = template.load(changed).functions["SendRetryFunction"]
    environments = ExecutionEnvironments(function, limit=1)
    try:
        with pytest.raises(FunctionError, match="SEND_RETRY_QUEUE_URL is required"):
            environments.invoke(sqs_event([]), LambdaContext(function.name, function.timeout))
    finally:
        environments.stop()


def test_every_function_of_the_template_starts_with_its_own_template_environment(application, database_url):
    for function in application.functions.values():
        environments = ExecutionEnvironments(function, limit=1)
        try:
            environments.invoke({"probe": "cold start only"}, LambdaContext(function.name, function.timeout))
        except FunctionError as error:
            assert "failed to initialize" not in str(error), error
        finally:
            environments.stop()
