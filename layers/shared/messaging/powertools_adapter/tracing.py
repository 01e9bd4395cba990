"""Powertools' tracing rule, read without building a Tracer (see the package's docstring)."""

from __future__ import annotations

from aws_lambda_powertools.tracing.tracer import Tracer


def tracing_disabled() -> bool:
    """Whether Powertools' Tracer would be disabled here (`Tracer._is_tracer_disabled`): by
    POWERTOOLS_TRACE_DISABLED, or outside Lambda, or under `sam local`. Known without building a Tracer,
    which loads the X-Ray SDK."""
    return bool(Tracer._is_tracer_disabled())
