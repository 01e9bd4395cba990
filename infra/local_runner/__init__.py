"""Docker-free local runner: serves template.yaml's HttpApi routes and drives its SQS consumers in-process."""

import sys
from pathlib import Path

_LAYER = str(Path(__file__).resolve().parents[2] / "layers" / "shared")
if _LAYER not in sys.path:
    sys.path.insert(0, _LAYER)
