"""Reads template.yaml: functions, their HttpApi routes, SQS event sources, schedules and queues."""

from __future__ import annotations

import importlib.util
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
LAYER = ROOT / "layers" / "shared"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short-form intrinsics (!Ref, !GetAtt, ...) as plain data."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as in the template: /api/conversations/{conversation_id}
    function: str

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method.upper() != self.method:
            return None
        pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path)) + "$"
        found = re.match(pattern, path)
        return found.groupdict() if found else None


@dataclass(frozen=True)
class SqsSource:
    function: str
    queue: str
    batch_size: int
    batching_window_seconds: float
    report_batch_item_failures: bool


@dataclass(frozen=True)
class Schedule:
    function: str
    rate_seconds: float


@dataclass(frozen=True)
class Queue:
    name: str
    visibility_timeout: int
    dead_letter_queue: str | None
    max_receive_count: int | None


@dataclass
class Function:
    name: str
    code_uri: Path
    handler: str
    timeout: int
    environment: dict[str, Any] = field(default_factory=dict)


@dataclass
class Application:
    functions: dict[str, Function]
    routes: list[Route]
    sqs_sources: list[SqsSource]
    schedules: list[Schedule]
    queues: dict[str, Queue]
    parameter_defaults: dict[str, str] = field(default_factory=dict)

    def route_for(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            parameters = route.match(method, path)
            if parameters is not None:
                return route, parameters
        return None


def _rate_seconds(expression: str) -> float:
    found = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|second|seconds)\)", expression.strip())
    if not found:
        raise ValueError(f"unsupported schedule expression {expression!r}")
    amount, unit = int(found.group(1)), found.group(2)
    return amount * {"second": 1, "minute": 60, "hour": 3600}[unit.rstrip("s")]


def _ref_name(value: Any) -> str:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return str(value)


def load(template_path: Path = TEMPLATE) -> Application:
    document = yaml.load(template_path.read_text(), Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
    function_globals = document.get("Globals", {}).get("Function", {})
    functions: dict[str, Function] = {}
    routes: list[Route] = []
    sqs_sources: list[SqsSource] = []
    schedules: list[Schedule] = []
    queues: dict[str, Queue] = {}
    for name, resource in document["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::SQS::Queue":
            redrive = properties.get("RedrivePolicy") or {}
            queues[name] = Queue(
                name=name,
                visibility_timeout=int(properties.get("VisibilityTimeout", 30)),
                dead_letter_queue=_ref_name(redrive["deadLetterTargetArn"]) if redrive else None,
                max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
            )
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        environment = dict(function_globals.get("Environment", {}).get("Variables", {}))
        environment.update(properties.get("Environment", {}).get("Variables", {}))
        functions[name] = Function(
            name=name,
            code_uri=ROOT / properties["CodeUri"],
            handler=properties.get("Handler", function_globals.get("Handler", "app.lambda_handler")),
            timeout=int(properties.get("Timeout", function_globals.get("Timeout", 3))),
            environment=environment,
        )
        for event in (properties.get("Events") or {}).values():
            event_properties = event.get("Properties", {})
            if event["Type"] == "HttpApi":
                routes.append(Route(event_properties["Method"].upper(), event_properties["Path"], name))
            elif event["Type"] == "SQS":
                sqs_sources.append(
                    SqsSource(
                        function=name,
                        queue=_ref_name(event_properties["Queue"]),
                        batch_size=int(event_properties.get("BatchSize", 10)),
                        batching_window_seconds=float(event_properties.get("MaximumBatchingWindowInSeconds", 0)),
                        report_batch_item_failures="ReportBatchItemFailures"
                        in event_properties.get("FunctionResponseTypes", []),
                    )
                )
            elif event["Type"] in ("Schedule", "ScheduleV2"):
                schedules.append(Schedule(name, _rate_seconds(event_properties["ScheduleExpression"])))
    # Literal routes before parameterized ones, as API Gateway prefers the most specific match.
    routes.sort(key=lambda route: (route.path.count("{"), -len(route.path)))
    parameter_defaults = {
        name: str(parameter["Default"])
        for name, parameter in (document.get("Parameters") or {}).items()
        if "Default" in parameter
    }
    return Application(functions, routes, sqs_sources, schedules, queues, parameter_defaults)


_loading = threading.RLock()


def load_handler(function: Function, environment_number: int = 1) -> Any:
    """Import a function's handler from its CodeUri under a unique module name, with the layer importable.

    Each `environment_number` is a separate import of the handler module, as each Lambda execution
    environment has its own (Powertools' resolver keeps per-request state on its module-level app)."""
    if str(LAYER) not in sys.path:
        sys.path.insert(0, str(LAYER))
    module_file, attribute = function.handler.rsplit(".", 1)
    module_name = f"lambda_{function.name}_{module_file}" + (f"_{environment_number}" if environment_number > 1 else "")
    with _loading:  # concurrent first invocations must not see a half-imported module
        module = sys.modules.get(module_name)
        if module is None:
            spec = importlib.util.spec_from_file_location(module_name, function.code_uri / f"{module_file}.py")
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module  # before running it, as imports do (pydantic looks it up)
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[module_name]
                raise
    return getattr(module, attribute)


class ExecutionEnvironments:
    """Invokes a function as Lambda does: one invocation at a time per execution environment, a new
    environment (a fresh import of the handler module) when all existing ones are busy, reused afterwards."""

    def __init__(self, function: Function) -> None:
        self.function = function
        self._idle: list[Any] = []
        self._created = 0
        self._lock = threading.Lock()

    def invoke(self, event: Any, context: Any) -> Any:
        handler = self._acquire()
        try:
            return handler(event, context)
        finally:
            with self._lock:
                self._idle.append(handler)

    def _acquire(self) -> Any:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            self._created += 1
            environment = self._created
        return load_handler(self.function, environment)


def load_module(function: Function) -> ModuleType:
    load_handler(function)
    return sys.modules[f"lambda_{function.name}_{function.handler.rsplit('.', 1)[0]}"]
