// The activity panel (#feed): what happened, newest first — the history the viewer socket
// sends on connect, then state changes, spoken text, details, speech, presence and face
// switches as they arrive. Owns the feed and the last state/emotion it showed.

import { byId, clockTime, element } from "./dom.js";

const FEED_LIMIT = 200;

export class Activity {
  constructor() {
    this.feed = byId("feed");
    this._shown = { state: null, emotion: null };
  }

  entry(ts, text, kind = "") {
    const entry = element("div", `entry ${kind}`);
    entry.append(element("time", "", clockTime(ts)), text);
    this.feed.prepend(entry);
    while (this.feed.childElementCount > FEED_LIMIT) this.feed.lastElementChild.remove();
  }

  /** Replaces the feed with the daemon's history (the first message on the socket). */
  history(entries) {
    this.feed.replaceChildren();
    for (const item of entries) {
      const data = item.data ?? {};
      if (item.type === "state") {
        this.entry(item.ts, `state ${data.prev ?? "?"} → ${data.state} (${data.emotion ?? "neutral"})`);
      } else if (item.type === "text") {
        this.entry(item.ts, `text “${data.text}”`, "agent");
      } else if (item.type === "detail") {
        this.entry(item.ts, `detail: ${data.detail}`);
      }
    }
  }

  /** A live message from the viewer socket (other types are not activity). */
  show(message, now) {
    switch (message.type ?? "state") {
      case "state": {
        const { state, emotion } = message;
        if (state && (state !== this._shown.state || emotion !== this._shown.emotion)) {
          if (this._shown.state !== null) this.entry(now, `state ${state} / ${emotion}`);
          this._shown = { state, emotion };
        }
        if (typeof message.text === "string" && message.text) this.entry(now, `text “${message.text}”`, "agent");
        if (typeof message.detail === "string" && message.detail) this.entry(now, `detail: ${message.detail}`);
        break;
      }
      case "audio-seq":
        this.entry(now, `speech #${message.seq} started`);
        break;
      case "audio-done":
        this.entry(now, `speech #${message.seq} done`);
        break;
      case "presence":
        this.entry(now, `person ${message.event ?? (message.present ? "arrived" : "left")}`);
        break;
      case "config":
        this.entry(now, `face pack → ${message.face}`);
        break;
      default:
        break;
    }
  }
}
