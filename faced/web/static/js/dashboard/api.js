// The dashboard's calls to the daemon's HTTP API. Owns: the API key (kept in this
// browser's localStorage, sent as Authorization: Bearer), the key form (#key-form) and the
// call that failed for want of a key, and the one request path: fetch, JSON both ways,
// the key, and the error shown in the notice (a 401/403 asks for the key once, then
// retries). Does not own: what a panel does with the answer.

import { byId } from "./dom.js";

const KEY_STORAGE = "faced.apiKey";

export class ApiKey {
  get value() {
    try {
      return localStorage.getItem(KEY_STORAGE) || "";
    } catch {
      return "";
    }
  }

  /** Stores ``key``; false when this browser refuses to. */
  save(key) {
    try {
      localStorage.setItem(KEY_STORAGE, key);
      return true;
    } catch {
      return false;
    }
  }

  forget() {
    try {
      localStorage.removeItem(KEY_STORAGE);
    } catch {
      // nothing stored
    }
  }
}

/** The key form: asks for the key, then runs the call that was refused without it. */
class KeyPrompt {
  constructor(key, notice) {
    this.key = key;
    this.notice = notice;
    this.form = byId("key-form");
    this.input = byId("key-input");
    this._retry = null;
    byId("key-button").addEventListener("click", () => this.ask(null));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!this.key.save(this.input.value.trim())) this.notice.show("cannot store the key in this browser");
      this.input.value = "";
      this.form.hidden = true;
      const retry = this._retry;
      this._retry = null;
      if (retry) retry();
    });
    byId("key-clear").addEventListener("click", () => {
      this.key.forget();
      this.form.hidden = true;
      this.notice.show("API key forgotten", true);
    });
  }

  ask(retry) {
    this._retry = retry;
    this.form.hidden = false;
    this.input.focus();
  }
}

export class Api {
  constructor(notice) {
    this.notice = notice;
    this.key = new ApiKey();
    this.prompt = new KeyPrompt(this.key, notice);
  }

  /**
   * One request; never throws. ``{ok, status, data, message, retryAfter}``: status 0 when
   * the daemon is unreachable, ``message`` the daemon's error sentence (or why it failed).
   */
  async request(method, path, { body, cache } = {}) {
    const headers = { Accept: "application/json" };
    const key = this.key.value;
    if (key) headers.Authorization = `Bearer ${key}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method, headers, cache, body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      return { ok: false, status: 0, data: null, message: error.message, retryAfter: null };
    }
    const data = await response.json().catch(() => null);
    const message = (data && typeof data.error === "string") ? data.error : response.statusText;
    return {
      ok: response.ok,
      status: response.status,
      data,
      message,
      retryAfter: response.headers.get("Retry-After"),
    };
  }

  /** The decoded body, or null after telling the user what went wrong. */
  async call(method, path, body) {
    const reply = await this.request(method, path, { body });
    if (reply.ok) return reply.data ?? {};
    if (reply.status === 0) {
      this.notice.show(`${method} ${path}: the daemon is unreachable (${reply.message})`);
    } else if (reply.status === 401 || reply.status === 403) {
      this.notice.show(`${reply.status}: ${reply.message}`);
      this.askForKey(() => this.call(method, path, body));
    } else if (reply.status === 429) {
      const wait = reply.retryAfter;
      this.notice.show(`429 rate limited: ${reply.message}${wait ? ` (retry after ${wait} s)` : ""}`);
    } else {
      this.notice.show(`${reply.status}: ${reply.message}`);
    }
    return null;
  }

  /** Opens the key form; ``retry`` (or null) runs once the key is saved. */
  askForKey(retry) {
    this.prompt.ask(retry);
  }
}
