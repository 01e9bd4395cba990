"""One execution environment: `python -m infra.local_runner.worker FD CODE_URI HANDLER FUNCTION`.

A fresh interpreter imports the function's handler once (its cold start, reported to the runner as the
init duration) and then serves invocations sent over the socket FD, one at a time, as a Lambda sandbox
does. It imports only what the handler needs (not the runner, PyYAML or the HTTP server), so its module
state and cold start are the function's own. It exits when the runner closes the socket.
"""

from __future__ import annotations

import importlib.util
import pickle
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

_LAYER = str(Path(__file__).resolve().parents[2] / "layers" / "shared")
_loading = threading.RLock()


def import_handler(code_uri: Path, handler: str, module_name: str) -> Any:
    """Import `handler` ("app.lambda_handler") from `code_uri` as `module_name`, with the layer importable."""
    if _LAYER not in sys.path:
        sys.path.insert(0, _LAYER)
    module_file, attribute = handler.rsplit(".", 1)
    with _loading:  # a concurrent first use must not see a half-imported module
        module = sys.modules.get(module_name)
        if module is None:
            spec = importlib.util.spec_from_file_location(module_name, code_uri / f"{module_file}.py")
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {module_file}.py from {code_uri}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module  # before running it, as imports do (pydantic looks it up)
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[module_name]
                raise
    return getattr(module, attribute)


def module_name(function_name: str, handler: str) -> str:
    return f"lambda_{function_name}_{handler.rsplit('.', 1)[0]}"


def serve(fd: int, code_uri: Path, handler: str, function_name: str) -> int:
    from multiprocessing.connection import Connection

    from infra.local_runner.apigw import LambdaContext

    # Ctrl-C reaches the whole process group: the runner stops its environments by closing their sockets.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    connection = Connection(fd)
    started = time.perf_counter()
    try:
        function = import_handler(code_uri, handler, module_name(function_name, handler))
    except BaseException:  # noqa: BLE001 - an init failure is reported to the runner, as Lambda reports it
        connection.send(("init_error", traceback.format_exc()))
        return 1
    connection.send(("ready", (time.perf_counter() - started) * 1000))
    while True:
        try:
            event, context_fields = connection.recv()
        except (EOFError, OSError):
            return 0
        context = LambdaContext(**context_fields)
        try:
            reply: tuple[str, Any] = ("ok", function(event, context))
        except Exception as error:  # noqa: BLE001 - a handler error is the invocation's result, as in Lambda
            traceback.print_exc()
            reply = ("error", f"{type(error).__name__}: {error}")
        try:
            connection.send(reply)
        except (pickle.PicklingError, TypeError, AttributeError) as error:  # a result pickle cannot carry
            connection.send(("error", f"unserializable result: {error}"))
        except OSError:  # the runner is gone
            return 0


if __name__ == "__main__":
    fd, code_uri, handler, function_name = sys.argv[1:5]
    sys.exit(serve(int(fd), Path(code_uri), handler, function_name))
