// One conversation: its messages in order, each with channel, direction, body, attachments, status and history.
import { allPages, api } from "./api.js";
import { describeError, emptyState, formatTime, h, inertHtmlFrame, safeLink, timeElement } from "./dom.js";

// No later change is expected of a message in these (a `sent` one still awaits its receipt).
const SETTLED = new Set(["delivered", "undelivered", "failed", "received"]);

const STATUS_LABELS = {
  queued: "queued",
  retrying: "retrying",
  sent: "sent",
  delivered: "delivered",
  undelivered: "undelivered",
  failed: "failed",
  received: "received",
};

export class Thread {
  constructor(container, capabilities, conversationId) {
    this.container = container;
    this.capabilities = capabilities;
    this.id = conversationId;
    this.rendered = new Map(); // message id -> {key, element}
    this.conversation = null;
    this.notice = h("p", { class: "notice", role: "status" });
    this.header = h("header", { class: "thread-head" });
    this.list = h("ol", { class: "messages", "aria-label": "Messages" });
    container.replaceChildren(this.header, this.notice, this.list);
    this.messages = null; // chronological, as last read
  }

  async refresh() {
    try {
      const conversation = await api.conversation(this.id);
      if (this.messages === null) this.messages = await this.everyMessage();
      else await this.readChanges(conversation);
      this.conversation = conversation;
      this.renderHeader(conversation, this.messages);
      this.renderMessages(this.messages);
      await this.markRead(conversation);
    } catch (error) {
      if (error.status === 404 && !error.missingRoute) {
        this.container.replaceChildren(emptyState(`Conversation ${this.id} does not exist.`));
        return;
      }
      this.notice.textContent = `Could not refresh: ${describeError(error)}`;
      throw error;
    }
  }

  everyMessage() {
    return allPages((query) => api.conversationMessages(this.id, query));
  }

  // Live updates read only what may have changed: the conversation's messages stamped at or after the oldest
  // one still settling (queued, retrying, sent: a receipt may follow), or else after the newest one, through
  // GET /api/messages?conversation_id=…&since=…. A message stamped earlier than that (an inbound message
  // carries the provider's timestamp) shows in the conversation's message_count instead, and only then is
  // the whole thread read again.
  async readChanges(conversation) {
    const settling = this.messages.find((message) => !SETTLED.has(message.status));
    const from = settling || this.messages[this.messages.length - 1];
    if (!from) {
      if (conversation.message_count) this.messages = await this.everyMessage();
      return;
    }
    const changed = await allPages((query) => api.searchMessages({ ...query, conversation_id: this.id, since: from.timestamp }));
    const byId = new Map(this.messages.map((message) => [message.id, message]));
    for (const message of changed) byId.set(message.id, message);
    const merged = [...byId.values()].sort(chronologically);
    this.messages = merged.length === conversation.message_count ? merged : await this.everyMessage();
  }

  async markRead(conversation) {
    // Whenever the open thread has unread messages (also ones arriving while it is open).
    if (!this.capabilities.read || !conversation.unread_count) return;
    try {
      await api.markRead(this.id);
    } catch (error) {
      if (!error.missingRoute) throw error;
    }
  }

  renderHeader(conversation, messages) {
    const last = messages[messages.length - 1];
    const reply = last
      ? h("a", { class: "button", href: `#/compose?${new URLSearchParams(replyTo(last))}` }, "Reply")
      : null;
    const archive = this.capabilities.archive && "archived" in conversation
      ? h("button", { type: "button", onclick: () => this.toggleArchived() }, conversation.archived ? "Unarchive" : "Archive")
      : null;
    this.header.replaceChildren(
      h("a", { class: "back", href: "#/", "aria-label": "Back to conversations" }, "←"),
      h("div", {},
        h("h2", { id: "thread-title", tabindex: "-1" }, conversation.participants.join(" ↔ ")),
        h("p", { class: "hint" }, `${conversation.message_count} message${conversation.message_count === 1 ? "" : "s"}`,
          conversation.archived ? " · archived" : ""),
      ),
      h("div", { class: "actions" }, reply, archive),
    );
  }

  async toggleArchived() {
    try {
      await api.archive(this.id, !this.conversation.archived);
      await this.refresh();
    } catch (error) {
      this.notice.textContent = `Could not change archiving: ${describeError(error)}`;
    }
  }

  renderMessages(messages) {
    if (!messages.length) {
      this.list.replaceChildren(h("li", {}, emptyState("No messages in this conversation.")));
      this.rendered.clear();
      return;
    }
    const elements = messages.map((message) => {
      const key = [message.status, message.updated_at, message.attempts, message.next_attempt_at, overdue(message)].join("|");
      const previous = this.rendered.get(message.id);
      if (previous && previous.key === key) return previous.element;
      const element = this.messageElement(message, previous && previous.element.querySelector("details[open]"));
      this.rendered.set(message.id, { key, element });
      return element;
    });
    // Only changed messages are rebuilt; unchanged nodes (and their frames) stay where they are.
    elements.forEach((element, index) => {
      if (this.list.children[index] !== element) this.list.insertBefore(element, this.list.children[index] || null);
    });
    while (this.list.children.length > elements.length) this.list.lastElementChild.remove();
  }

  messageElement(message, historyWasOpen) {
    const channel = message.type.toUpperCase();
    const body = message.type === "email"
      ? inertHtmlFrame(message.body, `Email body of message ${message.id}`)
      : h("p", { class: "text-body" }, message.body);
    const attachments = message.attachments.length
      ? h("ul", { class: "attachments", "aria-label": "Attachments" }, message.attachments.map((url) => h("li", {}, safeLink(url))))
      : null;
    const history = h("details", { class: "history", ontoggle: (event) => event.target.open && this.loadHistory(message, history) },
      h("summary", {}, "History"),
      h("div", { class: "history-body" }, "Loading…"),
    );
    const element = h("li", {
      class: `message ${message.direction}`,
      dataset: { messageId: String(message.id), status: message.status },
      "aria-label": `${message.direction} ${channel} message ${message.id}, ${message.status}`,
    },
      h("div", { class: "message-head" },
        h("span", { class: `channel ${message.type}` }, channel),
        h("span", { class: "route" }, `${message.direction === "inbound" ? "from" : "to"} ${message.direction === "inbound" ? message.from : message.to}`),
        timeElement(message.timestamp),
      ),
      body,
      attachments,
      h("div", { class: "message-foot" }, statusBadge(message), this.resendButton(message)),
      history,
    );
    if (historyWasOpen) {
      history.open = true;
    }
    return element;
  }

  resendButton(message) {
    if (!this.capabilities.resend) return null;
    return resendButton(message, async (sent) => {
      this.notice.textContent = `Resent as message ${sent.id} (${sent.status}).`;
      await this.refresh();
    }, (text) => { this.notice.textContent = text; });
  }

  async loadHistory(message, details) {
    const target = details.querySelector(".history-body");
    const summary = h("dl", { class: "facts" },
      fact("Attempts", message.attempts),
      fact("Provider", message.provider),
      fact("Provider id", message.provider_message_id || "—"),
      message.next_attempt_at ? fact("Next attempt", formatTime(message.next_attempt_at)) : null,
      message.last_error ? fact("Last error", message.last_error) : null,
      message.status_detail ? fact("Status detail", message.status_detail) : null,
      fact("Created", formatTime(message.created_at)),
      fact("Updated", formatTime(message.updated_at)),
    );
    if (!this.capabilities.events) {
      target.replaceChildren(summary, h("p", { class: "hint" }, "A step-by-step history needs GET /api/messages/{id}/events, not on this API yet."));
      return;
    }
    try {
      const events = await allPages((query) => api.messageEvents(message.id, query));
      target.replaceChildren(
        summary,
        events.length
          ? h("ol", { class: "events" }, events.map((event) => h("li", {},
              timeElement(event.occurred_at), " ",
              h("strong", {}, event.type || event.status),
              event.previous_status ? ` ${event.previous_status} → ${event.status}` : event.status ? ` ${event.status}` : "",
              event.attempt ? ` · attempt ${event.attempt}` : "",
              event.source ? ` · ${event.source}` : "",
              event.detail ? h("span", { class: "detail" }, ` · ${typeof event.detail === "string" ? event.detail : JSON.stringify(event.detail)}`) : null,
            )))
          : emptyState("No events recorded."),
      );
    } catch (error) {
      target.replaceChildren(summary, h("p", { class: "error" }, describeError(error)));
    }
  }

  focus() {
    const title = this.container.querySelector("#thread-title");
    if (title) title.focus();
  }
}

function fact(name, value) {
  return [h("dt", {}, name), h("dd", {}, String(value))];
}

/** Resend for a failed outbound message: a new message with its content (POST /api/messages/{id}/resend). */
export function resendButton(message, onResent, onError) {
  if (message.status !== "failed" || message.direction !== "outbound") return null;
  const button = h("button", {
    type: "button", class: "resend", "aria-label": `Resend message ${message.id}`,
    dataset: { focusKey: `resend-${message.id}` },
    onclick: async () => {
      button.disabled = true;
      let sent = null;
      try {
        sent = await api.resend(message.id);
      } catch (error) {
        onError(error.missingRoute ? "Resending is not available on this API." : `Could not resend: ${describeError(error)}`);
        button.disabled = false;
        return;
      }
      await onResent(sent);
    },
  }, "Resend");
  return button;
}

function chronologically(a, b) {
  return Date.parse(a.timestamp) - Date.parse(b.timestamp) || a.id - b.id;
}

/** Whether a message's next attempt (a retry, or a queued message's throttle slot) is already due. */
export function overdue(message, now = Date.now()) {
  return Boolean(message.next_attempt_at) && Date.parse(message.next_attempt_at) <= now;
}

export function statusBadge(message, now = Date.now()) {
  const label = STATUS_LABELS[message.status] || message.status;
  const extra = [];
  // When the next attempt is due: a retry's, or a queued message's slot (per-sender throttling). One whose
  // time has passed is waiting for the sweep to pick it up: "overdue", not a time in the past.
  const due = message.next_attempt_at && (overdue(message, now) ? "overdue" : formatTime(message.next_attempt_at));
  if (message.status === "retrying") {
    extra.push(`attempt ${message.attempts}`);
    if (due) extra.push(due === "overdue" ? "next attempt overdue" : `next ${due}`);
  }
  if (message.status === "queued" && due) extra.push(due === "overdue" ? "due now (overdue)" : `due ${due}`);
  if (["failed", "undelivered"].includes(message.status)) {
    const reason = message.status_detail || message.last_error;
    if (reason) extra.push(reason);
  }
  return h("span", { class: "status-line" },
    h("span", { class: `badge status status-${message.status}` }, label),
    extra.length ? h("span", { class: "status-detail" }, extra.join(" · ")) : null,
  );
}

function replyTo(message) {
  const ours = message.direction === "outbound" ? message.from : message.to;
  const theirs = message.direction === "outbound" ? message.to : message.from;
  return { type: message.type, from: ours, to: theirs };
}
