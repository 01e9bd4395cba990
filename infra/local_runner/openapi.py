"""One OpenAPI document for the whole HTTP API, merged from every API function's Powertools resolver.

Run `python -m infra.local_runner.openapi > openapi.json` to write it out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from infra.local_runner import template

TITLE = "Unified messaging service"
VERSION = "1.0.0"
DESCRIPTION = (
    "Send SMS, MMS and email through one API, receive provider webhooks, and read every conversation. "
    'Errors are JSON: {"error": {"code", "message", "field"}}.'
)


def combined_openapi(application: template.Application) -> dict[str, Any]:
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
        "servers": [{"url": "/"}],
        "paths": {},
        "components": {"schemas": {}},
    }
    api_functions = sorted({route.function for route in application.routes})
    for name in api_functions:
        module = template.load_module(application.functions[name])
        part = json.loads(module.app.get_openapi_json_schema(title=TITLE, version=VERSION))
        for path, operations in part.get("paths", {}).items():
            document["paths"].setdefault(path, {}).update(operations)
        document["components"]["schemas"].update(part.get("components", {}).get("schemas", {}))
    return document


def swagger_html(document: dict[str, Any]) -> str:
    """Swagger UI with its assets inlined (Powertools ships them), so it works offline."""
    from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

    assets = Path(generate_swagger_html.__code__.co_filename).parent
    return generate_swagger_html(
        spec=json.dumps(document),
        swagger_js=(assets / "swagger-ui-bundle.min.js").read_text(),
        swagger_css=(assets / "swagger-ui.min.css").read_text(),
        swagger_base_url="",
        oauth2_config=None,
    )


if __name__ == "__main__":
    json.dump(combined_openapi(template.load()), sys.stdout, indent=2)
    sys.stdout.write("\n")
