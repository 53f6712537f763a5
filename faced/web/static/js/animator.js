// The face's motion: turns the protocol state (target) plus a face pack into the smoothly
// interpolated drawing parameters (current), with blinking, breathing, saccades and idle
// micro-motion. Does not own drawing (renderer.js) or the state's rules (protocol.js).
// Pure computation, no DOM, so it is tested without a page; every per-frame value lives in
// preallocated fields so a frame allocates nothing.

import { clamp, defaultState, hexToRgb, mergeState } from "./protocol.js";

// Each state's look: mouth openness, lid openness, happiness (smile), confusion (wavy
// mouth), brows [left, right] (-1 down .. 1 up), head tilt (radians), extras.
const STATE_LOOKS = {
  idle: { mouth: 0.06, lid: 1, happiness: 0.05, confusion: 0, brows: [0, 0], tilt: 0 },
  thinking: { mouth: 0.02, lid: 0.72, happiness: 0, confusion: 0, brows: [-0.2, 0.5], tilt: 0.03 },
  speaking: { mouth: 0.1, lid: 1, happiness: 0.15, confusion: 0, brows: [0.1, 0.1], tilt: 0 },
  listening: { mouth: 0.03, lid: 1.15, happiness: 0.1, confusion: 0, brows: [0.35, 0.35], tilt: 0.04 },
  reacting: { mouth: 0.65, lid: 1.1, happiness: 0.3, confusion: 0, brows: [0.4, 0.4], tilt: 0 },
  puzzled: { mouth: 0.05, lid: 0.85, happiness: 0, confusion: 1, brows: [-0.4, 0.6], tilt: -0.05 },
  alert: { mouth: 0.5, lid: 1.3, happiness: -0.35, confusion: 0, brows: [0.75, 0.75], tilt: 0 },
  working: { mouth: 0.02, lid: 0.78, happiness: 0.05, confusion: 0, brows: [-0.25, -0.25], tilt: -0.01 },
  sleeping: { mouth: 0.03, lid: 0, happiness: 0, confusion: 0, brows: [-0.3, -0.3], tilt: 0.04 },
  waiting: { mouth: 0.04, lid: 1.02, happiness: 0, confusion: 0, brows: [0.1, 0.1], tilt: 0 },
  loading: { mouth: 0.02, lid: 0.45, happiness: 0, confusion: 0, brows: [-0.1, -0.1], tilt: 0 },
};

// Each emotion's additive deltas (scaled by intensity, blended primary/secondary).
const DELTA_KEYS = ["happiness", "browL", "browR", "blush", "eyeL", "eyeR", "lidMult", "tilt",
  "squint", "mouthWidth", "mouthAsym", "confusion", "mouthMin", "mouthCap", "gazeX", "gazeY",
  "browSlope"];
const NO_OVERRIDE = Object.freeze({});
const NO_DELTA = { happiness: 0, browL: 0, browR: 0, blush: 0, eyeL: 0, eyeR: 0, lidMult: 1,
  tilt: 0, squint: 0, mouthWidth: 0, mouthAsym: 0, confusion: 0, mouthMin: 0, mouthCap: 1,
  gazeX: 0, gazeY: 0, browSlope: 0 };
const EMOTION_LOOKS = {
  neutral: {},
  happy: { happiness: 0.5, browL: 0.15, browR: 0.15, blush: 0.5, squint: 0.45 },
  sad: { browSlope: 0.7, happiness: -0.7, browL: -0.35, browR: -0.35, eyeL: -0.08, eyeR: -0.08, lidMult: 0.85, mouthCap: 0.15, gazeY: 0.25 },
  confused: { confusion: 0.6, browL: -0.3, browR: 0.45, tilt: -0.03 },
  excited: { happiness: 0.6, browL: 0.45, browR: 0.45, blush: 0.6, eyeL: 0.15, eyeR: 0.15, mouthMin: 0.3 },
  concerned: { browSlope: 0.45, happiness: -0.3, browL: -0.3, browR: -0.3, lidMult: 0.9 },
  surprised: { browSlope: 0.15, browL: 0.7, browR: 0.7, eyeL: 0.3, eyeR: 0.3, lidMult: 1.25, mouthMin: 0.45, mouthWidth: -0.3 },
  playful: { happiness: 0.4, browL: 0.3, browR: -0.1, blush: 0.35, tilt: 0.05, mouthAsym: 0.4 },
  frustrated: { browSlope: -0.7, happiness: -0.4, browL: -0.65, browR: -0.65, lidMult: 0.8, mouthWidth: -0.3 },
  skeptical: { happiness: -0.15, browL: -0.4, browR: 0.6, eyeL: -0.1, eyeR: 0.08, tilt: -0.03, mouthAsym: -0.3 },
  determined: { browSlope: -0.45, browL: -0.4, browR: -0.4, lidMult: 0.82, mouthWidth: -0.2 },
  embarrassed: { browSlope: 0.25, happiness: 0.2, blush: 1, browL: -0.1, browR: 0.25, tilt: 0.06, gazeX: -0.45, gazeY: 0.3, mouthAsym: 0.25 },
  proud: { happiness: 0.45, browL: 0.15, browR: 0.15, lidMult: 0.85, tilt: -0.04, squint: 0.2 },
};

// Pack emotionDeltas use Open Face's names; map them onto ours.
function packDelta(raw) {
  const out = {};
  for (const key of ["happiness", "blush", "lidMult", "tilt", "squint", "mouthWidth", "mouthAsym", "confusion", "mouthMin", "mouthCap"]) {
    if (key in raw) out[key] = raw[key];
  }
  if (raw.brows) [out.browL, out.browR] = raw.brows;
  if (raw.eyeScale) [out.eyeL, out.eyeR] = raw.eyeScale;
  return out;
}

/** Frame-rate independent exponential approach: ``rate`` is the share covered per 1/60 s. */
function approach(current, target, rate, dt) {
  return current + (target - current) * (1 - Math.pow(1 - clamp(rate, 0, 1), dt * 60));
}

export class FaceAnimator {
  constructor(pack) {
    this.target = defaultState();
    this.current = {
      mouth: 0.06, lid: 1, happiness: 0, confusion: 0, browL: 0, browR: 0, eyeL: 1, eyeR: 1,
      tilt: 0, blush: 0, squint: 0, mouthWidth: 0, mouthAsym: 0, lookX: 0, lookY: 0,
      winkL: 0, winkR: 0, blink: 0, breathe: 0.5, shake: 0, bounce: 1, amplitude: 0,
      progress: 0, r: 79, g: 195, b: 247, time: 0, stateTime: 0, browSlope: 0,
    };
    this._delta = { ...NO_DELTA };
    this._deltaA = { ...NO_DELTA };
    this._deltaB = { ...NO_DELTA };
    this._targetRgb = [79, 195, 247];
    this._activeState = "idle";
    this._blinkTimer = 2;
    this._blinkPhase = -1; // < 0: eyes open; 0..1: a blink in progress
    this._pendingDoubleBlink = false;
    this._dartTimer = 5;
    this._dartLeft = 0;
    this._dartX = 0;
    this._dartY = 0;
    this._lookAtAge = 1e9; // seconds since an agent set lookAt
    this.externalAmplitude = -1; // >= 0 while audio drives the mouth
    this.setPack(pack);
  }

  setPack(pack) {
    this.pack = pack;
    this._emotionTables = {};
    for (const [emotion, look] of Object.entries(EMOTION_LOOKS)) {
      this._emotionTables[emotion] = { ...NO_DELTA, ...look, ...packDelta(pack.emotionDeltas[emotion] ?? {}) };
    }
    this._retarget();
  }

  /** Merge a protocol state message; returns what mergeState saw. */
  apply(message) {
    const seen = mergeState(this.target, message);
    if (seen.lookAt) this._lookAtAge = 0;
    this._retarget();
    return seen;
  }

  reset() {
    this.target = defaultState();
    this._retarget();
  }

  /** The colour the face is heading to: override, else state colour blended with emotion. */
  _retarget() {
    const pack = this.pack;
    const target = this.target;
    const override = target.color ? hexToRgb(target.color) : null;
    if (override) {
      this._targetRgb = override;
      return;
    }
    const stateRgb = hexToRgb(pack.stateColors[target.state]) ?? [128, 128, 128];
    const emotionHex = pack.emotionColors[target.emotion];
    const emotionRgb = emotionHex ? hexToRgb(emotionHex) : null;
    if (!emotionRgb) {
      this._targetRgb = stateRgb;
      return;
    }
    const share = pack.emotionColorBlend * target.intensity;
    this._targetRgb = stateRgb.map((value, i) => value + (emotionRgb[i] - value) * share);
  }

  _emotionDelta() {
    const target = this.target;
    const a = this._emotionTables[target.emotion] ?? NO_DELTA;
    const b = this._emotionTables[target.emotionSecondary] ?? NO_DELTA;
    const blend = target.emotionSecondary === "neutral" && target.emotionBlend === 0 ? 0 : target.emotionBlend;
    const scale = target.intensity * this.pack.expressiveness;
    const out = this._delta;
    for (const key of DELTA_KEYS) {
      const mixed = a[key] * (1 - blend) + b[key] * blend;
      if (key === "lidMult" || key === "mouthCap") out[key] = 1 + (mixed - 1) * Math.min(1, scale);
      else out[key] = mixed * scale;
    }
    return out;
  }

  /** Advance by ``dt`` seconds. */
  update(dt) {
    dt = clamp(dt, 0, 0.1); // a stalled tab must not jump
    const pack = this.pack;
    const target = this.target;
    const c = this.current;
    const state = target.state;
    const speed = pack.speed;
    c.time += dt;
    c.stateTime += dt;
    this._lookAtAge += dt;
    if (state !== this._activeState) {
      this._activeState = state;
      c.stateTime = 0;
      if (state === "alert") c.shake = 1;
      if (state === "alert" || state === "reacting") c.bounce = 1.06;
    }

    const look = STATE_LOOKS[state];
    const over = pack.states[state] ?? NO_OVERRIDE;
    const d = this._emotionDelta();

    // Amplitude: the audio's waveform when it plays, else the agent's value.
    const amplitudeTarget = this.externalAmplitude >= 0 ? this.externalAmplitude : target.amplitude;
    c.amplitude = approach(c.amplitude, amplitudeTarget, 0.45, dt);

    let mouth = over.mouth ?? look.mouth;
    if (state === "speaking" || this.externalAmplitude > 0.02) {
      mouth = Math.max(mouth, 0.08 + c.amplitude * 0.85 + Math.sin(c.time * 13) * c.amplitude * 0.08);
    } else if (target.amplitude > 0) {
      mouth = Math.max(mouth, c.amplitude * 0.9);
    }
    mouth = Math.max(mouth, d.mouthMin) * d.mouthCap;
    if (over.mouthCap !== undefined) mouth = Math.min(mouth, over.mouthCap);
    mouth = clamp(mouth, pack.openMin, pack.openMax);

    let lid = (over.lid ?? look.lid) * d.lidMult;
    if (state === "loading") {
      const opening = target.progress ?? Math.min(1, c.stateTime / 2.5);
      lid = 0.3 + opening * 0.7;
    }
    const browsBase = over.brows ?? look.brows;
    const scales = pack.stateScales[state];
    const happiness = clamp((over.happiness ?? look.happiness) + d.happiness + pack.warmth, -1, 1);
    let tilt = (over.tilt ?? look.tilt) + d.tilt;
    if (state === "idle" || state === "listening") {
      tilt += Math.sin(c.time * 0.35) * pack.headSway * (0.5 + pack.playfulness);
    }

    const rate = speed;
    c.mouth = pack.lockMouth ? 0.06 : approach(c.mouth, mouth, 0.3 * rate, dt);
    c.lid = approach(c.lid, clamp(lid, 0, 1.6), 0.25 * rate, dt);
    c.happiness = approach(c.happiness, happiness, 0.12 * rate, dt);
    c.confusion = approach(c.confusion, clamp((over.confusion ?? look.confusion) + d.confusion, 0, 1), 0.15 * rate, dt);
    const browL = pack.lockBrows ? 0 : clamp(browsBase[0] + d.browL, pack.browMin, pack.browMax);
    const browR = pack.lockBrows ? 0 : clamp(browsBase[1] + d.browR, pack.browMin, pack.browMax);
    c.browL = approach(c.browL, browL, 0.18 * rate, dt);
    c.browR = approach(c.browR, browR, 0.18 * rate, dt);
    const eyeL = pack.lockEyes ? 1 : clamp(scales[0] + d.eyeL, pack.eyeScaleMin, pack.eyeScaleMax);
    const eyeR = pack.lockEyes ? 1 : clamp(scales[1] + d.eyeR, pack.eyeScaleMin, pack.eyeScaleMax);
    c.eyeL = approach(c.eyeL, eyeL, 0.14 * rate, dt);
    c.eyeR = approach(c.eyeR, eyeR, 0.14 * rate, dt);
    c.tilt = approach(c.tilt, tilt, 0.08 * rate, dt);
    const stateSlope = state === "working" ? -0.25 : state === "alert" ? 0.3 : 0;
    c.browSlope = approach(c.browSlope, pack.lockBrows ? 0 : clamp(stateSlope + d.browSlope, -1, 1), 0.18 * rate, dt);
    c.blush = approach(c.blush, clamp(d.blush, 0, 1), 0.1 * rate, dt);
    c.squint = approach(c.squint, clamp(d.squint, 0, 1), 0.15 * rate, dt);
    c.mouthWidth = approach(c.mouthWidth, clamp(d.mouthWidth, pack.widthMin, pack.widthMax), 0.2 * rate, dt);
    c.mouthAsym = approach(c.mouthAsym, clamp(d.mouthAsym, -1, 1), 0.2 * rate, dt);
    c.winkL = approach(c.winkL, target.winkLeft, 0.35, dt);
    c.winkR = approach(c.winkR, target.winkRight, 0.35, dt);
    c.progress = target.progress === null ? -1 : approach(Math.max(0, c.progress), target.progress, 0.2, dt);

    this._gaze(dt, d);
    this._blink(dt);

    // Breathing: slower asleep; shake and bounce decay.
    c.breathe = Math.sin(c.time * (state === "sleeping" ? 0.9 : 1.6)) * 0.5 + 0.5;
    c.shake = c.shake < 0.01 ? 0 : c.shake * Math.pow(0.9, dt * 60);
    c.bounce = approach(c.bounce, 1, 0.15, dt);

    const colorRate = state === "alert" ? pack.colorSpeedAlert : state === "sleeping" ? pack.colorSpeedSleeping : pack.colorSpeed;
    const rgb = this._targetRgb;
    c.r = approach(c.r, rgb[0], colorRate, dt);
    c.g = approach(c.g, rgb[1], colorRate, dt);
    c.b = approach(c.b, rgb[2], colorRate, dt);
  }

  _gaze(dt, d) {
    const c = this.current;
    const pack = this.pack;
    const target = this.target;
    let x = target.lookAt.x + d.gazeX;
    let y = target.lookAt.y + d.gazeY;
    const free = this._lookAtAge > 2.5; // the agent's gaze wins for a while
    if (free && target.state === "thinking") {
      x = 0.35 + Math.sin(c.time * 0.7) * 0.15;
      y = -0.35 + Math.cos(c.time * 0.5) * 0.1;
    } else if (free && target.state === "waiting" && Math.sin(c.stateTime * 0.4) > 0.75) {
      x = -0.25;
      y = 0.2;
    }
    // Saccades: short darts elsewhere, then back; calmer packs dart less.
    if (pack.micro && target.state !== "sleeping") {
      this._dartTimer -= dt;
      if (this._dartTimer <= 0) {
        const [low, high] = pack.dartInterval;
        this._dartTimer = (low + Math.random() * (high - low)) * (0.6 + pack.stability);
        this._dartLeft = pack.dartDuration;
        this._dartX = (Math.random() * 2 - 1) * pack.dartX;
        this._dartY = (Math.random() * 2 - 1) * pack.dartY;
      }
      if (this._dartLeft > 0) {
        this._dartLeft -= dt;
        x += this._dartX;
        y += this._dartY;
      }
    }
    // Eyes jump fast over large distances and settle slowly (saccade then fixation).
    const distance = Math.abs(x - c.lookX) + Math.abs(y - c.lookY);
    const rate = distance > 0.3 ? 0.35 : 0.12;
    c.lookX = approach(c.lookX, clamp(x, -1, 1), rate * pack.speed, dt);
    c.lookY = approach(c.lookY, clamp(y, -1, 1), rate * pack.speed, dt);
  }

  _blink(dt) {
    const c = this.current;
    const pack = this.pack;
    if (this.target.state === "sleeping") {
      c.blink = 0;
      return;
    }
    if (this._blinkPhase >= 0) {
      this._blinkPhase += dt / 0.16;
      if (this._blinkPhase >= 1) {
        this._blinkPhase = -1;
        if (this._pendingDoubleBlink) {
          this._pendingDoubleBlink = false;
          this._blinkTimer = 0.12;
        }
      }
    } else {
      this._blinkTimer -= dt;
      if (this._blinkTimer <= 0) {
        const [low, high] = pack.blinkInterval;
        this._blinkTimer = (low + Math.random() * (high - low)) / pack.speed;
        this._blinkPhase = 0;
        this._pendingDoubleBlink = Math.random() < pack.doubleBlink;
      }
    }
    c.blink = this._blinkPhase < 0 ? 0 : Math.sin(this._blinkPhase * Math.PI);
  }
}
