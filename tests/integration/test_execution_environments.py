"""The local runner's execution environments are processes: one invocation at a time each, reused warm,
replaced when one dies; the HTTP side answers a dead environment's request with a 500 in the error shape."""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from infra.local_runner import template
from infra.local_runner.apigw import LambdaContext
from infra.local_runner.sandbox import ExecutionEnvironments, FunctionError
from infra.local_runner.server import Gateway

PROBE = template.Function(
    name="ProbeFunction",
    code_uri=Path(__file__).parents[1] / "fixtures" / "probe",
    handler="app.lambda_handler",
    timeout=30,
)


@pytest.fixture
def probe():
    environments = ExecutionEnvironments(PROBE, limit=2)
    yield environments
    environments.stop()


def pid_of(environments: ExecutionEnvironments, event: dict) -> int:
    return int(environments.invoke(event, LambdaContext(PROBE.name, PROBE.timeout))["body"])


def test_concurrent_invocations_run_in_different_processes_and_a_warm_one_reuses_one(probe, tmp_path):
    release = tmp_path / "release"
    with ThreadPoolExecutor(max_workers=1) as pool:
        held = pool.submit(pid_of, probe, {"hold_until": str(release)})  # keeps its environment busy
        second = pid_of(probe, {})  # cannot wait for the busy one: a second environment starts
        release.touch()
        first = held.result(timeout=60)
    assert first != second
    warm = {pid_of(probe, {}) for _ in range(5)}
    assert warm <= {first, second}


def test_the_concurrency_limit_holds_invocations_until_an_environment_frees_up(probe, tmp_path):
    release = tmp_path / "release"
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = [pool.submit(pid_of, probe, {"hold_until": str(release)}) for _ in range(6)]
        release.touch()
        pids = {result.result(timeout=60) for result in results}
    assert len(pids) <= 2


def test_a_crashed_environment_fails_its_invocation_and_is_replaced(probe):
    before = pid_of(probe, {})
    with pytest.raises(FunctionError, match="exited"):
        probe.invoke({"crash": True}, LambdaContext(PROBE.name, PROBE.timeout))
    after = pid_of(probe, {})
    assert after != before


def test_the_gateway_answers_a_crashed_invocation_with_a_500_in_the_error_shape(tmp_path):
    application = template.Application(
        functions={PROBE.name: PROBE},
        routes=[template.Route("POST", "/probe", PROBE.name)],
        sqs_sources=[],
        schedules=[],
        queues={},
    )
    gateway = Gateway(application)
    try:
        crash = json.dumps({"crash": True}).encode()
        status, headers, body = gateway.handle("POST", "/probe", {}, crash, "127.0.0.1")
        assert status == 500
        assert ("Content-Type", "application/json") in headers
        assert json.loads(body)["error"]["message"] == "Internal Server Error"
        status, _, body = gateway.handle("POST", "/probe", {}, b"{}", "127.0.0.1")
        assert status == 200 and int(body) > 0
    finally:
        gateway.stop()


def test_an_invocation_past_its_timeout_fails_and_its_environment_is_replaced(probe, tmp_path):
    before = pid_of(probe, {})
    never = tmp_path / "never"
    with pytest.raises(FunctionError, match="timed out"):
        probe.invoke({"hold_until": str(never)}, LambdaContext(PROBE.name, timeout_seconds=0.5))
    assert pid_of(probe, {}) != before
