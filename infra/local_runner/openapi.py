"""One OpenAPI document for the whole HTTP API, merged from every API function's Powertools resolver.

Run `python -m infra.local_runner.openapi > openapi.json` to write it out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.openapi import swagger_ui
from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
from aws_lambda_powertools.event_handler.openapi.models import Server

from infra.local_runner import template

TITLE = "Unified messaging service"
VERSION = "1.0.0"
DESCRIPTION = (
    "Send SMS, MMS and email through one API, receive provider webhooks, and read every conversation. "
    'Errors are JSON: {"error": {"code", "message", "field"}}.'
)


def combined_openapi(application: template.Application) -> dict[str, Any]:
    """Powertools' OpenAPIMerge over every API function's resolver. Its file discovery (`discover`, and
    so `configure_openapi_merge` and `enable_swagger` on a merged schema) imports handler files on its own;
    ours are imported by the runner, each under its function's environment (their settings are validated at
    import), so the resolvers' schemas are handed to it with `add_schema`."""
    merge = OpenAPIMerge(
        title=TITLE, version=VERSION, description=DESCRIPTION, servers=[Server(url="/")], on_conflict="error"
    )
    for name in sorted({route.function for route in application.routes}):
        module = template.load_module(application.functions[name])
        merge.add_schema(json.loads(module.app.get_openapi_json_schema(title=TITLE, version=VERSION)))
    return merge.get_openapi_schema()


def swagger_html(document: dict[str, Any]) -> str:
    """Swagger UI with Powertools' bundled assets inlined, so it works offline. (`enable_swagger` serves
    one resolver's schema from inside a function; the runner serves the merged one.)"""
    assets = Path(swagger_ui.__file__).parent
    return swagger_ui.generate_swagger_html(
        spec=json.dumps(document),
        swagger_js=(assets / "swagger-ui-bundle.min.js").read_text(),
        swagger_css=(assets / "swagger-ui.min.css").read_text(),
        swagger_base_url="",
        oauth2_config=None,
    )


if __name__ == "__main__":
    json.dump(combined_openapi(template.load()), sys.stdout, indent=2)
    sys.stdout.write("\n")
