// Reads an Open Face `.face.json` face pack into the flat, fully-defaulted geometry the
// animator and renderer use. Does not own which pack is shown (viewer.js, from the daemon's
// /api/config). Every value is checked and clamped; unknown sections and values
// (accessories, bodies, exotic eye styles …) are ignored or mapped to the nearest supported
// look — a pack can never break the viewer.

import { EMOTION_COLORS, STATE_COLORS, STATES, clamp, hexToRgb } from "./protocol.js";

const EYE_STYLES = new Set(["oval", "round", "rectangle", "dot"]);
// Styles from the wider schema drawn with the closest supported shape.
const EYE_STYLE_FALLBACK = { almond: "oval", crescent: "oval", semicircle: "oval", cat: "oval",
  heart: "round", star: "round", cross: "dot", diamond: "rectangle" };
const HEAD_SHAPES = new Set(["fullscreen", "circle", "oval", "rounded"]);

function object(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? value : {};
}

function num(value, fallback, low = -Infinity, high = Infinity) {
  return typeof value === "number" && Number.isFinite(value) ? clamp(value, low, high) : fallback;
}

function pair(value, fallback, low, high) {
  if (Array.isArray(value) && value.length === 2) {
    return [num(value[0], fallback[0], low, high), num(value[1], fallback[1], low, high)];
  }
  return fallback;
}

function color(value, fallback) {
  return hexToRgb(value) ? value : fallback;
}

function bool(value, fallback) {
  return typeof value === "boolean" ? value : fallback;
}

// Per-state and per-emotion numeric overrides: only the keys the animator knows, as
// numbers (or [left, right] pairs), each clamped to a sane range.
const SCALAR_KEYS = { mouth: [0, 1], lid: [0, 1.6], happiness: [-1, 1], confusion: [0, 1],
  tilt: [-0.3, 0.3], blush: [0, 1], squint: [0, 1], mouthWidth: [-1, 1], mouthAsym: [-1, 1],
  lidMult: [0, 2], mouthMin: [0, 1], mouthMax: [0, 1], mouthCap: [0, 1] };
const PAIR_KEYS = { brows: [-1, 1], eyeScale: [-1, 1] };

function overrides(raw) {
  const out = {};
  for (const [key, [low, high]] of Object.entries(SCALAR_KEYS)) {
    if (typeof raw[key] === "number" && Number.isFinite(raw[key])) out[key] = clamp(raw[key], low, high);
  }
  for (const [key, [low, high]] of Object.entries(PAIR_KEYS)) {
    if (Array.isArray(raw[key]) && raw[key].length === 2) out[key] = pair(raw[key], [0, 0], low, high);
  }
  return out;
}

function overrideTable(raw, names) {
  const table = {};
  const source = object(raw);
  for (const name of names) {
    if (name in source) table[name] = overrides(object(source[name]));
  }
  return table;
}

function rendererTable(raw) {
  const table = {};
  for (const [key, value] of Object.entries(object(raw))) {
    if (value === "fill" || value === "line") table[key] = value;
  }
  return table;
}

/** The runtime pack for a parsed `.face.json` document (any JSON value is accepted). */
export function normalizePack(document, slug = "") {
  const doc = object(document);
  const meta = object(doc.meta);
  const geometry = object(doc.geometry);
  const head = object(geometry.head);
  const eyes = object(geometry.eyes);
  const pupil = object(eyes.pupil);
  const specular = object(eyes.specular);
  const mouth = object(geometry.mouth);
  const mouthLimits = object(mouth.constraints);
  const brows = object(geometry.brows);
  const blush = object(geometry.blush);
  const locks = object(geometry.locks);
  const palette = object(doc.palette);
  const paletteHead = object(palette.head);
  const animation = object(doc.animation);
  const micro = object(object(animation.microExpressions).eyeDart);
  const colorSpeed = object(animation.colorSpeed);
  const personality = object(doc.personality);

  let headShape = typeof head.shape === "string" ? head.shape : geometry.shape;
  if (typeof headShape !== "string") headShape = "fullscreen";
  if (!HEAD_SHAPES.has(headShape)) headShape = headShape === "fullscreen" ? "fullscreen" : "rounded";
  let eyeStyle = typeof eyes.style === "string" ? eyes.style : "oval";
  if (!EYE_STYLES.has(eyeStyle)) eyeStyle = EYE_STYLE_FALLBACK[eyeStyle] ?? "oval";

  const stateScales = {};
  const rawScales = object(eyes.stateScales);
  for (const state of STATES) stateScales[state] = pair(rawScales[state], [1, 1], 0.2, 3);

  const stateColors = {};
  const rawStates = object(palette.states);
  for (const state of STATES) stateColors[state] = color(rawStates[state], STATE_COLORS[state]);
  const emotionColors = {};
  const rawEmotions = object(palette.emotions);
  for (const [emotion, fallback] of Object.entries(EMOTION_COLORS)) {
    const value = rawEmotions[emotion];
    emotionColors[emotion] = value === null ? null : color(value, fallback);
  }

  const feature = color(palette.feature, "#111111");
  const energy = num(personality.energy, 0.5, 0, 1);
  return {
    slug,
    name: typeof meta.name === "string" ? meta.name : slug,
    headShape,
    headW: num(head.width, 0.85, 0.2, 1.2),
    headH: num(head.height, 0.85, 0.2, 1.2),
    headY: num(head.verticalPosition, 0, -0.3, 0.3),
    headRadius: num(head.radius, 0.08, 0, 0.5),
    headStroke: num(head.strokeWidth, 0, 0, 0.05),
    eyeStyle,
    eyeW: num(eyes.baseWidth, 0.045, 0.005, 0.25),
    eyeH: num(eyes.baseHeight, 0.11, 0.005, 0.3),
    eyeSpacing: num(eyes.spacing, 0.16, 0.02, 0.45),
    eyeY: num(eyes.verticalPosition, -0.05, -0.4, 0.4),
    eyeScaleMin: num(object(eyes.constraints).scaleMin, 0.5, 0.1, 1),
    eyeScaleMax: num(object(eyes.constraints).scaleMax, 1.6, 1, 3),
    stateScales,
    pupil: bool(pupil.enabled, false),
    pupilSize: num(pupil.size, 0.4, 0.05, 0.9),
    pupilFollow: num(pupil.lookFollow, 0.8, 0, 1),
    specular: bool(specular.enabled, true),
    specularSize: num(specular.size, 0.22, 0.02, 0.6),
    specularX: num(specular.shiftX, 0.35, -1, 1),
    specularY: num(specular.shiftY, 0.35, -1, 1),
    specularFollow: num(specular.lookFollow, 0.2, 0, 1),
    specularAlpha: num(specular.alpha, 1, 0, 1),
    mouthW: num(mouth.width, 0.15, 0.02, 0.5),
    mouthY: num(mouth.verticalPosition, 0.14, -0.2, 0.45),
    mouthRenderer: mouth.renderer === "fill" ? "fill" : "line",
    mouthByState: rendererTable(mouth.rendererByState),
    mouthByEmotion: rendererTable(mouth.rendererByEmotion),
    openMin: num(mouthLimits.openMin, 0, 0, 1),
    openMax: num(mouthLimits.openMax, 1, 0, 1),
    widthMin: num(mouthLimits.widthMin, -0.4, -1, 0),
    widthMax: num(mouthLimits.widthMax, 0.4, 0, 1),
    brows: bool(brows.enabled, true) && brows.renderer !== "none",
    browThickness: num(brows.baseThickness, 0.18, 0.02, 1),
    browRange: num(brows.range, 0.05, 0, 0.2),
    browOffset: num(brows.verticalOffset, 1.2, 0.5, 3),
    browArch: brows.renderer === "arch" ? 1 : 0,
    browMin: num(object(brows.constraints).min, -1, -1, 0),
    browMax: num(object(brows.constraints).max, 1, 0, 1),
    lockBrows: bool(locks.brows, false),
    lockMouth: bool(locks.mouth, false),
    lockEyes: bool(locks.eyes, false),
    blush: bool(blush.enabled, true),
    blushAlpha: num(blush.maxAlpha, 0.25, 0, 1),
    blushSize: num(blush.size, 0.6, 0.1, 2),
    feature,
    // The eye is the feature colour unless the pack says otherwise (a white with pupils).
    eyeFill: color(palette.eyeFill, feature),
    pupilColor: color(pupil.color, feature),
    mouthFill: color(palette.mouthFill, feature),
    browFill: color(palette.browFill, feature),
    specularColor: color(palette.specular, "#FFFFFF"),
    blushColor: color(palette.blush, "#FF8A80"),
    background: color(palette.background, null),
    headFill: color(paletteHead.fill, null),
    headStrokeColor: color(paletteHead.stroke, feature),
    stateColors,
    emotionColors,
    emotionColorBlend: num(palette.emotionColorBlend, 0.5, 0, 1),
    breathAmount: num(animation.breathAmount, 0.02, 0, 0.1),
    breathY: num(animation.breathY, 0.01, 0, 0.05),
    headSway: num(animation.headSway, 0.01, 0, 0.1),
    blinkInterval: pair(animation.blinkInterval, [2.5, 5], 0.5, 30),
    doubleBlink: num(animation.doubleBlink, 0.15, 0, 1),
    colorSpeed: num(colorSpeed.default, 0.06, 0.005, 1),
    colorSpeedAlert: num(colorSpeed.alert, 0.15, 0.005, 1),
    colorSpeedSleeping: num(colorSpeed.sleeping, 0.03, 0.005, 1),
    dartInterval: pair(micro.interval, [4, 10], 0.5, 60),
    dartX: num(micro.rangeX, 0.25, 0, 1),
    dartY: num(micro.rangeY, 0.12, 0, 1),
    dartDuration: num(micro.duration, 0.35, 0.05, 3),
    micro: bool(object(animation.microExpressions).enabled, true),
    // Personality: how fast, how far, how warm, how still, how skewed.
    speed: 0.6 + energy * 0.8,
    expressiveness: 0.4 + num(personality.expressiveness, 0.5, 0, 1) * 1.2,
    warmth: (num(personality.warmth, 0.5, 0, 1) - 0.5) * 0.3,
    stability: num(personality.stability, 0.5, 0, 1),
    playfulness: num(personality.playfulness, 0.4, 0, 1),
    states: overrideTable(doc.states, STATES),
    emotionDeltas: overrideTable(doc.emotionDeltas, Object.keys(EMOTION_COLORS)),
  };
}

/** Fetch and normalise the pack ``slug`` from ``base`` (an http(s) origin). */
export async function loadPack(slug, base = "") {
  if (!/^[a-z0-9][a-z0-9-]{0,47}$/.test(slug)) throw new Error(`bad face name ${JSON.stringify(slug)}`);
  const response = await fetch(`${base}/static/faces/${slug}.face.json`, { cache: "no-cache" });
  if (!response.ok) throw new Error(`face pack ${slug}: HTTP ${response.status}`);
  return normalizePack(await response.json(), slug);
}
