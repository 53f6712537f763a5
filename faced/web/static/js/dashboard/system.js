// The system panel: the daemon's /health every 5 s — version, uptime, viewers, agents,
// camera, model, and one row per component. Owns the panel and the camera status it last
// read (the tracking panel asks it why its socket closed).

import { byId, element } from "./dom.js";

const HEALTH_INTERVAL_MS = 5000;

function fact(list, name, value) {
  list.append(element("dt", "", name), element("dd", "", value));
}

function describe(report) {
  return Object.entries(report)
    .filter(([key]) => key !== "status")
    .map(([key, value]) => `${key}: ${typeof value === "object" ? JSON.stringify(value) : value}`)
    .join(", ");
}

function modelName(model) {
  if (!model) return "–";
  return typeof model === "object" ? `${model.name ?? ""} ${model.version ?? ""}`.trim() : String(model);
}

export class SystemPanel {
  constructor(api) {
    this.api = api;
    this.status = byId("health-status");
    this.facts = byId("system-facts");
    this.components = byId("components").tBodies[0];
    this.cameraStatus = "unknown";
  }

  start() {
    this.refresh();
    setInterval(() => this.refresh(), HEALTH_INTERVAL_MS);
  }

  async refresh() {
    const reply = await this.api.request("GET", "/health", { cache: "no-store" });
    const health = reply.data;
    if (reply.status === 0 || health === null) {
      this.status.textContent = "unreachable";
      return;
    }
    this.status.textContent = health.status ?? "?";
    const facts = this.facts;
    facts.replaceChildren();
    fact(facts, "version", health.version ?? "?");
    fact(facts, "uptime", `${Math.round(health.uptime_s ?? 0)} s`);
    fact(facts, "viewers", String(health.viewers ?? "–"));
    fact(facts, "agents", String(health.agents ?? "–"));
    const components = health.components ?? {};
    const camera = components.camera ?? {};
    this.cameraStatus = camera.status ?? "unknown";
    fact(facts, "camera", `${this.cameraStatus}${camera.source ? ` (${camera.source})` : ""}`);
    fact(facts, "model", modelName(components.vision?.model ?? components.pipeline?.model ?? health.model));
    this.components.replaceChildren(...Object.entries(components).map(([name, report]) => {
      const row = element("tr");
      row.append(
        element("td", "", name),
        element("td", `status-${report.status}`, report.status),
        element("td", "", describe(report)),
      );
      return row;
    }));
  }
}
