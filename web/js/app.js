// The console's shell: hash routes, the settings dialog, polling for live updates, keyboard shortcuts.
import { capabilities, forgetCapabilities, loadSettings, saveSettings } from "./api.js";
import { renderSuppressions, renderWebhooks } from "./admin.js";
import { renderCompose } from "./compose.js";
import { renderFailed } from "./failed.js";
import { describeError, emptyState, h } from "./dom.js";
import { Inbox } from "./inbox.js";
import { Thread } from "./thread.js";

const inboxPane = document.getElementById("inbox");
const detailPane = document.getElementById("detail");
const banner = document.getElementById("connection");
let inbox = null;
let view = null; // the detail pane's current view: {refresh?, focus?}
let caps = null;
let pollTimer = null;

async function start() {
  setupSettings();
  setupKeyboard();
  try {
    caps = await capabilities();
  } catch (error) {
    showBanner(`Cannot reach the API: ${describeError(error)}. Check Settings.`);
    inboxPane.replaceChildren(emptyState("The API is unreachable."));
    return;
  }
  inbox = new Inbox(inboxPane, caps);
  window.addEventListener("hashchange", route);
  await route();
  await inbox.refresh().catch(() => {});
  schedulePoll();
}

function parseHash() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean);
  return { parts, params: Object.fromEntries(new URLSearchParams(query || "")) };
}

async function route() {
  const { parts, params } = parseHash();
  const [section, id] = parts;
  document.body.classList.toggle("detail-open", Boolean(section));
  for (const link of document.querySelectorAll("[data-nav]")) {
    const current = link.dataset.nav === (section === "c" || !section ? "inbox" : section);
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  inbox.select(section === "c" ? id : null);
  if (section === "c" && /^\d+$/.test(id || "")) {
    view = new Thread(detailPane, caps, id);
    document.title = `Conversation ${id} · Messaging console`;
  } else if (section === "compose") {
    view = renderCompose(detailPane, params);
    document.title = "Compose · Messaging console";
  } else if (section === "failed") {
    view = renderFailed(detailPane, caps);
    document.title = "Failed messages · Messaging console";
  } else if (section === "webhooks") {
    view = renderWebhooks(detailPane, caps, id);
    document.title = "Webhooks · Messaging console";
  } else if (section === "suppressions") {
    view = renderSuppressions(detailPane, caps);
    document.title = "Suppressions · Messaging console";
  } else {
    view = null;
    detailPane.replaceChildren(emptyState("Select a conversation, or compose a message."));
    document.title = "Messaging console";
  }
  const shown = view;
  if (shown && shown.refresh) await shown.refresh().catch((error) => showBanner(describeError(error)));
  if (shown === view && shown && shown.focus && section) shown.focus();
}

function schedulePoll() {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(poll, loadSettings().poll * 1000);
}

// Polling rather than a push channel: the API is plain HTTP behind API Gateway. Each round re-reads the
// first page of the inbox and asks the open view what changed (a thread reads only messages stamped since
// its oldest unsettled one: thread.js); only what changed is re-rendered.
async function poll() {
  if (!document.hidden) {
    try {
      await inbox.refresh();
      if (view && view.refresh && !isEditing()) await view.refresh();
      showBanner(null);
    } catch (error) {
      showBanner(`Live updates paused: ${describeError(error)} (retrying).`);
    }
  }
  schedulePoll();
}

function isEditing() {
  // A form being filled in (compose, webhooks, suppressions) is not re-rendered under the user's hands.
  return !(view instanceof Thread) && detailPane.contains(document.activeElement) && document.activeElement.matches("input, textarea, select");
}

function showBanner(text) {
  banner.hidden = !text;
  banner.textContent = text || "";
}

function setupSettings() {
  const dialog = document.getElementById("settings");
  const form = document.getElementById("settings-form");
  document.getElementById("open-settings").addEventListener("click", () => {
    const settings = loadSettings();
    form.elements.base.value = settings.base;
    form.elements.token.value = settings.token;
    form.elements.poll.value = settings.poll;
    dialog.showModal();
  });
  dialog.addEventListener("close", () => {
    if (dialog.returnValue !== "save") return;
    saveSettings({
      base: form.elements.base.value.trim(),
      token: form.elements.token.value.trim(),
      poll: Math.min(60, Math.max(1, Number(form.elements.poll.value) || 3)),
    });
    forgetCapabilities();
    location.reload(); // a new API may offer other features: start over with its capabilities
  });
}

function setupKeyboard() {
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const typing = event.target.matches("input, textarea, select, [contenteditable]");
    if (event.key === "Escape" && !document.querySelector("dialog[open]")) {
      if (typing) event.target.blur();
      else if (location.hash && location.hash !== "#/") location.hash = "#/";
      return;
    }
    if (typing) return;
    if (event.key === "/") {
      event.preventDefault();
      inbox && inbox.focusSearch();
    } else if (event.key === "c") {
      location.hash = "#/compose";
    } else if (["j", "k", "ArrowDown", "ArrowUp"].includes(event.key) && inbox) {
      const links = [...document.querySelectorAll("#conversation-list a[data-id]")];
      if (!links.length) return;
      const here = links.indexOf(document.activeElement);
      const step = event.key === "j" || event.key === "ArrowDown" ? 1 : -1;
      if (here === -1 && event.key.startsWith("Arrow")) return; // arrows keep scrolling the page elsewhere
      event.preventDefault();
      links[Math.min(links.length - 1, Math.max(0, here + step))].focus();
    }
  });
}

start();
