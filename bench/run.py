"""`make bench`: every benchmark, a table of ratios, and the results as JSON.

Knobs: BENCH_SCALE (messages in the large database, default 1,000,000), BENCH_HTTP_SECONDS (per load
phase, default 8), BENCH_SOAK_SECONDS / BENCH_SOAK_RATE (the soak: its load duration, default 60, 0 skips it;
its fixed arrival rate, default 20/s; see bench/soak.py), BENCH_DATABASE_URL / TEST_DATABASE_URL (a server to
use instead of the embedded one).
Writes bench/results/latest.json; `--update-reference` also replaces the tracked bench/RESULTS.json.
"""

from __future__ import annotations

import json
import platform
import sys
import time
import warnings
from pathlib import Path

from bench import cold_start, http_load, latency, scale, soak, statements, webhooks
from bench.common import ROOT, Report, configure_environment


def main() -> int:
    configure_environment()
    warnings.filterwarnings("ignore")
    report = Report()
    started = time.perf_counter()
    phases = [
        ("cold start", lambda: cold_start.measure(report)),
        ("statements", lambda: statements.measure(report)),
    ]
    for name, phase in phases:
        print(f"... {name}", file=sys.stderr)
        phase()
    print("... latency", file=sys.stderr)
    bare_ms = latency.measure(report)
    print("... http", file=sys.stderr)
    http_load.measure(report, bare_ms)
    if soak.SECONDS > 0:
        print("... soak", file=sys.stderr)
        soak.measure(report)
    print("... scale", file=sys.stderr)
    scale.measure(report)
    print("... webhooks", file=sys.stderr)
    webhooks.measure(report)
    report.details["seconds"] = round(time.perf_counter() - started, 1)
    report.details["machine"] = {"python": platform.python_version(), "cpus": __import__("os").cpu_count()}
    print(report.table())
    document = json.dumps(report.as_json(), indent=2, default=str)
    # The run's results go to the untracked bench/results/; the tracked reference, bench/RESULTS.json (what
    # the README's table quotes), is replaced only on purpose: `make bench-reference`.
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "latest.json").write_text(document)
    if "--update-reference" in sys.argv[1:]:
        Path(ROOT / "bench" / "RESULTS.json").write_text(document)
    unmet = [figure.name for figure in report.figures if figure.met is False]
    print(f"\n{len(report.figures)} figures, {len(unmet)} targets not met: {unmet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
