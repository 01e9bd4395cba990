"""`python -m infra.local_runner.invoke FUNCTION EVENT_FILE`: invoke one handler once, in-process.

FUNCTION is a template logical name (InboundSmsFunction) or a functions/ folder (inbound_sms). The
database and queues are prepared as `make run` prepares them (embedded unless configured).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from infra.local_runner import template
from infra.local_runner.apigw import LambdaContext
from infra.local_runner.environment import prepare


def resolve_function(application: template.Application, name: str) -> template.Function:
    if name in application.functions:
        return application.functions[name]
    for function in application.functions.values():
        if function.code_uri.name == name.strip("/").split("/")[-1]:
            return function
    known = ", ".join(sorted(application.functions))
    raise SystemExit(f"unknown function {name!r}; one of: {known} (or its functions/ folder name)")


def main(arguments: list[str]) -> int:
    if len(arguments) != 2:
        raise SystemExit("usage: python -m infra.local_runner.invoke FUNCTION EVENT_FILE")
    logging.basicConfig(level=logging.WARNING)
    application = template.load()
    function = resolve_function(application, arguments[0])
    event = json.loads(Path(arguments[1]).read_text())
    environment = prepare(application)
    try:
        handler = template.load_handler(function)
        result = handler(event, LambdaContext(function.name, function.timeout))
    finally:
        environment.close()
    json.dump(result, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
