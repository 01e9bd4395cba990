// Failed outbound messages across conversations (GET /api/messages?status=failed), each with Resend.
import { api } from "./api.js";
import { describeError, emptyState, h, keepingFocus, messagePreview, timeElement } from "./dom.js";
import { readNewestFirst } from "./lists.js";
import { resendButton, statusBadge } from "./thread.js";

const PAGE = 50;
const PERIODS = [
  ["1", "Last 24 hours"],
  ["7", "Last 7 days"],
  ["30", "Last 30 days"],
  ["", "All time"],
];

export function renderFailed(container, capabilities) {
  if (!capabilities.failed) {
    container.replaceChildren(
      h("h2", { tabindex: "-1" }, "Failed messages"),
      emptyState("Not available on this API yet (GET /api/messages has no status filter)."),
    );
    return { refresh: async () => {} };
  }
  const notice = h("p", { class: "notice", role: "status" });
  const list = h("ul", { class: "rows", id: "failed-list", "aria-label": "Failed messages" });
  const status = h("p", { class: "list-status", role: "status" });
  const more = h("button", { type: "button", class: "more", hidden: true, onclick: () => loadMore() }, "Load more");
  const period = h("select", { id: "failed-period", onchange: () => restart() },
    PERIODS.map(([days, label]) => h("option", { value: days }, label)));
  period.value = "7";
  const channel = h("select", { id: "failed-channel", onchange: () => restart() },
    h("option", { value: "" }, "All channels"), h("option", { value: "sms" }, "SMS"),
    h("option", { value: "mms" }, "MMS"), h("option", { value: "email" }, "Email"));
  let messages = []; // every failed message of the period, newest first (lists.js)
  let complete = true;
  let shown = PAGE;
  const resent = new Map(); // failed message id -> the message that resent it (this page's resends)

  // The API lists messages oldest first: the whole period is read (lists.js) and shown newest first, a page
  // at a time; a period (a sliding window) keeps that to recent failures.
  function query() {
    const since = period.value ? new Date(Date.now() - Number(period.value) * 86_400_000).toISOString() : null;
    return { status: "failed", direction: "outbound", type: channel.value, since };
  }

  async function restart() {
    messages = [];
    shown = PAGE;
    await refresh().catch((error) => { notice.textContent = `Could not load failed messages: ${describeError(error)}`; });
  }

  async function refresh() {
    ({ items: messages, complete } = await readNewestFirst((page) => api.searchMessages(page), query()));
    render();
  }

  function loadMore() {
    if (shown >= messages.length) return;
    shown += PAGE;
    render();
  }

  function render() {
    const rows = messages.slice(0, shown);
    // Rebuilt on every refresh: the focused control (Resend, Open conversation) is focused again after.
    keepingFocus(list, () => list.replaceChildren(...(rows.length ? rows.map(row) : [h("li", {}, emptyState("No failed messages in this period."))])));
    more.hidden = shown >= messages.length;
    status.textContent = complete
      ? ""
      : `More than ${messages.length} failed messages in this period: these are the oldest ${messages.length}. Choose a shorter period.`;
  }

  function row(message) {
    const again = resent.get(message.id);
    return h("li", { class: "row failed-message", dataset: { messageId: String(message.id) } },
      h("div", { class: "row-main" },
        h("div", {},
          h("strong", {}, message.type.toUpperCase()), ` ${message.from} → ${message.to} · `, timeElement(message.timestamp),
        ),
        h("p", { class: "preview" }, messagePreview(message)),
        statusBadge(message),
        again ? h("p", { class: "hint resent" }, `Resent as message ${again.id} (${again.status}).`) : null,
      ),
      h("a", {
        class: "button", href: `#/c/${message.conversation_id}`,
        dataset: { focusKey: `open-${message.id}` }, "aria-label": `Open the conversation of message ${message.id}`,
      }, "Open conversation"),
      capabilities.resend
        ? resendButton(message, (sent) => {
            resent.set(message.id, sent);
            notice.textContent = `Message ${message.id} resent as message ${sent.id} (${sent.status}).`;
            render();
          }, (text) => { notice.textContent = text; })
        : null,
    );
  }

  container.replaceChildren(
    h("h2", { tabindex: "-1" }, "Failed messages"),
    h("p", { class: "hint" }, "Outbound messages the provider refused or that ran out of attempts, newest first. Resend sends the content again as a new message."),
    notice,
    h("div", { class: "filters inline-filters" },
      h("label", { for: "failed-period" }, "Period"), period,
      h("label", { for: "failed-channel" }, "Channel"), channel,
    ),
    status,
    list,
    more,
  );
  return { refresh };
}
