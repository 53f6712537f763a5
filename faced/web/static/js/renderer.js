// Draws one frame of the face on a 2D canvas from the animator's current parameters. Does
// not own the motion (animator.js). Geometry is in units of min(width, height) around the
// centre; every element is one path and one fill or stroke; nothing here allocates beyond a
// colour string or two per frame, and nothing touches the DOM.

import { clamp } from "./protocol.js";

const TAU = Math.PI * 2;

function rgb(r, g, b) {
  return `rgb(${r | 0},${g | 0},${b | 0})`;
}

function shade(c, factor) {
  return rgb(c.r * factor, c.g * factor, c.b * factor);
}

function roundRectPath(ctx, x, y, w, h, radius) {
  const r = Math.min(radius, w / 2, h / 2);
  ctx.moveTo(x + r, y);
  ctx.arcTo(x + w, y, x + w, y + h, r);
  ctx.arcTo(x + w, y + h, x, y + h, r);
  ctx.arcTo(x, y + h, x, y, r);
  ctx.arcTo(x, y, x + w, y, r);
  ctx.closePath();
}

function mouthMode(pack, target) {
  const byEmotion = pack.mouthByEmotion[target.emotion];
  const byState = pack.mouthByState[target.state];
  if (byEmotion === "fill" || byState === "fill") return "fill";
  return byEmotion ?? byState ?? pack.mouthRenderer;
}

/**
 * Draw the face. ``w``/``h`` in CSS pixels (the context is already scaled for the device
 * pixel ratio); ``target`` is the protocol state (for enum-driven looks).
 */
export function drawFace(ctx, w, h, pack, c, target) {
  const unit = Math.min(w, h);
  const shakeX = c.shake * Math.sin(c.time * 70) * unit * 0.02;
  const cx = w / 2 + shakeX;
  const cy = h / 2;
  const faceColor = rgb(c.r, c.g, c.b);
  const fullscreen = pack.headShape === "fullscreen";

  ctx.fillStyle = fullscreen ? faceColor : (pack.background ?? shade(c, 0.3));
  ctx.fillRect(0, 0, w, h);

  const breathY = (c.breathe - 0.5) * unit * pack.breathY;
  const breathScale = 1 + (c.breathe - 0.5) * pack.breathAmount;

  ctx.save();
  ctx.translate(cx, cy);
  ctx.rotate(c.tilt);
  ctx.scale(c.bounce, c.bounce);

  if (!fullscreen) drawHead(ctx, unit, pack, c, faceColor, breathY);
  if (pack.blush && c.blush > 0.01) drawBlush(ctx, unit, pack, c, breathY);
  drawEyes(ctx, unit, pack, c, breathY, breathScale);
  if (pack.brows) drawBrows(ctx, unit, pack, c, breathY);
  drawMouth(ctx, unit, pack, c, target, breathY);
  drawIndicators(ctx, unit, pack, c, target);

  ctx.restore();
}

function drawHead(ctx, unit, pack, c, faceColor, breathY) {
  const hw = unit * pack.headW * 0.5;
  const hh = unit * pack.headH * 0.5;
  const y = unit * pack.headY + breathY * 0.5;
  ctx.beginPath();
  if (pack.headShape === "rounded") roundRectPath(ctx, -hw, y - hh, hw * 2, hh * 2, unit * pack.headRadius);
  else ctx.ellipse(0, y, hw, hh, 0, 0, TAU);
  ctx.fillStyle = pack.headFill ?? faceColor;
  ctx.fill();
  if (pack.headStroke > 0) {
    ctx.lineWidth = unit * pack.headStroke;
    ctx.strokeStyle = pack.headStrokeColor;
    ctx.stroke();
  }
}

function drawBlush(ctx, unit, pack, c, breathY) {
  const rx = unit * 0.045 * pack.blushSize;
  const y = unit * (pack.eyeY + pack.eyeH * 1.15) + breathY;
  const x = unit * (pack.eyeSpacing + pack.eyeW * 0.6);
  ctx.globalAlpha = clamp(c.blush * pack.blushAlpha, 0, 1);
  ctx.fillStyle = pack.blushColor;
  ctx.beginPath();
  ctx.ellipse(-x, y, rx, rx * 0.55, 0, 0, TAU);
  ctx.ellipse(x, y, rx, rx * 0.55, 0, 0, TAU);
  ctx.fill();
  ctx.globalAlpha = 1;
}

function eyePath(ctx, style, x, y, ew, top, bottom, unit) {
  // ``top``/``bottom``: the eye's extent above and below its centre line.
  if (style === "rectangle") {
    roundRectPath(ctx, x - ew, y - top, ew * 2, top + bottom, Math.min(ew, top + bottom) * 0.3);
    return;
  }
  if (style === "dot") {
    const r = Math.min(ew, (top + bottom) / 2);
    ctx.moveTo(x + r, y);
    ctx.arc(x, y + (bottom - top) / 2, r, 0, TAU);
    return;
  }
  // oval and round: upper half-ellipse, then a lower one squashed by the squint.
  const rx = style === "round" ? Math.max(ew, top * 0.9) : ew;
  ctx.moveTo(x + rx, y);
  ctx.ellipse(x, y, rx, Math.max(top, unit * 0.002), 0, 0, Math.PI, true);
  ctx.ellipse(x, y, rx, Math.max(bottom, unit * 0.002), 0, Math.PI, TAU, true);
  ctx.closePath();
}

function drawEyes(ctx, unit, pack, c, breathY, breathScale) {
  const gazeShift = pack.pupil ? 0.012 : 0.04;
  const gx = c.lookX * unit * gazeShift;
  const gy = c.lookY * unit * gazeShift * 0.8;
  const lidOpen = clamp(c.lid, 0, 1);
  const lidWide = Math.max(1, c.lid);
  for (let side = -1; side <= 1; side += 2) {
    const left = side < 0;
    const scale = left ? c.eyeL : c.eyeR;
    const wink = left ? c.winkL : c.winkR;
    const open = lidOpen * (1 - c.blink) * (1 - wink);
    const x = side * unit * pack.eyeSpacing + gx;
    const y = unit * pack.eyeY + breathY + gy;
    const ew = unit * pack.eyeW * scale;
    const eh = unit * pack.eyeH * scale * breathScale * lidWide;
    if (open < 0.1) {
      // Closed: a gentle downward arc, like a lid at rest.
      ctx.beginPath();
      ctx.moveTo(x - ew * 1.1, y);
      ctx.quadraticCurveTo(x, y + eh * 0.35, x + ew * 1.1, y);
      ctx.lineWidth = Math.max(2, unit * 0.012);
      ctx.lineCap = "round";
      ctx.strokeStyle = pack.feature;
      ctx.stroke();
      continue;
    }
    const top = eh * open;
    const bottom = eh * open * (1 - c.squint * 0.75);
    ctx.beginPath();
    eyePath(ctx, pack.eyeStyle, x, y, ew, top, bottom, unit);
    ctx.fillStyle = pack.eyeFill;
    ctx.fill();
    const reach = Math.min(ew, (top + bottom) / 2);
    if (pack.pupil) {
      ctx.save();
      ctx.clip();
      const pr = reach * pack.pupilSize * 1.4;
      ctx.beginPath();
      ctx.arc(x + c.lookX * (ew - pr) * pack.pupilFollow, y + c.lookY * (reach - pr * 0.5) * pack.pupilFollow, pr, 0, TAU);
      ctx.fillStyle = pack.pupilColor;
      ctx.fill();
      ctx.restore();
    }
    if (pack.specular && open > 0.3) {
      const sr = reach * pack.specularSize;
      const sx = x - ew * pack.specularX + c.lookX * ew * pack.specularFollow;
      const sy = y - top * pack.specularY + c.lookY * reach * pack.specularFollow;
      ctx.globalAlpha = pack.specularAlpha;
      ctx.beginPath();
      ctx.arc(sx, sy, sr, 0, TAU);
      ctx.fillStyle = pack.specularColor;
      ctx.fill();
      ctx.globalAlpha = 1;
    }
  }
}

function drawBrows(ctx, unit, pack, c, breathY) {
  ctx.lineCap = "round";
  ctx.strokeStyle = pack.browFill;
  ctx.lineWidth = Math.max(2, unit * pack.browThickness * 0.075);
  const gx = c.lookX * unit * 0.01;
  for (let side = -1; side <= 1; side += 2) {
    const brow = side < 0 ? c.browL : c.browR;
    const scale = side < 0 ? c.eyeL : c.eyeR;
    const x = side * unit * pack.eyeSpacing + gx;
    const halfW = unit * Math.max(pack.eyeW * scale * 1.15, 0.035);
    const y = unit * pack.eyeY + breathY - unit * pack.eyeH * scale * Math.max(1, c.lid) * pack.browOffset
      - brow * pack.browRange * unit;
    // The slope lifts the inner ends (worry, > 0) or pulls them down (anger, < 0).
    const innerDrop = -c.browSlope * unit * 0.03;
    const outerX = x + side * halfW;
    const innerX = x - side * halfW;
    ctx.beginPath();
    ctx.moveTo(outerX, y);
    ctx.quadraticCurveTo(x, y - unit * (0.012 + pack.browArch * 0.02), innerX, y + innerDrop);
    ctx.stroke();
  }
}

function drawMouth(ctx, unit, pack, c, target, breathY) {
  const halfW = unit * pack.mouthW * 0.5 * (1 + c.mouthWidth) * (1 - c.mouth * 0.25);
  const y = unit * pack.mouthY + breathY * 0.5;
  const smile = c.happiness * unit * 0.035;
  const asym = c.mouthAsym * unit * 0.02;
  const leftY = y - smile - asym;
  const rightY = y - smile + asym;
  const open = c.mouth * unit * 0.16;
  const wave = c.confusion * unit * 0.018;
  const mode = mouthMode(pack, target);
  const fill = mode === "fill" || c.mouth > 0.15;

  ctx.beginPath();
  ctx.moveTo(-halfW, leftY);
  // Upper lip: corners up and middle down make a smile; a confused mouth wobbles.
  ctx.bezierCurveTo(-halfW * 0.35, y + smile - wave, halfW * 0.35, y + smile + wave, halfW, rightY);
  if (fill) {
    ctx.bezierCurveTo(halfW * 0.45, y + smile + open * 1.3, -halfW * 0.45, y + smile + open * 1.3, -halfW, leftY);
    ctx.closePath();
    ctx.fillStyle = pack.mouthFill;
    ctx.fill();
  }
  ctx.lineWidth = Math.max(2, unit * 0.014);
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.strokeStyle = fill ? pack.mouthFill : pack.feature;
  ctx.stroke();
}

function drawIndicators(ctx, unit, pack, c, target) {
  const state = target.state;
  const y = unit * (pack.mouthY + 0.1);
  ctx.fillStyle = pack.feature;
  if (state === "sleeping") {
    ctx.font = `${Math.round(unit * 0.05)}px sans-serif`;
    for (let i = 0; i < 3; i++) {
      const phase = (c.time * 0.35 + i / 3) % 1;
      ctx.globalAlpha = Math.sin(phase * Math.PI);
      ctx.fillText("z", unit * (0.22 + phase * 0.08 + i * 0.02), -unit * (0.12 + phase * 0.15));
    }
    ctx.globalAlpha = 1;
    return;
  }
  if (c.progress >= 0 && (state === "working" || state === "loading")) {
    const half = unit * 0.12;
    const barH = Math.max(3, unit * 0.012);
    ctx.globalAlpha = 0.35;
    ctx.beginPath();
    roundRectPath(ctx, -half, y, half * 2, barH, barH / 2);
    ctx.fill();
    ctx.globalAlpha = 1;
    ctx.beginPath();
    roundRectPath(ctx, -half, y, Math.max(barH, half * 2 * c.progress), barH, barH / 2);
    ctx.fill();
    return;
  }
  if (state === "thinking" || state === "working" || state === "waiting" || state === "loading") {
    const r = unit * 0.011;
    const speed = state === "waiting" ? 1.5 : 4;
    for (let i = 0; i < 3; i++) {
      const pulse = 0.5 + 0.5 * Math.sin(c.time * speed - i * 0.9);
      ctx.globalAlpha = 0.25 + pulse * 0.75;
      ctx.beginPath();
      ctx.arc((i - 1) * r * 3.2, y + r, r * (0.8 + pulse * 0.3), 0, TAU);
      ctx.fill();
    }
    ctx.globalAlpha = 1;
  }
}
