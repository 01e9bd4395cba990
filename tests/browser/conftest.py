"""Headless Chromium (Debian's package) driven by Playwright, against a local runner serving the console.

`playwright install` cannot download browsers here: the tests use /usr/bin/chromium (CHROMIUM to override),
which `make test` installs when it can. Without it they skip, loudly; under CI=true they fail instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.client import call
from tests.e2e.conftest import Runner, RunnerDb

ROOT_DIRECTORY = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The console runner: no provider faults unless a test scripts them (`provider_script`); a sender's second
# message within 10 s waits `queued` for its slot (throttling); the providers' receipts (`delivered`) arrive
# 6 s after a send, so a thread can be watched going queued → sent → delivered, and a test can post an
# `undelivered` receipt of its own before the provider's.
CONSOLE_RUNNER_ENVIRONMENT = {
    "SENDER_RATE_PER_SECOND": "0.1",
    "MOCK_RECEIPT_DELAY_SECONDS": "6",
    "MOCK_RETRY_AFTER_SECONDS": "15",
}
SCRIPTABLE = ("MOCK_SMS_FAULTS", "MOCK_EMAIL_FAULTS")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests cannot run in CI: {reason}")
    pytest.skip(f"BROWSER TESTS SKIPPED: {reason} (`make test` installs Debian's chromium when run as root)")


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -r requirements.txt)")
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"no Chromium at {CHROMIUM}")
    profile = tempfile.mkdtemp(prefix="console-chromium-")
    with sync_playwright() as playwright:
        # A persistent context is the way to hand Chromium a fresh user-data-dir of our own.
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 800},
        )
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def console_runner() -> Iterator[Runner]:
    started = Runner("console", CONSOLE_RUNNER_ENVIRONMENT)
    yield started
    started.stop()


def restart(runner: Runner, environment: dict[str, str]) -> None:
    """Stop the runner cleanly and start it again (same database and port) with `environment` changed: its
    execution environments start afresh, with the providers' fault scripts from their beginning."""
    runner.process.terminate()
    runner.process.wait(timeout=30)
    for name in SCRIPTABLE:
        runner.environment.pop(name, None)
    runner.environment.update(environment)
    runner.start()


@pytest.fixture
def provider_script(console_runner: Runner) -> Iterator[Any]:
    """`provider_script(MOCK_SMS_FAULTS="400")`: the console runner's providers answer the next sends so (each
    provider's script, in order, then `ok`); afterwards the runner starts again without the script."""
    scripted = False

    def script(**faults: str) -> None:
        nonlocal scripted
        scripted = True
        restart(console_runner, faults)

    yield script
    if scripted:
        restart(console_runner, {})


@pytest.fixture(scope="session")
def api_paths(console_runner: Runner) -> set[str]:
    return set(call(console_runner.url, "GET", "/openapi.json").json()["paths"])


@pytest.fixture(scope="session")
def console_db_session(console_runner: Runner) -> Iterator[RunnerDb]:
    database = RunnerDb(console_runner.database_url)
    yield database
    database.engine.dispose()


@pytest.fixture
def console_db(console_db_session: RunnerDb) -> RunnerDb:
    """The console runner's database, emptied before each test (the providers' scripts are not reset)."""
    console_db_session.reset()
    return console_db_session


@pytest.fixture
def page(browser: Any, console_runner: Runner, console_db: RunnerDb) -> Iterator[Any]:
    """A fresh tab; any uncaught script error or Content-Security-Policy violation in it fails the test."""
    tab = browser.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    tab.on(
        "console",
        lambda message: (
            errors.append(f"console: {message.text}")
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    tab.set_default_timeout(15_000)
    yield tab
    tab.close()
    assert errors == []


@pytest.fixture(scope="session")
def openapi(console_runner: Runner) -> dict[str, Any]:
    return call(console_runner.url, "GET", "/openapi.json").json()
