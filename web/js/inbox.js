// The conversation inbox: most recent activity first, with the filters and search this API supports.
import { api } from "./api.js";
import { describeError, emptyState, formatTime, h } from "./dom.js";

const PAGE = 50;

export class Inbox {
  constructor(container, capabilities) {
    this.container = container;
    this.capabilities = capabilities;
    this.filters = { search: "", participant: "", channel: "", archived: false };
    this.conversations = [];
    this.hits = null; // full-text search results (messages), when the API searches
    this.nextCursor = null;
    this.selectedId = null;
    this.renderFrame();
  }

  renderFrame() {
    const { filters, search } = this.capabilities;
    const local = [!search && "search", !filters.participant && "the participant filter"].filter(Boolean);
    const missing = [!filters.channel && "channel filter", !filters.archived && "archiving"].filter(Boolean);
    const notes = [];
    if (local.length) notes.push(`${capitalize(local.join(" and "))} cover${local.length > 1 ? "" : "s"} the conversations listed.`);
    if (missing.length) notes.push(`No ${missing.join(" or ")} on this API yet.`);

    const onInput = () => this.applyFilters();
    this.searchInput = h("input", { id: "inbox-search", type: "search", placeholder: "Search messages", "aria-describedby": "inbox-notes", oninput: debounce(onInput) });
    this.participantInput = h("input", { id: "inbox-participant", type: "text", placeholder: "+1415… or name@…", oninput: debounce(onInput) });
    this.channelSelect = filters.channel
      ? h("select", { id: "inbox-channel", onchange: onInput }, h("option", { value: "" }, "All channels"), h("option", { value: "sms" }, "SMS"), h("option", { value: "mms" }, "MMS"), h("option", { value: "email" }, "Email"))
      : null;
    this.archivedInput = filters.archived ? h("input", { id: "inbox-archived", type: "checkbox", onchange: onInput }) : null;
    this.list = h("ul", { class: "conversation-list", id: "conversation-list", "aria-label": "Conversations" });
    this.status = h("p", { class: "list-status", role: "status" });
    this.more = h("button", { type: "button", class: "more", hidden: true, onclick: () => this.loadMore() }, "Load more");

    this.container.replaceChildren(
      h("h2", { id: "inbox-title" }, "Conversations"),
      h("form", { class: "filters", role: "search", onsubmit: (event) => event.preventDefault() },
        h("label", { for: "inbox-search" }, "Search"), this.searchInput,
        h("label", { for: "inbox-participant" }, "Participant"), this.participantInput,
        this.channelSelect && h("label", { for: "inbox-channel" }, "Channel"), this.channelSelect,
        this.archivedInput && h("label", { class: "inline", for: "inbox-archived" }, this.archivedInput, " Show archived"),
        notes.length ? h("p", { id: "inbox-notes", class: "hint" }, notes.join(" ")) : null,
      ),
      this.status,
      this.list,
      this.more,
    );
  }

  applyFilters() {
    this.filters = {
      search: this.searchInput.value.trim(),
      participant: this.participantInput.value.trim(),
      channel: this.channelSelect ? this.channelSelect.value : "",
      archived: this.archivedInput ? this.archivedInput.checked : false,
    };
    this.conversations = [];
    this.nextCursor = null;
    return this.refresh();
  }

  query(limit, cursor) {
    const { filters } = this.capabilities;
    const query = { limit, cursor };
    if (filters.participant && this.filters.participant) query.participant = this.filters.participant;
    if (filters.channel && this.filters.channel) query.channel = this.filters.channel;
    if (filters.archived) query.archived = String(this.filters.archived);
    return query;
  }

  async refresh() {
    try {
      if (this.filters.search && this.capabilities.search) {
        const page = await api.searchMessages({ q: this.filters.search, limit: PAGE });
        this.hits = page.items;
      } else {
        this.hits = null;
        const limit = Math.min(200, Math.max(PAGE, this.conversations.length));
        const page = await api.conversations(this.query(limit, null));
        this.conversations = page.items;
        this.nextCursor = page.next_cursor;
      }
      this.render();
    } catch (error) {
      this.status.textContent = `Could not load conversations: ${describeError(error)}`;
      throw error;
    }
  }

  async loadMore() {
    if (!this.nextCursor) return;
    const page = await api.conversations(this.query(PAGE, this.nextCursor));
    this.conversations.push(...page.items);
    this.nextCursor = page.next_cursor;
    this.render();
  }

  visibleConversations() {
    const { filters, search } = this.capabilities;
    const participant = filters.participant ? "" : this.filters.participant.toLowerCase();
    const text = search ? "" : this.filters.search.toLowerCase();
    return this.conversations.filter((conversation) => {
      const people = conversation.participants.join(" ").toLowerCase();
      if (participant && !people.includes(participant)) return false;
      if (text && !`${people} ${conversation.last_message_preview || ""}`.toLowerCase().includes(text)) return false;
      return true;
    });
  }

  render() {
    const focusedId = document.activeElement && document.activeElement.closest("#conversation-list") ? document.activeElement.dataset.id : null;
    const items = this.hits ? this.hits.map((message) => this.hitItem(message)) : this.visibleConversations().map((c) => this.conversationItem(c));
    // With archiving, the inbox hides archived conversations: an empty list then means "nothing matches".
    const filtered = Object.values(this.filters).some(Boolean) || Boolean(this.capabilities.filters.archived);
    this.status.textContent = items.length
      ? `${items.length}${this.nextCursor && !this.hits ? "+" : ""} ${this.hits ? "matching messages" : "conversations"}`
      : "";
    this.list.replaceChildren(
      ...(items.length
        ? items
        : [h("li", {}, emptyState(filtered ? "Nothing matches these filters." : "No conversations yet: send a message from Compose, or run make seed."))]),
    );
    this.more.hidden = !this.nextCursor || Boolean(this.hits);
    if (focusedId) {
      const again = this.list.querySelector(`a[data-id="${CSS.escape(focusedId)}"]`);
      if (again) again.focus();
    }
  }

  conversationItem(conversation) {
    const unread = conversation.unread_count || 0;
    return h("li", { class: `conversation${unread ? " unread" : ""}${conversation.archived ? " archived" : ""}` },
      h("a", {
        href: `#/c/${conversation.id}`,
        dataset: { id: String(conversation.id) },
        "aria-current": String(conversation.id) === String(this.selectedId) ? "page" : null,
      },
        h("span", { class: "participants" }, conversation.participants.join(" ↔ ")),
        h("span", { class: "preview" }, plainText(conversation.last_message_preview || "")),
        h("span", { class: "meta" },
          h("time", { datetime: conversation.last_message_at || "" }, formatTime(conversation.last_message_at)),
          ` · ${conversation.message_count} message${conversation.message_count === 1 ? "" : "s"}`,
          conversation.archived ? h("span", { class: "tag" }, "archived") : null,
          unread ? h("span", { class: "badge unread-count", "aria-label": `${unread} unread` }, String(unread)) : null,
        ),
      ),
    );
  }

  hitItem(message) {
    return h("li", { class: "conversation hit" },
      h("a", { href: `#/c/${message.conversation_id}`, dataset: { id: String(message.conversation_id) } },
        h("span", { class: "participants" }, `${message.from} → ${message.to}`),
        h("span", { class: "preview" }, plainText(message.body).slice(0, 160)),
        h("span", { class: "meta" }, h("time", { datetime: message.timestamp }, formatTime(message.timestamp)), ` · ${message.type}`),
      ),
    );
  }

  select(id) {
    this.selectedId = id;
    for (const link of this.list.querySelectorAll("a[data-id]")) {
      if (link.dataset.id === String(id)) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  focusSearch() {
    this.searchInput.focus();
  }
}

function debounce(action, wait = 250) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(action, wait);
  };
}

function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A one-line preview of a body that may be HTML (shown as text, never parsed into the page). */
function plainText(body) {
  return body.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim();
}
