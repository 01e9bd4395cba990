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
# The runner's providers, scripted (each execution environment runs its own script): the first outbound email
# meets a 429 asking for 15 s, so a thread can be watched going from `retrying` to `sent`; the first outbound
# SMS is refused (400) and ends `failed`.
CONSOLE_RUNNER_ENVIRONMENT = {
    "MOCK_EMAIL_FAULTS": "429",
    "MOCK_SMS_FAULTS": "400",
    "MOCK_RETRY_AFTER_SECONDS": "15",
}


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


def require_path(api_paths: set[str], path: str) -> None:
    """Skip a test of a feature whose route this API does not have yet (the console hides it then)."""
    if path not in api_paths:
        pytest.skip(f"the API has no {path} route yet: the console hides this feature until it lands")


@pytest.fixture(scope="session")
def openapi(console_runner: Runner) -> dict[str, Any]:
    return call(console_runner.url, "GET", "/openapi.json").json()
