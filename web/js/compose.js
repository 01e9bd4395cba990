// Compose an SMS, MMS or email. The API validates; its error names the field, shown next to that field.
import { api } from "./api.js";
import { describeError, h } from "./dom.js";

const FIELDS = ["type", "from", "to", "body", "attachments"];

export function renderCompose(container, prefill = {}) {
  const errors = {};
  // Sending the same request again (after an error or no answer) reuses its Idempotency-Key, so the API
  // answers with the first attempt's message instead of sending twice; a changed request gets a new key.
  let last = { request: null, key: null };
  const keyFor = (payload) => {
    const request = JSON.stringify([type.value, payload]);
    if (request !== last.request) last = { request, key: newIdempotencyKey() };
    return last.key;
  };
  const field = (name, label, control, hint) => {
    errors[name] = h("p", { class: "field-error", id: `compose-${name}-error`, role: "alert" });
    control.id = `compose-${name}`;
    control.name = name;
    control.setAttribute("aria-describedby", `compose-${name}-error${hint ? ` compose-${name}-hint` : ""}`);
    return h("div", { class: "field", dataset: { field: name } },
      h("label", { for: control.id }, label),
      control,
      hint ? h("p", { class: "hint", id: `compose-${name}-hint` }, hint) : null,
      errors[name],
    );
  };
  const type = h("select", {},
    h("option", { value: "sms" }, "SMS"),
    h("option", { value: "mms" }, "MMS"),
    h("option", { value: "email" }, "Email"),
  );
  type.value = ["sms", "mms", "email"].includes(prefill.type) ? prefill.type : "sms";
  const from = h("input", { type: "text", autocomplete: "off", required: true, value: prefill.from || "" });
  const to = h("input", { type: "text", autocomplete: "off", required: true, value: prefill.to || "" });
  const body = h("textarea", { rows: 5 });
  const attachments = h("textarea", { rows: 2, placeholder: "https://example.com/image.jpg" });
  const formError = h("p", { class: "form-error", role: "alert" });
  const result = h("p", { class: "result", role: "status" });
  const send = h("button", { type: "submit", class: "primary" }, "Send");
  const attachmentsField = field("attachments", "Attachments (one URL per line)", attachments);

  const placeholders = () => {
    const email = type.value === "email";
    from.placeholder = email ? "you@example.com" : "+12015550123";
    to.placeholder = email ? "them@example.com" : "+14155550123";
    attachmentsField.hidden = type.value === "sms";
  };
  type.addEventListener("change", placeholders);
  placeholders();

  const clearErrors = () => {
    for (const name of FIELDS) {
      errors[name].textContent = "";
      const control = container.querySelector(`#compose-${name}`);
      if (control) control.removeAttribute("aria-invalid");
    }
    formError.textContent = "";
    result.textContent = "";
  };

  const form = h("form", { class: "compose", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    clearErrors();
    const urls = attachments.value.split(/\s+/).filter(Boolean);
    const payload = { from: from.value.trim(), to: to.value.trim(), body: body.value };
    if (type.value === "email") Object.assign(payload, { type: "email", attachments: urls });
    else Object.assign(payload, { type: type.value, attachments: type.value === "mms" ? urls : null });
    send.disabled = true;
    try {
      const message = await api.send(type.value, payload, keyFor(payload));
      result.textContent = `Message ${message.id} accepted (${message.status}).`;
      location.hash = `#/c/${message.conversation_id}`;
    } catch (error) {
      // "attachments.0" and "attachments[0]" belong to the attachments field.
      const name = error.field ? String(error.field).split(/[.[]/)[0] : null;
      if (name && errors[name] && !(name === "attachments" && attachmentsField.hidden)) {
        errors[name].textContent = error.message;
        const control = container.querySelector(`#compose-${name}`);
        control.setAttribute("aria-invalid", "true");
        control.focus();
      } else {
        formError.textContent = error.status === 422 || error.status === 400 ? error.message : `Could not send: ${describeError(error)}`;
      }
    } finally {
      send.disabled = false;
    }
  } },
    h("h2", { id: "compose-title", tabindex: "-1" }, "Compose"),
    field("type", "Channel", type),
    field("from", "From", from),
    field("to", "To", to),
    field("body", "Message", body, "Email bodies may contain HTML."),
    attachmentsField,
    formError,
    h("div", { class: "actions" }, send),
    result,
  );
  container.replaceChildren(form);
  return { focus: () => container.querySelector("#compose-title").focus() };
}

function newIdempotencyKey() {
  // crypto.getRandomValues, unlike randomUUID, also works on a plain-http static host.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `console-${Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}
