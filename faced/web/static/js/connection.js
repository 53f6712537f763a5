// The page's sockets to the daemon. Owns: one reconnecting WebSocket client (JSON text
// frames in and out, a ping every 20 s, exponential backoff 0.5 s doubling to 10 s with
// jitter whenever a connection drops or cannot be made), and the viewer socket's URL.
// Does not own: what the messages mean (the viewer, the dashboard panels do). Why one
// client: the viewer socket and the dashboard's tracking socket must recover the same way.

const PING_INTERVAL_MS = 20000;
const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 10000;

export class ReconnectingSocket {
  /**
   * ``url`` is the socket's URL, or a function (may be async) asked before every attempt:
   * it returns the URL to open, or null for "not now" (back off and ask again). A caller
   * that knows there will never be a socket calls ``stop()``.
   * ``onStatus`` hears "open" and "closed".
   */
  constructor(url, { name = "socket", onMessage, onStatus = () => {} }) {
    this.url = url;
    this.name = name;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.connects = 0;
    this._delay = BACKOFF_START_MS;
    this._socket = null;
    this._ping = 0;
    this._retry = 0;
    this._stopped = false;
  }

  start() {
    this._stopped = false;
    this._open();
  }

  /** Closes the socket, if open, and makes no more attempts. */
  stop() {
    this._stopped = true;
    clearTimeout(this._retry);
    this._socket?.close();
  }

  async _open() {
    let url;
    try {
      url = typeof this.url === "function" ? await this.url() : this.url;
    } catch (error) {
      console.error(`${this.name}:`, error);
      url = null;
    }
    if (this._stopped) return;
    if (!url) {
      this._schedule();
      return;
    }
    let socket;
    try {
      socket = new WebSocket(url);
    } catch (error) {
      console.error(`${this.name}:`, error);
      this._schedule();
      return;
    }
    this._socket = socket;
    socket.addEventListener("open", () => {
      this.connects += 1;
      this._delay = BACKOFF_START_MS;
      this.onStatus("open");
      this._ping = setInterval(() => this.send({ type: "ping" }), PING_INTERVAL_MS);
    });
    socket.addEventListener("message", (event) => {
      if (typeof event.data !== "string") return; // JSON text frames only (no ?encoding=)
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return; // ignore a malformed frame
      }
      if (message !== null && typeof message === "object") this.onMessage(message);
    });
    socket.addEventListener("close", () => {
      clearInterval(this._ping);
      this._socket = null;
      this.onStatus("closed");
      if (!this._stopped) this._schedule();
    });
  }

  _schedule() {
    clearTimeout(this._retry);
    const jitter = 0.8 + Math.random() * 0.4;
    this._retry = setTimeout(() => this._open(), this._delay * jitter);
    this._delay = Math.min(BACKOFF_MAX_MS, this._delay * 2);
  }

  send(message) {
    if (this._socket && this._socket.readyState === WebSocket.OPEN) {
      this._socket.send(JSON.stringify(message));
    }
  }
}

/** A ws(s):// URL for ``path`` on this page's host. */
export function sameHostSocketUrl(path, location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

/** The viewer socket URL: ``?server=`` if given, else this page's host. */
export function viewerUrl(params, location) {
  const override = params.get("server");
  if (override && /^wss?:\/\//.test(override)) return override;
  return sameHostSocketUrl("/ws/viewer", location);
}

/** The http(s) origin of the daemon a socket URL points at. */
export function httpOrigin(socketUrl) {
  const url = new URL(socketUrl);
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  return url.origin;
}
