// The tracking panel: live results from /ws/tracking — presence, fps, latency, head pose,
// gaze and the 52 blendshape bars, drawn once per animation frame from the latest result.
// Owns the panel, the tracking socket (the same reconnecting client as the viewer's) and
// the latest result. Does not own the camera's status (the system panel reads it).

import { ReconnectingSocket, sameHostSocketUrl } from "../connection.js";
import { byId, element } from "./dom.js";

const BLENDSHAPES = [
  "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
  "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
  "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
  "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
  "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
  "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
  "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
  "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
  "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
  "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
];

const REFUSED = {
  401: "needs the API key",
  403: "refused (wrong key, or loopback only while no key is set)",
};

function blendshapeScores(message) {
  const raw = message.blendshapes ?? message.faces?.[0]?.blendshapes;
  if (Array.isArray(raw)) {
    const scores = {};
    for (const item of raw) scores[item.categoryName ?? item.name] = item.score;
    return scores;
  }
  return raw && typeof raw === "object" ? raw : null;
}

export class TrackingPanel {
  /** ``cameraStatus()`` says what the daemon last reported of its camera ("off", …). */
  constructor(api, cameraStatus) {
    this.api = api;
    this.cameraStatus = cameraStatus;
    this.panel = byId("tracking");
    this.status = byId("tracking-status");
    this.bars = this._bars(byId("blendshapes"));
    this._latest = null;
    this._live = false;
    this._frames = []; // arrival times of the last second's results
    this.socket = new ReconnectingSocket(() => this._socketUrl(), {
      name: "tracking socket",
      onMessage: (message) => this._received(message),
      onStatus: (status) => {
        if (status === "open") {
          this.status.textContent = "connected, waiting for results";
        } else {
          this._live = false;
          this._off(this.cameraStatus() === "off" ? "no camera" : "disconnected");
        }
      },
    });
  }

  start() {
    const render = () => {
      this._render();
      requestAnimationFrame(render);
    };
    requestAnimationFrame(render);
    this.socket.start();
  }

  /**
   * The socket URL, once a plain GET (no upgrade) says the socket is there for us: it
   * tells what a failed handshake would not — 404 no tracking at all, 401/403 not
   * allowed, 503 no camera or tracking off (the daemon says which); 400 means "upgrade
   * required". Null (ask again later) while refused or unreachable (a daemon restarting);
   * no more tries from a daemon without tracking.
   */
  async _socketUrl() {
    const reply = await this.api.request("GET", "/ws/tracking", { cache: "no-store" });
    if (reply.status === 404) {
      this._off("no camera");
      this.socket.stop();
      return null;
    }
    if (reply.status === 0) {
      this._off("unreachable");
      return null;
    }
    if (reply.status in REFUSED || reply.status === 503) {
      this._off(reply.status === 503 ? (reply.data?.error || "no camera") : REFUSED[reply.status]);
      return null;
    }
    const key = this.api.key.value;
    return sameHostSocketUrl(`/ws/tracking${key ? `?token=${encodeURIComponent(key)}` : ""}`, location);
  }

  _off(reason) {
    this.status.textContent = reason;
    this.panel.classList.add("off");
  }

  _received(message) {
    if (message.type === "pong") return;
    this._latest = message;
    if (!this._live) {
      this._live = true;
      this.status.textContent = "live";
      this.panel.classList.remove("off");
    }
  }

  _bars(container) {
    const bars = new Map();
    for (const name of BLENDSHAPES) {
      const row = element("div", "bs");
      const track = element("div", "track");
      const fill = element("div", "fill");
      track.append(fill);
      row.append(element("span", "", name), track);
      container.append(row);
      bars.set(name, fill);
    }
    return bars;
  }

  _render() {
    const message = this._latest;
    if (!message) return;
    this._latest = null;
    const scores = blendshapeScores(message);
    const present = message.face_found ?? message.present ?? message.presence ?? scores !== null;
    byId("presence").textContent = present ? "yes" : "no";
    for (const [name, fill] of this.bars) {
      const score = scores && typeof scores[name] === "number" ? scores[name] : 0;
      fill.style.transform = `scaleX(${Math.max(0, Math.min(1, score))})`;
    }
    const head = message.head ?? message.faces?.[0]?.head;
    if (head) {
      byId("head-pose").textContent =
        `yaw ${head.yaw?.toFixed(0)}° pitch ${head.pitch?.toFixed(0)}° roll ${head.roll?.toFixed(0)}°`;
    }
    const eyes = message.eyes ?? message.faces?.[0]?.eyes;
    for (const side of ["left", "right"]) {
      const gaze = eyes?.[side]?.gaze;
      if (Array.isArray(gaze)) {
        byId(`gaze-${side}`).style.transform = `translate(${gaze[0] * 40}px, ${-gaze[1] * 20}px)`;
      }
    }
    const now = performance.now();
    this._frames.push(now);
    this._frames = this._frames.filter((t) => now - t < 1000);
    byId("tracking-fps").textContent = String(message.fps?.toFixed?.(1) ?? this._frames.length);
    const latency = message.latency_ms ?? message.timing_ms?.total;
    if (typeof latency === "number") byId("tracking-latency").textContent = `${latency.toFixed(1)} ms`;
  }
}
