"""Reads template.yaml: functions, their HttpApi routes, SQS event sources, schedules and queues."""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from infra.local_runner.worker import import_handler, module_name

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
    # Variables the template gives other functions but not this one: hidden from it (see FunctionEnvironment).
    withheld: frozenset[str] = frozenset()
    reserved_concurrency: int | None = None  # ReservedConcurrentExecutions: its most concurrent invocations

    def environ(self) -> FunctionEnvironment:
        return FunctionEnvironment(self.withheld)

    def resolved_environment(self, references: Mapping[str, str]) -> dict[str, str]:
        """The function's template variables with `!Ref`s resolved from `references` (queue URLs, parameter
        defaults); a variable whose reference cannot be resolved here is left out, as an unset one."""
        resolved: dict[str, str] = {}
        for name, value in self.environment.items():
            if isinstance(value, dict) and "Ref" in value:
                value = references.get(value["Ref"])
            if value is not None and not isinstance(value, dict):
                resolved[name] = str(value)
        return resolved


class FunctionEnvironment(Mapping[str, str]):
    """What one function's execution environment sees of the process environment: every variable except
    those the template gives only to other functions. The runner's process holds the union of every
    function's template variables in os.environ; without this view a variable missing from one
    function in template.yaml would go unnoticed locally and fail in AWS. Variables no function of the
    template names (DATABASE_URL, SQS_ENDPOINT_URL, MOCK_* set in the shell) reach every function. A live
    view: a variable changed later is seen after `messaging.runtime.reset()`. Worker processes (sandbox.py)
    start with this view as their whole environment."""

    def __init__(self, withheld: frozenset[str]) -> None:
        self._withheld = withheld

    def __getitem__(self, name: str) -> str:
        if name in self._withheld:
            raise KeyError(name)
        return os.environ[name]

    def __iter__(self) -> Iterator[str]:
        return (name for name in list(os.environ) if name not in self._withheld)

    def __len__(self) -> int:
        return sum(1 for _ in self)


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


def _optional_int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, str)) else None  # a !Ref or !If stays unset


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
            reserved_concurrency=_optional_int(properties.get("ReservedConcurrentExecutions")),
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
    named_anywhere = {name for function in functions.values() for name in function.environment}
    for function in functions.values():
        function.withheld = frozenset(named_anywhere - set(function.environment))
    # Literal routes before parameterized ones, as API Gateway prefers the most specific match.
    routes.sort(key=lambda route: (route.path.count("{"), -len(route.path)))
    parameter_defaults = {
        name: str(parameter["Default"])
        for name, parameter in (document.get("Parameters") or {}).items()
        if "Default" in parameter
    }
    return Application(functions, routes, sqs_sources, schedules, queues, parameter_defaults)


def load_handler(function: Function) -> Any:
    """Import a function's handler into this process (one execution environment: one invocation at a time).

    The import (the function's cold start, where it validates its settings) and every invocation read
    settings from the function's own environment (Function.environ), not the whole process's."""
    from messaging.config import environment_of_function

    environ = function.environ()
    with environment_of_function(environ):
        handler = import_handler(function.code_uri, function.handler, module_name(function.name, function.handler))

    @functools.wraps(handler)
    def invoke(event: Any, context: Any) -> Any:
        with environment_of_function(environ):
            return handler(event, context)

    return invoke


def load_module(function: Function) -> ModuleType:
    load_handler(function)
    return sys.modules[module_name(function.name, function.handler)]
