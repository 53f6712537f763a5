// The tracking panel's perception part: what the daemon makes of the person — present,
// people in view, distance, attention, speaking, expression, smile, how long each has held
// — from GET /api/person (once a second while the page is visible), and the log of person
// events from the SSE stream GET /api/person/events. Owns that part of the panel
// (#person-*), the event source and its retries. Does not own the tracking socket
// (tracking.js) or the key (api.js: EventSource sends no headers, so the key goes as ?token=).

import { byId, clockTime, element } from "./dom.js";

const POLL_MS = 1000;
const RETRY_MS = 3000;
const LOG_LIMIT = 50;
const KINDS = [
  "arrived", "left", "attention_start", "attention_end", "speaking_start", "speaking_end", "expression",
];
const REFUSED = {
  401: "needs the API key",
  403: "refused (wrong key, or loopback only while no key is set)",
  404: "no perception on this daemon",
};

function seconds(from, to) {
  return typeof from === "number" && typeof to === "number" ? ` (${Math.max(0, Math.round((to - from) / 1000))} s)` : "";
}

function yesNo(value, since, ts) {
  return value ? `yes${seconds(since, ts)}` : "no";
}

function describeEvent(event) {
  switch (event.event) {
    case "arrived": return `arrived${typeof event.distance_m === "number" ? ` at ${event.distance_m.toFixed(2)} m` : ""}`;
    case "left": return "left";
    case "attention_start": return "looks at the box";
    case "attention_end": return "looks away";
    case "speaking_start": return "starts speaking";
    case "speaking_end": return "stops speaking";
    case "expression": return `expression ${event.expression ?? "?"}`;
    default: return String(event.event);
  }
}

export class PersonPanel {
  constructor(api) {
    this.api = api;
    this.status = byId("person-status");
    this.log = byId("person-events");
    this.fields = {
      present: byId("person-present"),
      people: byId("person-people"),
      distance: byId("person-distance"),
      attention: byId("person-attention"),
      speaking: byId("person-speaking"),
      expression: byId("person-expression"),
      smile: byId("person-smile"),
    };
    this._source = null;
    this._retry = null;
  }

  start() {
    this.refresh().then(() => this._connect());
    setInterval(() => {
      if (!document.hidden) this.refresh();
    }, POLL_MS);
  }

  /** The summary now; true when the daemon serves it (so the event stream is worth opening). */
  async refresh() {
    const reply = await this.api.request("GET", "/api/person", { cache: "no-store" });
    if (reply.ok && reply.data) {
      this.show(reply.data);
      return true;
    }
    if (reply.status === 0) this.status.textContent = "unreachable";
    else this.status.textContent = REFUSED[reply.status] ?? reply.message ?? String(reply.status);
    return false;
  }

  show(summary) {
    const ts = summary.ts;
    const f = this.fields;
    f.present.textContent = yesNo(summary.present, summary.present_since, ts);
    f.people.textContent = String(summary.people ?? "–");
    f.distance.textContent = typeof summary.distance_m === "number" ? `${summary.distance_m.toFixed(2)} m` : "–";
    f.attention.textContent = yesNo(summary.attention, summary.attention_since, ts);
    f.speaking.textContent = yesNo(summary.speaking, summary.speaking_since, ts);
    f.expression.textContent = summary.expression
      ? `${summary.expression}${typeof summary.expression_score === "number" ? ` ${summary.expression_score.toFixed(2)}` : ""}`
      : "–";
    f.smile.textContent = typeof summary.smile === "number" ? summary.smile.toFixed(2) : "–";
    if (this._source?.readyState === EventSource.OPEN) this.status.textContent = "live";
  }

  /** Opens the event stream; the browser reconnects on a dropped stream, we do on a refusal. */
  async _connect() {
    if (this._source) return;
    if (!(await this.refresh())) {
      this._later();
      return;
    }
    const key = this.api.key.value;
    const source = new EventSource(`/api/person/events${key ? `?token=${encodeURIComponent(key)}` : ""}`);
    this._source = source;
    const received = (message) => this._received(message);
    source.addEventListener("message", received);
    for (const kind of KINDS) source.addEventListener(kind, received);
    source.addEventListener("open", () => {
      this.status.textContent = "live";
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused or not an event stream: the browser gives up, so we ask again later.
        source.close();
        this._source = null;
        this._later();
      } else {
        this.status.textContent = "reconnecting";
      }
    });
  }

  _later() {
    clearTimeout(this._retry);
    this._retry = setTimeout(() => this._connect(), RETRY_MS);
  }

  _received(message) {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return; // a comment or keep-alive, not an event
    }
    if (!event || typeof event.event !== "string") return;
    this.show(event);
    const entry = element("div", `entry ${event.event}`);
    entry.append(element("time", "", clockTime(event.ts ?? Date.now())), describeEvent(event));
    this.log.prepend(entry);
    while (this.log.childElementCount > LOG_LIMIT) this.log.lastElementChild.remove();
  }
}
