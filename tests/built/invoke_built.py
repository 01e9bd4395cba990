"""Runs inside an isolated interpreter (python -I -S): imports one built function from .aws-sam/build
only (its folder, the built layer, the standard library) and invokes it with the given events.

    python -I -S tests/built/invoke_built.py BUILD_DIR FUNCTION EVENT_FILE...

Prints one JSON line: where `messaging` and the third-party packages were imported from, and each result.
"""

import importlib
import json
import sys
import sysconfig
import time
import uuid
from pathlib import Path


class Context:
    def __init__(self, name: str) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "build-test"
        self._deadline = time.monotonic() + 30

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


def main() -> None:
    build, function, *event_files = sys.argv[1:]
    stdlib = [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]]
    dynload = [str(Path(stdlib[0]) / "lib-dynload")]
    sys.path[:] = [str(Path(build) / function), str(Path(build) / "SharedLayer" / "python"), *stdlib, *dynload]
    app = importlib.import_module("app")
    origins = {
        name: getattr(sys.modules.get(name), "__file__", None)
        for name in ("messaging", "pydantic", "sqlalchemy", "pg8000", "aws_lambda_powertools", "boto3")
    }
    results = []
    for event_file in event_files:
        event = json.loads(Path(event_file).read_text())
        results.append(app.lambda_handler(event, Context(function)))
    print(json.dumps({"app": app.__file__, "origins": origins, "results": results}, default=str))


if __name__ == "__main__":
    main()
