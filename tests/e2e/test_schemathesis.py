"""Schemathesis against the served OpenAPI document: no 5xx, and every response conforms to the schema.

Bounded here (SCHEMATHESIS_MAX_EXAMPLES, default 25 per operation); `make schemathesis` runs more.
Its checks are configured in schemathesis.toml.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_the_api_conforms_to_its_openapi_document(runner_url, runner_db):
    examples = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25")
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{runner_url}/openapi.json",
        "--max-examples",
        examples,
        "--seed",
        os.environ.get("SCHEMATHESIS_SEED", "20261124"),
        "--no-color",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)  # noqa: S603
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
