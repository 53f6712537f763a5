// The timeline panel: the face's states over the last five minutes as coloured bands on a
// canvas, with a legend. Owns the segments and its redraw schedule (every second, as time
// moves on, and on the next frame after a change).

import { STATES, STATE_COLORS } from "../protocol.js";
import { byId, element } from "./dom.js";

const SPAN_MS = 5 * 60 * 1000;
const REDRAW_MS = 1000;

export class Timeline {
  constructor() {
    this.canvas = byId("timeline");
    this.segments = []; // {state, start} in time order
    this._dirty = false;
    this._legend(byId("timeline-legend"));
  }

  start() {
    setInterval(() => this.draw(), REDRAW_MS);
    this.draw();
    const redrawOnChange = () => {
      if (this._dirty) {
        this._dirty = false;
        this.draw();
      }
      requestAnimationFrame(redrawOnChange);
    };
    requestAnimationFrame(redrawOnChange);
  }

  /** Starts over from the daemon's history (its state entries). */
  history(entries) {
    this.segments.length = 0;
    for (const item of entries) {
      if (item.type === "state") this.state(item.data?.state, item.ts);
    }
  }

  state(state, ts) {
    const last = this.segments[this.segments.length - 1];
    if (last && last.state === state) return;
    if (last && ts < last.start) return;
    this.segments.push({ state, start: ts });
    while (this.segments.length > 2 && this.segments[1].start < Date.now() - SPAN_MS) this.segments.shift();
    this._dirty = true;
  }

  draw() {
    const canvas = this.canvas;
    const rect = canvas.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(rect.width * ratio)) {
      canvas.width = Math.round(rect.width * ratio);
      canvas.height = Math.round(rect.height * ratio);
    }
    const ctx = canvas.getContext("2d");
    const w = canvas.width;
    const h = canvas.height;
    const now = Date.now();
    const from = now - SPAN_MS;
    const segments = this.segments;
    ctx.clearRect(0, 0, w, h);
    for (let i = 0; i < segments.length; i++) {
      const start = Math.max(from, segments[i].start);
      const end = i + 1 < segments.length ? segments[i + 1].start : now;
      if (end <= from) continue;
      const x0 = ((start - from) / SPAN_MS) * w;
      const x1 = ((end - from) / SPAN_MS) * w;
      ctx.fillStyle = STATE_COLORS[segments[i].state] ?? "#555";
      ctx.fillRect(x0, h * 0.15, Math.max(1, x1 - x0), h * 0.7);
    }
  }

  _legend(legend) {
    for (const state of STATES) {
      const item = element("span");
      const swatch = element("i");
      swatch.style.background = STATE_COLORS[state];
      item.append(swatch, state);
      legend.append(item);
    }
  }
}
