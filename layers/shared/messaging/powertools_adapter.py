"""Where this project relies on Powertools internals, in one place.

Written for aws-lambda-powertools 3.37.0 (layers/shared/requirements.txt pins it). Each item below uses
an attribute Powertools does not document; check them when upgrading (tests/integration/test_http_hardening.py
and test_input_rules.py exercise every one).
"""

from __future__ import annotations

import threading
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

_request = threading.local()


class PowertoolsHttpResolver(APIGatewayHttpResolver):
    """APIGatewayHttpResolver with the request kept per thread and the route lookup our checks need."""

    # Powertools keeps the current event on its BaseRouter class, shared by every resolver in the process.
    # Lambda runs one invocation at a time per process, but the local runner and the tests invoke handlers
    # from many threads at once: the event is kept per thread, so concurrent requests never read each
    # other's body, path or headers.
    @property
    def current_event(self) -> Any:
        return _request.event

    @current_event.setter
    def current_event(self, value: Any) -> None:
        _request.event = value

    def proxy_event(self, event: dict[str, Any]) -> Any:
        """The event as the resolver's routes see it (`_to_proxy_event`), made the current one."""
        _request.event = self._to_proxy_event(event)
        return _request.event

    def route_for(self, event: Any) -> Any:
        """The route of this function that matches the request's method and path, exactly as the resolver
        will route it (its path has a non-default stage stripped); None when there is none."""
        method, path = event.http_method.upper(), event.path
        return next((route for route in self.routes() if route.method == method and route.rule.match(path)), None)

    def routes(self) -> tuple[Any, ...]:
        """Every route (`_static_routes`, `_dynamic_routes`): each has `method`, `rule` and `dependant`."""
        return (*self._static_routes, *self._dynamic_routes)

    @staticmethod
    def declared_query_parameters(route: Any) -> set[str]:
        return {parameter.alias for parameter in route.dependant.query_params}
