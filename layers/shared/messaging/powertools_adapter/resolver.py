"""Powertools' HTTP resolver, with the route lookup our checks need (see the package's docstring)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder


class PowertoolsHttpResolver(APIGatewayHttpResolver):
    """APIGatewayHttpResolver with the route lookup our checks (before validation) need, and a way to answer
    before the resolver runs."""

    def proxy_event(self, event: dict[str, Any]) -> Any:
        """The event as the resolver's routes see it (`_to_proxy_event`)."""
        return self._to_proxy_event(event)

    def route_for(self, event: Any) -> Any:
        """The route of this function that matches the request's method and path, exactly as the resolver
        will route it (its path has a non-default stage stripped); None when there is none."""
        method, path = event.http_method.upper(), event.path
        return next((route for route in self.routes() if route.method == method and route.rule.match(path)), None)

    def routes(self) -> tuple[Any, ...]:
        """Every route (`_static_routes`, `_dynamic_routes`): each has `method`, `rule` and `dependant`."""
        return (*self._static_routes, *self._dynamic_routes)

    def allowed_methods(self, path: str) -> list[str]:
        """The methods this function routes on `path` (sorted; empty when it has no route for the path)."""
        return sorted({route.method for route in self.routes() if route.rule.match(path)})

    @staticmethod
    def declares_body(route: Any) -> bool:
        """Whether the route's handler takes a request body (`dependant.body_params`)."""
        return bool(route.dependant.body_params)

    @staticmethod
    def declared_query_parameters(route: Any) -> set[str]:
        """The query parameters the route's handler declares, by their names in the URL (`dependant`)."""
        return {parameter.alias for parameter in route.dependant.query_params}

    @staticmethod
    def answer(response: Response, event: Any) -> dict[str, Any]:
        """`response` as the API Gateway result `resolve` returns, for an answer given before the resolver
        runs (`ResponseBuilder`, which `resolve` uses for every route)."""
        return ResponseBuilder(response).build(event)
