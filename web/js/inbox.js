// The conversation inbox: most recent activity first, with the filters and search this API supports.
import { api, plausibleAddress } from "./api.js";
import { debounce, describeError, emptyState, formatTime, h, messagePreview } from "./dom.js";
import { readNewestFirst } from "./lists.js";
import { statusBadge } from "./thread.js";

const PAGE = 50;

export class Inbox {
  constructor(container, capabilities) {
    this.container = container;
    this.capabilities = capabilities;
    this.filters = { search: "", participant: "", channel: "", archived: false };
    this.conversations = [];
    this.hits = null; // full-text search results (messages, newest first), when the API searches
    this.hitsComplete = true; // false: more matched than lists.js reads
    this.shownGroups = PAGE; // search results shown: conversations with matches, newest match first
    this.nextCursor = null;
    this.selectedId = null;
    this.renderFrame();
  }

  renderFrame() {
    const { filters, search } = this.capabilities;
    const local = [!search && "search", !filters.participant && "the participant filter"].filter(Boolean);
    const missing = [!filters.channel && "channel filter", !filters.archived && "archiving"].filter(Boolean);
    this.staticNotes = [];
    if (local.length) this.staticNotes.push(`${capitalize(local.join(" and "))} cover${local.length > 1 ? "" : "s"} the conversations listed.`);
    if (missing.length) this.staticNotes.push(`No ${missing.join(" or ")} on this API yet.`);

    const onInput = () => this.applyFilters().catch(() => {}); // refresh() has shown what went wrong
    this.searchInput = h("input", { id: "inbox-search", type: "search", placeholder: "Search messages", "aria-describedby": "inbox-notes", oninput: debounce(onInput) });
    // The API filters by one whole address (a partial one is a 422): typing queries once the input looks like
    // a whole phone number or email address; Enter queries whatever it holds and shows the API's answer.
    this.participantInput = h("input", {
      id: "inbox-participant", type: "text", placeholder: "+14155550123 or name@example.com",
      "aria-describedby": "inbox-participant-error",
      oninput: debounce(() => {
        const wanted = this.participantInput.value.trim();
        if (!filters.participant || wanted === "" || plausibleAddress(wanted)) onInput();
      }),
    });
    this.participantError = h("p", { class: "field-error", id: "inbox-participant-error", role: "alert" });
    this.channelSelect = filters.channel
      ? h("select", { id: "inbox-channel", onchange: onInput }, h("option", { value: "" }, "All channels"), h("option", { value: "sms" }, "SMS"), h("option", { value: "mms" }, "MMS"), h("option", { value: "email" }, "Email"))
      : null;
    this.archivedInput = filters.archived ? h("input", { id: "inbox-archived", type: "checkbox", onchange: onInput }) : null;
    this.notes = h("p", { id: "inbox-notes", class: "hint" });
    this.list = h("ul", { class: "conversation-list", id: "conversation-list", "aria-label": "Conversations" });
    this.status = h("p", { class: "list-status", role: "status" });
    this.more = h("button", { type: "button", class: "more", hidden: true, onclick: () => this.loadMore() }, "Load more");

    this.container.replaceChildren(
      h("h2", { id: "inbox-title" }, "Conversations"),
      h("form", { class: "filters", role: "search", onsubmit: (event) => {
        event.preventDefault();
        onInput();
      } },
        h("label", { for: "inbox-search" }, "Search"), this.searchInput,
        h("label", { for: "inbox-participant" }, "Participant"), this.participantInput, this.participantError,
        this.channelSelect && h("label", { for: "inbox-channel" }, "Channel"), this.channelSelect,
        this.archivedInput && h("label", { class: "inline", for: "inbox-archived" }, this.archivedInput, " Show archived"),
        this.notes,
        // Enter in the participant field submits (a form with two text fields submits only with a button).
        h("button", { type: "submit", class: "visually-hidden", tabindex: "-1" }, "Apply filters"),
      ),
      this.status,
      this.list,
      this.more,
    );
    this.describeFilters();
  }

  /** Which filters a search honours: GET /api/messages filters by channel (`type`), not by participant or
   * archiving, so while searching those controls are disabled and the note says so. */
  describeFilters() {
    const searching = Boolean(this.filters.search) && this.capabilities.search;
    const notes = [...this.staticNotes];
    if (searching) {
      const honoured = this.capabilities.searchChannel && this.channelSelect ? "the channel filter applies" : "no filter applies";
      notes.push(`Searching the messages of every conversation: ${honoured}; the participant filter and Show archived apply to the conversation list only.`);
    }
    this.participantInput.disabled = searching;
    if (this.archivedInput) this.archivedInput.disabled = searching;
    this.notes.textContent = notes.join(" ");
    this.notes.hidden = notes.length === 0;
  }

  applyFilters() {
    this.filters = {
      search: this.searchInput.value.trim(),
      participant: this.participantInput.value.trim(),
      channel: this.channelSelect ? this.channelSelect.value : "",
      archived: this.archivedInput ? this.archivedInput.checked : false,
    };
    this.describeFilters();
    this.conversations = [];
    this.nextCursor = null;
    this.shownGroups = PAGE;
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

  searchQuery() {
    const query = { q: this.filters.search };
    if (this.capabilities.searchChannel && this.filters.channel) query.type = this.filters.channel;
    return query;
  }

  async refresh() {
    try {
      if (this.filters.search && this.capabilities.search) {
        // The API lists matches oldest first: every match is read (following next_cursor) and shown newest
        // first, grouped by conversation (lists.js); "Load more" shows the next older ones.
        const { items, complete } = await readNewestFirst((query) => api.searchMessages(query), this.searchQuery());
        this.hits = items;
        this.hitsComplete = complete;
      } else {
        this.hits = null;
        const limit = Math.min(200, Math.max(PAGE, this.conversations.length));
        const page = await api.conversations(this.query(limit, null));
        this.conversations = page.items;
        this.nextCursor = page.next_cursor;
      }
      this.participantError.textContent = "";
      this.participantInput.removeAttribute("aria-invalid");
      this.render();
    } catch (error) {
      if (error.status === 422 && error.field === "participant") {
        this.participantError.textContent = error.message;
        this.participantInput.setAttribute("aria-invalid", "true");
      } else {
        this.status.textContent = `Could not load conversations: ${describeError(error)}`;
      }
      throw error;
    }
  }

  async loadMore() {
    if (this.hits) {
      if (this.shownGroups >= this.hitGroups().length) return;
      this.shownGroups += PAGE;
      this.render();
      return;
    }
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
    const groups = this.hits ? this.hitGroups() : null;
    const items = groups ? groups.slice(0, this.shownGroups).map((group) => this.hitItem(group)) : this.visibleConversations().map((c) => this.conversationItem(c));
    // With archiving, the inbox hides archived conversations: an empty list then means "nothing matches".
    const filtered = Object.values(this.filters).some(Boolean) || Boolean(this.capabilities.filters.archived);
    this.status.textContent = !items.length
      ? ""
      : groups
        ? searchSummary(this.hits.length, groups.length, this.hitsComplete)
        : `${items.length}${this.nextCursor ? "+" : ""} conversations`;
    this.list.replaceChildren(
      ...(items.length
        ? items
        : [h("li", {}, emptyState(filtered ? "Nothing matches these filters." : "No conversations yet: send a message from Compose, or run make seed."))]),
    );
    this.more.hidden = groups ? this.shownGroups >= groups.length : !this.nextCursor;
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
        // The API keeps a conversation's preview as text already (an email's HTML reduced to what a reader sees).
        h("span", { class: "preview" }, conversation.last_message_preview || ""),
        h("span", { class: "meta" },
          h("time", { datetime: conversation.last_message_at || "" }, formatTime(conversation.last_message_at)),
          ` · ${conversation.message_count} message${conversation.message_count === 1 ? "" : "s"}`,
          conversation.archived ? h("span", { class: "tag" }, "archived") : null,
          unread ? h("span", { class: "badge unread-count", "aria-label": `${unread} unread` }, String(unread)) : null,
        ),
      ),
    );
  }

  /** Search matches by conversation, the conversation with the newest match first: one entry each, with
   * its newest match and how many of its messages match. */
  hitGroups() {
    const groups = new Map();
    for (const message of this.hits) {
      const group = groups.get(message.conversation_id);
      if (group) group.count += 1;
      else groups.set(message.conversation_id, { newest: message, count: 1 });
    }
    return [...groups.values()];
  }

  hitItem({ newest: message, count }) {
    const matches = `${count} matching message${count === 1 ? "" : "s"}`;
    return h("li", { class: "conversation hit" },
      h("a", { href: `#/c/${message.conversation_id}`, dataset: { id: String(message.conversation_id) } },
        h("span", { class: "participants" }, `${message.from} → ${message.to}`),
        h("span", { class: "preview" }, messagePreview(message)),
        h("span", { class: "meta" },
          h("time", { datetime: message.timestamp }, formatTime(message.timestamp)), ` · ${message.type.toUpperCase()} `, statusBadge(message),
          h("span", { class: "tag match-count", title: count > 1 ? "The newest match is shown" : null }, count > 1 ? `${matches} · newest shown` : matches),
        ),
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

function searchSummary(messages, conversations, complete) {
  const found = `${messages} matching message${messages === 1 ? "" : "s"} in ${conversations} conversation${conversations === 1 ? "" : "s"}, newest first`;
  return complete ? found : `More than ${messages} messages match: the oldest ${messages} are shown, newest first. Narrow the search.`;
}

function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
