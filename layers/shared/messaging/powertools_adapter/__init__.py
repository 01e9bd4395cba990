"""Where this project relies on Powertools internals, in one place.

Written for aws-lambda-powertools 3.37.0 (layers/shared/requirements.txt pins it). Each item uses an
attribute Powertools does not document; check them when upgrading (tests/integration/test_http_hardening.py
and test_input_rules.py exercise the resolver's, tests/unit/test_cold_start_imports.py the tracer's).
`tests/unit/test_architecture.py` checks that no other module reaches into a Powertools object.

Two modules, so that a function imports only what it uses: `tracing` (every function, at cold start) and
`resolver` (the HTTP functions: it loads Powertools' event handler, which an SQS consumer never needs).
"""
