"""Docker-free local runner: serves template.yaml's HttpApi routes and drives its SQS consumers and schedules,
invoking every function in execution environments that are worker processes, as Lambda does."""

import sys
from pathlib import Path

_LAYER = str(Path(__file__).resolve().parents[2] / "layers" / "shared")
if _LAYER not in sys.path:
    sys.path.insert(0, _LAYER)
