// The dashboard (/dashboard): chat, activity, timeline, controls, live tracking and system
// panels around a live face. Owner: the viewer (issue 6). Writes carry the API key from
// localStorage as Authorization: Bearer; a 401/403 asks for the key once and retries.

import { EMOTIONS, STATES, STATE_COLORS } from "./protocol.js";
import { startViewer } from "./viewer.js";

const KEY_STORAGE = "faced.apiKey";
const FEED_LIMIT = 200;
const TIMELINE_SPAN_MS = 5 * 60 * 1000;
const SEND_INTERVAL_MS = 100; // sliders and the look pad send at most 10 updates/s
const HEALTH_INTERVAL_MS = 5000;
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

const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function clockTime(ms) {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

// --- notices and the API key -------------------------------------------------------------

let noticeTimer = 0;
function notice(text, ok = false) {
  const box = $("notice");
  box.textContent = text;
  box.classList.toggle("ok", ok);
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { box.hidden = true; }, ok ? 2500 : 8000);
}

function storedKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

let retryAfterKey = null;
function askForKey(retry) {
  retryAfterKey = retry;
  $("key-form").hidden = false;
  $("key-input").focus();
}

$("key-button").addEventListener("click", () => askForKey(null));
$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  try {
    localStorage.setItem(KEY_STORAGE, $("key-input").value.trim());
  } catch {
    notice("cannot store the key in this browser");
  }
  $("key-input").value = "";
  $("key-form").hidden = true;
  const retry = retryAfterKey;
  retryAfterKey = null;
  if (retry) retry();
});
$("key-clear").addEventListener("click", () => {
  try {
    localStorage.removeItem(KEY_STORAGE);
  } catch {
    // nothing stored
  }
  $("key-form").hidden = true;
  notice("API key forgotten", true);
});

/** Call the API; returns the decoded body, or null after telling the user what went wrong. */
async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const key = storedKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    notice(`${method} ${path}: the daemon is unreachable (${error.message})`);
    return null;
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.ok) return data ?? {};
  const message = (data && typeof data.error === "string") ? data.error : response.statusText;
  if (response.status === 401 || response.status === 403) {
    notice(`${response.status}: ${message}`);
    askForKey(() => api(method, path, body));
  } else if (response.status === 429) {
    const wait = response.headers.get("Retry-After");
    notice(`429 rate limited: ${message}${wait ? ` (retry after ${wait} s)` : ""}`);
  } else {
    notice(`${response.status}: ${message}`);
  }
  return null;
}

/** Coalesces rapid updates (sliders, the look pad): the latest wins, 10 per second at most. */
function throttled(send) {
  let pending = null;
  let timer = 0;
  return (value) => {
    pending = value;
    if (timer) return;
    send(pending);
    pending = null;
    timer = setTimeout(function flush() {
      if (pending !== null) {
        send(pending);
        pending = null;
        timer = setTimeout(flush, SEND_INTERVAL_MS);
      } else {
        timer = 0;
      }
    }, SEND_INTERVAL_MS);
  };
}

const postState = (update) => api("POST", "/api/state", update);

// --- controls ------------------------------------------------------------------------------

function buildButtons(containerId, names, field) {
  const container = $(containerId);
  for (const name of names) {
    const button = element("button", "", name);
    button.type = "button";
    button.dataset[field] = name;
    button.addEventListener("click", () => postState({ [field]: name }));
    container.append(button);
  }
}
buildButtons("state-buttons", STATES, "state");
buildButtons("emotion-buttons", EMOTIONS, "emotion");

function markActive(containerId, field, value) {
  for (const button of $(containerId).children) {
    button.classList.toggle("active", button.dataset[field] === value);
  }
}

for (const field of ["intensity", "amplitude"]) {
  const slider = $(field);
  const send = throttled((value) => postState({ [field]: value }));
  slider.addEventListener("input", () => {
    $(`${field}-value`).textContent = Number(slider.value).toFixed(2);
    send(Number(slider.value));
  });
}

const lookPad = $("look-pad");
const sendLook = throttled((look) => postState({ lookAt: look }));
function placeLookDot(x, y) {
  $("look-dot").style.left = `${(x + 1) * 50}%`;
  $("look-dot").style.top = `${(y + 1) * 50}%`;
}
function lookFromPointer(event) {
  const rect = lookPad.getBoundingClientRect();
  const x = Math.max(-1, Math.min(1, ((event.clientX - rect.left) / rect.width) * 2 - 1));
  const y = Math.max(-1, Math.min(1, ((event.clientY - rect.top) / rect.height) * 2 - 1));
  placeLookDot(x, y);
  sendLook({ x: Math.round(x * 100) / 100, y: Math.round(y * 100) / 100 });
}
lookPad.addEventListener("pointerdown", (event) => {
  lookPad.setPointerCapture(event.pointerId);
  lookFromPointer(event);
});
lookPad.addEventListener("pointermove", (event) => {
  if (lookPad.hasPointerCapture(event.pointerId)) lookFromPointer(event);
});

$("speak-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("speak-input").value.trim();
  if (!text) return;
  if (await api("POST", "/api/speak", { text })) $("speak-input").value = "";
});

$("reset").addEventListener("click", () => postState({
  state: "idle", emotion: "neutral", emotionSecondary: "neutral", emotionBlend: 0,
  intensity: 1, amplitude: 0, lookAt: { x: 0, y: 0 }, color: null,
  winkLeft: 0, winkRight: 0, progress: null,
}));

// --- face packs ------------------------------------------------------------------------------

async function loadPresets() {
  const [list, config] = await Promise.all([api("GET", "/api/v1/presets"), api("GET", "/api/config")]);
  if (!list) return;
  const select = $("face-select");
  select.replaceChildren(...list.presets.map((preset) => {
    const option = element("option", "", preset.name);
    option.value = preset.slug;
    return option;
  }));
  if (config) select.value = config.face;
}
$("face-select").addEventListener("change", async (event) => {
  const face = event.target.value;
  if (await api("PUT", "/api/config", { face })) notice(`face switched to ${face}`, true);
});

// --- chat ------------------------------------------------------------------------------------

function chatLine(kind, text) {
  const log = $("chat-log");
  log.append(element("div", `entry ${kind}`, text));
  while (log.childElementCount > FEED_LIMIT) log.firstElementChild.remove();
  log.scrollTop = log.scrollHeight;
}

function replyText(data) {
  for (const key of ["reply", "response", "message", "text", "content"]) {
    if (typeof data?.[key] === "string") return data[key];
  }
  return JSON.stringify(data);
}

$("chat-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const message = $("chat-input").value.trim();
  if (!message) return;
  $("chat-input").value = "";
  chatLine("user", message);
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  const key = storedKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  try {
    const response = await fetch("/api/chat", { method: "POST", headers, body: JSON.stringify({ message }) });
    const data = await response.json().catch(() => null);
    if (response.ok) chatLine("agent", replyText(data));
    else {
      chatLine("error", `${response.status}: ${data?.error ?? response.statusText}`);
      if (response.status === 401 || response.status === 403) askForKey(null);
    }
  } catch (error) {
    chatLine("error", `the daemon is unreachable (${error.message})`);
  }
});

// --- activity feed and timeline ----------------------------------------------------------------

const feed = $("feed");
let messageCount = 0;

function feedEntry(ts, text, kind = "") {
  const entry = element("div", `entry ${kind}`);
  entry.append(element("time", "", clockTime(ts)), text);
  feed.prepend(entry);
  while (feed.childElementCount > FEED_LIMIT) feed.lastElementChild.remove();
}

const segments = []; // {state, start} in time order
let timelineDirty = false;
function timelineState(state, ts) {
  const last = segments[segments.length - 1];
  if (last && last.state === state) return;
  if (last && ts < last.start) return;
  segments.push({ state, start: ts });
  while (segments.length > 2 && segments[1].start < Date.now() - TIMELINE_SPAN_MS) segments.shift();
  timelineDirty = true;
}

function drawTimeline() {
  const canvas = $("timeline");
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
  const from = now - TIMELINE_SPAN_MS;
  ctx.clearRect(0, 0, w, h);
  for (let i = 0; i < segments.length; i++) {
    const start = Math.max(from, segments[i].start);
    const end = i + 1 < segments.length ? segments[i + 1].start : now;
    if (end <= from) continue;
    const x0 = ((start - from) / TIMELINE_SPAN_MS) * w;
    const x1 = ((end - from) / TIMELINE_SPAN_MS) * w;
    ctx.fillStyle = STATE_COLORS[segments[i].state] ?? "#555";
    ctx.fillRect(x0, h * 0.15, Math.max(1, x1 - x0), h * 0.7);
  }
}

function buildLegend() {
  const legend = $("timeline-legend");
  for (const state of STATES) {
    const item = element("span");
    const swatch = element("i");
    swatch.style.background = STATE_COLORS[state];
    item.append(swatch, state);
    legend.append(item);
  }
}
buildLegend();

function historyEntry(entry) {
  const data = entry.data ?? {};
  if (entry.type === "state") {
    feedEntry(entry.ts, `state ${data.prev ?? "?"} → ${data.state} (${data.emotion ?? "neutral"})`);
    timelineState(data.state, entry.ts);
  } else if (entry.type === "text") {
    feedEntry(entry.ts, `text “${data.text}”`, "agent");
  } else if (entry.type === "detail") {
    feedEntry(entry.ts, `detail: ${data.detail}`);
  }
}

let lastShown = { state: null, emotion: null };
function onMessage(message) {
  messageCount += 1;
  $("msg-count").textContent = `${messageCount} msgs`;
  const now = Date.now();
  switch (message.type ?? "state") {
    case "history":
      feed.replaceChildren();
      segments.length = 0;
      for (const entry of Array.isArray(message.entries) ? message.entries : []) historyEntry(entry);
      break;
    case "state": {
      const state = message.state;
      const emotion = message.emotion;
      if (state && (state !== lastShown.state || emotion !== lastShown.emotion)) {
        if (lastShown.state !== null) feedEntry(now, `state ${state} / ${emotion}`);
        lastShown = { state, emotion };
      }
      if (typeof message.text === "string" && message.text) feedEntry(now, `text “${message.text}”`, "agent");
      if (typeof message.detail === "string" && message.detail) feedEntry(now, `detail: ${message.detail}`);
      if (state) timelineState(state, now);
      $("badge").textContent = state ?? "?";
      $("badge").style.background = STATE_COLORS[state] ?? "#888";
      $("face-label").textContent = `${state} / ${emotion}`;
      markActive("state-buttons", "state", state);
      markActive("emotion-buttons", "emotion", emotion);
      if (typeof message.intensity === "number") {
        $("intensity").value = message.intensity;
        $("intensity-value").textContent = message.intensity.toFixed(2);
      }
      if (message.lookAt) placeLookDot(message.lookAt.x, message.lookAt.y);
      break;
    }
    case "audio-seq":
      feedEntry(now, `speech #${message.seq} started`);
      break;
    case "audio-done":
      feedEntry(now, `speech #${message.seq} done`);
      break;
    case "presence":
      feedEntry(now, `person ${message.event ?? (message.present ? "arrived" : "left")}`);
      break;
    case "config":
      feedEntry(now, `face pack → ${message.face}`);
      $("face-select").value = message.face;
      break;
    default:
      break;
  }
}

// --- the face --------------------------------------------------------------------------------

const params = new URLSearchParams(location.search);
params.delete("face"); // the dashboard shows what the viewers show
window.faced = startViewer($("face"), {
  params,
  audio: false,
  bubble: $("bubble"),
  onMessage,
  onStatus(status) {
    $("conn").textContent = status === "open" ? "connected" : "reconnecting";
    if (status === "open") loadPresets();
  },
});

// --- system -----------------------------------------------------------------------------------

function fact(list, name, value) {
  list.append(element("dt", "", name), element("dd", "", value));
}

function describe(report) {
  return Object.entries(report)
    .filter(([key]) => key !== "status")
    .map(([key, value]) => `${key}: ${typeof value === "object" ? JSON.stringify(value) : value}`)
    .join(", ");
}

let cameraStatus = "unknown";
async function refreshHealth() {
  let health;
  try {
    const response = await fetch("/health", { headers: { Accept: "application/json" }, cache: "no-store" });
    health = await response.json();
  } catch (error) {
    $("health-status").textContent = "unreachable";
    return;
  }
  $("health-status").textContent = health.status ?? "?";
  const facts = $("system-facts");
  facts.replaceChildren();
  fact(facts, "version", health.version ?? "?");
  fact(facts, "uptime", `${Math.round(health.uptime_s ?? 0)} s`);
  fact(facts, "viewers", String(health.viewers ?? "–"));
  fact(facts, "agents", String(health.agents ?? "–"));
  const components = health.components ?? {};
  const camera = components.camera ?? {};
  cameraStatus = camera.status ?? "unknown";
  fact(facts, "camera", `${cameraStatus}${camera.source ? ` (${camera.source})` : ""}`);
  const model = components.vision?.model ?? components.pipeline?.model ?? health.model;
  fact(facts, "model", model ? (typeof model === "object" ? `${model.name ?? ""} ${model.version ?? ""}`.trim() : String(model)) : "–");
  const body = $("components").tBodies[0];
  body.replaceChildren(...Object.entries(components).map(([name, report]) => {
    const row = element("tr");
    row.append(element("td", "", name), element("td", `status-${report.status}`, report.status), element("td", "", describe(report)));
    return row;
  }));
}

// --- tracking -----------------------------------------------------------------------------------

const bars = new Map();
function buildBars() {
  const container = $("blendshapes");
  for (const name of BLENDSHAPES) {
    const row = element("div", "bs");
    const track = element("div", "track");
    const fill = element("div", "fill");
    track.append(fill);
    row.append(element("span", "", name), track);
    container.append(row);
    bars.set(name, fill);
  }
}
buildBars();

let latestTracking = null;
let trackingFrames = [];
function trackingOff(reason) {
  $("tracking-status").textContent = reason;
  $("tracking").classList.add("off");
}

function blendshapeScores(message) {
  const raw = message.blendshapes ?? message.faces?.[0]?.blendshapes;
  if (Array.isArray(raw)) {
    const scores = {};
    for (const item of raw) scores[item.categoryName ?? item.name] = item.score;
    return scores;
  }
  return raw && typeof raw === "object" ? raw : null;
}

function renderTracking() {
  const message = latestTracking;
  if (message) {
    latestTracking = null;
    const scores = blendshapeScores(message);
    const present = message.face_found ?? message.present ?? message.presence ?? scores !== null;
    $("presence").textContent = present ? "yes" : "no";
    for (const [name, fill] of bars) {
      const score = scores && typeof scores[name] === "number" ? scores[name] : 0;
      fill.style.transform = `scaleX(${Math.max(0, Math.min(1, score))})`;
    }
    const head = message.head ?? message.faces?.[0]?.head;
    if (head) $("head-pose").textContent = `yaw ${head.yaw?.toFixed(0)}° pitch ${head.pitch?.toFixed(0)}° roll ${head.roll?.toFixed(0)}°`;
    const eyes = message.eyes ?? message.faces?.[0]?.eyes;
    for (const side of ["left", "right"]) {
      const gaze = eyes?.[side]?.gaze;
      if (Array.isArray(gaze)) {
        const dot = $(`gaze-${side}`);
        dot.style.transform = `translate(${gaze[0] * 40}px, ${-gaze[1] * 20}px)`;
      }
    }
    const now = performance.now();
    trackingFrames.push(now);
    trackingFrames = trackingFrames.filter((t) => now - t < 1000);
    $("tracking-fps").textContent = String(message.fps?.toFixed?.(1) ?? trackingFrames.length);
    const latency = message.latency_ms ?? message.timing_ms?.total;
    if (typeof latency === "number") $("tracking-latency").textContent = `${latency.toFixed(1)} ms`;
  }
  requestAnimationFrame(renderTracking);
}

const TRACKING_REFUSED = {
  401: "needs the API key",
  403: "refused (wrong key, or loopback only while no key is set)",
};

async function startTracking() {
  // A plain GET (no upgrade) tells what a failed WebSocket handshake would not: 404 no
  // tracking at all, 401/403 not allowed, 503 no camera or tracking off (the daemon says
  // which); 400 means "upgrade required", i.e. the socket is there for us.
  const key = storedKey();
  let status = 0;
  let reason = "";
  try {
    const headers = key ? { Authorization: `Bearer ${key}` } : {};
    const response = await fetch("/ws/tracking", { cache: "no-store", headers });
    status = response.status;
    reason = (await response.json().catch(() => null))?.error ?? "";
  } catch {
    status = 0;
  }
  if (status === 404 || status === 0) {
    trackingOff("no camera");
    return;
  }
  if (status in TRACKING_REFUSED || status === 503) {
    trackingOff(status === 503 ? (reason || "no camera") : TRACKING_REFUSED[status]);
    setTimeout(startTracking, 10000);
    return;
  }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${scheme}//${location.host}/ws/tracking${key ? `?token=${encodeURIComponent(key)}` : ""}`;
  const socket = new WebSocket(url);
  let live = false;
  socket.addEventListener("open", () => {
    $("tracking-status").textContent = "connected, waiting for results";
  });
  socket.addEventListener("message", (event) => {
    if (typeof event.data !== "string") return;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return; // ignore a malformed frame
    }
    if (message?.type === "pong") return;
    latestTracking = message;
    if (!live) {
      live = true;
      $("tracking-status").textContent = "live";
      $("tracking").classList.remove("off");
    }
  });
  socket.addEventListener("close", () => {
    trackingOff(cameraStatus === "off" ? "no camera" : "disconnected");
    setTimeout(startTracking, 5000);
  });
}

requestAnimationFrame(renderTracking);
startTracking();
refreshHealth();
setInterval(refreshHealth, HEALTH_INTERVAL_MS);
// Redrawn every second (time moves on) and on the next frame after a state change.
setInterval(drawTimeline, 1000);
drawTimeline();
(function redrawOnChange() {
  if (timelineDirty) {
    timelineDirty = false;
    drawTimeline();
  }
  requestAnimationFrame(redrawOnChange);
})();
