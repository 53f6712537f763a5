// The header's live facts and the face panel's caption: the viewer socket's connection,
// the face's state as a coloured badge and as "state / emotion" under the face, and how
// many messages arrived. Owns those elements and the message count.

import { STATE_COLORS } from "../protocol.js";
import { byId } from "./dom.js";

export class StatusBar {
  constructor() {
    this.connection = byId("conn");
    this.badge = byId("badge");
    this.count = byId("msg-count");
    this.faceLabel = byId("face-label");
    this.messages = 0;
  }

  connected(open) {
    this.connection.textContent = open ? "connected" : "reconnecting";
  }

  counted() {
    this.messages += 1;
    this.count.textContent = `${this.messages} msgs`;
  }

  /** A state message from the viewer socket. */
  show({ state, emotion }) {
    this.badge.textContent = state ?? "?";
    this.badge.style.background = STATE_COLORS[state] ?? "#888";
    this.faceLabel.textContent = `${state} / ${emotion}`;
  }
}
