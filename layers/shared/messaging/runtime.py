"""What one execution environment builds once and then reuses: settings, the database engine, clients.

A Lambda execution environment lives for many invocations; building an engine, an SQS client or a provider
on every invocation would cost a connection or a Secrets Manager call each time. Everything of that kind
is kept here, by key, and `reset()` forgets it all at once (tests and the local runner call it when the
configuration changes): one mechanism instead of a cache and a reset function per module.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

_built: dict[Hashable, Any] = {}
_closers: dict[Hashable, Callable[[Any], None]] = {}
# Reentrant: building the engine asks for the settings, which are built here too.
_lock = threading.RLock()


def once[T](key: Hashable, build: Callable[[], T], close: Callable[[T], None] | None = None) -> T:
    """The value kept under `key`, built by `build()` the first time (by one thread only); `close` releases
    it when the environment is reset."""
    try:
        return _built[key]
    except KeyError:
        pass
    with _lock:
        if key not in _built:
            _built[key] = build()
            if close is not None:
                _closers[key] = close
        return _built[key]


def reset(keep: Callable[[Hashable], bool] = lambda _key: False) -> None:
    """Forget (and close) everything built so far, except what `keep(key)` says to keep: the next use
    rebuilds it from the current environment. (Tests keep the mock providers, which stand for external
    systems with their own state, across a change of unrelated settings.)"""
    with _lock:
        dropped = [key for key in _built if not keep(key)]
        built = {key: _built.pop(key) for key in dropped}
        closers = {key: _closers.pop(key) for key in dropped if key in _closers}
    for key, close in closers.items():
        close(built[key])
