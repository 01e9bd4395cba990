"""The README's screenshots, taken by the tests' browser over the `make seed` demo data.

CONSOLE_SCREENSHOTS=docs writes them to docs/ (how the committed PNGs were made); otherwise to a temporary
directory, so a test run leaves the repository untouched.
"""

from __future__ import annotations

import os

import pytest

from infra import seed
from tests.browser.conftest import ROOT_DIRECTORY
from tests.e2e.conftest import Runner

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo_runner():
    runner = Runner("console_demo", seed.FAULTS)
    yield runner
    runner.stop()


def test_screenshots_of_the_inbox_and_a_thread(browser, demo_runner, tmp_path):
    for outcome in seed.seed_over_http(demo_runner.url):
        assert outcome.status < 300, outcome.line()
    target = ROOT_DIRECTORY / "docs" if os.environ.get("CONSOLE_SCREENSHOTS") == "docs" else tmp_path
    page = browser.new_page()
    page.set_viewport_size({"width": 1100, "height": 800})
    try:
        page.goto(f"{demo_runner.url}/console#/")
        page.wait_for_selector("#conversation-list a[data-id]")
        page.screenshot(path=str(target / "console-inbox.png"))
        # The SMS thread: received, delivered (the seed's receipt), an inbound MMS with its picture, sent.
        page.click(f"#conversation-list a:has-text('{seed.OUR_PHONE} ↔ +14155550123')")
        page.wait_for_selector("li.message[data-status='delivered']")
        page.wait_for_selector("li.message a.attachment")
        page.evaluate("document.activeElement.blur()")  # no focus ring on the title in the picture
        page.screenshot(path=str(target / "console-thread.png"))
    finally:
        page.close()
    for name in ("console-inbox.png", "console-thread.png"):
        assert (target / name).stat().st_size > 10_000
