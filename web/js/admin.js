// Customer webhook endpoints with their delivery log, and the suppression list: shown when the API has them.
import { allPages, api, plausibleAddress } from "./api.js";
import { debounce, describeError, emptyState, h, keepingFocus, timeElement } from "./dom.js";

const EVENT_TYPES = [
  "message.received", "message.sent", "message.delivered", "message.undelivered", "message.failed",
  "conversation.created", "recipient.opted_out", "recipient.opted_in",
];

function unavailable(container, title, route) {
  container.replaceChildren(
    h("h2", { tabindex: "-1" }, title),
    emptyState(`Not available on this API yet (it has no ${route} route).`),
  );
  return { refresh: async () => {} };
}

export function renderWebhooks(container, capabilities, selectedId) {
  if (!capabilities.webhooks) return unavailable(container, "Webhook endpoints", "/api/webhook-endpoints");
  const list = h("ul", { class: "rows", "aria-label": "Webhook endpoints" });
  const deliveries = h("section", { class: "deliveries", "aria-label": "Delivery log" });
  const notice = h("p", { class: "notice", role: "status" });
  const url = h("input", { id: "webhook-url", type: "url", required: true, placeholder: "https://example.com/hooks" });
  const urlError = h("p", { class: "field-error", id: "webhook-url-error", role: "alert" });
  const events = EVENT_TYPES.map((type) => h("label", { class: "inline" }, h("input", { type: "checkbox", value: type, checked: true }), ` ${type}`));
  const form = h("form", { class: "compose", onsubmit: async (event) => {
    event.preventDefault();
    urlError.textContent = "";
    try {
      const chosen = events.map((label) => label.querySelector("input")).filter((box) => box.checked).map((box) => box.value);
      const created = await api.createWebhookEndpoint({ url: url.value.trim(), events: chosen });
      notice.textContent = created.secret ? `Endpoint ${created.id} registered. Its signing secret, shown only now: ${created.secret}` : `Endpoint ${created.id} registered.`;
      url.value = "";
      await refresh();
    } catch (error) {
      if (error.field === "url") urlError.textContent = error.message;
      else notice.textContent = `Could not register: ${describeError(error)}`;
    }
  } },
    h("h3", {}, "Register an endpoint"),
    h("label", { for: "webhook-url" }, "URL"), url, urlError,
    h("fieldset", {}, h("legend", {}, "Events"), events),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Register")),
  );

  async function refresh() {
    const endpoints = await allPages((query) => api.webhookEndpoints(query));
    // Rebuilt on every refresh; the focused control is focused again (keyed by endpoint id and control).
    keepingFocus(list, () => list.replaceChildren(...(endpoints.length ? endpoints.map((endpoint) => h("li", { class: "row", dataset: { endpointId: String(endpoint.id) } },
      h("a", {
        href: `#/webhooks/${endpoint.id}`, dataset: { focusKey: `endpoint-${endpoint.id}` },
        "aria-current": String(endpoint.id) === String(selectedId) ? "page" : null,
      }, endpoint.url),
      h("span", { class: `badge endpoint-${endpoint.enabled ? "enabled" : "disabled"}` }, endpoint.enabled ? "enabled" : "disabled"),
      endpoint.disabled_reason ? h("span", { class: "status-detail" }, endpoint.disabled_reason) : null,
      h("span", { class: "hint" }, (endpoint.events || []).join(", ")),
      h("button", {
        type: "button", dataset: { focusKey: `toggle-${endpoint.id}` },
        "aria-label": `${endpoint.enabled ? "Disable" : "Enable"} the endpoint ${endpoint.url}`,
        onclick: async () => {
          await api.updateWebhookEndpoint(endpoint.id, { enabled: !endpoint.enabled }).catch((error) => { notice.textContent = describeError(error); });
          await refresh();
        },
      }, endpoint.enabled ? "Disable" : "Enable"),
      h("button", {
        type: "button", dataset: { focusKey: `delete-${endpoint.id}` }, "aria-label": `Delete the endpoint ${endpoint.url}`,
        onclick: async () => {
          if (!confirm(`Delete the endpoint ${endpoint.url}?`)) return;
          await api.deleteWebhookEndpoint(endpoint.id).catch((error) => { notice.textContent = describeError(error); });
          await refresh();
        },
      }, "Delete"),
    )) : [h("li", {}, emptyState("No webhook endpoints registered."))])));
    if (selectedId) await refreshDeliveries();
  }

  async function refreshDeliveries() {
    const page = await api.webhookDeliveries(selectedId, { limit: 50 });
    const openLogs = new Set([...deliveries.querySelectorAll("details[open]")].map((log) => log.dataset.deliveryId));
    keepingFocus(deliveries, () => deliveries.replaceChildren(
      h("h3", {}, `Deliveries to endpoint ${selectedId}, newest first`),
      page.items.length
        ? h("ul", { class: "rows deliveries-list" }, page.items.map((delivery) => deliveryRow(delivery, openLogs.has(String(delivery.id)))))
        : emptyState("No deliveries yet."),
    ));
  }

  function deliveryRow(delivery, logOpen) {
    return h("li", { class: "row delivery", dataset: { deliveryId: String(delivery.id), status: delivery.status } },
      h("span", { class: `badge status delivery-${delivery.status}` }, delivery.status),
      h("strong", {}, delivery.event_type),
      h("span", { class: "hint" }, `event ${delivery.event_id}`),
      delivery.last_status_code ? h("span", { class: "status-code" }, `HTTP ${delivery.last_status_code}`) : null,
      h("span", {}, `${delivery.attempts} attempt${delivery.attempts === 1 ? "" : "s"}`),
      delivery.next_attempt_at ? h("span", { class: "status-detail" }, "next ", timeElement(delivery.next_attempt_at)) : null,
      delivery.completed_at ? h("span", { class: "status-detail" }, "completed ", timeElement(delivery.completed_at)) : null,
      delivery.last_error ? h("span", { class: "status-detail delivery-error" }, delivery.last_error) : null,
      h("button", {
        type: "button", dataset: { focusKey: `again-${delivery.id}` },
        "aria-label": `Deliver ${delivery.event_type} (delivery ${delivery.id}) again`,
        onclick: async () => {
          await api.retryDelivery(delivery.id).then(() => { notice.textContent = `Delivery ${delivery.id} queued again.`; }, (error) => { notice.textContent = describeError(error); });
          await refreshDeliveries();
        },
      }, "Deliver again"),
      attemptLog(delivery, logOpen),
    );
  }

  container.replaceChildren(h("h2", { tabindex: "-1" }, "Webhook endpoints"), notice, list, deliveries, form);
  return { refresh };
}

/** Every attempt of a delivery, newest first, as the API records it (status code, error, answer, duration). */
function attemptLog(delivery, open) {
  const log = h("details", { class: "attempt-log", dataset: { deliveryId: String(delivery.id) } },
    h("summary", { dataset: { focusKey: `log-${delivery.id}` } }, `Attempt log (${delivery.attempt_log.length})`),
    delivery.attempt_log.length
      ? h("ol", { class: "events" }, delivery.attempt_log.map((attempt) => h("li", {},
          timeElement(attempt.attempted_at), " ",
          h("strong", {}, `attempt ${attempt.attempt}`), " ",
          h("span", { class: `badge status attempt-${attempt.outcome}` }, attempt.outcome),
          attempt.status_code ? ` HTTP ${attempt.status_code}` : "",
          ` · ${attempt.duration_ms} ms`,
          attempt.error ? h("span", { class: "detail" }, ` · ${attempt.error}`) : null,
          attempt.next_attempt_at ? h("span", { class: "detail" }, " · next ", timeElement(attempt.next_attempt_at)) : null,
          attempt.response_excerpt ? h("pre", { class: "excerpt" }, attempt.response_excerpt) : null,
        )))
      : emptyState("Not attempted yet."),
  );
  log.open = open;
  return log;
}

export function renderSuppressions(container, capabilities) {
  if (!capabilities.suppressions) return unavailable(container, "Suppressions", "/api/suppressions");
  const list = h("ul", { class: "rows", "aria-label": "Suppressed recipients" });
  const notice = h("p", { class: "notice", role: "status" });
  // The API filters by one whole address (a partial one is a 422): the list is queried once the input looks
  // like a full phone number or email address, a moment after typing stops, or on Enter.
  let applied = "";
  const filterError = h("p", { class: "field-error", id: "suppression-filter-error", role: "alert" });
  const filterHint = h("p", { class: "hint", id: "suppression-filter-hint" }, "A whole phone number (+14155550123) or email address.");
  const filter = h("input", {
    id: "suppression-filter", type: "search", placeholder: "+14155550123 or name@example.com",
    "aria-describedby": "suppression-filter-hint suppression-filter-error",
    oninput: debounce(() => {
      const wanted = filter.value.trim();
      if (wanted === "" || plausibleAddress(wanted)) applyFilter(wanted);
    }),
  });
  const filterForm = h("form", { role: "search", class: "filters", onsubmit: (event) => {
    event.preventDefault();
    applyFilter(filter.value.trim());
  } },
    h("label", { for: "suppression-filter" }, "Filter by address"), filter, filterHint, filterError,
  );

  async function applyFilter(wanted) {
    const previous = applied;
    applied = wanted;
    try {
      await refresh();
      filterError.textContent = "";
      filter.removeAttribute("aria-invalid");
    } catch (error) {
      applied = previous;
      if (error.status !== 422) {
        notice.textContent = `Could not filter: ${describeError(error)}`;
        return;
      }
      filterError.textContent = error.message;
      filter.setAttribute("aria-invalid", "true");
    }
  }
  const inputs = {
    address: h("input", { id: "suppression-address", required: true }),
    sender: h("input", { id: "suppression-sender" }),
    reason: h("input", { id: "suppression-reason" }),
  };
  const errors = Object.fromEntries(Object.keys(inputs).map((name) => [name, h("p", { class: "field-error", role: "alert" })]));
  const form = h("form", { class: "compose", onsubmit: async (event) => {
    event.preventDefault();
    Object.values(errors).forEach((error) => { error.textContent = ""; });
    const payload = { address: inputs.address.value.trim() };
    if (inputs.sender.value.trim()) payload.sender = inputs.sender.value.trim();
    if (inputs.reason.value.trim()) payload.reason = inputs.reason.value.trim();
    try {
      await api.addSuppression(payload);
      Object.values(inputs).forEach((input) => { input.value = ""; });
      await refresh();
    } catch (error) {
      if (errors[error.field]) errors[error.field].textContent = error.message;
      else notice.textContent = `Could not add: ${describeError(error)}`;
    }
  } },
    h("h3", {}, "Suppress a recipient"),
    ...Object.entries(inputs).flatMap(([name, input]) => [
      h("label", { for: input.id }, name === "sender" ? "Sender (optional: only for this sender)" : name === "reason" ? "Reason (optional)" : "Address"),
      input, errors[name],
    ]),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Add")),
  );

  async function refresh() {
    const items = await allPages((query) => api.suppressions({ ...query, address: applied }));
    keepingFocus(list, () => list.replaceChildren(...(items.length ? items.map((item) => h("li", { class: "row", dataset: { suppressionId: String(item.id) } },
      h("strong", {}, item.address),
      item.source ? h("span", { class: "tag" }, item.source) : null,
      item.sender ? ` for ${item.sender}` : " for every sender",
      item.reason ? h("span", { class: "hint" }, ` · ${item.reason}`) : null,
      " ", timeElement(item.created_at),
      h("button", {
        type: "button", dataset: { focusKey: `lift-${item.id}` },
        "aria-label": `Lift the suppression of ${item.address}${item.sender ? ` for ${item.sender}` : ""}`,
        onclick: async () => {
          await api.liftSuppression(item.id).catch((error) => { notice.textContent = describeError(error); });
          await refresh();
        },
      }, "Lift"),
    )) : [h("li", {}, emptyState(applied ? `${applied} is not suppressed.` : "No suppressed recipients."))])));
  }

  container.replaceChildren(h("h2", { tabindex: "-1" }, "Suppressions"), notice, filterForm, list, form);
  return { refresh };
}
