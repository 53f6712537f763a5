// The chat panel: sends a message to the agent (POST /api/chat, relayed to the OpenClaw
// gateway) and shows the reply, or the error, in its own log. Owns the log and the form.

import { byId, element } from "./dom.js";

const LOG_LIMIT = 200;

function replyText(data) {
  for (const key of ["reply", "response", "message", "text", "content"]) {
    if (typeof data?.[key] === "string") return data[key];
  }
  return JSON.stringify(data);
}

export class Chat {
  constructor(api) {
    this.api = api;
    this.log = byId("chat-log");
    const input = byId("chat-input");
    byId("chat-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const message = input.value.trim();
      if (!message) return;
      input.value = "";
      this.line("user", message);
      await this.send(message);
    });
  }

  async send(message) {
    // Errors belong in the conversation, not the notice: request(), not call().
    const reply = await this.api.request("POST", "/api/chat", { body: { message } });
    if (reply.ok) {
      this.line("agent", replyText(reply.data));
    } else if (reply.status === 0) {
      this.line("error", `the daemon is unreachable (${reply.message})`);
    } else {
      this.line("error", `${reply.status}: ${reply.message}`);
      if (reply.status === 401 || reply.status === 403) this.api.askForKey(null);
    }
  }

  line(kind, text) {
    this.log.append(element("div", `entry ${kind}`, text));
    while (this.log.childElementCount > LOG_LIMIT) this.log.firstElementChild.remove();
    this.log.scrollTop = this.log.scrollHeight;
  }
}
