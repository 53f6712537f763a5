// The takes panel: record a take from the box's camera or upload a video, watch the jobs'
// progress, download the curves (JSON) and the Live Link Face CSV. Owns the panel (#takes-*),
// its form, the upload request and the list's polling (GET /api/v1/jobs: every second while
// a job waits or runs, every 5 s otherwise, never while the page is hidden). Does not own
// the key (api.js); downloads are links, which send no headers, so the key goes as ?token=.

import { byId, clockTime, element } from "./dom.js";

const BUSY_MS = 1000;
const IDLE_MS = 5000;
const SHOWN = 8;

export class TakesPanel {
  constructor(api) {
    this.api = api;
    this.status = byId("takes-status");
    this.list = byId("takes-list");
    this.label = byId("takes-label");
    this.seconds = byId("takes-seconds");
    this.file = byId("takes-file");
    this.keep = byId("takes-keep");
    this._timer = null;
    byId("takes-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.record();
    });
    byId("takes-upload").addEventListener("click", () => this.upload());
  }

  start() {
    this.refresh();
  }

  _options() {
    const options = { keep_video: this.keep.checked };
    const label = this.label.value.trim();
    if (label) options.label = label;
    return options;
  }

  async record() {
    const body = { record_s: Number(this.seconds.value), ...this._options() };
    if (await this.api.call("POST", "/api/v1/jobs", body)) this.refresh();
  }

  async upload() {
    const file = this.file.files && this.file.files[0];
    if (!file) {
      this.api.notice.show("choose a video file first");
      return;
    }
    const query = new URLSearchParams(Object.entries(this._options()).map(([k, v]) => [k, String(v)]));
    const headers = { Accept: "application/json", "Content-Type": file.type || "application/octet-stream" };
    const key = this.api.key.value;
    if (key) headers.Authorization = `Bearer ${key}`;
    this.status.textContent = `uploading ${file.name}…`;
    let response;
    try {
      response = await fetch(`/api/v1/jobs?${query}`, { method: "POST", headers, body: file });
    } catch (error) {
      this.api.notice.show(`upload failed: ${error.message}`);
      return;
    }
    if (!response.ok) {
      const data = await response.json().catch(() => null);
      this.api.notice.show(`${response.status}: ${data?.error ?? response.statusText}`);
      if (response.status === 401 || response.status === 403) this.api.askForKey(() => this.upload());
      return;
    }
    this.file.value = "";
    this.refresh();
  }

  async refresh() {
    clearTimeout(this._timer);
    let busy = false;
    if (!document.hidden) {
      const reply = await this.api.request("GET", `/api/v1/jobs?limit=${SHOWN}`, { cache: "no-store" });
      if (reply.ok && reply.data) {
        busy = this.show(reply.data);
      } else {
        this.status.textContent = reply.status === 0 ? "unreachable" : reply.message ?? String(reply.status);
      }
    }
    this._timer = setTimeout(() => this.refresh(), busy ? BUSY_MS : IDLE_MS);
  }

  /** Shows a page of jobs; true when one of them still waits or runs. */
  show(page) {
    const jobs = Array.isArray(page.jobs) ? page.jobs : [];
    this.status.textContent = `${page.total ?? jobs.length} jobs`;
    this.list.replaceChildren(...jobs.map((job) => this._item(job)));
    return jobs.some((job) => job.status === "pending" || job.status === "processing");
  }

  _item(job) {
    const item = element("li", `take ${job.status}`);
    item.dataset.job = job.id;
    const what = job.recording ? "recording" : job.status;
    item.append(element("span", "take-name", `${job.label || job.source} · ${clockTime(job.created)}`));
    const bar = element("progress");
    bar.max = 1;
    bar.value = job.progress;
    item.append(bar, element("span", "take-status", what));
    if (job.error) item.append(element("span", "take-error", job.error));
    if (job.result) {
      const token = this.api.key.value ? `?token=${encodeURIComponent(this.api.key.value)}` : "";
      const links = [["curves", job.result.curves_url], ["CSV", job.result.csv_url]];
      if (job.result.video_url) links.push(["video", job.result.video_url]);
      for (const [text, url] of links) {
        const link = element("a", "take-link", text);
        link.href = url + token;
        link.download = text === "CSV" ? job.result.csv_name : "";
        item.append(link);
      }
    }
    const remove = element("button", "take-delete", "×");
    remove.type = "button";
    remove.title = "cancel or delete";
    remove.addEventListener("click", async () => {
      if (await this.api.call("DELETE", `/api/v1/job/${job.id}`)) this.refresh();
    });
    item.append(remove);
    return item;
  }
}
