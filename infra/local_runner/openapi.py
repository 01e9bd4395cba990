"""One OpenAPI document for the whole HTTP API, merged from every API function's Powertools resolver.

Run `python -m infra.local_runner.openapi > openapi.json` to write it out (no database or queue needed).
"""

from __future__ import annotations

import contextlib
import json
import os
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


# Stand-ins for what the functions' cold starts validate but a document never uses (nothing is connected to).
_PLACEHOLDER_DATABASE_URL = "postgresql://openapi@127.0.0.1:9/openapi"


def write_document(out: Any) -> None:
    """The merged document as JSON on `out`. The functions are imported (their cold starts) with their
    template environment, placeholder queue URLs and database URL where none is configured; whatever they
    print or log meanwhile (e.g. the warning that webhook signatures are off) goes to stderr, so `out`
    holds the document alone."""
    from infra.local_runner.environment import LOCAL_DEFAULTS, function_environment

    application = template.load()
    placeholders = {name: f"http://127.0.0.1:9/000000000000/{name}" for name in application.queues}
    for name, value in {
        **LOCAL_DEFAULTS,
        "DATABASE_URL": _PLACEHOLDER_DATABASE_URL,
        **function_environment(application, placeholders),
    }.items():
        os.environ.setdefault(name, value)
    with contextlib.redirect_stdout(sys.stderr):
        document = combined_openapi(application)
    json.dump(document, out, indent=2)
    out.write("\n")


if __name__ == "__main__":
    write_document(sys.stdout)
