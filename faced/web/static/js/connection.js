// The viewer socket: connects to /ws/viewer, hands each decoded message to ``onMessage``,
// and reconnects with exponential backoff (0.5 s doubling to 10 s, with jitter) whenever
// the connection drops. Owner: the viewer (issue 6).

const PING_INTERVAL_MS = 20000;
const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 10000;

export class ViewerSocket {
  constructor(url, { onMessage, onStatus }) {
    this.url = url;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.connects = 0;
    this._delay = BACKOFF_START_MS;
    this._socket = null;
    this._ping = 0;
    this._retry = 0;
  }

  start() {
    this._open();
  }

  _open() {
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch (error) {
      console.error("viewer socket:", error);
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
        return;
      }
      if (message !== null && typeof message === "object") this.onMessage(message);
    });
    socket.addEventListener("close", () => {
      clearInterval(this._ping);
      this._socket = null;
      this.onStatus("closed");
      this._schedule();
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

/** The viewer socket URL: ``?server=`` if given, else this page's host. */
export function viewerUrl(params, location) {
  const override = params.get("server");
  if (override && /^wss?:\/\//.test(override)) return override;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws/viewer`;
}

/** The http(s) origin of the daemon a socket URL points at. */
export function httpOrigin(socketUrl) {
  const url = new URL(socketUrl);
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  return url.origin;
}
