"""The console's usability details: paging and order of lists, focus kept across live refreshes, previews as
a reader sees them, and the small things (accessible names, due times, phone layout, the favicon)."""

from __future__ import annotations

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips (or fails in CI) and says why
    expect = None

from tests.browser.test_console import US, conversation_links, inbound_email, inbound_sms, open_console, send_sms
from tests.e2e.client import call

pytestmark = pytest.mark.e2e


def wait_for_refreshes(page, fragment: str, rounds: int = 2) -> None:
    """Return once the page has asked for a URL containing `fragment` `rounds` more times. The console polls
    one round after another (app.js), so the second request means the first round's answer is rendered."""
    for _ in range(rounds):
        with page.expect_request(lambda request: fragment in request.url, timeout=30_000):
            pass


def focused_label(page) -> str | None:
    return page.evaluate("document.activeElement && document.activeElement.getAttribute('aria-label')")


def test_load_more_is_hidden_when_there_is_nothing_more_and_the_detail_pane_is_no_live_region(page, console_runner):
    url = console_runner.url
    inbound_sms(url, "+14155550301", "one", "lm-1")
    inbound_sms(url, "+14155550302", "two", "lm-2")
    open_console(page, url)
    expect(conversation_links(page)).to_have_count(2)
    expect(page.locator("#inbox button.more")).to_be_hidden()
    assert page.get_attribute("#detail", "aria-live") is None


def test_failed_messages_newest_first_never_duplicated_and_focus_survives_refreshes(
    page, console_runner, provider_script
):
    url = console_runner.url
    provider_script(MOCK_SMS_FAULTS="400,400,400")
    # Different senders: a sender's second message within 10 s would wait `queued` (throttling).
    failed = [send_sms(url, f"+1202555011{index}", f"+1415555031{index}", f"code {index}") for index in range(3)]
    assert {message["status"] for message in failed} == {"failed"}

    open_console(page, url, "#/failed")
    rows = page.locator("#failed-list li.failed-message")
    expect(rows).to_have_count(3)
    newest_first = [str(message["id"]) for message in reversed(failed)]
    assert [rows.nth(index).get_attribute("data-message-id") for index in range(3)] == newest_first
    more = page.locator("#detail button.more")
    expect(more).to_be_hidden()
    more.dispatch_event("click")  # even a click that reaches it anyway adds nothing
    labels = [rows.nth(index).locator("button.resend").get_attribute("aria-label") for index in range(3)]
    assert labels == [f"Resend message {message_id}" for message_id in newest_first]

    target = f"Resend message {failed[1]['id']}"
    page.focus(f"#failed-list button[aria-label='{target}']")
    wait_for_refreshes(page, "status=failed")
    assert focused_label(page) == target
    expect(rows).to_have_count(3)
    assert len(set(rows.evaluate_all("rows => rows.map(row => row.dataset.messageId)"))) == 3


def test_search_pages_through_every_match_newest_first_one_entry_per_conversation(page, console_runner):
    url = console_runner.url
    # 55 conversations with one match each (oldest first as they are stamped), then one with three matches.
    for index in range(55):
        inbound_sms(url, f"+1415556{index:04d}", f"parcel update {index}", f"sp-{index}", minutes_ago=200 - index)
    busy = [inbound_sms(url, "+14155559999", f"parcel question {n}", f"sp-b{n}", minutes_ago=3 - n) for n in range(3)]
    open_console(page, url)
    page.fill("#inbox-search", "parcel")
    hits = page.locator("#conversation-list li.hit a")
    expect(hits).to_have_count(50)  # a page of conversations, the one with the newest match first
    expect(page.locator("#inbox .list-status")).to_contain_text("58 matching messages in 56 conversations")
    assert hits.first.get_attribute("data-id") == str(busy[0]["conversation_id"])
    expect(hits.first).to_contain_text("parcel question 2")  # its newest match
    expect(hits.first.locator(".match-count")).to_contain_text("3 matching messages")
    expect(hits.nth(1)).to_contain_text("parcel update 54")

    more = page.locator("#inbox button.more")
    expect(more).to_be_visible()
    more.click()
    expect(hits).to_have_count(56)
    expect(more).to_be_hidden()
    expect(hits.last).to_contain_text("parcel update 0")  # the oldest last
    ids = hits.evaluate_all("links => links.map(link => link.dataset.id)")
    assert len(set(ids)) == 56


def test_previews_show_the_text_a_reader_sees_not_scripts_styles_or_entities(page, console_runner):
    url = console_runner.url
    # Within the 140 characters of the body the API keeps as the conversation's preview.
    body = (
        "<style>p{color:red}</style><script>var secretToken=1;</script><img src=x onerror=y()>"
        "<p>Fish &amp; chips &lt;today&gt;</p>"
    )
    assert len(body) <= 140
    stored = inbound_email(url, "chef@example.com", body, "pv-1")
    open_console(page, url)
    preview = page.locator(f"#conversation-list a[data-id='{stored['conversation_id']}'] .preview")
    expect(preview).to_have_text("Fish & chips <today>")
    page.fill("#inbox-search", "chips")
    hit = page.locator("#conversation-list li.hit .preview")
    expect(hit).to_have_text("Fish & chips <today>")
    for shown in (preview, hit):
        assert "secretToken" not in shown.inner_text() and "color" not in shown.inner_text()
    # A text message is text: what looks like markup or an entity in it is shown as written.
    text = "quiz: is 1 <b>2</b> &amp; 3 < 4?"
    texted = inbound_sms(url, "+14155550392", text, "pv-2")
    page.fill("#inbox-search", "")
    expect(page.locator(f"#conversation-list a[data-id='{texted['conversation_id']}'] .preview")).to_have_text(text)
    page.fill("#inbox-search", "quiz")
    expect(page.locator("#conversation-list li.hit .preview")).to_have_text(text)


def test_focus_stays_on_lift_and_disable_across_refreshes_and_each_has_its_own_name(page, console_runner):
    url = console_runner.url
    for address in ("+14155550391", "gone@example.com"):
        assert call(url, "POST", "/api/suppressions", {"address": address}).status == 201
    open_console(page, url, "#/suppressions")
    lifts = page.locator("#detail li.row button", has_text="Lift")
    expect(lifts).to_have_count(2)
    assert set(lifts.evaluate_all("buttons => buttons.map(b => b.getAttribute('aria-label'))")) == {
        "Lift the suppression of +14155550391",
        "Lift the suppression of gone@example.com",
    }
    page.focus("button[aria-label='Lift the suppression of gone@example.com']")
    wait_for_refreshes(page, "/api/suppressions")
    assert focused_label(page) == "Lift the suppression of gone@example.com"

    hook = {"url": "http://127.0.0.1:9/hooks", "events": ["message.failed"]}
    endpoint = call(url, "POST", "/api/webhook-endpoints", hook)
    assert endpoint.status == 201, endpoint.text
    page.click("a[data-nav='webhooks']")
    disable = "Disable the endpoint http://127.0.0.1:9/hooks"
    page.focus(f"button[aria-label='{disable}']")
    wait_for_refreshes(page, "/api/webhook-endpoints")
    assert focused_label(page) == disable
    assert page.locator("button[aria-label='Delete the endpoint http://127.0.0.1:9/hooks']").count() == 1


def test_due_times_of_queued_and_overdue_retrying_messages(page, console_runner):
    open_console(page, console_runner.url)
    shown = page.evaluate(
        """async () => {
            const { statusBadge } = await import("./js/thread.js");
            const now = Date.parse("2030-01-01T12:00:00Z");
            const line = (status, next) => statusBadge({ status, attempts: 2, next_attempt_at: next }, now).textContent;
            return {
                queuedLater: line("queued", "2030-01-01T12:05:00Z"),
                queuedPast: line("queued", "2030-01-01T11:55:00Z"),
                retryingLater: line("retrying", "2030-01-01T12:05:00Z"),
                retryingPast: line("retrying", "2030-01-01T11:55:00Z"),
            };
        }"""
    )
    assert shown["queuedLater"].startswith("queueddue ") and "overdue" not in shown["queuedLater"]
    assert "overdue" in shown["queuedPast"]
    assert "next " in shown["retryingLater"] and "overdue" not in shown["retryingLater"]
    assert shown["retryingPast"] == "retryingattempt 2 · next attempt overdue"


def test_favicon_phone_layout_of_a_thread_and_email_frames_sized_to_their_text(page, console_runner):
    url = console_runner.url
    failures: list[str] = []
    page.on("response", lambda response: failures.append(response.url) if response.status >= 400 else None)
    favicon = call(url, "GET", "/console/favicon.svg")
    assert (favicon.status, favicon.headers["content-type"]) == (200, "image/svg+xml")
    long_email = "<p>" + "A long paragraph of the email. " * 60 + "</p>" + "<p>another paragraph</p>" * 6
    stored = inbound_email(url, "someone.with.a.rather.long.address@example.com", long_email, "ph-1")
    inbound_sms(url, US.replace("0100", "0399"), "short", "ph-2")

    open_console(page, url, f"#/c/{stored['conversation_id']}")
    frame = page.wait_for_selector("iframe.email-body")
    assert frame.evaluate("frame => getComputedStyle(frame).resize") == "vertical"
    assert frame.bounding_box()["height"] > 300  # taller than the old fixed box, for a long email

    page.set_viewport_size({"width": 390, "height": 844})
    title = page.locator("#thread-title").bounding_box()
    actions = page.locator(".thread-head .actions").bounding_box()
    assert actions["y"] >= title["y"] + title["height"]  # a row of their own, under the title
    assert failures == []
