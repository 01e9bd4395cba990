"""What a cold start imports (not how long it takes: that is measured in bench/). Each handler is imported in a
fresh interpreter with the environment Lambda would give it."""

import pytest

from bench.cold_start import ALLOWED_AT_COLD_START, FLOORS, ROOT, TRACING, TRACING_ON, _probe

LAYER = str(ROOT / "layers" / "shared")


@pytest.mark.parametrize("function", sorted(FLOORS))
def test_no_aws_sdk_driver_or_tracing_is_imported_at_cold_start_when_tracing_is_off(function):
    loaded = _probe([str(ROOT / "functions" / function), LAYER], "import app")["loaded"]
    unexpected = [name for name in loaded if name not in ALLOWED_AT_COLD_START.get(function, ())]
    assert unexpected == [], f"{function} imports {unexpected} at cold start"


# What a function does not use on most invocations, so its cold start must not import it (it is imported where
# it is used): an inbound function sends only to answer a STOP/START/HELP keyword; only the webhook-endpoints
# API shows webhook documents.
NOT_AT_COLD_START = {
    "conversations": ("messaging.webhook_models", "messaging.services.outbound", "messaging.providers"),
    "send_message": ("messaging.webhook_models",),
    "inbound_sms": ("messaging.services.outbound", "messaging.providers", "messaging.queue", "messaging.documents"),
    "inbound_email": ("messaging.services.outbound", "messaging.providers", "messaging.queue", "messaging.documents"),
}


@pytest.mark.parametrize("function", sorted(NOT_AT_COLD_START))
def test_what_a_function_rarely_uses_is_not_imported_at_cold_start(function):
    watched = NOT_AT_COLD_START[function]
    loaded = _probe([str(ROOT / "functions" / function), LAYER], "import app", watched=watched)["loaded"]
    assert loaded == [], f"{function} imports {loaded} at cold start"


def test_tracing_on_loads_the_x_ray_sdk():
    """The other side of the switch: where Lambda turns tracing on, Powertools' Tracer (and X-Ray) is there."""
    loaded = _probe([str(ROOT / "functions" / "inbound_sms"), LAYER], "import app", TRACING_ON)["loaded"]
    assert set(TRACING) & set(loaded)
