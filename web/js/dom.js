// Tiny DOM helpers: elements are built with textContent only, so no API string is ever parsed as HTML.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name in element && typeof value !== "string") element[name] = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function formatTime(value) {
  if (!value) return "";
  const date = new Date(value);
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  return sameDay
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })
    : date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

export function timeElement(value) {
  return h("time", { datetime: value || "", title: value || "" }, formatTime(value));
}

/** A short line for a failure: an API error's message, with its field when it names one. */
export function describeError(error) {
  if (error && error.status === 0) return "The API could not be reached.";
  if (error && error.status === 401) return "The API refused the credentials (401): set a bearer token in Settings.";
  if (error && error.status === 403) return "The API refused access (403): check the bearer token in Settings.";
  return (error && error.message) || String(error);
}

/** `action` once the calls stop for `wait` ms (typing in a filter queries once, not per keystroke). */
export function debounce(action, wait = 300) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(action, wait);
  };
}

/** A one-line preview of a body that may be HTML: its text as a browser would show it. DOMParser builds an
 * inert document (no script runs, nothing loads); what a reader never sees (scripts, styles, the head,
 * templates) is removed, and entities are decoded (`&amp;` is `&`). The result is only ever used as text.
 * Event-handler attributes (onerror=…) are renamed inside tags first: they would never run there, but
 * Chromium checks each one it parses against the page's Content-Security-Policy and logs a violation. */
export function plainText(body) {
  if (!/[<&]/.test(body)) return body.replace(/\s+/g, " ").trim();
  const defused = body.replace(/<[^>]*>/g, (tag) => tag.replace(/([\s/"'])on/gi, "$1data-on"));
  const document = new DOMParser().parseFromString(defused, "text/html");
  for (const hidden of document.querySelectorAll("script, style, head, template, noscript")) hidden.remove();
  return (document.body ? document.body.textContent : "").replace(/\s+/g, " ").trim();
}

/** A one-line preview of a message: an email's HTML as the text a reader sees (plainText); an SMS or MMS
 * body is already text, shown as written (a "<" in a text message is not markup). */
export function messagePreview(message) {
  const text = message.type === "email" ? plainText(message.body) : message.body.replace(/\s+/g, " ").trim();
  return text.slice(0, 160);
}

/** Runs `rebuild` (which replaces children of `root`) and gives focus back to the control that had it: the
 * element with the same data-focus-key (a row's id and the control's name), so a periodic refresh never
 * takes the keyboard user's place away. */
export function keepingFocus(root, rebuild) {
  const active = document.activeElement;
  const key = active && root.contains(active) ? active.dataset.focusKey : undefined;
  const result = rebuild();
  if (key && !root.contains(active)) {
    const again = root.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
    if (again) again.focus({ preventScroll: true });
  }
  return result;
}

export function emptyState(text) {
  return h("p", { class: "empty" }, text);
}

/** Email bodies may be HTML: shown in a frame that can run nothing (no allow-scripts) and reach nothing. The
 * sandbox (no allow-same-origin either) keeps the frame's document unreadable from here, so its height is
 * estimated from the text it shows, and the reader can drag it taller (resize: vertical in the stylesheet). */
export function inertHtmlFrame(html, title) {
  const frame = h("iframe", {
    class: "email-body",
    title,
    sandbox: "",
    referrerpolicy: "no-referrer",
    loading: "lazy",
  });
  const text = plainText(html);
  const blocks = (html.match(/<(p|div|br|li|tr|h[1-6]|table|blockquote)\b/gi) || []).length;
  const lines = Math.ceil(text.length / 70) + blocks;
  frame.style.height = `${Math.min(600, Math.max(120, 40 + lines * 22))}px`;
  frame.setAttribute("srcdoc", html);
  return frame;
}

export function safeLink(url, text) {
  let parsed = null;
  try {
    parsed = new URL(url);
  } catch {
    parsed = null;
  }
  if (!parsed || !["http:", "https:"].includes(parsed.protocol)) return h("span", { class: "attachment" }, url);
  return h("a", { class: "attachment", href: parsed.href, target: "_blank", rel: "noopener noreferrer" }, text || url);
}
