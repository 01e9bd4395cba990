"""Configuration is validated per function at cold start, from the environment template.yaml gives it."""

import pytest

from infra.local_runner import template
from messaging.config import ConfigurationError, RetryQueueSettings, settings_from

ROOT_TEMPLATE = template.TEMPLATE


def test_a_missing_required_variable_is_named():
    with pytest.raises(ConfigurationError, match="SEND_RETRY_QUEUE_URL is required"):
        settings_from(RetryQueueSettings, {"SQS_ENDPOINT_URL": "http://127.0.0.1:9"})


def test_an_invalid_value_is_named():
    from messaging.config import DatabaseSettings

    with pytest.raises(ConfigurationError, match="DATABASE_POOL_SIZE"):
        settings_from(DatabaseSettings, {"DATABASE_URL": "postgresql://x@h/db", "DATABASE_POOL_SIZE": "many"})


def test_a_function_whose_template_environment_lacks_a_required_variable_fails_at_cold_start(tmp_path):
    """SEND_RETRY_QUEUE_URL stays in the process environment (other functions get it from the template),
    but SendRetryFunction's own template environment no longer names it: its cold start fails, naming it."""
    text = ROOT_TEMPLATE.read_text()
    block_start = text.index("  SendRetryFunction:")
    block_end = text.index("\n  RetrySweepFunction:", block_start)
    block = text[block_start:block_end]
    assert "SEND_RETRY_QUEUE_URL: !Ref SendRetryQueue" in block
    changed = tmp_path / "template.yaml"
    changed.write_text(
        text[:block_start]
        + block.replace("          SEND_RETRY_QUEUE_URL: !Ref SendRetryQueue\n", "")
        + text[block_end:]
    )
    function = template.load(changed).functions["SendRetryFunction"]
    with pytest.raises(ConfigurationError, match="SEND_RETRY_QUEUE_URL is required"):
        template.load_handler(function, environment_number=1_000_000)


def test_every_function_of_the_template_starts_with_its_own_template_environment(application, database_url):
    for number, function in enumerate(application.functions.values(), start=1_000_001):
        assert callable(template.load_handler(function, environment_number=number))
