// The Open Face v1 state protocol as the browser sees it: enums, the default colour table,
// and merging a (partial) state message into the current state. Does not own the socket
// (connection.js) or the motion (animator.js). The daemon validates what agents send; this
// merge still checks every field so a viewer pointed at another server (?server=) cannot be
// broken by a bad message.

export const STATES = Object.freeze([
  "idle", "thinking", "speaking", "listening", "reacting", "puzzled",
  "alert", "working", "sleeping", "waiting", "loading",
]);

export const EMOTIONS = Object.freeze([
  "neutral", "happy", "sad", "confused", "excited", "concerned", "surprised",
  "playful", "frustrated", "skeptical", "determined", "embarrassed", "proud",
]);

// The protocol's default colour per state and emotion (neutral: keep the state colour).
export const STATE_COLORS = Object.freeze({
  idle: "#4FC3F7", thinking: "#CE93D8", speaking: "#4FC3F7", listening: "#81C784",
  reacting: "#FFB74D", puzzled: "#FF8A65", alert: "#E57373", working: "#90CAF9",
  sleeping: "#7986CB", waiting: "#B0BEC5", loading: "#78909C",
});

export const EMOTION_COLORS = Object.freeze({
  neutral: null, happy: "#FFD54F", sad: "#7986CB", confused: "#FF8A65",
  excited: "#FF7043", concerned: "#B0BEC5", surprised: "#FFF176", playful: "#F48FB1",
  frustrated: "#EF5350", skeptical: "#BCAAA4", determined: "#66BB6A",
  embarrassed: "#F48FB1", proud: "#FFB300",
});

const STATE_SET = new Set(STATES);
const EMOTION_SET = new Set(EMOTIONS);
const HEX_RE = /^#[0-9a-fA-F]{6}$/;

/** "#RRGGBB" -> [r, g, b], or null when it is not one. */
export function hexToRgb(hex) {
  if (typeof hex !== "string" || !HEX_RE.test(hex)) return null;
  const value = parseInt(hex.slice(1), 16);
  return [(value >> 16) & 255, (value >> 8) & 255, value & 255];
}

export function clamp(value, low, high) {
  return value < low ? low : value > high ? high : value;
}

function finite(value) {
  return typeof value === "number" && Number.isFinite(value);
}

export function defaultState() {
  return {
    state: "idle",
    emotion: "neutral",
    emotionSecondary: "neutral",
    emotionBlend: 0,
    intensity: 1,
    amplitude: 0,
    lookAt: { x: 0, y: 0 },
    color: null,
    winkLeft: 0,
    winkRight: 0,
    progress: null,
    text: null,
    textDuration: 3000,
    detail: null,
  };
}

/**
 * Merge the known, well-typed fields of ``message`` into ``target`` (clamped to their
 * ranges); anything else is ignored. Returns which ephemeral parts arrived:
 * ``{text: boolean, lookAt: boolean}``.
 */
export function mergeState(target, message) {
  const seen = { text: false, lookAt: false };
  if (message === null || typeof message !== "object") return seen;
  if (STATE_SET.has(message.state)) target.state = message.state;
  if (EMOTION_SET.has(message.emotion)) target.emotion = message.emotion;
  if (EMOTION_SET.has(message.emotionSecondary)) target.emotionSecondary = message.emotionSecondary;
  if (finite(message.emotionBlend)) target.emotionBlend = clamp(message.emotionBlend, 0, 1);
  if (finite(message.intensity)) target.intensity = clamp(message.intensity, 0, 1);
  if (finite(message.amplitude)) target.amplitude = clamp(message.amplitude, 0, 1);
  const look = message.lookAt;
  if (look !== null && typeof look === "object" && finite(look.x) && finite(look.y)) {
    target.lookAt.x = clamp(look.x, -1, 1);
    target.lookAt.y = clamp(look.y, -1, 1);
    seen.lookAt = true;
  }
  if (message.color === null || HEX_RE.test(message.color ?? "")) target.color = message.color;
  if (finite(message.winkLeft)) target.winkLeft = clamp(message.winkLeft, 0, 1);
  if (finite(message.winkRight)) target.winkRight = clamp(message.winkRight, 0, 1);
  if (message.progress === null) target.progress = null;
  else if (finite(message.progress)) target.progress = clamp(message.progress, 0, 1);
  if (finite(message.textDuration)) target.textDuration = clamp(message.textDuration, 500, 30000);
  if (typeof message.text === "string" && message.text.length > 0) {
    target.text = message.text;
    seen.text = true;
  }
  if (typeof message.detail === "string" || message.detail === null) target.detail = message.detail;
  return seen;
}
