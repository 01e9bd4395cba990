"""`python -m infra.local_runner.openapi > openapi.json`, as its docstring says, writes a JSON document."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_openapi_script_writes_only_the_document_to_stdout():
    # No signing secret and no database configured: the functions' cold starts warn, on stderr.
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.endswith(("_WEBHOOK_SECRETS", "_SECRET_ARN")) and name != "DATABASE_URL"
    }
    result = subprocess.run(
        [sys.executable, "-m", "infra.local_runner.openapi"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert "/api/messages/sms" in document["paths"]
    assert "signature verification is OFF" in result.stderr
    unprocessable = document["paths"]["/api/messages/sms"]["post"]["responses"]["422"]["description"]
    assert "recipient_opted_out" in unprocessable and "MAX_SMS_SEGMENTS" in unprocessable
