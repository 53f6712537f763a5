// The viewer page (/): a full-screen face driven by /ws/viewer. Owns: wiring the socket
// (connection.js), the pack (facepack.js), motion, drawing, audio and speech together.
// URL parameters: ?server=ws://host:port/ws/viewer (another daemon), ?face=SLUG (pin a face
// pack; otherwise the daemon's /api/config choice, switched live), ?audio=off (do not play
// /api/audio chunks — the kiosk, where the daemon drives the speaker), ?tts=1 (speak text
// with the browser's speech synthesis when no audio flows).

import { AudioPlayer } from "./audio.js";
import { FaceAnimator } from "./animator.js";
import { ReconnectingSocket, httpOrigin, viewerUrl } from "./connection.js";
import { loadPack, normalizePack } from "./facepack.js";
import { drawFace } from "./renderer.js";
import { SpeechFallback } from "./tts.js";

const FRAME_SAMPLES = 600;
const MAX_PIXEL_RATIO = 2; // a 4K kiosk at ratio 2 is plenty; more only costs fill rate

export function startViewer(canvas, options = {}) {
  const params = options.params ?? new URLSearchParams(location.search);
  const socketUrl = viewerUrl(params, location);
  const origin = httpOrigin(socketUrl);
  const pinnedFace = params.get("face");
  const audioEnabled = options.audio ?? params.get("audio") !== "off";
  const ttsEnabled = ["1", "true", "on", "yes"].includes((params.get("tts") ?? "").toLowerCase());
  const bubble = options.bubble ?? null;
  const onState = options.onState ?? (() => {});
  const onMessage = options.onMessage ?? (() => {});

  const context = canvas.getContext("2d", { alpha: false });
  const animator = new FaceAnimator(normalizePack({}, "builtin"));
  const audio = audioEnabled ? new AudioPlayer() : null;
  const speech = ttsEnabled ? new SpeechFallback(audio) : null;
  let packSlug = "builtin";
  let packRequest = 0;
  let width = 0;
  let height = 0;
  let bubbleTimer = 0;

  async function usePack(slug) {
    if (!slug || slug === packSlug) return;
    const request = ++packRequest;
    try {
      const pack = await loadPack(slug, pinnedFace ? "" : origin);
      if (request !== packRequest) return; // a newer switch won
      animator.setPack(pack);
      packSlug = slug;
      document.documentElement.dataset.face = slug;
    } catch (error) {
      console.error("face pack:", error);
    }
  }

  async function syncConfig() {
    if (pinnedFace) return usePack(pinnedFace);
    try {
      const response = await fetch(`${origin}/api/config`, { cache: "no-store" });
      if (response.ok) await usePack((await response.json()).face);
    } catch (error) {
      console.warn("cannot read /api/config:", error);
    }
  }

  function showText(text, duration) {
    if (!bubble) return;
    bubble.textContent = text;
    bubble.hidden = false;
    clearTimeout(bubbleTimer);
    bubbleTimer = setTimeout(() => { bubble.hidden = true; }, duration);
  }

  function handle(message) {
    switch (message.type ?? "state") {
      case "state": {
        const seen = animator.apply(message);
        if (seen.text) {
          showText(animator.target.text, animator.target.textDuration);
          speech?.say(animator.target.text);
        }
        onState(animator.target);
        break;
      }
      case "audio":
        if (audio) {
          speech?.cancel();
          audio.chunk(message);
        }
        break;
      case "audio-seq":
        audio?.newSequence(message.seq);
        speech?.sequence(message);
        break;
      case "audio-done":
        audio?.done(message.seq);
        break;
      case "config":
        if (!pinnedFace && typeof message.face === "string") usePack(message.face);
        break;
      case "error":
        console.warn("viewer socket error:", message.message);
        break;
      default:
        break; // pong, history, and types a newer daemon may add
    }
    onMessage(message);
  }

  const socket = new ReconnectingSocket(socketUrl, {
    name: "viewer socket",
    onMessage: handle,
    onStatus(status) {
      document.documentElement.dataset.connection = status;
      if (status === "open") syncConfig();
      options.onStatus?.(status);
    },
  });

  function resize() {
    const ratio = Math.min(window.devicePixelRatio || 1, MAX_PIXEL_RATIO);
    const rect = canvas.getBoundingClientRect();
    width = rect.width;
    height = rect.height;
    canvas.width = Math.max(1, Math.round(width * ratio));
    canvas.height = Math.max(1, Math.round(height * ratio));
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
  }

  // Frame statistics for benchmarks and tests: work time (update + draw) and the interval
  // between frames, in ring buffers allocated once.
  const workMs = new Float32Array(FRAME_SAMPLES);
  const intervalMs = new Float32Array(FRAME_SAMPLES);
  let frames = 0;
  let last = 0;

  function frame(now) {
    const dt = last ? (now - last) / 1000 : 0;
    if (last) intervalMs[frames % FRAME_SAMPLES] = now - last;
    last = now;
    const started = performance.now();
    let external = -1;
    if (audio && audio.playing) external = audio.amplitude();
    else if (speech && speech.speaking) external = speech.amplitude(dt);
    animator.externalAmplitude = external;
    animator.update(dt);
    drawFace(context, width, height, animator.pack, animator.current, animator.target);
    workMs[frames % FRAME_SAMPLES] = performance.now() - started;
    frames += 1;
    requestAnimationFrame(frame);
  }

  function percentile(values, count, p) {
    const sorted = Array.from(values.subarray(0, Math.min(count, FRAME_SAMPLES))).sort((a, b) => a - b);
    if (sorted.length === 0) return 0;
    return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  }

  function stats() {
    return {
      frames,
      work_p50_ms: percentile(workMs, frames, 0.5),
      work_p99_ms: percentile(workMs, frames, 0.99),
      interval_p50_ms: percentile(intervalMs, frames - 1, 0.5),
      interval_p99_ms: percentile(intervalMs, frames - 1, 0.99),
    };
  }

  const unlock = () => audio?.unlock();
  window.addEventListener("pointerdown", unlock);
  window.addEventListener("keydown", unlock);
  // The canvas follows its box (a window resize, or a dashboard panel changing size).
  if (typeof ResizeObserver === "function") new ResizeObserver(resize).observe(canvas);
  else window.addEventListener("resize", resize);
  resize();
  if (pinnedFace) usePack(pinnedFace);
  socket.start();
  requestAnimationFrame(frame);

  return {
    animator, socket, audio, speech, stats,
    get face() { return packSlug; },
  };
}
